#!/bin/bash
# kernel_mirror.sh BUILD_DIR: end to end with the Linux kernel (root, opt-in:
# `make test-e2e`, not in CI). ../shared/lab/mirrorlab.sh builds three
# network namespaces; the kernel mirrors every frame of the client (tc
# mirred into a VXLAN device, VNI 1234, UDP 4789) to the monitor namespace,
# where `exfilwatch run` listens on 10.54.0.1:4789. iodine runs a real tunnel
# from the client to iodined on the server (the lab's iodine-null scenario);
# the test passes when the sensor alerts on tunnel-lab.net, also checks the
# health port answers, and that SIGTERM exits 0.
set -uo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/../.." && pwd)
exfilwatch="$here/$build/exfilwatch"
lab="$here/../shared/lab/mirrorlab.sh"
[ "$(id -u)" -eq 0 ] || { echo "kernel_mirror: needs root (network namespaces)" >&2; exit 2; }
for t in iodine iodined nc ip tc; do
  command -v $t >/dev/null || { echo "kernel_mirror: missing $t (apt-get install iodine netcat-openbsd iproute2 ethtool)" >&2; exit 2; }
done
export LAB_PREFIX=e2e$$
P=$LAB_PREFIX
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  "$lab" down >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
"$lab" down >/dev/null 2>&1
"$lab" up

cat > "$work/sensor.yaml" <<YAML
listen:
  address: 10.54.0.1
  vxlan_port: 4789
  health_address: 10.54.0.1
  health_port: 4789
  workers: 2
${E2E_EXTRA_CONFIG:-}
YAML
ip netns exec ${P}mon "$exfilwatch" run --config "$work/sensor.yaml" --eve "$work/eve.json" \
  2>"$work/sensor.log" & sensor=$!
pids+=($sensor)
for i in $(seq 600); do grep -q "exfilwatch run: ready" "$work/sensor.log" && break; sleep 0.1; done
grep -q "exfilwatch run: ready" "$work/sensor.log" || { echo "sensor did not start:"; cat "$work/sensor.log"; exit 1; }

# The NLB's TCP health check, from the client namespace.
if ip netns exec ${P}cli nc -z -w 3 10.54.0.1 4789; then echo "ok   health check accepted on 10.54.0.1:4789/tcp"
else echo "FAIL health check"; fail=1; fi

# The lab's iodine-null scenario (../shared/lab/scenarios.sh).
ip netns exec ${P}srv iodined -f -c -P labpw 172.31.99.1/27 t1.tunnel-lab.net >>"$work/srv.log" 2>&1 & pids+=($!)
ip netns exec ${P}srv nc -lk 9000 >/dev/null 2>&1 & pids+=($!)
sleep 0.5
ip netns exec ${P}cli bash -c "iodine -f -r -P labpw 10.53.0.1 t1.tunnel-lab.net >/dev/null 2>&1 & ip=\$!
  for i in \$(seq 40); do ip addr show dns0 2>/dev/null | grep -q 172.31.99 && break; sleep 0.25; done
  head -c ${BYTES:-60000} /dev/urandom | timeout 60 nc -q1 172.31.99.1 9000; sleep 1; kill \$ip"
sleep 1

kill -TERM $sensor
wait $sensor; rc=$?
grep '^stats: final' "$work/sensor.log"
fail=${fail:-0}
if [ $rc -eq 0 ]; then echo "ok   SIGTERM: exit 0"; else echo "FAIL sensor exit $rc"; fail=1; fi
alerts=$(grep '"event_type":"alert"' "$work/eve.json" | grep -c '"registered_domain":"tunnel-lab.net"')
if [ "$alerts" -gt 0 ]; then
  echo "ok   $alerts alert(s) name tunnel-lab.net:"
  grep '"event_type":"alert"' "$work/eve.json" | grep '"tunnel-lab.net"' | head -2 | cut -c1-400
else
  echo "FAIL no alert names tunnel-lab.net"; tail -5 "$work/sensor.log"; fail=1
fi
exit $fail
