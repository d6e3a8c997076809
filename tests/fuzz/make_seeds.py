#!/usr/bin/env python3
"""make_seeds.py SHARED_DIR OUT_DIR: writes seed corpora for every fuzz target
from the captures in SHARED_DIR/captures (classic pcap, Ethernet) and the
repository's rules and configurations, into OUT_DIR/<target>/. Run by
`make fuzz` into a temporary directory: corpora are not committed.

Frames are written in the framing of tests/fuzz/frames.h (u16 length + bytes);
DNS-over-TCP seeds in that of fuzz_dns_tcp.cc (ctl, u16 length, bytes)."""
import glob
import hashlib
import os
import struct
import sys

MAX_PER_TARGET = 400


def pcap_frames(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return
        magic = hdr[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            e = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            e = ">"
        else:
            return  # pcapng and others: skipped
        linktype = struct.unpack(e + "I", hdr[20:24])[0]
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            caplen = struct.unpack(e + "I", rh[8:12])[0]
            data = f.read(caplen)
            if len(data) < caplen:
                return
            yield linktype, data


def l4(frame):
    """Ethernet frame -> (proto, sport, dport, tcp_flags, l4 payload, ip packet) or None."""
    off, et = 12, None
    if len(frame) < 14:
        return None
    et = struct.unpack(">H", frame[12:14])[0]
    off = 14
    while et in (0x8100, 0x88A8) and len(frame) >= off + 4:
        et = struct.unpack(">H", frame[off + 2:off + 4])[0]
        off += 4
    ip = frame[off:]
    if et == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        proto, rest = ip[9], ip[ihl:]
    elif et == 0x86DD and len(ip) >= 40:
        proto, rest = ip[6], ip[40:]
    else:
        return None
    if proto == 17 and len(rest) >= 8:
        sp, dp = struct.unpack(">HH", rest[:4])
        return 17, sp, dp, 0, rest[8:], ip
    if proto == 6 and len(rest) >= 20:
        sp, dp = struct.unpack(">HH", rest[:4])
        doff = (rest[12] >> 4) * 4
        return 6, sp, dp, rest[13], rest[doff:], ip
    return None


def frame_rec(b, cut=False):
    b = b[:0x7FFF]
    return struct.pack(">H", len(b) | (0x8000 if cut else 0)) + b


class Out:
    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0
        self.seen = set()

    def add(self, data):
        if self.n >= MAX_PER_TARGET or not data:
            return
        h = hashlib.sha1(data).hexdigest()
        if h in self.seen:
            return
        self.seen.add(h)
        with open(os.path.join(self.dir, h), "wb") as f:
            f.write(data)
        self.n += 1


def main():
    shared, out = sys.argv[1], sys.argv[2]
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    t = {n: Out(out, n) for n in ("vxlan", "geneve", "l2l4", "dns", "dns_tcp", "tls", "rules", "config",
                                  "registered_domain", "redis_reply")}
    paths = sorted(glob.glob(os.path.join(shared, "captures", "*.pcap")))
    # The parser corpora (Zeek, Suricata, ... test captures) add DNS over TCP.
    paths += sorted(glob.glob(os.path.join(shared, "corpus", "parsers", "**", "*.pcap"), recursive=True))
    for path in paths:
        tcp_streams = {}
        for linktype, fr in pcap_frames(path):
            if linktype != 1:
                continue
            r = l4(fr)
            inner = fr
            if r and r[0] == 17 and r[2] == 4789 and len(r[4]) > 8:
                inner = r[4][8:]  # VXLAN-mirrored capture: inner Ethernet
                t["vxlan"].add(frame_rec(r[4]))
                r = l4(inner)
            vx = struct.pack(">BBHI", 0x08, 0, 0, 7 << 8)
            t["vxlan"].add(frame_rec(vx + inner) + frame_rec(vx + inner[:60], cut=True))
            gn = struct.pack(">BBHI", 0x00, 0, 0x6558, 7 << 8)
            gopt = struct.pack(">BBHI", 0x02, 0, 0x6558, 9 << 8) + struct.pack(">HBB", 0x0103, 0x80, 1) + b"\0" * 4
            t["geneve"].add(frame_rec(gn + inner) + frame_rec(gopt + inner))
            t["l2l4"].add(b"\x00" + frame_rec(inner))
            if not r:
                continue
            proto, sp, dp, flags, pl, ip = r
            t["l2l4"].add(b"\x01" + frame_rec(ip))
            if proto == 17 and 53 in (sp, dp):
                t["dns"].add(pl)
            if proto == 6 and 53 in (sp, dp):
                key = (min(sp, dp), max(sp, dp))
                d = 1 if sp == 53 else 0
                ctl = d | (0x02 if flags & 0x02 else 0) | (0x04 if flags & 0x01 else 0)
                tcp_streams.setdefault(key, []).append(bytes([ctl]) + struct.pack(">H", len(pl)) + pl)
            if proto == 6 and 8443 in (sp, dp) and dp == 8443 and pl:
                t["tls"].add(pl)
        for segs in list(tcp_streams.values())[:100]:
            t["dns_tcp"].add(b"".join(segs[:40]))
    for p in sorted(glob.glob(os.path.join(src, "rules", "*.yaml"))):
        t["rules"].add(open(p, "rb").read())
    for p in sorted(glob.glob(os.path.join(src, "**", "*.yaml"), recursive=True)):
        if "/rules/" in p or "/build" in p:
            continue
        t["config"].add(open(p, "rb").read())
    # The configuration examples of the documentation (```yaml blocks).
    for p in [os.path.join(src, "README.md")] + sorted(glob.glob(os.path.join(src, "docs", "*.md"))):
        if not os.path.exists(p):
            continue
        text = open(p, encoding="utf-8", errors="replace").read()
        for block in text.split("```yaml\n")[1:]:
            t["config"].add(block.split("```")[0].encode())
            t["rules"].add(block.split("```")[0].encode())
    t["config"].add(b"listen:\n  address: 127.0.0.1\n  vxlan_port: 4789\n  workers: 2\n"
                    b"dns:\n  ports: [53, 5353]\n  tcp:\n    max_flows: 100\n    max_buffered_bytes: 65536\n"
                    b"decode:\n  vxlan_ports: [4789]\n  fragments:\n    max_datagrams: 16\n"
                    b"detect:\n  suppress_seconds: 60\nsensor_name: s1\n")
    # Names: the name corpus, and names over the public suffix list's deep,
    # wildcard, exception and Unicode rules.
    for p in sorted(glob.glob(os.path.join(shared, "corpus", "names", "**", "names.csv"), recursive=True)):
        for line in open(p, encoding="utf-8", errors="replace").read().splitlines()[1:400]:
            t["registered_domain"].add(line.split(",", 1)[-1].rstrip(".").encode())
    for n in (b"a.b.example.co.uk", b"x.www.ck", b"y.abc.ck", b"a.city.kawasaki.jp", b"b.c.kawasaki.jp",
              b"q.eu-west-1.compute.amazonaws.com", b"x.xn--55qx5d.cn", b"a.xn--fiqs8s", b"x.a\xc3\xa9roport.ci",
              b"foo.blogspot.com", b"a.unknowntld", b".example.com", b"a..b.com", b"com"):
        t["registered_domain"].add(n)
    # Redis replies (fuzz_redis_reply.cc: a read size byte, then the stream):
    # the kept regression inputs, and what the fleet client's commands get.
    for p in sorted(glob.glob(os.path.join(src, "tests", "data", "regress", "redis_reply", "*"))):
        t["redis_reply"].add(open(p, "rb").read())
    for chunk in (0, 1, 5, 64):
        t["redis_reply"].add(bytes([chunk]) + b"+PONG\r\n:5\r\n:0\r\n:3\r\n+OK\r\n$-1\r\n:1\r\n:60\r\n$1\r\nv\r\n")
        t["redis_reply"].add(bytes([chunk]) + b"-WRONGPASS invalid username-password pair\r\n-NOAUTH x\r\n"
                             b"-TRYAGAIN x\r\n-CLUSTERDOWN x\r\n-ASK 16383 [::1]:7000\r\n-MOVED 0 host.example:6379\r\n")
        t["redis_reply"].add(bytes([chunk]) + b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$0\r\n\r\n:7000\r\n$1\r\nx\r\n")
        t["redis_reply"].add(bytes([chunk]) + b"*2\r\n*3\r\n:0\r\n:9\r\n*2\r\n$1\r\n?\r\n:1\r\n"
                             b"*4\r\n:5\r\n:20\r\n*2\r\n$-1\r\n:2\r\n*2\r\n$1\r\nr\r\n:3\r\n")
    for name, o in sorted(t.items()):
        print(f"{name}: {o.n} seeds")


if __name__ == "__main__":
    main()
