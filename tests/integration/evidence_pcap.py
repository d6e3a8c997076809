#!/usr/bin/env python3
"""evidence_pcap: the pcap named by an alert opens in tshark and holds the
alerted tunnel's queries, and only that pair's packets.

Replays the bundled mixed capture (benign look-ups from five hosts, an
iodine and a dns2tcp tunnel from 10.53.0.2) with evidence recording on.
"""
import json
import os
import subprocess
import sys
import tempfile

EXE = os.environ["EXFILWATCH"]
SOURCE = os.environ["SOURCE_DIR"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


with tempfile.TemporaryDirectory() as tmp:
    evdir = os.path.join(tmp, "evidence")
    os.mkdir(evdir)
    cfg = os.path.join(tmp, "c.yaml")
    with open(cfg, "w") as f:
        f.write(f"evidence:\n  directory: {evdir}\n  seconds: 600\n")
    capture = os.path.join(SOURCE, "tests", "data", "demo-mixed.pcap")
    r = subprocess.run([EXE, "replay", "--config", cfg, capture], capture_output=True, text=True,
                       timeout=300)
    check(r.returncode == 0, "replay with evidence exits 0")
    alerts = [json.loads(l) for l in r.stdout.splitlines()]
    tunnel = [a for a in alerts if a.get("exfilwatch", {}).get("registered_domain") == "tunnel-lab.net"]
    check(len(tunnel) >= 1, f"the tunnel is alerted ({len(tunnel)} alerts)")
    paths = {a["exfilwatch"].get("evidence", "") for a in tunnel}
    check(all(paths) and len(paths) == 1, f"every alert of the pair names the same evidence file: {paths}")
    path = next(iter(paths)) if paths else ""
    check(os.path.dirname(path) == evdir and os.path.exists(path), "the file is in the evidence directory")
    if os.path.exists(path):
        t = subprocess.run(["tshark", "-r", path, "-n", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                            "-e", "dns.qry.name"], capture_output=True, text=True, timeout=120)
        check(t.returncode == 0, "tshark opens it: " + t.stderr.strip()[:200])
        rows = [l.split("\t") for l in t.stdout.splitlines()]
        names = [row[2] for row in rows if len(row) > 2 and row[2]]
        check(len(names) >= 100, f"it holds the tunnel's DNS messages ({len(names)})")
        check(all(n.endswith("tunnel-lab.net") for n in names),
              "only the alerted pair's names: " + ", ".join(sorted({n for n in names if not n.endswith("tunnel-lab.net")})[:5]))
        check(all("10.53.0.2" in (row[0], row[1]) for row in rows), "only the alerted client's packets")
        # Every tunnel query of the capture up to the end is in the file:
        # the ring holds what came before the alert, recording the rest.
        q = subprocess.run(["tshark", "-r", capture, "-n", "-T", "fields", "-e", "dns.qry.name",
                            "-Y", "dns.flags.response == 0 && dns.qry.name contains \"tunnel-lab.net\""],
                           capture_output=True, text=True, timeout=120)
        total = len([l for l in q.stdout.splitlines() if l])
        in_file = len([n for n, row in zip(names, rows) if row[0] == "10.53.0.2"])
        check(in_file >= min(total, 16), f"queries in the file {in_file} (capture has {total})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
