#!/usr/bin/env python3
"""deploy/docker/Dockerfile cannot be built here (no Docker engine), so its
structure is checked: Debian 12 stages, a multi-stage build with meson, a
non-root USER in the final stage, the ports, a HEALTHCHECK and an
ENTRYPOINT; every COPY source exists; the build packages it installs (the
"# build" section of deploy/debian-packages.txt, extracted with the
Dockerfile's own sed expression) and the runtime packages
(deploy/docker/runtime-packages.sh on the binary built here, as the build
stage runs it) all exist in Debian (apt-cache show).
"""
import os
import re
import shlex
import subprocess
import sys

SOURCE_DIR = os.environ["SOURCE_DIR"]
EXFILWATCH = os.environ["EXFILWATCH"]
path = os.path.join(SOURCE_DIR, "deploy", "docker", "Dockerfile")
text = open(path).read().replace("\\\n", " ")
instructions = []
for line in text.splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))

failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL:", msg)


stages = [i for i, (w, _) in enumerate(instructions) if w == "FROM"]
check(len(stages) >= 2, "not a multi-stage build")
for i in stages:
    image = instructions[i][1].split()[0]
    check(re.fullmatch(r"debian:(12|bookworm)(-slim)?(@sha256:[0-9a-f]+)?", image) is not None,
          f"stage not on Debian 12: {image}")
final = instructions[stages[-1]:]
build = instructions[:stages[-1]]
users = [r for w, r in final if w == "USER"]
check(users and users[-1].split(":")[0] not in ("root", "0"), f"final stage runs as root: {users}")
exposed = " ".join(r for w, r in final if w == "EXPOSE").split()
for port in ("4789/udp", "4789/tcp", "9108/tcp"):
    check(port in exposed, f"EXPOSE {port} missing")
check(any(w == "HEALTHCHECK" and "4789" in r for w, r in final), "no HEALTHCHECK on the health port")
check(any(w == "ENTRYPOINT" and "exfilwatch" in r for w, r in final), "no ENTRYPOINT")
check(any(w == "RUN" and "meson setup" in r and "meson install" in r for w, r in build), "build stage does not use meson")
check(not any(w == "RUN" and ("-dev" in r or "meson" in r) for w, r in final), "runtime stage installs build tools")
for w, r in instructions:
    if w == "COPY" and "--from" not in r:
        for src in shlex.split(r)[:-1]:
            check(os.path.exists(os.path.join(SOURCE_DIR, src)), f"COPY source missing: {src}")

# the build packages, by the Dockerfile's own extraction
m = re.search(r"sed -n '([^']+)' /tmp/debian-packages.txt", text)
check(m is not None, "build stage does not read deploy/debian-packages.txt with sed")
packages = set()
if m:
    out = subprocess.run(["sed", "-n", m.group(1), os.path.join(SOURCE_DIR, "deploy", "debian-packages.txt")],
                         capture_output=True, text=True, check=True).stdout.split()
    check("meson" in out and "g++" in out, f"build package extraction gave {out}")
    packages |= set(out)
runtime = subprocess.run(["sh", os.path.join(SOURCE_DIR, "deploy", "docker", "runtime-packages.sh"), EXFILWATCH],
                         capture_output=True, text=True)
check(runtime.returncode == 0 and "libpcap0.8" in runtime.stdout.split(),
      f"runtime-packages.sh: {runtime.returncode} {runtime.stdout} {runtime.stderr}")
packages |= set(runtime.stdout.split()) | {"publicsuffix"}
# one apt-cache call: it prints a record per package it knows
r = subprocess.run(["apt-cache", "show", "--no-all-versions", *sorted(packages)], capture_output=True, text=True)
known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
for p in sorted(packages - known):
    check(False, f"not a Debian package: {p}")
print(f"{len(instructions)} instructions, {len(stages)} stages, {len(packages)} packages exist")
if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok (structure only: the image was not built here)")
