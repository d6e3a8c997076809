#!/bin/sh
# runtime-packages.sh BINARY: the Debian packages that own the shared
# libraries BINARY loads, one per line (the Dockerfile's runtime stage
# installs these; tests/deploy/dockerfile_lint.py checks the list here).
# Matched by architecture directory and file name, because ldd may print
# /lib/... or /usr/lib/... for a file dpkg knows under the other one.
set -eu
binary=${1:?usage: runtime-packages.sh BINARY}
ldd "$binary" | awk '/=> \//{print $3}' | while read -r lib; do
  dir=${lib%/*}
  dpkg -S "*/${dir##*/}/${lib##*/}"
done | cut -d: -f1 | sort -u
