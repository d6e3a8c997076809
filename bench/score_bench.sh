#!/bin/bash
# score_bench.sh BUILD_DIR [ROUNDS]: the scoring path's cost next to
# decode-only. The same input replayed with --no-score (decode + DNS parse +
# registered domain + rules) and with scoring, interleaved, medians; inputs:
# benign-dns.pcap x ROUNDS, and 1M unique random subdomains (score_flood:
# the worst case, every name new, the table evicting). Rules off in both, so
# the difference is the scorer alone.
set -euo pipefail
build=${1:-build}
rounds=${2:-40}
here=$(cd "$(dirname "$0")/.." && pwd)
pcap=$here/../shared/captures/benign-dns.pcap
reps=${REPS:-3}
cfg=$(mktemp --suffix=.yaml)
flood=$(mktemp --suffix=.pcap)
trap 'rm -f "$cfg" "$flood"' EXIT
printf 'rules:\n  enabled: false\n' >"$cfg"
"$build/bench/score_flood" 1000000 1000 100000 7 >"$flood"
files=()
for ((i = 0; i < rounds; i++)); do files+=("$pcap"); done
pps() { sed -n 's/^elapsed: .* s, \([0-9]*\) packets\/s/\1/p'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for input in benign flood; do
  off=() on=()
  for ((r = 0; r < reps; r++)); do
    if [ $input = benign ]; then set -- "${files[@]}"; else set -- "$flood"; fi
    off+=("$("$build/exfilwatch" replay --config "$cfg" --no-score --eve /dev/null "$@" 2>&1 >/dev/null | pps)")
    on+=("$("$build/exfilwatch" replay --config "$cfg" --eve /dev/null "$@" 2>&1 >/dev/null | pps)")
  done
  a=$(median "${off[@]}") b=$(median "${on[@]}")
  echo "input: $input ($reps interleaved runs, median)"
  printf '  %-36s %10s packets/s\n' "decode+DNS, scoring off" "$a" "decode+DNS+scoring" "$b"
  awk -v a="$a" -v b="$b" 'BEGIN {printf "  scoring cost: %.2f us/packet, throughput ratio %.1f%%\n", (1e6/b - 1e6/a), 100*b/a}'
done
