#!/bin/bash
# run_fuzz.sh BUILD_DIR SECONDS [TARGET...]: runs each libFuzzer target of
# BUILD_DIR (built with -Dfuzzing=true) for SECONDS, FUZZ_JOBS (default 2) at
# a time, seeded from ../shared (tests/fuzz/make_seeds.py, into a temporary
# corpus), DNS targets with tests/fuzz/dns.dict. Logs and crash inputs go to
# BUILD_DIR/fuzz-out/<target>/. Prints "fuzz <target>: N execs in S s, ..."
# per target and exits non-zero when any target found something.
set -uo pipefail
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(vxlan geneve l2l4 dns dns_tcp tls rules config)
jobs=${FUZZ_JOBS:-2}
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
python3 "$here/make_seeds.py" "${SHARED_DIR:-$src/../shared}" "$corpus" >/dev/null

run_one() {
  local t=$1 out="$build/fuzz-out/$1"
  mkdir -p "$out/crashes"
  local dict=()
  case $t in dns|dns_tcp) dict=(-dict="$here/dns.dict") ;; esac
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/tests/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$out/crashes/" "$corpus/$t" >"$out/log" 2>&1
  echo $? >"$out/rc"
}

for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  run_one "$t" &
done
wait

status=0
for t in "${targets[@]}"; do
  out="$build/fuzz-out/$t"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/log" | grep -o '[0-9]*$' | tail -1)
  secs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$out/log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$out/log" | tail -1)
  findings=$(find "$out/crashes" -type f | wc -l)
  echo "fuzz $t: ${execs:-?} execs in ${seconds} s (${secs:-?}/s), ${cov:-cov: ?}, rc $(cat "$out/rc"), findings $findings"
  if [ "$(cat "$out/rc")" != 0 ] || [ "$findings" -gt 0 ]; then status=1; fi
done
exit $status
