#!/bin/bash
# instructions_per_pass.sh BUILD [MODE] [PCAP]: replay instructions per pass
# over a capture (callgrind: 4 passes minus 1 pass, divided by 3, so that
# start-up and rule loading cancel out). Deterministic where wall time on a
# shared machine is not; compare two builds side by side.
#   MODE plain: rules off, --no-score; full: default rules and scoring
# Example: bash bench/instructions_per_pass.sh /tmp/old-build full; bash bench/instructions_per_pass.sh build full
set -euo pipefail
b=$1 mode=${2:-full}
here=$(cd "$(dirname "$0")/.." && pwd)
pcap=${3:-$here/../shared/captures/benign-dns.pcap}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'rules:\n  enabled: false\n' > "$tmp/plain.yaml"
args=(--eve /dev/null)
[ "$mode" = plain ] && args+=(--config "$tmp/plain.yaml" --no-score)
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$b/exfilwatch" replay "${args[@]}" \
    "$@" >/dev/null 2>&1
  callgrind_annotate "$tmp/cg" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
ir "$pcap" >/dev/null  # warms the compiled-rules cache
one=$(ir "$pcap")
four=$(ir "$pcap" "$pcap" "$pcap" "$pcap")
echo "$mode $(( (four - one) / 3 )) instructions per pass ($b)"
