#!/usr/bin/env python3
"""detection_slow_leak: a leak of 1 byte of payload per second for one hour
is alerted, by information volume alone (short labels, so no query looks
tunnel-shaped), before the hour is over; and the same names repeated, the
way antivirus look-ups repeat, never alert.

The capture is synthesised here with struct (VXLAN/UDP 4789, VNI 1234, as
the mirror lab records): one query every 16 s carrying 16 bytes as 32 hex
characters, 225 queries, 3,600 bytes.
"""
import os
import random
import struct
import tempfile

from detection_common import check, domain, finish, no_rules_config, reasons, replay, score_alerts


def csum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, payload_len):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0, 64, 17, 0, bytes(src), bytes(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def dns_query(qid, name):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


def frame(client, qid, name):
    dns = dns_query(qid, name)
    inner_udp = struct.pack("!HHHH", 30000 + qid % 20000, 53, 8 + len(dns), 0) + dns
    inner = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ipv4(client, [10, 53, 0, 1], len(inner_udp)) + inner_udp
    vx = struct.pack("!BBBBI", 0x08, 0, 0, 0, 1234 << 8) + inner
    outer_udp = struct.pack("!HHHH", 40000 + qid % 20000, 4789, 8 + len(vx), 0) + vx
    return b"\x02\x00\x00\x00\x00\x0a\x02\x00\x00\x00\x00\x0b\x08\x00" + ipv4([10, 54, 0, 2], [10, 54, 0, 1], len(outer_udp)) + outer_udp


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in frames:
            f.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(data), len(data)))
            f.write(data)


rng = random.Random(5)
secret = bytes(rng.randrange(256) for _ in range(3600))
t0 = 1_700_000_000
client = [10, 53, 0, 7]
leak = []
for i in range(0, len(secret), 16):
    name = secret[i:i + 16].hex() + ".c2-slow.net"
    leak.append((t0 + i, frame(client, i // 16, name)))  # one query per 16 s: 1 byte/s

# Control: 20 hex names asked over and over for the same hour.
names = [bytes(rng.randrange(256) for _ in range(16)).hex() + ".av-lookups.net" for _ in range(20)]
repeat = [(t0 + 16 * i, frame([10, 53, 0, 8], 50000 + i, names[i % 20])) for i in range(225)]

with tempfile.TemporaryDirectory() as d:
    p_leak, p_rep = os.path.join(d, "leak.pcap"), os.path.join(d, "repeat.pcap")
    write_pcap(p_leak, leak)
    write_pcap(p_rep, repeat)
    for mode, extra in (("rules", ()), ("score-only", ("--config", no_rules_config()))):
        recs, _ = replay(p_leak, *extra)
        sa = [a for a in score_alerts(recs) if domain(a) == "c2-slow.net"]
        check(bool(sa), f"[{mode}] the 1 byte/s one-hour leak raises a scoring alert")
        if sa:
            r = reasons(sa[0])
            elapsed = int(r.get("duration_s", 0))
            queries = int(r.get("queries_total", 0))
            print(f"[{mode}] first alert after {elapsed} s, {queries} queries, {queries * 16} bytes leaked; "
                  f"reasons: {sa[0]['exfilwatch']['reasons'][:200]}")
            check(elapsed < 3600, f"[{mode}] alerted within the hour ({elapsed} s)")
            check(r.get("lexical_hits_10m") == 0, f"[{mode}] by volume, not by name shape")
        recs, _ = replay(p_rep, *extra)
        check(not score_alerts(recs), f"[{mode}] the same names repeated for an hour: no alert")
finish()
