#!/bin/bash
# stage_costs.sh BUILD_DIR [PCAP]: instructions per packet by stage of the
# packet path (libpcap read, decode, DNS parse, registered domain, features,
# Hyperscan, state, output ...), measured with callgrind on
# `exfilwatch replay` (default rules, full scoring). Deterministic: the same
# build and input give the same numbers on a loaded machine.
#
# Start-up cancels: replay runs once on BASE passes of PCAP and once on
# BASE + ROUNDS passes; the difference is divided by ROUNDS x packets. With
# BASE=0 (default) the first run reads a capture with no packets, so the
# figure is one cold pass over PCAP (each name seen for the first time, as
# the sensor sees new traffic); BASE=1 ROUNDS=8 gives the warm "1 vs 9
# passes" figure of replay_bench.sh. bench/stage_costs.py maps functions and
# (inlined) source files to stages; the output is markdown table rows for
# bench/README.md.
#
# PCAP defaults to the first 200k packets of the mixed capture
# (bench/gen_mixed.py, generated if missing). The build needs debug info
# for the attribution to source files: configure it with
#   meson setup BUILD -Ddebug=true -Db_ndebug=true
# (same -O3, LTO and NDEBUG code as the release build, plus -g; b_ndebug
# pins NDEBUG whatever meson makes of release + debug).
# Environment: BASE, ROUNDS, KEEP=DIR (keep the callgrind profiles there for
# callgrind_annotate), DETAIL=N (also the N largest functions of each stage).
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
pcap=${2:-}
if [ -z "$pcap" ]; then
  python3 "$here/gen_mixed.py" >&2
  cache=${BENCH_CACHE:-/tmp/exfilwatch-bench}
  pcap=$cache/mixed-5M.first200k.pcap
fi
base=${BASE:-0}
rounds=${ROUNDS:-1}
command -v valgrind >/dev/null || { echo "stage_costs.sh: valgrind is not installed" >&2; exit 1; }
if ! readelf -S "$build/exfilwatch" 2>/dev/null | grep -q '\.debug_info'; then
  echo "stage_costs.sh: $build/exfilwatch has no debug info: stages come out wrong;" \
    "configure with -Ddebug=true -Db_ndebug=true" >&2
fi
tmp=${KEEP:-$(mktemp -d)}
mkdir -p "$tmp"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
head -c 24 "$pcap" >"$tmp/empty.pcap"
a=() b=()
for ((i = 0; i < base; i++)); do a+=("$pcap") b+=("$pcap"); done
for ((i = 0; i < rounds; i++)); do b+=("$pcap"); done
[ "$base" -gt 0 ] || a=("$tmp/empty.pcap")
n=$(capinfos -c -M -T "$pcap" | awk -F'\t' 'NR == 2 {print $2}')
cg() {  # OUT ARGS...: one callgrind run
  local out=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$out.log" ||
    { cat "$out.log" >&2; exit 1; }
}
start=$(date +%s)
cg "$tmp/base.out" "$build/exfilwatch" replay --eve /dev/null "${a[@]}"
cg "$tmp/run.out" "$build/exfilwatch" replay --eve /dev/null "${b[@]}"
# the bare libpcap loop, for scale (same passes)
cg "$tmp/loop0.out" "$build/bench/pcap_loop" 1 "${a[@]}"
cg "$tmp/loop1.out" "$build/bench/pcap_loop" 1 "${b[@]}"
ir() { sed -n 's/^summary: //p' "$1"; }
bare=$(awk -v a="$(ir "$tmp/loop0.out")" -v b="$(ir "$tmp/loop1.out")" -v n=$((n * rounds)) 'BEGIN {printf "%.1f", (b - a) / n}')
echo "Input: $(basename "$pcap") ($n packets) x $rounds, minus x $base (start-up cancels); $(date +%s | awk -v s="$start" '{print $1 - s}') s under callgrind;"
echo "build: $build ($("$build/exfilwatch" --version 2>/dev/null | head -1 || true))."
echo
python3 "$here/stage_costs.py" "$tmp/base.out" "$tmp/run.out" $((n * rounds)) "$bare"
