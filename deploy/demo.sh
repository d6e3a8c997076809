#!/bin/bash
# demo.sh BUILD_DIR: starts the live sensor (`exfilwatch run`) on loopback,
# mirrors the bundled capture into it the way a VPC traffic-mirror session
# would (`exfilwatch mirror`: benign look-ups, an iodine tunnel and a dns2tcp
# tunnel, VXLAN), stops it with SIGTERM and shows what it raised: the alerts
# as EVE JSON, then the sensor's summary.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
capture="$here/tests/data/demo-mixed.pcap"
exfilwatch="${EXFILWATCH:-$here/$build/exfilwatch}"
work=$(mktemp -d)
sensor=""
trap '[ -n "$sensor" ] && kill "$sensor" 2>/dev/null; rm -rf "$work"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listen:\n  address: 127.0.0.1\n  vxlan_port: %s\n  health_address: 127.0.0.1\n  health_port: %s\n  workers: 2\n' \
  "$port" "$port" > "$work/sensor.yaml"
echo "== exfilwatch run: VXLAN on 127.0.0.1:$port/udp, health check on $port/tcp"
"$exfilwatch" run --config "$work/sensor.yaml" --eve "$work/eve.json" 2>"$work/sensor.log" &
sensor=$!
for _ in $(seq 600); do grep -q "exfilwatch run: ready" "$work/sensor.log" && break; sleep 0.1; done
grep -v '^stats' "$work/sensor.log" | sed 's/^/   /'
if ! grep -q "exfilwatch run: ready" "$work/sensor.log"; then
  echo "the sensor did not start (see above)" >&2
  exit 1
fi
echo
echo "== exfilwatch mirror $capture --to 127.0.0.1:$port"
"$exfilwatch" mirror "$capture" --to "127.0.0.1:$port" --pps 2000
kill -TERM "$sensor"
wait "$sensor" || true
sensor=""
echo
echo "== alerts (EVE JSON, one per line)"
grep '"event_type":"alert"' "$work/eve.json" || echo "(no alerts)"
echo
echo "== sensor summary"
grep '^stats: final' "$work/sensor.log" | tr ' ' '\n' | grep -v '^$' | sed 's/^/   /' | head -30
