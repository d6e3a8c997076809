#!/usr/bin/env python3
"""detection_question_paths: names a resolver forwards outside the first
question are judged too. A tunnel hidden as the second question behind an
allowed first one, in the update records (authority section) of DNS UPDATE
messages, or in the answers of inverse queries (IQUERY) raises a scoring
alert naming its domain; the same names as plain first questions are the
control. The messages are built here (dns_synth).
"""
import os
import random
import tempfile

from detection_common import check, finish, no_rules_config, reasons, replay, score_alerts
from dns_synth import dns_message, frame, write_pcap

rng = random.Random(41)
ALLOWED = "0.1.2.3.4.5.6.7.8.9.a.b.c.d.e.f.sophosxl.net"  # rules/allow.yaml: antivirus look-ups


def payload(domain):
    # 48 hex characters: the whole name stays within the 80 the reasons quote
    return "".join(rng.choice("0123456789abcdef") for _ in range(48)) + ".t." + domain


def case(kind, domain):
    out = []
    for i in range(12):
        name = payload(domain)
        if kind == "first":
            dns = dns_message(i, 0, [(name, 16)])
        elif kind == "second":
            dns = dns_message(i, 0, [(ALLOWED, 1), (name, 16)])
        elif kind == "update":  # zone section, then one update record (authority)
            dns = dns_message(i, 5, [(domain, 6)], authorities=[(name, 16, b"\x04data")])
        else:  # iquery: the answer whose owner is asked for
            dns = dns_message(i, 1, [], answers=[(name, 1, bytes([10, 0, 0, i]))])
        out.append((1_700_000_000 + 2 * i, frame([10, 70, 0, 5], i, name, dns=dns)))
    return out


with tempfile.TemporaryDirectory() as d:
    for kind in ("first", "second", "update", "iquery"):
        domain = f"{kind}-path-example.com"
        p = os.path.join(d, f"{kind}.pcap")
        write_pcap(p, case(kind, domain))
        for mode, extra in (("rules", ()), ("score-only", ("--config", no_rules_config()))):
            recs, err = replay(p, *extra)
            # An IQUERY has no question, so EVE writes no dns block for it: the
            # name judged is in the reasons (last_name).
            hit = [a for a in score_alerts(recs)
                   if (a.get("exfilwatch") or {}).get("registered_domain") == domain
                   or reasons(a).get("last_name", "").endswith("." + domain)]
            check(bool(hit), f"{kind} [{mode}]: scoring alert naming {domain} "
                  f"({len(score_alerts(recs))} scoring alerts)")
finish()
