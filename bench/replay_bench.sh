#!/bin/bash
# replay_bench.sh BUILD_DIR [ROUNDS] [PCAP]: replay throughput side by side
# with a bare libpcap loop reading the same file the same number of times.
# Runs interleave (loop, replay, loop, replay, ...) so both see the same
# machine load; the median of each is reported with the ratio.
set -euo pipefail
build=${1:-build}
rounds=${2:-40}
pcap=${3:-$(cd "$(dirname "$0")/.." && pwd)/../shared/captures/benign-dns.pcap}
reps=${REPS:-5}
files=()
for ((i = 0; i < rounds; i++)); do files+=("$pcap"); done

loop_pps=() replay_pps=() scoring_pps=()
for ((r = 0; r < reps; r++)); do
  loop_pps+=("$("$build/bench/pcap_loop" "$rounds" "$pcap" 2>/dev/null | awk '{print $3}')")
  out=$("$build/exfilwatch" replay --eve /dev/null "${files[@]}" 2>&1 >/dev/null)
  replay_pps+=("$(echo "$out" | sed -n 's/^elapsed: .* s, \([0-9]*\) packets\/s/\1/p')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lp=$(median "${loop_pps[@]}")
rp=$(median "${replay_pps[@]}")
echo "input: $(basename "$pcap") x $rounds, $reps interleaved runs each (median)"
printf '%-34s %12s packets/s\n' "bare libpcap loop" "$lp"
printf '%-34s %12s packets/s\n' "exfilwatch replay (decode+DNS+detect)" "$rp"
awk -v a="$rp" -v b="$lp" 'BEGIN {printf "ratio replay/bare: %.1f%%\n", 100 * a / b}'
