#!/bin/bash
# run.sh BUILD_DIR: runs every meson test of a build and ends with the one
# line CI reads: "N passed, N failed".
set -uo pipefail
build=${1:-build}
log=$(mktemp)
meson test -C "$build" --print-errorlogs --num-processes 2 "${@:2}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
json="$build/meson-logs/testlog.json"
passed=0 failed=0
if [ -f "$json" ]; then
  passed=$(grep -c '"result": "OK"' "$json" || true)
  total=$(grep -c '"result": ' "$json" || true)
  failed=$((total - passed))
fi
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
