#!/bin/bash
# demo.sh BUILD_DIR: runs exfilwatch on the bundled capture (benign look-ups,
# an iodine tunnel and a dns2tcp tunnel, all VXLAN-mirrored) and shows what
# it reports: the alerts as EVE JSON, then the summary.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
capture="$here/tests/data/demo-mixed.pcap"
eve=$(mktemp --suffix=.json)
trap 'rm -f "$eve"' EXIT
echo "== exfilwatch replay $capture"
"$here/$build/exfilwatch" replay --eve "$eve" "$capture"
echo
echo "== alerts (EVE JSON, one per line)"
grep '"event_type":"alert"' "$eve" || echo "(no alerts)"
