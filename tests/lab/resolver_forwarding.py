#!/usr/bin/env python3
"""What do real resolvers forward upstream when a client sends them odd DNS?

Records, for dnsmasq and then unbound (Debian's packages), one tiny pcap per
odd message class in tests/data/resolver-forwarding/<resolver>/<case>.pcap,
and rewrites the findings table in tests/data/resolver-forwarding/README.md.
A message class the resolver forwards is one the sensor must parse: the
tunnel's client talks to its local resolver, the sensor sees what goes out.

Run as root (namespaces, port 53):  python3 tests/lab/resolver_forwarding.py
Options: --only dnsmasq|unbound, --case NAME (repeatable), --keep (leave the
namespaces up), --out DIR.

Lab (namespaces created and deleted here, nothing else is touched):
    rfwcli 10.77.1.2 --- 10.77.1.1 rfwres 10.77.2.2 --- 10.77.2.1 rfwsrv
    client (this script)  resolver under test       sink (this script, `sink`)
The sink answers every message by echoing it with QR and AA set (header and
question only when it is large, so the pcaps stay small). tcpdump in rfwres
(-i any, port 53) records all four legs of each case: client -> resolver,
resolver -> sink (what was forwarded), sink -> resolver, resolver -> client.
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(SRC, "tests", "data", "resolver-forwarding")

NS_CLI, NS_RES, NS_SRV = "rfwcli", "rfwres", "rfwsrv"
CLI_IP, RES_IP_CLI, RES_IP_SRV, SRV_IP = "10.77.1.2", "10.77.1.1", "10.77.2.2", "10.77.2.1"

# ---------------------------------------------------------------------------
# Building messages
# ---------------------------------------------------------------------------

QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO = 0, 1, 2, 4, 5, 6
A, NS_, SOA, TXT, AAAA, OPT = 1, 2, 6, 16, 28, 41
IN, CH, HS, NONE, ANY = 1, 3, 4, 254, 255


def header(mid, opcode=QUERY, qd=1, an=0, ns=0, ar=0, rd=True, aa=False, qr=False, rcode=0):
    flags = (0x8000 if qr else 0) | (opcode << 11) | (0x0400 if aa else 0) | (0x0100 if rd else 0) | rcode
    return struct.pack("!HHHHHH", mid, flags, qd, an, ns, ar)


def labels(*parts):
    """Wire labels (no root octet) of byte-string labels or dotted str names."""
    out = b""
    for p in parts:
        if isinstance(p, str):
            for l in p.split("."):
                out += bytes([len(l)]) + l.encode()
        else:
            out += bytes([len(p)]) + p
    return out


def name(*parts):
    return labels(*parts) + b"\0"


def ptr(off):
    return struct.pack("!H", 0xC000 | off)


def question(n, qtype=A, qclass=IN):
    return n + struct.pack("!HH", qtype, qclass)


def rr(n, rtype, rclass, ttl, rdata):
    return n + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def opt(options=(), udp=1232, version=0, do=False, ext_rcode=0, raw=None):
    rdata = raw if raw is not None else b"".join(struct.pack("!HH", c, len(d)) + d for c, d in options)
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return rr(b"\0", OPT, udp, ttl, rdata)


def txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in strings)


def case_list():
    """(name, transport, description, message bytes). Every name is unique per
    case (nothing is served from a cache) and ends in fwd.lab."""
    c = []

    def add(n, desc, msg, transport="udp"):
        c.append((n, transport, desc, msg))

    add("baseline", "QUERY A, one question, no EDNS (control)",
        header(0x1001) + question(name("baseline.fwd.lab")))
    add("baseline-edns", "QUERY A with an empty OPT (control)",
        header(0x1002, ar=1) + question(name("baseline-edns.fwd.lab")) + opt())
    # Forward compression pointers.
    q2 = 12 + 6  # the second question's name, after a 2-byte pointer + type + class
    add("fwdptr-2q", "qdcount 2, question 1's name is a pointer forward to question 2's name "
        "(suricata-verify dns-forward-pointer)",
        header(0x1003, qd=2) + question(ptr(q2)) + question(name("fwdptr-2q.fwd.lab")))
    # qd=1: "x" then a pointer forward into an additional record's owner name.
    head = header(0x1004, ar=1)
    q = labels("x") + ptr(12 + 2 + 2 + 4)  # after "x"(2) + ptr(2) + type/class(4)
    add("fwdptr-additional", "question name 'x' + pointer forward to an additional TXT record's owner",
        head + question(q) + rr(name("fwdptr-add.fwd.lab"), TXT, IN, 0, txt(b"v")))
    add("fwdptr-loop", "question name is a pointer to itself (a loop)",
        header(0x1005) + question(ptr(12)))
    # Opcodes other than QUERY.
    add("iquery", "IQUERY (opcode 1) as RFC 1035 wrote it: no question, one A answer 4.3.2.1 "
        "(zeek dns-inverse-query)",
        header(0x1101, opcode=IQUERY, qd=0, an=1, rd=False) + rr(b"\0", A, IN, 0, bytes([4, 3, 2, 1])))
    add("iquery-question", "IQUERY with a question iquery-q.fwd.lab A",
        header(0x1102, opcode=IQUERY) + question(name("iquery-q.fwd.lab")))
    add("status", "STATUS (opcode 2) with a question",
        header(0x1103, opcode=STATUS) + question(name("status.fwd.lab")))
    add("opcode3", "unassigned opcode 3 with a question",
        header(0x1104, opcode=3) + question(name("opcode3.fwd.lab")))
    add("notify", "NOTIFY (opcode 4, AA) for notify.fwd.lab SOA",
        header(0x1105, opcode=NOTIFY, aa=True, rd=False) + question(name("notify.fwd.lab"), SOA))
    add("update", "UPDATE (opcode 5): zone fwd.lab SOA, one update TXT record upd-data.fwd.lab",
        header(0x1106, opcode=UPDATE, qd=1, an=0, ns=1, rd=False) + question(name("fwd.lab"), SOA) +
        rr(name("upd-data.fwd.lab"), TXT, IN, 0, txt(b"payload")))
    add("dso", "DSO (opcode 6): no sections, a keepalive TLV",
        header(0x1107, opcode=DSO, qd=0, rd=False) + struct.pack("!HHII", 1, 8, 0, 0), "tcp")
    add("opcode15", "opcode 15 with a question",
        header(0x1108, opcode=15) + question(name("opcode15.fwd.lab")))
    # Question counts.
    add("qd2", "qdcount 2: q2a.fwd.lab A and q2b.fwd.lab TXT",
        header(0x1201, qd=2) + question(name("q2a.fwd.lab")) + question(name("q2b.fwd.lab"), TXT))
    add("qd0", "QUERY with qdcount 0",
        header(0x1202, qd=0))
    # Classes.
    for cls, n in ((CH, "ch"), (HS, "hs"), (NONE, "none"), (ANY, "any"), (0, "class0"), (0x1234, "class4660")):
        add("class-" + n, "question class %d, %s.fwd.lab TXT" % (cls, n),
            header(0x1300 + (cls & 0xff)) + question(name(n + ".fwd.lab"), TXT, cls))
    # Names with escapes and odd bytes.
    odd = [
        ("name-dot", "a label holding '.': 'a.b'", b"a.b"),
        ("name-backslash", "a label holding a backslash, space and quote", b'a\\ b"c'),
        ("name-nul", "a label holding a NUL byte", b"nul\x00byte"),
        ("name-8bit", "a label of 8-bit bytes 80 ff c3 a9", b"\x80\xff\xc3\xa9"),
        ("name-ctrl", "a label of control bytes 01 1f 7f", b"\x01\x1f\x7f"),
        ("name-mixedcase", "mixed case MiXeD", b"MiXeD"),
        ("name-63", "a 63-octet label", b"l" * 63),
    ]
    for i, (n, desc, lab) in enumerate(odd):
        add(n, desc + " under fwd.lab, TXT",
            header(0x1400 + i) + question(name(lab, n + ".fwd.lab"), TXT))
    long_labels = [b"m" * 63, b"m" * 63, b"m" * 63]  # + "name-255.fwd.lab" -> 253 characters
    add("name-255", "a name of 255 wire octets (the maximum)",
        header(0x1410) + question(name(*long_labels, b"n" * (255 - 3 * 64 - len(labels("name-255.fwd.lab")) - 2),
                                       "name-255.fwd.lab"), TXT))
    # EDNS options of every size.
    for i, size in enumerate((0, 1, 100, 1000, 4000)):
        add("edns-opt-%d" % size, "OPT with one option 65001 of %d bytes" % size,
            header(0x1500 + i, ar=1) + question(name("edns-opt-%d.fwd.lab" % size)) +
            opt([(65001, bytes(range(256)) * (size // 256) + bytes(range(size % 256)))], udp=4096))
    add("edns-opt-16000-tcp", "OPT with one option 65001 of 16000 bytes, over TCP",
        header(0x1510, ar=1) + question(name("edns-opt-16000.fwd.lab")) +
        opt([(65001, b"\xab" * 16000)], udp=4096), "tcp")
    add("edns-many", "OPT with cookie (8), padding (100), client subnet 10.77.1.0/24, 65001 (3)",
        header(0x1520, ar=1) + question(name("edns-many.fwd.lab")) +
        opt([(10, b"\x01\x02\x03\x04\x05\x06\x07\x08"), (12, b"\0" * 100), (8, b"\x00\x01\x18\x00\x0a\x4d\x01"),
             (65001, b"abc")]))
    add("edns-version1", "OPT version 1 (BADVERS expected)",
        header(0x1521, ar=1) + question(name("edns-v1.fwd.lab")) + opt(version=1))
    add("edns-bad-option", "OPT whose option length runs past the RDATA",
        header(0x1522, ar=1) + question(name("edns-bad.fwd.lab")) + opt(raw=struct.pack("!HH", 65001, 50) + b"xy"))
    add("edns-two-opt", "two OPT records",
        header(0x1523, ar=2) + question(name("edns-two.fwd.lab")) + opt() + opt())
    add("edns-do-extrcode", "OPT with DO and a non-zero extended rcode in a query",
        header(0x1524, ar=1) + question(name("edns-do.fwd.lab")) + opt(do=True, ext_rcode=1))
    return c


# ---------------------------------------------------------------------------
# A small decoder for the findings table (follows any pointer, bounded)
# ---------------------------------------------------------------------------

def read_name(msg, off):
    """(text, next offset, notes). Follows pointers in both directions, 16 at most."""
    out, notes, nxt, jumps, pos = [], [], None, 0, off
    while True:
        if pos >= len(msg):
            return None, nxt, notes + ["truncated"]
        b = msg[pos]
        if b == 0:
            return b".".join(out), (nxt if nxt is not None else pos + 1), notes
        if b & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                return None, nxt, notes + ["truncated"]
            t = ((b & 0x3F) << 8) | msg[pos + 1]
            if nxt is None:
                nxt = pos + 2
            notes.append("fwd-ptr" if t >= pos else "ptr")
            jumps += 1
            if jumps > 16:
                return None, nxt, notes + ["loop"]
            pos = t
            continue
        if b & 0xC0:
            return None, nxt, notes + ["bad-label"]
        out.append(bytes(msg[pos + 1:pos + 1 + b]))
        pos += 1 + b


def show_name(n):
    if n is None:
        return "(undecodable)"
    s = "".join(chr(c) if 0x21 <= c <= 0x7e and c not in (0x5c, 0x7c) else "\\x%02x" % c for c in n)
    return s or "."


def decode(msg):
    if len(msg) < 12:
        return {"short": len(msg)}
    mid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    d = {"id": mid, "qr": flags >> 15, "opcode": (flags >> 11) & 15, "rcode": flags & 15,
         "aa": (flags >> 10) & 1, "rd": (flags >> 8) & 1, "counts": (qd, an, ns, ar),
         "questions": [], "records": [], "opt": [], "notes": []}
    off = 12
    for _ in range(qd):
        n, nxt, notes = read_name(msg, off)
        d["notes"] += notes
        if nxt is None or nxt + 4 > len(msg):
            d["notes"].append("question cut")
            return d
        t, cl = struct.unpack("!HH", msg[nxt:nxt + 4])
        d["questions"].append((n, t, cl))
        off = nxt + 4
    for sec in range(an + ns + ar):
        n, nxt, notes = read_name(msg, off)
        d["notes"] += notes
        if nxt is None or nxt + 10 > len(msg):
            d["notes"].append("record cut")
            return d
        t, cl, ttl, rl = struct.unpack("!HHIH", msg[nxt:nxt + 10])
        rd = msg[nxt + 10:nxt + 10 + rl]
        d["records"].append((n, t, cl, rl))
        if t == OPT:
            o, p = [], 0
            while p + 4 <= len(rd):
                code, ln = struct.unpack("!HH", rd[p:p + 4])
                o.append((code, ln))
                p += 4 + ln
            d["opt"].append({"udp": cl, "ext_rcode": ttl >> 24, "version": (ttl >> 16) & 255, "do": (ttl >> 15) & 1, "options": o})
        off = nxt + 10 + rl
    if off < len(msg):
        d["notes"].append("%d trailing bytes" % (len(msg) - off))
    return d


OPNAMES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 16: "BADVERS"}


def summary(d):
    if "short" in d:
        return "%d bytes (no header)" % d["short"]
    parts = ["%s" % OPNAMES.get(d["opcode"], "opcode %d" % d["opcode"])]
    parts.append("qd/an/ns/ar %d/%d/%d/%d" % d["counts"])
    for n, t, cl in d["questions"]:
        parts.append("Q %s type %d%s" % (show_name(n), t, "" if cl == IN else " class %d" % cl))
    for n, t, cl, rl in d["records"]:
        if t != OPT:
            parts.append("RR %s type %d class %d rdlen %d" % (show_name(n), t, cl, rl))
    for o in d["opt"]:
        parts.append("OPT " + _opt_text([o]))
    notes = sorted(set(x for x in d["notes"] if x != "ptr"))
    if notes:
        parts.append("[" + ", ".join(notes) + "]")
    return "; ".join(parts)


def _opt_text(opts):
    return "/".join("udp %d%s%s%s %s" % (o["udp"], " v%d" % o["version"] if o["version"] else "",
                                         " DO" if o["do"] else "",
                                         " ext-rcode %d" % o["ext_rcode"] if o["ext_rcode"] else "",
                                       ",".join("%d:%d" % x for x in o["options"]) or "no options")
                    for o in opts) or "no OPT"


def compare(sent, fwd):
    """What changed between what the client sent and what went upstream."""
    if fwd == sent:
        return "byte for byte"
    if fwd[2:] == sent[2:]:
        return "byte for byte but the id"
    s, f = decode(sent), decode(fwd)
    if "short" in s or "short" in f:
        return "rewritten"
    ch = []
    if s["opcode"] != f["opcode"]:
        ch.append("opcode %d->%d" % (s["opcode"], f["opcode"]))
    sflags = struct.unpack("!H", sent[2:4])[0] & 0x87F0
    fflags = struct.unpack("!H", fwd[2:4])[0] & 0x87F0
    for bit, nm in ((0x0400, "AA"), (0x0200, "TC"), (0x0100, "RD"), (0x0080, "RA"), (0x0040, "Z"),
                    (0x0020, "AD"), (0x0010, "CD")):
        if (sflags ^ fflags) & bit:
            ch.append(("+" if fflags & bit else "-") + nm)
    if s["counts"][0] != f["counts"][0]:
        ch.append("qdcount %d->%d" % (s["counts"][0], f["counts"][0]))
    for a, b in zip(s["questions"], f["questions"]):
        if (a[0] or b"").lower() != (b[0] or b"").lower():
            ch.append("name %s->%s" % (show_name(a[0]), show_name(b[0])))
        elif a[0] != b[0]:
            ch.append("name case changed")
        if a[1] != b[1]:
            ch.append("type %d->%d" % (a[1], b[1]))
        if a[2] != b[2]:
            ch.append("class %d->%d" % (a[2], b[2]))
    if "fwd-ptr" in s["notes"] and "fwd-ptr" not in f["notes"]:
        ch.append("forward pointer expanded")
    if s["counts"][1:3] != f["counts"][1:3]:
        ch.append("an/ns %d/%d->%d/%d" % (s["counts"][1], s["counts"][2], f["counts"][1], f["counts"][2]))
    if _opt_text(s["opt"]) != _opt_text(f["opt"]):
        ch.append("EDNS %s -> %s" % (_opt_text(s["opt"]), _opt_text(f["opt"])))
    return "rewritten: " + ", ".join(ch) if ch else "rewritten (record order or compression)"


# ---------------------------------------------------------------------------
# Sink (runs in rfwsrv)
# ---------------------------------------------------------------------------

def skip_questions(msg):
    if len(msg) < 12:
        return None
    qd = struct.unpack("!H", msg[4:6])[0]
    off = 12
    for _ in range(qd):
        while off < len(msg):
            b = msg[off]
            if b == 0:
                off += 1
                break
            if b & 0xC0 == 0xC0:
                off += 2
                break
            off += 1 + b
        off += 4
    return off if off <= len(msg) else None


def sink_reply(msg):
    if len(msg) < 12:
        return None
    flags = struct.unpack("!H", msg[2:4])[0] | 0x8000 | 0x0400
    flags &= ~0x000F
    if len(msg) <= 1500:
        return msg[:2] + struct.pack("!H", flags) + msg[4:]
    end = skip_questions(msg)
    if end is None:
        return msg[:2] + struct.pack("!H", flags) + msg[4:6] + b"\0" * 6
    return msg[:2] + struct.pack("!H", flags) + msg[4:6] + b"\0" * 6 + msg[12:end]


def run_sink(log_path):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((SRV_IP, 53))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((SRV_IP, 53))
    t.listen(16)
    conns = {}
    log = open(log_path, "a")

    def record(proto, peer, msg):
        log.write(json.dumps({"proto": proto, "peer": peer[0], "hex": msg.hex()}) + "\n")
        log.flush()

    while True:
        r, _, _ = select.select([u, t] + list(conns), [], [], 1.0)
        for s in r:
            if s is u:
                msg, peer = u.recvfrom(65535)
                record("udp", peer, msg)
                rep = sink_reply(msg)
                if rep:
                    u.sendto(rep, peer)
            elif s is t:
                c, peer = t.accept()
                conns[c] = [peer, b""]
            else:
                data = s.recv(65535)
                if not data:
                    s.close()
                    del conns[s]
                    continue
                conns[s][1] += data
                buf = conns[s][1]
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    record("tcp", conns[s][0], msg)
                    rep = sink_reply(msg)
                    if rep:
                        s.sendall(struct.pack("!H", len(rep)) + rep)
                conns[s][1] = buf


# ---------------------------------------------------------------------------
# Lab
# ---------------------------------------------------------------------------

def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def lab_down():
    for n in (NS_CLI, NS_RES, NS_SRV):
        sh("ip", "netns", "del", n, check=False)


def lab_up():
    lab_down()
    for n in (NS_CLI, NS_RES, NS_SRV):
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")
    sh("ip", "link", "add", "rfwc0", "netns", NS_CLI, "type", "veth", "peer", "name", "rfwr0", "netns", NS_RES)
    sh("ip", "link", "add", "rfwr1", "netns", NS_RES, "type", "veth", "peer", "name", "rfws0", "netns", NS_SRV)
    for ns, dev, addr in ((NS_CLI, "rfwc0", CLI_IP), (NS_RES, "rfwr0", RES_IP_CLI),
                          (NS_RES, "rfwr1", RES_IP_SRV), (NS_SRV, "rfws0", SRV_IP)):
        sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        # no offloads: what is recorded is what a NIC would put on the wire
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", check=False)


def start_resolver(kind, tmp):
    if kind == "dnsmasq":
        cmd = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
               "--server=" + SRV_IP, "--listen-address=" + RES_IP_CLI, "--bind-interfaces",
               "--except-interface=lo", "--cache-size=0", "--no-negcache", "--user=root",
               "--pid-file=" + os.path.join(tmp, "dnsmasq.pid"), "--log-queries=extra",
               "--log-facility=" + os.path.join(tmp, "dnsmasq.log")]
    else:
        conf = os.path.join(tmp, "unbound.conf")
        with open(conf, "w") as f:
            f.write("""server:
  interface: %s
  port: 53
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "%s"
  pidfile: "%s/unbound.pid"
  use-syslog: no
  logfile: "%s/unbound.log"
  verbosity: 1
  do-ip6: no
  access-control: 10.77.1.0/24 allow
  module-config: "iterator"
  qname-minimisation: no
  do-not-query-localhost: no
  msg-cache-size: 0
  rrset-cache-size: 0
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: %s
""" % (RES_IP_CLI, tmp, tmp, tmp, SRV_IP))
        cmd = ["unbound", "-d", "-c", conf]
    p = subprocess.Popen(["ip", "netns", "exec", NS_RES] + cmd, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, kind + ".stderr"), "w"))
    time.sleep(1.5)
    if p.poll() is not None:
        sys.exit("%s did not start: %s" % (kind, open(os.path.join(tmp, kind + ".stderr")).read()))
    return p


def version(kind):
    if kind == "dnsmasq":
        return sh("dnsmasq", "--version").stdout.decode().splitlines()[0].split("  ")[0]
    return "unbound " + sh("unbound", "-V").stdout.decode().splitlines()[0].split()[-1]


def send(msg, transport, timeout=2.0):
    """Sends from rfwcli (this process moved into it by the caller's netns
    exec) and returns the reply bytes or None."""
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(msg, (RES_IP_CLI, 53))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((RES_IP_CLI, 53))
        s.sendall(struct.pack("!H", len(msg)) + msg)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            d = s.recv(65535)
            if not d:
                break
            buf += d
        return buf[2:2 + struct.unpack("!H", buf[:2])[0]] if len(buf) >= 2 else None
    except (socket.timeout, ConnectionError):
        return None
    finally:
        s.close()


def client_main(case_name):
    """`client NAME`: runs inside rfwcli, prints the reply as hex (or -)."""
    for n, transport, _, msg in case_list():
        if n == case_name:
            rep = send(msg, transport)
            print(rep.hex() if rep is not None else "-")
            return
    sys.exit("no case " + case_name)


def record_case(kind, case, tmp, out_dir, sink_log):
    n, transport, desc, msg = case
    pcap = os.path.join(out_dir, kind, n + ".pcap")
    td = subprocess.Popen(["ip", "netns", "exec", NS_RES, "tcpdump", "-i", "any", "-s", "0", "-U", "-n", "--immediate-mode", "-B", "16384", "-Z", "root",
                           "-w", pcap, "port 53"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # tcpdump says "listening on" once the capture runs
    while True:
        line = td.stderr.readline()
        if b"listening" in line:
            break
        if not line:
            sys.exit("tcpdump did not start")
    before = os.path.getsize(sink_log)
    rep = sh("ip", "netns", "exec", NS_CLI, sys.executable, os.path.abspath(__file__), "client", n).stdout
    time.sleep(0.5)
    td.send_signal(signal.SIGINT)
    td.wait(timeout=10)
    with open(sink_log) as f:
        f.seek(before)
        fwd = [json.loads(l) for l in f if l.strip()]
    rep = rep.decode().strip()
    reply = bytes.fromhex(rep) if rep and rep != "-" else None
    return {"case": n, "transport": transport, "desc": desc, "sent": msg.hex(),
            "forwarded": fwd, "reply": reply.hex() if reply is not None else None}


def describe(res):
    sent = bytes.fromhex(res["sent"])
    if res["forwarded"]:
        f = res["forwarded"][0]
        fwd = bytes.fromhex(f["hex"])
        more = " (%d copies)" % len(res["forwarded"]) if len(res["forwarded"]) > 1 else ""
        how = compare(sent, fwd)
        if how.startswith("byte for byte"):
            return "**forwarded** (%s%s): %s" % (f["proto"], more, how)
        return "**forwarded** (%s%s): %s; upstream: %s" % (f["proto"], more, how, summary(decode(fwd)))
    if res["reply"] is None:
        return "not forwarded, no answer"
    r = decode(bytes.fromhex(res["reply"]))
    if "short" in r:
        return "not forwarded, %d-byte answer" % r["short"]
    rcode = r["rcode"] | (r["opt"][0]["ext_rcode"] << 4 if r["opt"] else 0)
    return "not forwarded, answered %s" % RCODES.get(rcode, str(rcode))


def write_table(out_dir, results, versions):
    cases = [c for c in case_list()]
    lines = ["<!-- table: written by tests/lab/resolver_forwarding.py, do not edit by hand -->",
             "",
             "Versions: " + "; ".join("%s (Debian 12 package)" % versions[k] for k in sorted(versions)) + ".",
             "",
             "| case | sent by the client | dnsmasq | unbound |",
             "|---|---|---|---|"]
    for n, transport, desc, msg in cases:
        row = [n, "%s (%s)" % (desc, transport)]
        for kind in ("dnsmasq", "unbound"):
            r = results.get(kind, {}).get(n)
            row.append(r if r else "(not recorded)")
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in row) + " |")
    lines.append("")
    lines.append("<!-- end table -->")
    table = "\n".join(lines)
    readme = os.path.join(out_dir, "README.md")
    text = open(readme).read() if os.path.exists(readme) else "# Resolver forwarding\n\n<!-- table -->\n"
    start = text.find("<!-- table")
    end = text.find("<!-- end table -->")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    else:
        tail = text[end + len("<!-- end table -->"):] if end >= 0 else "\n"
        text = text[:start] + table + tail
    with open(readme, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("dnsmasq", "unbound"))
    ap.add_argument("--case", action="append")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=DEFAULT_OUT)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (network namespaces)")
    for tool in ("dnsmasq", "unbound", "tcpdump", "ip"):
        if not shutil.which(tool):
            sys.exit("missing %s (apt-get install -y dnsmasq-base unbound tcpdump iproute2)" % tool)
    kinds = [a.only] if a.only else ["dnsmasq", "unbound"]
    cases = [c for c in case_list() if not a.case or c[0] in a.case]
    results_path = os.path.join(a.out, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    versions = results.pop("_versions", {})
    tmp = tempfile.mkdtemp(prefix="rfw-")
    sink = None
    try:
        lab_up()
        sink_log = os.path.join(tmp, "sink.log")
        open(sink_log, "w").close()
        sink = subprocess.Popen(["ip", "netns", "exec", NS_SRV, sys.executable, os.path.abspath(__file__),
                                 "sink", sink_log])
        for kind in kinds:
            os.makedirs(os.path.join(a.out, kind), exist_ok=True)
            versions[kind] = version(kind)
            p = start_resolver(kind, tmp)
            try:
                for case in cases:
                    r = record_case(kind, case, tmp, a.out, sink_log)
                    results.setdefault(kind, {})[case[0]] = describe(r)
                    print("%-8s %-22s %s" % (kind, case[0], describe(r)))
            finally:
                p.terminate()
                p.wait(timeout=10)
        results["_versions"] = versions
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
            f.write("\n")
        results.pop("_versions")
        write_table(a.out, results, versions)
    finally:
        if sink:
            sink.terminate()
            sink.wait(timeout=10)
        if not a.keep:
            lab_down()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "sink":
        run_sink(sys.argv[2])
    elif len(sys.argv) > 2 and sys.argv[1] == "client":
        client_main(sys.argv[2])
    else:
        main()
