#!/bin/bash
# run.sh BUILD_DIR: every benchmark, each side by side with its baseline.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/replay_bench.sh" ] || [ -f "$here/replay_bench.sh" ]; then
  echo "== replay throughput vs a bare libpcap loop"
  bash "$here/replay_bench.sh" "$build"
fi
echo "== live sensor on loopback vs a bare recvmmsg loop"
/usr/bin/python3 "$here/live_bench.py" "$build"
echo "== rule engine: ns per DNS name vs a walk-only loop, compile and cache load times"
"$build/bench/rules_bench"
