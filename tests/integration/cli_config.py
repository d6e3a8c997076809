#!/usr/bin/env python3
"""cli_config: `check`, `config`, `--set`, `--config` errors, the shared
argument parser, replay's file handling and `model train`'s refusals, as a
user meets them on real captures.
"""
import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SOURCE = os.environ["SOURCE_DIR"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, timeout=300):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


demo = os.path.join(SOURCE, "tests", "data", "demo-mixed.pcap")
iodine = os.path.join(SHARED, "captures", "iodine-null.pcap")

with tempfile.TemporaryDirectory() as tmp:
    # --- config --defaults round trip, check -------------------------------
    defaults = os.path.join(tmp, "defaults.yaml")
    r = run("config", "--defaults")
    check(r.returncode == 0 and "listen:" in r.stdout, "config --defaults prints YAML")
    with open(defaults, "w") as f:
        f.write(r.stdout)
    eff = run("config", "--config", defaults)
    values = lambda text: [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    check(eff.returncode == 0 and values(eff.stdout) == values(r.stdout) and len(values(r.stdout)) > 80,
          "config --defaults round-trips through --config")
    r = run("check", "--config", defaults)
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1 and "OK" in r.stdout,
          "check on the defaults: exit 0, one line: " + r.stdout.strip())
    check("rule tests passed" in r.stdout, "check ran the rules' self-tests")
    r = run("check", "--config", os.path.join(SOURCE, "deploy", "exfilwatch.yaml"),
            "--set", "rules.cache_directory=off")
    check(r.returncode == 0, "check on the shipped production file: " + (r.stdout + r.stderr).strip())

    # a rule whose own test fails: check says so, exit 2
    rules = os.path.join(tmp, "rules")
    os.mkdir(rules)
    with open(os.path.join(rules, "r.yaml"), "w") as f:
        f.write("rules:\n  - id: 1900001\n    name: t\n    field: dns.qname\n    literal: tunnel\n"
                "    tests:\n      match: [nothing-here.example]\n")
    r = run("check", "--set", "rules.directory=" + rules, "--set", "rules.cache_directory=off")
    check(r.returncode == 2 and "nothing-here.example" in r.stderr,
          "check: a failing rule self-test is exit 2: " + r.stderr.strip()[-200:])
    with open(os.path.join(rules, "r.yaml"), "w") as f:
        f.write("rules:\n  - id: 1900001\n    name: t\n    field: dns.qname\n    pattern: '(('\n")
    r = run("check", "--set", "rules.directory=" + rules, "--set", "rules.cache_directory=off")
    check(r.returncode == 2 and "r.yaml:5" in r.stderr, "check: a broken rule is exit 2 with file:line")
    r = run("check", "--set", "listen.vxlan_port=70000")
    check(r.returncode == 2 and "out of range [1, 65535]" in r.stderr, "check: a port out of range is exit 2")
    r = run("check", "--set", "metrics.address=localhost:9108")
    check(r.returncode == 2 and "metrics.address" in r.stderr, "check: a metrics address that does not parse is exit 2")
    r = run("check", "--set", "listen.address=0.0.0.0.0")
    check(r.returncode == 2 and "listen.address" in r.stderr, "check: a listen address that does not parse is exit 2")
    # fleet: read as run reads it (src/fleet's keys), without contacting Redis.
    fleet_yaml = os.path.join(tmp, "fleet.yaml")
    with open(fleet_yaml, "w") as f:
        f.write("fleet:\n  url: redis://127.0.0.1:6379\n  flush_ms: 5\n")
    r = run("check", "--config", fleet_yaml)
    check(r.returncode == 2 and "fleet.yaml:3" in r.stderr and "flush_ms" in r.stderr,
          "check: a fleet key out of range is exit 2 with file:line: " + r.stderr.strip()[-160:])
    with open(fleet_yaml, "w") as f:
        f.write("fleet:\n  url: redis://127.0.0.1:6379\n  health_requires_fleet: true\n")
    r = run("check", "--config", fleet_yaml)
    check(r.returncode == 0 and "fleet redis://127.0.0.1:6379" in r.stdout,
          "check: a fleet section loads: " + (r.stdout + r.stderr).strip()[-160:])
    # --set fleet.*: every client key through the key table, as the file's.
    r = run("check", "--config", fleet_yaml, "--set", "fleet.url=redis://127.0.0.2:7000",
            "--set", "fleet.command_timeout_ms=1500", "--set", "fleet.seeds=[127.0.0.3:7001]")
    check(r.returncode == 0 and "fleet redis://127.0.0.2:7000" in r.stdout,
          "check --set fleet.url/command_timeout_ms/seeds overrides the file: "
          + (r.stdout + r.stderr).strip()[-160:])
    r = run("config", "--config", fleet_yaml, "--set", "fleet.command_timeout_ms=1500",
            "--set", "fleet.tls_verify=false")
    check(r.returncode == 0 and "  command_timeout_ms: 1500\n" in r.stdout
          and "  tls_verify: false\n" in r.stdout,
          "config --set fleet.* shows the effective values")
    r = run("check", "--config", fleet_yaml, "--set", "fleet.flush_ms=5")
    check(r.returncode == 2 and "--set fleet.flush_ms: 5 is out of range [10, 60000]" in r.stderr,
          "check --set fleet.flush_ms=5: the table's range, exit 2: " + r.stderr.strip()[-160:])
    r = run("check", "--config", fleet_yaml, "--set", "fleet.key_prefix=has space")
    check(r.returncode == 2 and "--set:1: fleet.key_prefix: expected printable" in r.stderr,
          "check --set fleet.key_prefix: the fleet client's check names --set, exit 2: "
          + r.stderr.strip()[-160:])
    r = run("check", "--set", "fleet.connect_timeout_ms=500")
    check(r.returncode == 2 and "fleet.connect_timeout_ms: the fleet's other keys need fleet.url"
          in r.stderr, "check --set fleet.* without a url is exit 2: " + r.stderr.strip()[-160:])
    r = run("check", "--set", "fleet.urll=redis://127.0.0.1")
    check(r.returncode == 2 and "unknown key" in r.stderr,
          "check --set fleet.<misspelt> is exit 2: " + r.stderr.strip()[-160:])

    # --- --config: a directory, an unreadable file, an empty file ----------
    empty = os.path.join(tmp, "empty.yaml")
    open(empty, "w").close()
    unreadable = os.path.join(tmp, "secret.yaml")
    with open(unreadable, "w") as f:
        f.write("dns:\n  log: true\n")
    os.chmod(unreadable, 0)
    can_read = os.access(unreadable, os.R_OK)  # root reads anything
    bad_configs = [(tmp, "is a directory"), (empty, "empty configuration file"),
                   (os.path.join(tmp, "missing.yaml"), "cannot open")]
    if not can_read:
        bad_configs.append((unreadable, "cannot open"))
    for cmd in (["replay", demo], ["check"], ["config"], ["rules", "check"],
                ["explain", demo, "--client", "10.0.0.1", "--domain", "example.com"], ["run"]):
        for path, message in bad_configs:
            r = run(*cmd, "--config", path, timeout=60)
            check(r.returncode == 2 and message in r.stderr,
                  f"{' '.join(cmd[:2])} --config {os.path.basename(path) or path}: exit 2, '{message}'")

    # --- --set on the commands that read a configuration --------------------
    r = run("replay", "--set", "sensor_name=set-sensor", "--set", "dns.log=true", demo)
    first = json.loads(r.stdout.splitlines()[0])
    check(r.returncode == 0 and first.get("host") == "set-sensor", "replay --set applies (EVE host)")
    r = run("replay", "--set=listen.workers=0401", demo)
    check(r.returncode == 2 and "out of range" in r.stderr, "--set=K=V form; 0401 is base 10 (out of range)")
    r = run("replay", "--set", "score.dns.nope=1", demo)
    check(r.returncode == 2 and "unknown key" in r.stderr, "--set an unknown key: exit 2")

    # --- the shared argument parser -----------------------------------------
    r = run("replay", "--bogus", demo)
    check(r.returncode == 2 and "--bogus" in r.stderr and "Usage: exfilwatch replay" in r.stderr,
          "an unknown option is an error followed by the command's usage")
    for args, message in ((["mirror", demo, "--to", "127.0.0.1:9", "--vni", "16777216"], "[0, 16777215]"),
                          (["mirror", demo, "--to=127.0.0.1:9", "--speed=0"], "must be > 0"),
                          (["mirror", demo, "--to", "127.0.0.1:9", "--pps", "1e3"], "base-10"),
                          (["run", "--stats-interval", "0"], "[1, 86400]"),
                          (["run", "--workers=257"], "[1, 256]"),
                          (["explain", demo, "--client", "10.0.0.1", "--dest", "10.0.0.2:0"], "[1, 65535]"),
                          (["replay"], "PCAP is required")):
        r = run(*args)
        check(r.returncode == 2 and message in r.stderr, f"{' '.join(args[:1] + args[2:])}: exit 2, '{message}'")

    # --- replay: --eve truncates unless --append; directories; summaries -----
    eve = os.path.join(tmp, "eve.json")
    with open(eve, "w") as f:
        f.write('{"old": true}\n')
    r = run("replay", "--eve", eve, iodine)
    with open(eve) as f:
        lines = f.read().splitlines()
    n = len(lines)
    check(r.returncode == 0 and n > 0 and all("old" not in json.loads(l) for l in lines),
          "--eve truncates the file first")
    r = run("replay", "--eve", eve, "--append", iodine)
    with open(eve) as f:
        check(len(f.read().splitlines()) == 2 * n, "--append appends")
    r = run("replay", "--append", iodine)
    check(r.returncode == 2, "--append without --eve is an error")

    caps = os.path.join(tmp, "caps")
    os.mkdir(caps)
    shutil.copy(iodine, os.path.join(caps, "b.pcap"))
    shutil.copy(demo, os.path.join(caps, "a.pcap"))
    with open(os.path.join(caps, "notes.txt"), "w") as f:
        f.write("not a capture\n")
    by_dir = run("replay", caps)
    by_files = run("replay", os.path.join(caps, "a.pcap"), os.path.join(caps, "b.pcap"))
    check(by_dir.returncode == 0 and by_dir.stdout == by_files.stdout and by_dir.stdout,
          "a directory replays its capture files in name order (same records as listing them)")
    per_file = [l for l in by_dir.stderr.splitlines() if " packets=" in l]
    check(len(per_file) == 2 and per_file[0].split(": ")[1].endswith("a.pcap")
          and per_file[1].split(": ")[1].endswith("b.pcap"), "one summary line per file, in order")
    total = int(by_dir.stderr.split(" packets,")[0].split(", ")[-1])
    check(sum(int(l.split("packets=")[1].split()[0]) for l in per_file) == total,
          "per-file packet counts add up to the total")
    check("\r" not in by_dir.stderr and "ETA" not in by_dir.stderr, "no progress when stderr is not a terminal")
    empty_dir = os.path.join(tmp, "none")
    os.mkdir(empty_dir)
    r = run("replay", empty_dir)
    check(r.returncode == 2 and "no capture files" in r.stderr, "a directory without captures is an error")

    # progress on a terminal: stderr is a pty
    big = [os.path.join(SHARED, "captures", f) for f in sorted(os.listdir(os.path.join(SHARED, "captures")))
           if f.endswith(".pcap")]
    big = sorted(big, key=os.path.getsize)[-1:]
    master, slave = pty.openpty()
    p = subprocess.Popen([EXE, "replay", *big], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait()
    text = out.decode(errors="replace")
    check(p.returncode == 0 and "packets=" in text, "replay on a terminal ends with its summary")
    packets = int(text.split("packets=")[1].split()[0]) if "packets=" in text else 0
    if packets > 4096:  # progress is drawn every 4096 packets at most
        check("ETA" in text and "file 1/1" in text and "packets/s" in text,
              "progress (files, packets, rate, ETA) on a terminal")

    # --- model train ----------------------------------------------------------
    csv = os.path.join(tmp, "names.csv")
    with open(csv, "w") as f:
        f.write("qname,label\nwww.example.com,1\nmail.example.org,1\n")
    r = run("model", "train", "--out", os.path.join(tmp, "m.txt"), csv)
    check(r.returncode != 0 and "no benign names" in r.stderr, "model train refuses input without benign names")
    with open(csv, "w") as f:
        f.write("qname,label\nwww.example.com,0\nmail.example.org,0\n")
    r = run("model", "train", "--out", os.path.join(tmp, "m.txt"), csv)
    check(r.returncode != 0 and "one class" in r.stderr, "model train refuses a labelled file with one class")
    with open(csv, "w") as f:
        f.write("qname,label\nwww.example.com,0\nmail.example.org,0\naGVsbG8.t.example,1\n")
    model = os.path.join(tmp, "m.txt")
    r = run("model", "train", "--out", model, csv)
    with open(model) as f:
        header = [l for l in f.read().splitlines() if l.startswith("#") or l.startswith("source")]
    check(r.returncode == 0 and header, "model train on a mixed labelled file works")
    check(not any(tmp in l for l in header), "the model header holds no absolute path: %s" % header)
    r = run("check", "--set", "score.dns.model=" + model)
    check(r.returncode == 0 and "model " + model in r.stdout, "check loads the trained model")

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
