#!/bin/bash
# paired_ab.sh BUILD_A BUILD_B [ROUNDS] [MODE] [PASSES] [PCAP]: is build B
# faster than build A? On a shared, noisy machine the speed of both moves by
# tens of percent from one minute to the next, so medians of separate runs
# say little about a 10% change. Here every round runs the bare libpcap loop,
# A, B and the bare loop again back to back, and the ratios are taken within
# the round (B/A, A/bare, B/bare with the two bare runs averaged); the
# medians of those paired ratios are reported.
#   MODE   plain: rules off, --no-score (the decode and DNS parse path)
#          full:  default rules and scoring (default)
#   PASSES how many times the input is read per run (default 60)
#   PCAP   default ../shared/captures/benign-dns.pcap
# Example (a build of an older commit against the current one):
#   git worktree add /tmp/old 38f6085 && meson setup /tmp/old-build /tmp/old \
#     --buildtype=release && ninja -C /tmp/old-build exfilwatch
#   bash bench/paired_ab.sh /tmp/old-build build 15 plain
set -euo pipefail
a=$1 b=$2 rounds=${3:-15} mode=${4:-full} passes=${5:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
pcap=${6:-$here/../shared/captures/benign-dns.pcap}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'rules:\n  enabled: false\n' > "$tmp/plain.yaml"
args=(--eve /dev/null)
[ "$mode" = plain ] && args+=(--config "$tmp/plain.yaml" --no-score)
files=()
for ((i = 0; i < passes; i++)); do files+=("$pcap"); done

pps() {  # replay's own packets/s (rule and model loading left out)
  "$1/exfilwatch" replay "${args[@]}" "${files[@]}" 2>&1 >/dev/null |
    sed -n 's/^elapsed: .*, \([0-9.]*\) packets\/s$/\1/p'
}
bare() { "$b/bench/pcap_loop" 1 "${files[@]}" | awk '{print $1 / $2}'; }

for ((r = 0; r < rounds; r++)); do
  echo "$(bare) $(pps "$a") $(pps "$b") $(bare)"
done | awk -v mode="$mode" '
  function median(v, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  { bare = ($1 + $4) / 2; ba[NR] = $3 / $2; ab[NR] = $2 / bare; bb[NR] = $3 / bare }
  END {
    printf "%s, %d paired rounds: B/A %.3f  A/bare %.1f%%  B/bare %.1f%%\n",
      mode, NR, median(ba, NR), 100 * median(ab, NR), 100 * median(bb, NR)
  }'
