#!/usr/bin/env python3
"""detection_short_sessions: a short dnscat2 session, its first dozen
queries with their answers (hex labels with a session-id prefix; MX, CNAME
and TXT answers), is detected: by the session-start signature on the
subdomain with the rules on, and by the scorer alone (queries and the
answers' information) with them off.

The cases are cut here from every dnscat2 capture of the shared Korving
dataset (tool per labels.csv): the packets up to the response to the 12th
distinct query name.
"""
import csv
import glob
import os
import struct
import tempfile

from detection_common import SHARED, alerts, check, finish, no_rules_config, replay, score_alerts
from dns_synth import read_pcap, write_pcap

K = os.path.join(SHARED, "corpus", "tunnels", "korving-dns-tunnel-dataset")
QUERIES = 12


def qname(frame):
    """The first question's name of an Ethernet/IPv4/UDP DNS frame, or None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0xF) * 4
    dns = frame[14 + ihl + 8:]
    if len(dns) < 12 or dns[2] & 0x80 or struct.unpack("!H", dns[4:6])[0] == 0:
        return None
    out, i = [], 12
    while i < len(dns) and dns[i] and len(out) < 128:
        out.append(dns[i + 1:i + 1 + dns[i]])
        i += 1 + dns[i]
    return b".".join(out)


def ethernet_frames(pcap):
    """The capture's frames as Ethernet (Linux cooked captures, link type
    113, get an Ethernet header with the same protocol type)."""
    linktype = struct.unpack("<I", open(pcap, "rb").read(24)[20:24])[0]
    frames = read_pcap(pcap)
    if linktype == 113:
        eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
        frames = [(t, eth + f[14:]) for t, f in frames]
    return frames


rows = [r for r in csv.DictReader(open(os.path.join(K, "labels.csv"))) if r["tool"] == "DNSCAT"]
pcaps = sorted(p for r in rows for p in glob.glob(os.path.join(K, r["dir"], "*", "*.pcap")))
check(len(pcaps) >= 2, f"dnscat2 captures in the dataset ({len(pcaps)})")
with tempfile.TemporaryDirectory() as d:
    for pcap in pcaps:
        packets, seen, cut = ethernet_frames(pcap), set(), None
        for i, (_, f) in enumerate(packets):
            n = qname(f)
            if n is not None:
                seen.add(n)
                if len(seen) > QUERIES:
                    cut = i
                    break
        short = os.path.join(d, "short.pcap")
        write_pcap(short, packets[:cut])
        name = os.path.relpath(pcap, K)
        recs, _ = replay(short)
        a = [x for x in alerts(recs) if (x.get("exfilwatch") or {}).get("registered_domain") == "example.attack"]
        check(bool(a), f"{name}, first {QUERIES} queries [rules]: alert ({sorted({x['alert']['signature_id'] for x in a})})")
        recs, _ = replay(short, "--config", no_rules_config())
        sa = [x for x in score_alerts(recs) if (x.get("exfilwatch") or {}).get("registered_domain") == "example.attack"]
        check(bool(sa), f"{name}, first {QUERIES} queries [score-only]: scoring alert")
finish()
