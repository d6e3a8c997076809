#!/usr/bin/env python3
"""`meson install` into a staging DESTDIR: the installed file list is exactly
the expected one, the installed systemd unit passes `systemd-analyze verify`
and carries the hardening the issue asks for, the man page renders without
warnings, and the installed configuration loads and detects.

systemd-analyze verify needs ExecStart's binary to exist: the unit is
verified as a copy whose executable paths point into the DESTDIR (the only
change), with MANPATH set to the DESTDIR's man directory so that its
Documentation=man:exfilwatch(1) resolves to the installed page.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BUILD_DIR = os.environ.get("BUILD_DIR") or os.environ.get("MESON_BUILD_ROOT")
SOURCE_DIR = os.environ["SOURCE_DIR"]
SHARED_DIR = os.environ.get("SHARED_DIR", os.path.join(SOURCE_DIR, "..", "shared"))
if not BUILD_DIR:
    sys.exit("BUILD_DIR (the meson build directory) is not set")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


opts = {o["name"]: o["value"] for o in json.loads(subprocess.check_output(
    ["meson", "introspect", BUILD_DIR, "--buildoptions"], text=True))}
prefix = opts["prefix"]


def under_prefix(option):
    return os.path.join(prefix, opts[option])  # an absolute option stays absolute


bindir, datadir, mandir = under_prefix("bindir"), under_prefix("datadir"), under_prefix("mandir")
sysconfdir = under_prefix("sysconfdir")
unitdir = os.path.join(prefix, "lib", "systemd", "system")
rules = sorted(f for f in os.listdir(os.path.join(SOURCE_DIR, "rules")))
expected = sorted([
    os.path.join(bindir, "exfilwatch"),
    os.path.join(sysconfdir, "exfilwatch", "exfilwatch.yaml"),
    os.path.join(unitdir, "exfilwatch.service"),
    os.path.join(mandir, "man1", "exfilwatch.1"),
    os.path.join(datadir, "exfilwatch", "models", "README.md"),
    os.path.join(datadir, "exfilwatch", "models", "dns-trigram-v1.txt"),
] + [os.path.join(datadir, "exfilwatch", "rules", f) for f in rules])

with tempfile.TemporaryDirectory(prefix="exfilwatch-destdir-") as dest:
    r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--destdir", dest, "--no-rebuild", "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"meson install failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    installed = sorted("/" + os.path.relpath(os.path.join(d, f), dest)
                       for d, _, files in os.walk(dest) for f in files)
    for p in sorted(set(expected) - set(installed)):
        fail(f"not installed: {p}")
    for p in sorted(set(installed) - set(expected)):
        fail(f"installed but not expected (add it to this test if intended): {p}")
    print(f"installed {len(installed)} files under {prefix}")

    def staged(path):
        return dest + path

    binary = staged(os.path.join(bindir, "exfilwatch"))
    if not os.access(binary, os.X_OK):
        fail("installed binary is not executable")

    # --- the unit ---------------------------------------------------------------
    unit_path = staged(os.path.join(unitdir, "exfilwatch.service"))
    unit = open(unit_path).read()
    if re.search(r"@[a-z_]+@", unit):
        fail("unconfigured @placeholder@ left in the unit")
    directives = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            directives.setdefault(k.strip(), []).append(v.strip())
    want = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "ProtectSystem": "strict", "Restart": "on-failure",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    for k, v in want.items():
        if v not in directives.get(k, []):
            fail(f"unit: {k}={v} missing (has {directives.get(k)})")
    if not directives.get("MemoryMax"):
        fail("unit: no MemoryMax")
    if not any("kill -HUP $MAINPID" in v for v in directives.get("ExecReload", [])):
        fail("unit: ExecReload does not send SIGHUP")
    exec_start = directives["ExecStart"][0].split()
    if exec_start[0] != os.path.join(bindir, "exfilwatch") or exec_start[1] != "run":
        fail(f"unit: ExecStart {exec_start}")
    if os.path.join(sysconfdir, "exfilwatch", "exfilwatch.yaml") not in exec_start:
        fail("unit: ExecStart does not use the installed configuration")

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        fail("systemd-analyze is not installed (package systemd)")
    else:
        with tempfile.TemporaryDirectory(prefix="exfilwatch-unit-") as udir:
            copy = os.path.join(udir, "exfilwatch.service")
            with open(copy, "w") as f:
                f.write(unit.replace(os.path.join(bindir, "exfilwatch"), binary))
            env = dict(os.environ, MANPATH=staged(mandir), SYSTEMD_LOG_LEVEL="notice")
            r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True, env=env)
            if r.returncode != 0 or r.stderr.strip():
                fail(f"systemd-analyze verify: exit {r.returncode}: {r.stdout}{r.stderr}")
            else:
                print("systemd-analyze verify: clean")
            r = subprocess.run([analyze, "security", "--offline=yes", "--threshold=30", copy],
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                fail(f"systemd-analyze security above 3.0: {r.stdout[-400:]}")
            else:
                print(r.stdout.strip().splitlines()[-1])

    # --- the man page -------------------------------------------------------------
    man = staged(os.path.join(mandir, "man1", "exfilwatch.1"))
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", man], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            fail(f"man page: groff warnings: {r.stderr}")

    # --- the installed configuration loads and detects --------------------------------
    config = staged(os.path.join(sysconfdir, "exfilwatch", "exfilwatch.yaml"))
    capture = os.path.join(SHARED_DIR, "captures", "iodine-null.pcap")
    r = subprocess.run([binary, "replay", "--config", config, capture], capture_output=True, text=True,
                       env=dict(os.environ, XDG_CACHE_HOME=os.path.join(dest, "cache")))
    alerts = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    if r.returncode != 0 or not any(a.get("event_type") == "alert" for a in alerts):
        fail(f"replay with the installed configuration: exit {r.returncode}, {len(alerts)} records: {r.stderr[-500:]}")
    else:
        print(f"installed configuration: {len(alerts)} alerts on iodine-null.pcap")
    r = subprocess.run([binary, "rules", "check", "--config", config, "--no-cache",
                        staged(os.path.join(datadir, "exfilwatch", "rules"))], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"rules check of the installed rules: exit {r.returncode}: {r.stdout[-300:]}{r.stderr[-300:]}")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
