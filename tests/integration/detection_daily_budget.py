#!/usr/bin/env python3
"""detection_daily_budget: slow, low-entropy leaks with no lexical evidence
are caught by the daily (24 h) information budget: 0.5 B/s within 1 hour,
0.1 B/s within 6 hours, as dictionary words or short lowercase labels;
while the benign traffic they hide in, stretched over the same hours,
raises nothing.

Built at test time the way the lab builds them: the leak's queries are
written, re-timed to the leak's rate with lab/pcap_even_dns.py, and merged
into captures/benign-dns.pcap stretched with lab/pcap_stretch.py.
"""
import math
import os
import random
import subprocess
import sys
import tempfile

from detection_common import SHARED, alerts, check, finish, no_rules_config, reasons, replay, score_alerts
from dns_synth import frame, read_pcap, write_pcap

LAB = os.path.join(SHARED, "lab")
BENIGN = os.path.join(SHARED, "captures", "benign-dns.pcap")
DOMAIN = "leak-words.net"
rng = random.Random(31)

# A 2048-word dictionary (11 bits a word): registrable labels of the benign
# name corpus, letters only, so every word looks like an ordinary name.
words = []
for line in open(os.path.join(SHARED, "corpus", "names", "dns", "plain", "names.csv")):
    label, _, name = line.strip().partition(",")
    w = name.split(".")[0].lower()
    if label == "0" and w.isalpha() and w.isascii() and 4 <= len(w) <= 9 and w not in words:
        words.append(w)
    if len(words) == 2048:
        break
assert len(words) == 2048, len(words)


def word_names(n):
    """Three words a query: 33 bits of payload."""
    return [".".join(rng.choice(words) for _ in range(3)) + "." + DOMAIN for _ in range(n)], 33 / 8


def short_label_names(n):
    """Two labels of five random lowercase letters: 47 bits of payload."""
    lab = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))
    return [f"{lab()}.{lab()}.{DOMAIN}" for _ in range(n)], 10 * math.log2(26) / 8


def run(cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def build(d, tag, names_of, rate, hours):
    span = hours * 3600
    benign = os.path.join(d, f"benign-{tag}.pcap")
    run([sys.executable, os.path.join(LAB, "pcap_stretch.py"), BENIGN, benign, str(span)])
    start = read_pcap(benign)[0][0]
    n_guess = 4000
    names, payload = names_of(n_guess)
    gap = payload / rate
    n = int(span / gap)
    raw = os.path.join(d, f"raw-{tag}.pcap")
    write_pcap(raw, [(start + i, frame([10, 53, 0, 9], i, names[i])) for i in range(n)])
    leak = os.path.join(d, f"leak-{tag}.pcap")
    run([sys.executable, os.path.join(LAB, "pcap_even_dns.py"), raw, leak, str(gap), str(start)])
    merged = os.path.join(d, f"merged-{tag}.pcap")
    write_pcap(merged, read_pcap(benign) + read_pcap(leak))
    return benign, merged, n, gap


with tempfile.TemporaryDirectory() as d:
    for tag, names_of, rate, hours in (("words-0.5Bps-1h", word_names, 0.5, 1),
                                       ("words-0.1Bps-6h", word_names, 0.1, 6),
                                       ("short-0.1Bps-6h", short_label_names, 0.1, 6)):
        benign, merged, n, gap = build(d, tag, names_of, rate, hours)
        for mode, extra in (("rules", ()), ("score-only", ("--config", no_rules_config()))):
            recs, _ = replay(merged, *extra)
            sa = [a for a in score_alerts(recs) if (a.get("exfilwatch") or {}).get("registered_domain") == DOMAIN]
            check(bool(sa), f"{tag} [{mode}]: the leak ({n} queries, one every {gap:.1f} s) raises a scoring alert")
            if sa:
                r = reasons(sa[0])
                t = int(r["duration_s"])
                print(f"{tag} [{mode}]: first alert after {t} s ({t / 3600:.2f} h), "
                      f"{r['queries_total']} queries; {sa[0]['exfilwatch']['reasons'][:160]}")
                check(t <= hours * 3600, f"{tag} [{mode}]: within {hours} h ({t} s)")
                check(r.get("lexical_hits_10m") == 0, f"{tag} [{mode}]: no lexical evidence")
                # Below every window's own threshold (1 m 1200, 10 m 2000, 1 h 2500 B):
                # the day's information, shown in the reasons, is what carried it.
                check(float(r["info_bytes_1h"]) < 2500 and float(r["info_bytes_10m"]) < 2000
                      and float(r["info_bytes_24h"]) >= float(r["info_bytes_1h"]),
                      f"{tag} [{mode}]: below the hour window's threshold, the daily budget shown "
                      f"(1h {r['info_bytes_1h']}, 24h {r['info_bytes_24h']})")
            others = [a for a in alerts(recs) if (a.get("exfilwatch") or {}).get("registered_domain") != DOMAIN]
            check(not others, f"{tag} [{mode}]: the stretched benign traffic raises nothing ({len(others)})")
finish()
