#!/bin/bash
# replay_bench.sh BUILD_DIR [ROUNDS] [PCAP]: replay throughput side by side
# with a bare libpcap loop reading the same file the same number of times,
# and with tshark decoding the same file's DNS fields. Runs interleave
# (loop, replay, loop, replay, ...) so all see the same machine load; the
# median of each is reported with the ratios. Three exfilwatch set-ups:
#   decode+parse   rules off, scoring off: the decode and DNS parse path
#   full detection default rules and scoring (what a sensor runs)
# Also reports instructions per packet from callgrind when valgrind is there
# (deterministic, unlike the clock on a shared machine): set CALLGRIND=1.
set -euo pipefail
build=${1:-build}
rounds=${2:-40}
here=$(cd "$(dirname "$0")/.." && pwd)
pcap=${3:-$here/../shared/captures/benign-dns.pcap}
reps=${REPS:-5}
files=()
for ((i = 0; i < rounds; i++)); do files+=("$pcap"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'rules:\n  enabled: false\n' > "$tmp/plain.yaml"

replay_pps() {  # args: extra replay options
  "$build/exfilwatch" replay --eve /dev/null "$@" "${files[@]}" 2>&1 >/dev/null |
    sed -n 's/^elapsed: .* s, \([0-9]*\) packets\/s/\1/p'
}
loop=() plain=() full=()
for ((r = 0; r < reps; r++)); do
  loop+=("$("$build/bench/pcap_loop" "$rounds" "$pcap" 2>/dev/null | awk '{print $3}')")
  plain+=("$(replay_pps --config "$tmp/plain.yaml" --no-score)")
  full+=("$(replay_pps)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lp=$(median "${loop[@]}") pp=$(median "${plain[@]}") fp=$(median "${full[@]}")

# tshark decoding the same file's DNS fields (one pass; it is far slower).
packets=$(tshark -r "$pcap" -T fields -e frame.number 2>/dev/null | wc -l)
start=$(date +%s.%N)
tshark -r "$pcap" -n -T fields -e dns.qry.name -e dns.qry.type -e dns.flags.rcode -Y dns >/dev/null 2>&1
end=$(date +%s.%N)
tp=$(awk -v n="$packets" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", n / (e - s)}')

echo "input: $(basename "$pcap") x $rounds, $reps interleaved runs each (median)"
printf '%-40s %12s packets/s\n' "bare libpcap loop" "$lp"
printf '%-40s %12s packets/s  %5.1f%% of bare\n' "exfilwatch replay, decode+parse" "$pp" "$(awk -v a="$pp" -v b="$lp" 'BEGIN {print 100 * a / b}')"
printf '%-40s %12s packets/s  %5.1f%% of bare\n' "exfilwatch replay, full detection" "$fp" "$(awk -v a="$fp" -v b="$lp" 'BEGIN {print 100 * a / b}')"
printf '%-40s %12s packets/s  (exfilwatch full detection = %.1fx tshark)\n' "tshark -T fields (DNS), 1 pass" "$tp" "$(awk -v a="$fp" -v b="$tp" 'BEGIN {print a / b}')"

if [ "${CALLGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
  # Instructions per packet: run 1 file and 9 files, take the difference, so
  # start-up (rule compilation or cache load, model, public suffix list)
  # cancels out.
  ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,; }
  n=$(tshark -r "$pcap" -T fields -e frame.number 2>/dev/null | wc -l)
  nine=("$pcap" "$pcap" "$pcap" "$pcap" "$pcap" "$pcap" "$pcap" "$pcap" "$pcap")
  b1=$(ir "$build/bench/pcap_loop" 1 "$pcap") b9=$(ir "$build/bench/pcap_loop" 9 "$pcap")
  p1=$(ir "$build/exfilwatch" replay --eve /dev/null --config "$tmp/plain.yaml" --no-score "$pcap")
  p9=$(ir "$build/exfilwatch" replay --eve /dev/null --config "$tmp/plain.yaml" --no-score "${nine[@]}")
  f1=$(ir "$build/exfilwatch" replay --eve /dev/null "$pcap")
  f9=$(ir "$build/exfilwatch" replay --eve /dev/null "${nine[@]}")
  awk -v n="$n" -v b=$((b9 - b1)) -v p=$((p9 - p1)) -v f=$((f9 - f1)) 'BEGIN {
    printf "instructions/packet (callgrind): bare %.0f, decode+parse %.0f (%.1f%%), full %.0f (%.1f%%)\n",
      b / 8 / n, p / 8 / n, 100 * b / p, f / 8 / n, 100 * b / f }'
fi
