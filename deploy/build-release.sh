#!/bin/bash
# build-release.sh BUILD_DIR: the release build, optimised with the profile of
# a training run (GCC profile-guided optimisation, meson's b_pgo).
#
#   1. configure -Db_pgo=generate and build: an instrumented binary;
#   2. train it: `exfilwatch replay` on a mixed capture made by
#      bench/gen_mixed.py with its own seed (17; the benchmark's capture
#      uses 9, so the profile is not taken on what is measured) and on the
#      captures of ../shared, then `exfilwatch run` fed over loopback by
#      `exfilwatch mirror` (the UDP listener's path); each run writes its
#      counts (.gcda) beside the objects when it exits;
#   3. configure -Db_pgo=use and rebuild: GCC lays out branches, inlines and
#      unrolls by those counts. -fprofile-partial-training: code the training
#      never ran is compiled as without a profile, not shrunk as cold.
#
# The result is the same code as `make build`; the layout differs. On the
# 5M mixed benchmark capture it replays 16-18% faster (bench/README.md,
# "Builds"). Training needs ../shared (the generator's names and the
# lab captures): without it this is a plain release build, said so. The
# Docker image, built without ../shared, uses the plain release build.
# Takes about twice a plain build, plus ~30 s of training.
# MESON_OPTS: more options for `meson setup` (production paths:
# -Dprefix=/usr -Dsysconfdir=/etc, docs/operations.md).
set -euo pipefail
build=${1:-build-release}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$here/../shared}
train_packets=${PGO_TRAIN_PACKETS:-400000}

cd "$here"
# shellcheck disable=SC2086  # MESON_OPTS is a list of options
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Db_lto=true ${MESON_OPTS:-}
if [ ! -f "$shared/corpus/names/dns/plain/names.csv" ] || [ ! -d "$shared/captures" ]; then
  echo "build-release: no ../shared ($shared) to train on: plain release build, no profile" >&2
  meson configure "$build" -Db_pgo=off -Dcpp_args= >/dev/null
  ninja -C "$build"
  exit 0
fi
# Trained on this very code already: nothing to do. The stamp is written
# before the instrumented build, so a source edited since (even one a plain
# `ninja -C BUILD` has rebuilt with the stale profile) is newer than it.
stamp="$build/pgo-train/trained-sources.stamp"
if [ -f "$stamp" ] &&
  meson introspect "$build" --buildoptions 2>/dev/null | grep -q '"name": "b_pgo", "value": "use"' &&
  [ -z "$(find src bench meson.build meson_options.txt -newer "$stamp" -type f -print -quit 2>/dev/null)" ] &&
  ninja -C "$build" -n | grep -q "no work to do"; then
  echo "build-release: $build is up to date (trained on this code)"
  exit 0
fi
mkdir -p "$build/pgo-train"
rm -f "$stamp"
touch "$build/pgo-train/sources.stamp.new"
meson configure "$build" -Db_pgo=generate -Dcpp_args= >/dev/null
ninja -C "$build" exfilwatch
find "$build" -name '*.gcda' -delete

# Training inputs: a mixed capture of another seed, and the lab captures.
train="$build/pgo-train"
mkdir -p "$train"
python3 bench/gen_mixed.py --packets "$train_packets" --seed 17 --prefix-packets 0 \
  "$train/mixed-train.pcap" >/dev/null
echo "build-release: training on $train/mixed-train.pcap and $shared/captures"
"$build/exfilwatch" replay --eve /dev/null "$train/mixed-train.pcap" "$shared"/captures/*.pcap \
  >/dev/null 2>"$train/replay.log"

# The live path: the sensor on loopback, the same capture mirrored into it.
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listen:\n  address: 127.0.0.1\n  vxlan_port: %s\n  health_address: 127.0.0.1\n  health_port: %s\n  workers: 1\n' \
  "$port" "$port" >"$train/sensor.yaml"
"$build/exfilwatch" run --config "$train/sensor.yaml" --eve /dev/null 2>"$train/sensor.log" &
sensor=$!
trap 'kill "$sensor" 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q "exfilwatch run: ready" "$train/sensor.log" && break; sleep 0.1; done
if ! grep -q "exfilwatch run: ready" "$train/sensor.log"; then
  echo "build-release: the training sensor did not start:" >&2
  cat "$train/sensor.log" >&2
  exit 1
fi
"$build/exfilwatch" mirror "$train/mixed-train.pcap" --to "127.0.0.1:$port" --pps 100000 >/dev/null
kill -TERM "$sensor"
wait "$sensor" || true
trap - EXIT

profiles=$(find "$build" -name '*.gcda' | wc -l)
if [ "$profiles" -eq 0 ]; then
  echo "build-release: the training run wrote no profile" >&2
  exit 1
fi
echo "build-release: $profiles profiles; rebuilding with them"
# -Wno-missing-profile: the tests and bench tools never ran in training.
# -Wno-error=coverage-mismatch: after an edit, `ninja -C BUILD` still builds
# (GCC warns and ignores the stale profile of the edited functions); run
# this script again to train on the new code.
meson configure "$build" -Db_pgo=use \
  -Dcpp_args="-fprofile-partial-training -Wno-missing-profile -Wno-error=coverage-mismatch" >/dev/null
ninja -C "$build"
mv "$build/pgo-train/sources.stamp.new" "$stamp"
