#!/bin/bash
# fleet_bench.sh: the fleet's shared state (docs/fleet.md) on the mixed bench
# capture: replay throughput with --fleet versus without, side by side on one
# local redis-server (loopback) this script starts; Redis commands per 100k
# DNS messages, bytes per flush, Redis memory per 1,000 shared pairs (INFO
# memory before and after), and the replay's peak RSS both ways.
# usage: bench/fleet_bench.sh [PCAP] [ROUNDS]   (PCAP: bench/gen_mixed.py's)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
EXE=${EXFILWATCH:-$HERE/../build/exfilwatch}
PCAP=${1:-$(python3 "$HERE/gen_mixed.py" | awk '{print $2}')}
ROUNDS=${2:-3}
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
  --logfile "$DIR/redis.log" --daemonize yes --pidfile "$DIR/redis.pid"
trap 'kill "$(cat "$DIR/redis.pid")" 2>/dev/null; rm -rf "$DIR"' EXIT
CLI=(redis-cli -h 127.0.0.1 -p "$PORT")
until "${CLI[@]}" PING >/dev/null 2>&1; do sleep 0.1; done
printf 'rules: {enabled: true}\n' > "$DIR/c.yaml"
info() { "${CLI[@]}" INFO "$1" | tr -d '\r' | awk -F: -v k="$2" '$1==k{print $2}'; }
run() {  # run MODE -> "pps rss_kb" and keeps the summary in $DIR/MODE.err
  local extra=()
  [ "$1" = on ] && extra=(--fleet "redis://127.0.0.1:$PORT")
  /usr/bin/time -f 'rss_kb=%M' "$EXE" replay "${extra[@]}" "$PCAP" >/dev/null 2>"$DIR/$1.err"
  echo "$(sed -n 's/^elapsed: .*, \([0-9]*\) packets\/s/\1/p' "$DIR/$1.err") $(sed -n 's/^rss_kb=//p' "$DIR/$1.err")"
}
echo "capture: $PCAP; $ROUNDS rounds, off and on alternating; redis-server $(redis-server --version | awk '{print $3}')"
for r in $(seq "$ROUNDS"); do
  read -r off_pps off_rss < <(run off)
  "${CLI[@]}" FLUSHALL >/dev/null
  mem0=$(info memory used_memory); cmd0=$(info stats total_commands_processed)
  read -r on_pps on_rss < <(run on)
  mem1=$(info memory used_memory); cmd1=$(info stats total_commands_processed)
  dns=$(sed -n 's/.* \([0-9]*\) DNS messages .*/\1/p' "$DIR/on.err")
  fl=$(grep '^fleet:' "$DIR/on.err")
  get() { echo "$fl" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  pairs=$(get shared_pairs); flushes=$(get flushes); bytes=$(get bytes)
  secs=$(sed -n 's/^elapsed: \([0-9.]*\) s,.*/\1/p' "$DIR/on.err")
  python3 - "$off_pps" "$on_pps" "$off_rss" "$on_rss" "$dns" "$((cmd1 - cmd0))" "$flushes" "$bytes" \
    "$pairs" "$((mem1 - mem0))" "$secs" <<'PY'
import sys
off, on, off_rss, on_rss, dns, cmds, flushes, nbytes, pairs, mem, secs = map(float, sys.argv[1:])
print(f"off {off:,.0f} pkt/s  on {on:,.0f} pkt/s  on/off {on / off:.1%}  "
      f"rss off {off_rss / 1024:.0f} MB on {on_rss / 1024:.0f} MB  "
      f"redis commands per 100k DNS messages {cmds / dns * 1e5:,.0f} "
      f"({cmds / secs:,.0f}/s at replay speed, {cmds / dns * 1e3:,.0f}/s per 1,000 DNS messages/s)  "
      f"flushes {flushes:.0f}, {nbytes / max(flushes, 1):,.0f} bytes per flush  "
      f"shared pairs {pairs:.0f}, redis memory {mem / 1048576:.1f} MiB = "
      f"{mem / max(pairs, 1) * 1000 / 1048576:.2f} MiB per 1,000 pairs")
PY
done
grep '^fleet' "$DIR/on.err"
