#!/bin/bash
# replay_bench.sh BUILD_DIR [ROUNDS] [PCAP...]: replay throughput side by
# side with a bare libpcap loop reading the same files the same number of
# times, and with tshark decoding the same files' DNS fields. Runs interleave
# (loop, replay, replay, loop, ...) so all see the same machine load; the
# median of each is reported with the ratios. PCAP defaults to
# ../shared/captures/benign-dns.pcap; several files are read in order, the
# list ROUNDS times. Two exfilwatch set-ups:
#   decode+parse   rules off, scoring off: the decode and DNS parse path
#   full detection default rules and scoring (what a sensor runs)
# tshark reads one pass of the files (or TSHARK_INPUT) once; its packets/s
# leaves out its start-up (dissector registration, measured on an empty
# capture), as replay's own packets/s leaves out rule and model loading.
#
# Environment:
#   REPS=5            interleaved runs of each (median)
#   TSHARK_INPUT=...  files tshark decodes instead (space separated), e.g. the
#                     first 200k packets of a capture too large for it
#   EVE_OUT=FILE      keep the last full-detection run's EVE lines (alerts)
#   LABEL=name        names the input in the RESULT line
#   CALLGRIND=1       also instructions per packet (valgrind; 1 vs 9 passes)
# Last line: "RESULT label bare decode+parse full tshark" (packets/s), for
# run.sh's summary.
set -euo pipefail
build=${1:-build}
rounds=${2:-40}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
here=$(cd "$(dirname "$0")/.." && pwd)
pcaps=("$@")
[ ${#pcaps[@]} -gt 0 ] || pcaps=("$here/../shared/captures/benign-dns.pcap")
reps=${REPS:-5}
label=${LABEL:-$(basename "${pcaps[0]}")}
read -r -a tshark_in <<<"${TSHARK_INPUT:-${pcaps[*]}}"
files=()
for ((i = 0; i < rounds; i++)); do files+=("${pcaps[@]}"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'rules:\n  enabled: false\n' > "$tmp/plain.yaml"

count() { capinfos -c -M -T "$@" | awk -F'\t' 'NR > 1 {n += $2} END {print n + 0}'; }
replay_pps() {  # args: extra replay options; the summary stays in $tmp/replay.err
  "$build/exfilwatch" replay "$@" "${files[@]}" 2>"$tmp/replay.err" >/dev/null
  sed -n 's/^elapsed: .* s, \([0-9]*\) packets\/s/\1/p' "$tmp/replay.err"
}
# The bare loop is ~10x faster than replay: it reads the list more times (at
# least 3M packets) so that its time is not a few milliseconds of noise.
pass_packets=$(count "${pcaps[@]}")
loop_rounds=$(( rounds > (3000000 + pass_packets - 1) / pass_packets ? rounds : (3000000 + pass_packets - 1) / pass_packets ))
loop=() plain=() full=()
for ((r = 0; r < reps; r++)); do
  loop+=("$("$build/bench/pcap_loop" "$loop_rounds" "${pcaps[@]}" 2>/dev/null | awk '{print $3}')")
  plain+=("$(replay_pps --eve /dev/null --config "$tmp/plain.yaml" --no-score)")
  if [ -n "${EVE_OUT:-}" ]; then
    rm -f "$EVE_OUT"
    full+=("$(replay_pps --eve "$EVE_OUT")")
  else
    full+=("$(replay_pps --eve /dev/null)")
  fi
  cp "$tmp/replay.err" "$tmp/full.err"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lp=$(median "${loop[@]}") pp=$(median "${plain[@]}") fp=$(median "${full[@]}")

# tshark decoding the DNS fields (one pass; it is far slower). Start-up:
# the same command on a capture with no packets, best of two.
tshark_dns() { tshark -r "$1" -n -T fields -e dns.qry.name -e dns.qry.type -e dns.flags.rcode -Y dns >/dev/null 2>&1 || true; }
head -c 24 "${tshark_in[0]}" >"$tmp/empty.pcap"
startup=9
for _ in 1 2; do
  s=$(date +%s.%N); tshark_dns "$tmp/empty.pcap"; e=$(date +%s.%N)
  startup=$(awk -v s="$s" -v e="$e" -v m="$startup" 'BEGIN {d = e - s; print (d < m ? d : m)}')
done
tpackets=$(count "${tshark_in[@]}")
start=$(date +%s.%N)
for f in "${tshark_in[@]}"; do tshark_dns "$f"; done
end=$(date +%s.%N)
read -r tp tp_raw tsecs < <(awk -v n="$tpackets" -v s="$start" -v e="$end" -v u="$startup" -v k="${#tshark_in[@]}" 'BEGIN {
  d = e - s; net = d - k * u; if (net <= 0) net = d
  printf "%.0f %.0f %.2f\n", n / net, n / d, d }')

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
npk=$((pass_packets * rounds))
echo "input: $label: ${#pcaps[@]} file(s) x $rounds = $npk packets per run; $reps interleaved runs each (median)"
printf '  %-36s %12s packets/s  (%s passes)\n' "bare libpcap loop" "$lp" "$loop_rounds"
printf '  %-36s %12s packets/s  %5.1f%% of bare\n' "exfilwatch replay, decode+parse" "$pp" "$(pct "$pp" "$lp")"
printf '  %-36s %12s packets/s  %5.1f%% of bare (goal >= 15%%)\n' "exfilwatch replay, full detection" "$fp" "$(pct "$fp" "$lp")"
if [ "${TSHARK_INPUT:-}" ]; then what="tshark DNS fields, first $tpackets packets"; else what="tshark DNS fields, 1 pass"; fi
printf '  %-36s %12s packets/s  (full detection = %sx tshark, goal >= 20x)\n' "$what" "$tp" "$(x "$fp" "$tp")"
printf '  %-36s %12s   tshark took %s s for %s packets, %.2f s of it start-up per file (excluded above; %s packets/s with it)\n' \
  "" "" "$tsecs" "$tpackets" "$startup" "$tp_raw"

# what full detection saw and kept (last run): alerts, scoring state
sed -n 's/^exfilwatch replay: [^;]*; .*; \([0-9]* alerts ([0-9]* suppressed)\)$/  full detection: \1/p' "$tmp/full.err"
sed -n 's/^score: \(dns_pairs=[^ ]*\) \(dns_evictions=[^ ]*\) \(dns_bytes_per_pair=[^ ]*\).*/  scoring state: \1 \2 \3 (goal: <= 256 bytes per pair)/p' "$tmp/full.err"

if [ "${CALLGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
  # Instructions per packet: 1 pass and 9 passes, the difference, so
  # start-up (rule compilation or cache load, model, public suffix list)
  # cancels out.
  ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,; }
  n=$(count "${pcaps[@]}")
  nine=()
  for ((i = 0; i < 9; i++)); do nine+=("${pcaps[@]}"); done
  b1=$(ir "$build/bench/pcap_loop" 1 "${pcaps[@]}") b9=$(ir "$build/bench/pcap_loop" 9 "${pcaps[@]}")
  p1=$(ir "$build/exfilwatch" replay --eve /dev/null --config "$tmp/plain.yaml" --no-score "${pcaps[@]}")
  p9=$(ir "$build/exfilwatch" replay --eve /dev/null --config "$tmp/plain.yaml" --no-score "${nine[@]}")
  f1=$(ir "$build/exfilwatch" replay --eve /dev/null "${pcaps[@]}")
  f9=$(ir "$build/exfilwatch" replay --eve /dev/null "${nine[@]}")
  awk -v n="$n" -v b=$((b9 - b1)) -v p=$((p9 - p1)) -v f=$((f9 - f1)) 'BEGIN {
    printf "  instructions/packet (callgrind): bare %.0f, decode+parse %.0f (%.1f%%), full %.0f (%.1f%%)\n",
      b / 8 / n, p / 8 / n, 100 * b / p, f / 8 / n, 100 * b / f }'
fi
echo "RESULT $label $lp $pp $fp $tp"
