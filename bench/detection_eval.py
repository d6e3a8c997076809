#!/usr/bin/env python3
"""detection_eval: false alerts and time to detect on the shared captures.

usage: detection_eval.py EXFILWATCH [SHARED_DIR]

Replays every shared benign capture (captures/ benign files per
LABELS.tsv, corpus/benign/nDPI, corpus/benign/graphtunnel-normal) and
every tunnel capture, with the analyst rules on and off (score only).
Prints per folder: queries, alerts on benign captures and alerts per
million queries, split into the tuning and checking halves of
models/README.md; tunnels detected; median and maximum time to detect in
queries (the alerted pair's queries up to and including the first alert
naming it, any detector).
"""
import csv
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

EXE = sys.argv[1]
SHARED = sys.argv[2] if len(sys.argv) > 2 else "/work/shared"
C = os.path.join(SHARED, "captures")


def half(path):
    """models/README.md: which half a benign capture belongs to."""
    m = re.search(r"normal_000(\d\d)_", path)
    if m:
        return "tuning" if int(m.group(1)) <= 26 else "checking"
    return "tuning"  # captures/ benign files and nDPI benign chose the thresholds


def replay(pcap, rules_on, dns_log):
    args = [EXE, "replay"]
    cfg = None
    if not rules_on:
        fd, cfg = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write("rules:\n  enabled: false\n")
        args += ["--config", cfg]
    if dns_log:
        args.append("--dns-log")
    r = subprocess.run(args + [pcap], capture_output=True, text=True, timeout=1800)
    if cfg:
        os.unlink(cfg)
    if r.returncode != 0:
        raise RuntimeError(f"{pcap}: {r.stderr}")
    m = re.search(r"\((\d+) queries", r.stderr)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()], int(m.group(1)) if m else 0


labels = {row["file"]: row["class"] for row in csv.DictReader(open(os.path.join(C, "LABELS.tsv")), delimiter="\t")}
benign = {
    "captures (benign)": [os.path.join(C, f) for f, c in labels.items() if c == "benign"],
    "corpus/benign/nDPI": sorted(glob.glob(os.path.join(SHARED, "corpus/benign/nDPI/*.pcap*"))),
    "corpus/benign/graphtunnel-normal": sorted(glob.glob(os.path.join(SHARED, "corpus/benign/graphtunnel-normal/*.pcap"))),
}
tunnels = {
    "captures (tunnel, exfil)": [os.path.join(C, f) for f, c in labels.items() if c != "benign"],
    "corpus/tunnels/nDPI": sorted(glob.glob(os.path.join(SHARED, "corpus/tunnels/nDPI/*.pcap"))),
    "corpus/tunnels/korving": sorted(glob.glob(os.path.join(SHARED, "corpus/tunnels/korving-dns-tunnel-dataset/**/*.pcap"), recursive=True)),
}
benign = {k: [p for p in v if not p.endswith(".out")] for k, v in benign.items()}

print("## benign captures: alerts (rules on | score only)")
print("folder\thalf\tfiles\tqueries\talerts\tper_million\tscore_only_alerts\tscore_only_per_million")
totals = {}
for folder, files in benign.items():
    for h in ("tuning", "checking"):
        fs = [p for p in files if half(p) == h]
        if not fs:
            continue
        q = a = s = 0
        for p in fs:
            recs, n = replay(p, True, False)
            q += n
            bad = [x for x in recs if x["event_type"] == "alert"]
            a += len(bad)
            for x in bad:
                print(f"#   false alert {os.path.basename(p)}: {x['alert']['signature']} "
                      f"{((x.get('dns') or {}).get('queries') or [{}])[0].get('rrname', x.get('dest_ip'))}", file=sys.stderr)
            recs, _ = replay(p, False, False)
            s += sum(1 for x in recs if x["event_type"] == "alert")
        pm = a / q * 1e6 if q else 0.0
        print(f"{folder}\t{h}\t{len(fs)}\t{q}\t{a}\t{pm:.1f}\t{s}\t{s / q * 1e6 if q else 0.0:.1f}", flush=True)
        t = totals.setdefault(h, [0, 0, 0])
        t[0] += q
        t[1] += a
        t[2] += s
for h, (q, a, s) in totals.items():
    print(f"ALL\t{h}\t-\t{q}\t{a}\t{a / q * 1e6:.1f}\t{s}\t{s / q * 1e6:.1f}")

print()
print("## tunnel captures: detected, time to detect in queries (rules on | score only)")
print("folder\tfiles\tdetected\tttd_median\tttd_max\tscore_only_detected\tscore_only_ttd_median\tscore_only_ttd_max")
for folder, files in tunnels.items():
    row = []
    for rules_on in (True, False):
        det, ttd = 0, []
        for p in files:
            recs, _ = replay(p, rules_on, True)
            al = [x for x in recs if x["event_type"] == "alert"]
            if not al:
                print(f"#   MISSED {p} (rules {'on' if rules_on else 'off'})", file=sys.stderr)
                continue
            det += 1
            first = al[0]
            if first["proto"] == "TCP":
                continue  # uploads: bytes, not queries
            dom = (first.get("exfilwatch") or {}).get("registered_domain")
            client = first["src_ip"] if first.get("dns", {}).get("type") != "response" else first["dest_ip"]
            n = sum(1 for r in recs if r["event_type"] == "dns" and r["dns"]["type"] == "request"
                    and r["src_ip"] == client and (r.get("exfilwatch") or {}).get("registered_domain") == dom
                    and r["pcap_cnt"] <= first["pcap_cnt"])
            ttd.append(max(n, 1))
            print(f"#   {os.path.relpath(p, SHARED)} rules={'on' if rules_on else 'off'} ttd={max(n, 1)} "
                  f"{first['alert']['signature']}", file=sys.stderr)
        row += [det, statistics.median(ttd) if ttd else "-", max(ttd) if ttd else "-"]
    print(f"{folder}\t{len(files)}\t" + "\t".join(map(str, row)), flush=True)
