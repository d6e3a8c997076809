#!/bin/bash
# run.sh BUILD_DIR: every benchmark (`make bench`), each side by side with
# its baseline on the same input (bench/README.md says what each measures):
#   1. replay vs bare libpcap loop vs tshark: benign-dns.pcap x 40
#   2. the same on the generated mixed capture (5M packets, tunnels inside;
#      tshark on its first 200k packets), and which tunnels were alerted
#   3. the same over every capture in ../shared/captures
#   4. live sensor on loopback vs a bare recvmmsg loop
#   5. rule engine cost per name
#   6. worker scaling: 1 vs 2 workers on in-memory feeds (no socket sender)
# Ends with a summary of packets/s and ratios, and the time each part took.
#
# Knobs (environment): QUICK=1 (about 1.5 minutes: fewer runs, 1M-packet mixed
# capture, shorter live steps), REPS (interleaved runs for 1 and 3),
# MIXED_PACKETS (5000000), MIXED_REPS (5), BENIGN_ROUNDS (40), SHARED_ROUNDS
# (10), SKIP="mixed live rules ..." (parts to leave out: benign mixed shared
# live rules scaling), BENCH_CACHE (where the mixed capture is kept,
# /tmp/exfilwatch-bench), live_bench.py's DURATION, RATES, WORKERS, and
# SCALING_DATAGRAMS (2000000 per run) / SCALING_REPS (5) for part 6.
set -euo pipefail
shopt -s lastpipe  # `... | keep` runs keep in this shell
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
shared=$(cd "$here/../../shared/captures" && pwd)
quick=${QUICK:-0}
if [ "$quick" = 1 ]; then
  : "${REPS:=3}" "${MIXED_PACKETS:=1000000}" "${MIXED_REPS:=1}" "${BENIGN_ROUNDS:=20}" "${SHARED_ROUNDS:=4}"
  : "${DURATION:=1}" "${SCALING_DATAGRAMS:=400000}" "${SCALING_REPS:=3}"
  export DURATION
fi
export REPS=${REPS:-5}
mixed_packets=${MIXED_PACKETS:-5000000}
skip=" ${SKIP:-} "
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
times=()
results=()
part() { echo; echo "== $*"; part_start=$(date +%s); }
done_part() { times+=("$(printf '%-44s %4d s' "$1" $(($(date +%s) - part_start)))"); }
keep() { tee "$tmp/out"; results+=("$(sed -n 's/^RESULT //p' "$tmp/out")"); }
bench_start=$(date +%s)
echo "exfilwatch bench: build $build, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# Full detection waits on random reads of tables of 1-64 MB: how much cache
# this (shared) machine gives at the time explains much of its spread.
latency() { "$build/bench/mem_latency" || echo "memory latency: bench/mem_latency failed"; }
latency_before=$(latency)
echo "before: $latency_before"

if [[ $skip != *" benign "* ]]; then
  part "1. replay vs bare libpcap loop vs tshark: benign-dns.pcap x ${BENIGN_ROUNDS:-40}"
  LABEL=benign-dns bash "$here/replay_bench.sh" "$build" "${BENIGN_ROUNDS:-40}" "$shared/benign-dns.pcap" | keep
  done_part "1. benign-dns.pcap"
fi

if [[ $skip != *" mixed "* ]]; then
  part "2. the same on the generated mixed capture ($mixed_packets packets, bench/gen_mixed.py)"
  gen_start=$(date +%s)
  paths=$(python3 "$here/gen_mixed.py" --packets "$mixed_packets" | sed 's/^[a-z]*: //')
  read -r mixed labels prefix <<<"$paths"
  echo "capture: $mixed ($(du -h "$mixed" | cut -f1), $(($(date +%s) - gen_start)) s to generate or find in the cache)"
  echo "tshark reads only its first packets ($(basename "$prefix")): it would take minutes on the whole file."
  LABEL=mixed TSHARK_INPUT=$prefix EVE_OUT=$tmp/mixed.eve REPS=${MIXED_REPS:-5} \
    bash "$here/replay_bench.sh" "$build" 1 "$mixed" | keep
  python3 "$here/check_alerts.py" "$tmp/mixed.eve" "$labels" || status=1
  done_part "2. mixed capture"
fi

if [[ $skip != *" shared "* ]]; then
  part "3. the same over every capture in ../shared/captures (x ${SHARED_ROUNDS:-10})"
  LABEL=shared-captures bash "$here/replay_bench.sh" "$build" "${SHARED_ROUNDS:-10}" "$shared"/*.pcap | keep
  done_part "3. ../shared/captures"
fi

if [[ $skip != *" live "* ]]; then
  part "4. live sensor on loopback vs a bare recvmmsg loop"
  /usr/bin/python3 "$here/live_bench.py" "$build" | tee "$tmp/live"
  done_part "4. live loopback"
fi

if [[ $skip != *" rules "* ]]; then
  part "5. rule engine: ns per DNS name vs a walk-only loop, compile and cache load times"
  "$build/bench/rules_bench"
  done_part "5. rules_bench"
fi

if [[ $skip != *" scaling "* ]]; then
  # The mixed capture's first 200k packets (4,000 clients) when part 2 made
  # or found them, else benign-dns.pcap (5 clients: the client hash cannot
  # balance 5 clients evenly over 2 workers, which caps the ratio).
  scaling_input=${prefix:-${BENCH_CACHE:-/tmp/exfilwatch-bench}/mixed-5M.first200k.pcap}
  [ -f "$scaling_input" ] || scaling_input=$shared/benign-dns.pcap
  part "6. worker scaling: 1 vs 2 workers, in-memory feeds through the real WorkerPool ($(basename "$scaling_input"))"
  "$build/bench/worker_scaling" --datagrams "${SCALING_DATAGRAMS:-2000000}" --reps "${SCALING_REPS:-5}" \
    "$scaling_input" | tee "$tmp/scaling"
  done_part "6. worker scaling"
fi

echo
echo "== summary (packets/s; goals: full detection >= 15% of bare libpcap, >= 20x tshark; live >= 70% of recvmmsg)"
printf '%-16s %12s %12s %12s %12s %8s %8s\n' input "bare loop" "decode+parse" "full" tshark "full/bare" "full/tshark"
for r in "${results[@]}"; do
  [ -n "$r" ] || continue
  read -r label lp pp fp tp <<<"$r"
  awk -v l="$label" -v lp="$lp" -v pp="$pp" -v fp="$fp" -v tp="$tp" 'BEGIN {
    printf "%-16s %12d %12d %12d %12d %7.1f%% %7.1fx\n", l, lp, pp, fp, tp, 100 * fp / lp, fp / tp }'
done
if [ -f "$tmp/live" ]; then grep -E '^(highest no-loss|ratio|sensor loss)' "$tmp/live" || true; fi
if [ -f "$tmp/scaling" ]; then grep -E '^(median of|ratio 2|dispatch alone)' "$tmp/scaling" || true; fi
echo "before: $latency_before"
echo "after:  $(latency)"
echo
echo "== time per part"
printf '%s\n' "${times[@]}"
printf '%-44s %4d s\n' "total" $(($(date +%s) - bench_start))
exit $status
