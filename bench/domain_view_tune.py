#!/usr/bin/env python3
"""domain_view_tune: what the domain view (signature 9000005) measures on
the benign captures, to choose its thresholds on the TUNING half only
(models/README.md) and to show the margin on the checking half.

usage: domain_view_tune.py EXFILWATCH [SHARED_DIR] [EXTRA_PCAP...]

Replays each capture with the domain view's information thresholds at 1
byte, min_clients 2 and no suppression (detect.suppress_seconds 0), rules
off, so every query that keeps a domain over the gates (clients, repeated
use) raises a domain-view alert carrying its values. Prints per half the
largest domain_info_bytes per window and over 24 hours with the domain,
its clients and the capture. EXTRA_PCAPs (e.g. the fleet lab's mixed
capture) are printed as their own group.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

EXE = sys.argv[1]
SHARED = sys.argv[2] if len(sys.argv) > 2 else "/work/shared"
EXTRA = sys.argv[3:]
SID = 9000005
KEYS = ["domain_info_bytes_1m", "domain_info_bytes_10m", "domain_info_bytes_1h", "domain_info_bytes_24h"]


def half(path):
    m = re.search(r"normal_000(\d\d)_", path)
    if m:
        return "tuning" if int(m.group(1)) <= 26 else "checking"
    return "tuning"


def benign_files():
    c = os.path.join(SHARED, "captures")
    labels = [l.split("\t") for l in open(os.path.join(c, "LABELS.tsv")).read().splitlines()[1:] if l.strip()]
    files = [os.path.join(c, f) for f, cls, *_ in labels if cls == "benign"]
    files += sorted(glob.glob(os.path.join(SHARED, "corpus/benign/nDPI/*.pcap*")))
    files += sorted(glob.glob(os.path.join(SHARED, "corpus/benign/graphtunnel-normal/*.pcap")))
    return [f for f in files if not f.endswith(".out")]


def replay(pcap, cfg):
    r = subprocess.run([EXE, "replay", "--config", cfg, "--quiet", pcap], capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{pcap}: {r.stderr}")
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def main():
    fd, cfg = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write("rules:\n  enabled: false\ndetect:\n  suppress_seconds: 0\nscore:\n  dns:\n"
                "    domain:\n      info_bytes: [1, 1, 1]\n      min_clients: 2\n")
    groups = {}
    for p in benign_files():
        groups.setdefault(half(p), []).append(p)
    if EXTRA:
        groups["extra"] = EXTRA
    try:
        for name, files in groups.items():
            best = {k: (0, "-", 0, "-") for k in KEYS}
            domains = set()
            for p in files:
                for a in replay(p, cfg):
                    if a.get("event_type") != "alert" or a["alert"]["signature_id"] != SID:
                        continue
                    x = a.get("exfilwatch") or {}
                    v = x.get("values") or {}
                    dom = x.get("registered_domain", "-")
                    domains.add(dom)
                    for k in KEYS:
                        if v.get(k, 0) > best[k][0]:
                            best[k] = (v[k], dom, v.get("clients", 0), os.path.basename(p))
            print(f"## {name}: {len(files)} captures, {len(domains)} domains over the gates")
            for k in KEYS:
                b = best[k]
                print(f"{k}\t{b[0]}\t{b[1]}\tclients={b[2]}\t{b[3]}", flush=True)
    finally:
        os.unlink(cfg)


if __name__ == "__main__":
    main()
