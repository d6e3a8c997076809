#!/usr/bin/env python3
"""gen_mixed.py: the large mixed capture for the benchmarks (issue #9).

Writes a classic pcap (Ethernet, microseconds) framed exactly like
../shared/captures: outer Ethernet / IPv4 10.54.0.2 -> 10.54.0.1 / UDP
4789 -> 4789 / VXLAN VNI 1234 / inner Ethernet, both directions of every
mirrored flow. Deterministic: the same seed, arguments and inputs give the
same bytes.

What is inside (share of packets, 5M default):
  ~97%  benign DNS over UDP from many clients (4000 by default, 5% IPv6) to
        the VPC resolver (a few to 8.8.8.8 / 1.1.1.1): popular names repeated
        (Zipf over a pool of ~30k names: the corpus's plain names with www/api/
        cdn prefixes, SaaS and AWS endpoints), CNAME chains into CDNs
        (akamaiedge, cloudfront, fastly, azureedge, googlevideo), A+AAAA
        pairs, Kubernetes search-path expansions (NXDOMAIN), antivirus and
        DNSBL look-ups (Sophos hashes, McAfee GTI, Spamhaus), PTR, TXT (SPF,
        DMARC, DKIM keys), MX, SRV, HTTPS (type 65), browser probes; EDNS0 on
        most, some with cookies.
  ~0.01% DNS over TCP (handshake, length-prefixed query and large answer, FIN).
  ~1.6% TLS on 8443 (benign API sessions: ClientHello with SNI, server flight,
        small requests, 10-60 kB answers).
  ~0.15% ARP and ICMPv6 noise.
  ~1.2% tunnels at known clients and domains (OUT.labels.tsv): iodine NULL
        (base128, raw 8-bit labels), iodine TXT (base32), dns2tcp TXT
        (base64), dnscat2 (hex, TXT/CNAME/MX), slow hex exfil (one A query
        every 3 s), and one 8 MB TLS upload to 8443.

usage: gen_mixed.py [--packets N] [--seed S] [--clients C] [--pps P]
                    [--prefix-packets K] [--force] [OUT]
OUT defaults to $BENCH_CACHE/mixed-<N>.pcap ($BENCH_CACHE defaults to
/tmp/exfilwatch-bench). The file is rebuilt only when missing or when this
script, its inputs or its arguments changed (key in OUT.key). Also writes
OUT.labels.tsv (ground truth) and, with K > 0, the first K packets as
OUT-stem.first<K>.pcap (for tshark and callgrind, which are too slow for the
whole file). Prints the paths it wrote or found.
"""
import argparse
import bisect
import hashlib
import heapq
import os
import random
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
PLAIN_NAMES = os.path.join(SHARED, "corpus", "names", "dns", "plain", "names.csv")

START_SEC = 1796000000  # Nov 2026, like the lab captures

# ----------------------------------------------------------------------------
# checksums: the ones' complement sum of 16-bit big-endian words of an even
# length byte string is int.from_bytes(...) mod 0xffff (2^16 = 1 mod 0xffff).

def _sum16(b):
    if len(b) & 1:
        b += b"\0"
    return int.from_bytes(b, "big")


def _fold(s):
    return (0xFFFF - s % 0xFFFF) % 0xFFFF


# ----------------------------------------------------------------------------
# framing

OUTER_ETH = bytes.fromhex("7e973968e7dc" "56e4e1f83e10" "0800")
OUTER_SRC = bytes([10, 54, 0, 2])
OUTER_DST = bytes([10, 54, 0, 1])
VXLAN = struct.pack("!II", 0x08000000, 1234 << 8)  # I flag, VNI 1234
OUTER_ADDR_SUM = int.from_bytes(OUTER_SRC + OUTER_DST, "big")
OUTER_VX_SUM = int.from_bytes(VXLAN, "big")
GW_MAC = bytes.fromhex("0a58a9fe0101")
_OUTER_IP_K = 0x4500 + 0x4011 + OUTER_ADDR_SUM
_OUTER_UDP_K = OUTER_ADDR_SUM + 17 + 4789 + 4789 + OUTER_VX_SUM
_PCAP_REC = struct.Struct("<IIII").pack
_OUTER = struct.Struct("!14sHHHHHH4s4sHHHH8s").pack
_ETH_IP4_UDP = struct.Struct("!6s6sHHHHHHH4s4sHHHH").pack


def ipv4_header(tlen, ipid, proto, src, dst, df, addr_sum):
    flags = 0x4000 if df else 0
    s = 0x4500 + tlen + ipid + flags + (64 << 8 | proto) + addr_sum
    return struct.pack("!HHHHBBH4s4s", 0x4500, tlen, ipid, flags, 64, proto, _fold(s), src, dst)


class Net:
    """Inner frames (Ethernet + IPv4/IPv6 + UDP/TCP) with real checksums."""

    def __init__(self):
        self.ipid = 0x1D00

    def udp(self, smac, dmac, src, dst, sport, dport, payload, df=False):
        ulen = 8 + len(payload)
        if len(src) == 4:
            asum = int.from_bytes(src + dst, "big")
            c = _fold(asum + 17 + ulen + sport + dport + ulen + _sum16(payload)) or 0xFFFF
            self.ipid = ipid = (self.ipid + 1) & 0xFFFF
            flags = 0x4000 if df else 0
            return _ETH_IP4_UDP(dmac, smac, 0x0800, 0x4500, 20 + ulen, ipid, flags, 0x4011,
                                _fold(0x4500 + 0x4011 + 20 + ulen + ipid + flags + asum),
                                src, dst, sport, dport, ulen, c) + payload
        s = int.from_bytes(src + dst, "big") + ulen + 17 + sport + dport + ulen + _sum16(payload)
        c = _fold(s) or 0xFFFF
        return b"".join((dmac, smac, b"\x86\xdd", struct.pack("!IHBB", 0x60000000, ulen, 17, 64),
                         src, dst, struct.pack("!HHHH", sport, dport, ulen, c), payload))

    def tcp(self, smac, dmac, src, dst, sport, dport, seq, ack, flags, payload=b"", ts=0):
        # Linux-like: timestamps option on every segment (12 bytes), MSS on SYNs.
        if flags & 0x02:  # MSS, SACK permitted, timestamps, NOP, window scale
            opts = struct.pack("!BBHBBBBII", 2, 4, 1460, 4, 2, 8, 10, ts, 0) + b"\x01\x03\x03\x07"
        else:
            opts = b"\x01\x01" + struct.pack("!BBII", 8, 10, ts, ts ^ 0x5A5A)
        hlen = 20 + len(opts)
        win = 64240 if flags & 0x02 else 502
        seg_len = hlen + len(payload)
        hdr = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          (hlen // 4) << 12 | flags, win, 0, 0) + opts
        if len(src) == 4:
            asum = int.from_bytes(src + dst, "big")
            c = _fold(asum + 6 + seg_len + _sum16(hdr) + _sum16(payload))
            hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
            self.ipid = (self.ipid + 1) & 0xFFFF
            return b"".join((dmac, smac, b"\x08\x00",
                             ipv4_header(20 + seg_len, self.ipid, 6, src, dst, True, asum),
                             hdr, payload))
        c = _fold(int.from_bytes(src + dst, "big") + seg_len + 6 + _sum16(hdr) + _sum16(payload))
        hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
        return b"".join((dmac, smac, b"\x86\xdd", struct.pack("!IHBB", 0x60000000, seg_len, 6, 64),
                         src, dst, hdr, payload))


class Writer:
    """pcap records with the outer VXLAN framing added at emission time (the
    outer IP id counts in capture order, like the mirror target's kernel)."""

    def __init__(self, path, prefix_path, prefix_packets, limit):
        self.limit = limit
        self.f = open(path, "wb")
        hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
        self.f.write(hdr)
        self.pf = None
        if prefix_path and prefix_packets > 0:
            self.pf = open(prefix_path, "wb")
            self.pf.write(hdr)
        self.prefix_packets = prefix_packets
        self.buf = []
        self.count = 0
        self.outer_id = 0x2000

    def emit(self, ts_us, frame):
        if self.count >= self.limit:
            return
        n = len(frame)
        ulen = 16 + n
        self.outer_id = oid = (self.outer_id + 1) & 0xFFFF
        # outer UDP checksum over pseudo header, UDP header, VXLAN and the frame
        c = _fold(_OUTER_UDP_K + ulen + ulen + _sum16(frame)) or 0xFFFF
        self.buf.append(_PCAP_REC(ts_us // 1000000, ts_us % 1000000, 50 + n, 50 + n)
                        + _OUTER(OUTER_ETH, 0x4500, 20 + ulen, oid, 0, 0x4011,
                                 _fold(_OUTER_IP_K + 20 + ulen + oid), OUTER_SRC, OUTER_DST,
                                 4789, 4789, ulen, c, VXLAN) + frame)
        self.count += 1
        if len(self.buf) >= 20000:
            self.flush()

    def flush(self):
        if not self.buf:
            return
        data = self.buf
        self.buf = []
        if self.pf is not None:
            start = self.count - len(data)
            if start < self.prefix_packets:
                self.pf.write(b"".join(data[: self.prefix_packets - start]))
                if self.count >= self.prefix_packets:
                    self.pf.close()
                    self.pf = None
        self.f.write(b"".join(data))

    def close(self):
        self.flush()
        self.f.close()
        if self.pf is not None:
            self.pf.close()


# ----------------------------------------------------------------------------
# DNS wire format

T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_NULL, T_MX, T_TXT, T_AAAA, T_SRV, T_OPT, T_HTTPS = (
    1, 2, 5, 6, 12, 10, 15, 16, 28, 33, 41, 65)


def wire(name):
    """Uncompressed wire name; name is bytes (8-bit labels allowed)."""
    if not name:
        return b"\0"
    return b"".join(bytes([len(l)]) + l for l in name.split(b".")) + b"\0"


def suffix_ptr(name, suffix):
    """Compression pointer to `suffix` inside the question name at offset 12."""
    labels = name.split(b".")
    k = len(labels) - len(suffix.split(b"."))
    off = 12 + sum(len(l) + 1 for l in labels[:k])
    return struct.pack("!H", 0xC000 | off)


def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def txt_rdata(*strings):
    out = b""
    for s in strings:
        while True:
            out += bytes([min(len(s), 255)]) + s[:255]
            s = s[255:]
            if not s:
                break
    return out


OPT_PLAIN = b"\x00" + struct.pack("!HHIH", T_OPT, 1232, 0, 0)
OPT_RESP = b"\x00" + struct.pack("!HHIH", T_OPT, 1232, 0, 0)


def opt_cookie(cookie):
    return b"\x00" + struct.pack("!HHIHHH", T_OPT, 1232, 0, 12, 10, 8) + cookie


def soa_rdata(zone):
    return (wire(b"ns-" + str(len(zone) * 37 % 2048).encode() + b".awsdns-" + str(len(zone) % 64).encode() + b".net")
            + wire(b"awsdns-hostmaster.amazon.com") + struct.pack("!IIIII", 1, 7200, 900, 1209600, 86400))


# ----------------------------------------------------------------------------
# names

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
HEX = "0123456789abcdef"
B32 = "abcdefghijklmnopqrstuvwxyz234567"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# iodine's base128 alphabet: letters, digits and 66 8-bit bytes
B128 = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        + bytes(range(0xBC, 0xFE)))


def rs(r, alphabet, n):
    return "".join(r.choices(alphabet, k=n))


POPULAR = """google.com www.google.com github.com api.github.com codeload.github.com
objects.githubusercontent.com raw.githubusercontent.com registry.npmjs.org pypi.org
files.pythonhosted.org deb.debian.org security.debian.org archive.ubuntu.com security.ubuntu.com
www.amazon.com slack.com wss-primary.slack.com edgeapi.slack.com zoom.us
login.microsoftonline.com outlook.office365.com graph.microsoft.com www.youtube.com i.ytimg.com
fonts.googleapis.com fonts.gstatic.com www.googleapis.com oauth2.googleapis.com
storage.googleapis.com cdn.jsdelivr.net unpkg.com www.wikipedia.org en.wikipedia.org
upload.wikimedia.org hub.docker.com registry-1.docker.io auth.docker.io
production.cloudflare.docker.com quay.io cdn.quay.io gcr.io ghcr.io pkg-containers.githubusercontent.com
api.stripe.com api.twilio.com hooks.slack.com sentry.io o123456.ingest.sentry.io
api.datadoghq.com http-intake.logs.datadoghq.com app.datadoghq.com trace.agent.datadoghq.com
api.pagerduty.com events.pagerduty.com ocsp.digicert.com crl3.digicert.com crl4.digicert.com
r3.o.lencr.org r10.o.lencr.org x1.c.lencr.org acme-v02.api.letsencrypt.org time.cloudflare.com
one.one.one.one dns.google www.cloudflare.com ntp.ubuntu.com 0.pool.ntp.org 1.pool.ntp.org
2.debian.pool.ntp.org time.aws.com connectivity-check.ubuntu.com detectportal.firefox.com
incoming.telemetry.mozilla.org v10.events.data.microsoft.com settings-win.data.microsoft.com
login.live.com www.msftconnecttest.com ctldl.windowsupdate.com fe3.delivery.mp.microsoft.com
clients2.google.com update.googleapis.com safebrowsing.googleapis.com accounts.google.com
play.google.com mtalk.google.com api.openai.com api.anthropic.com www.npmjs.com
repo1.maven.org repo.maven.apache.org plugins.gradle.org services.gradle.org
dl.google.com proxy.golang.org sum.golang.org index.crates.io static.crates.io
rubygems.org index.rubygems.org api.nuget.org download.docker.com packages.cloud.google.com
apt.releases.hashicorp.com releases.hashicorp.com checkpoint-api.hashicorp.com
api.segment.io cdn.segment.com api.mixpanel.com api.amplitude.com api-js.mixpanel.com
browser-intake-datadoghq.com collector.newrelic.com gov-collector.newrelic.com
api.honeycomb.io otlp.nr-data.net logs.papertrailapp.com api.github.io""".split()

AWS_SVC = """sts s3 ec2 ssm ssmmessages ec2messages logs monitoring dynamodb sqs sns kms
secretsmanager ecr api.ecr lambda kinesis firehose elasticloadbalancing autoscaling
cloudformation events states elasticache rds athena glue execute-api""".split()
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
K8S_NS = ["default", "kube-system", "monitoring", "payments", "auth", "search", "ingest",
          "web", "data", "ml"]
K8S_SVC = ["api", "redis", "postgres", "kafka-0", "kafka-1", "kafka-2", "vault", "consul",
           "prometheus", "grafana", "loki", "tempo", "elasticsearch", "rabbitmq", "memcached",
           "zookeeper", "etcd", "minio", "keycloak", "jaeger-collector", "otel-collector",
           "users", "orders", "billing", "checkout", "inventory", "gateway", "frontend"]
SEARCH = ["{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local", "ec2.internal"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "mailgun.org", "sendgrid.net",
                "amazonses.com", "mailchimp.com", "salesforce.com", "zendesk.com",
                "hubspot.com", "atlassian.net", "github.com", "slack.com", "stripe.com"]


class Entry:
    """One (name, type) with a fixed answer (built once, cached)."""
    __slots__ = ("name", "qtype", "kind", "arg", "qwire", "resp", "v6")

    def __init__(self, name, qtype, kind, arg=None, v6=False):
        self.name = name.encode() if isinstance(name, str) else name
        self.qtype = qtype
        self.kind = kind
        self.arg = arg
        self.qwire = wire(self.name) + struct.pack("!HH", qtype, 1)
        self.resp = {}
        self.v6 = v6


def reg_guess(name):
    """Zone for SOA records: the last two labels (three under short co.uk-like)."""
    labels = name.split(b".")
    n = 3 if len(labels) >= 3 and len(labels[-2]) <= 3 and len(labels[-1]) == 2 else 2
    return b".".join(labels[-n:])


def answer(r, e, qtype):
    """(rcode, ancount, nscount, bytes) of the response to e asked as qtype."""
    ptr = b"\xc0\x0c"
    kind = e.kind
    if qtype == T_AAAA and kind in ("a", "cname"):
        if not e.v6:
            zone = reg_guess(e.name)
            return 0, 0, 1, rr(suffix_ptr(e.name, zone), T_SOA, 900, soa_rdata(zone))
        n = 1 + (e.arg or 0) % 2 if kind == "a" else 2
        return 0, n, 0, b"".join(rr(ptr, T_AAAA, 300, bytes([0x26, 0x06, 0x47, 0x00]) + r.randbytes(12)) for _ in range(n))
    if qtype == T_HTTPS:
        zone = reg_guess(e.name)
        return 0, 0, 1, rr(suffix_ptr(e.name, zone), T_SOA, 900, soa_rdata(zone))
    if kind == "a":
        n = e.arg or 1
        return 0, n, 0, b"".join(rr(ptr, T_A, 60, bytes([52, r.randrange(256), r.randrange(256), r.randrange(1, 255)])) for _ in range(n))
    if kind == "cname":
        chain = e.arg  # list of bytes names
        out = []
        owner = ptr
        qlen = len(wire(e.name))
        off = 12 + qlen + 4
        for target in chain:
            rd = wire(target)
            out.append(rr(owner, T_CNAME, 300, rd))
            owner = struct.pack("!H", 0xC000 | (off + len(owner) + 10))
            off += len(out[-1])
        n = r.choice((1, 2, 4, 8))
        for _ in range(n):
            out.append(rr(owner, T_A, 20, bytes([r.choice((13, 23, 104, 151, 199)), r.randrange(256), r.randrange(256), r.randrange(1, 255)])))
        return 0, len(chain) + n, 0, b"".join(out)
    if kind == "nx":
        zone = e.arg if e.arg is not None else reg_guess(e.name)
        owner = suffix_ptr(e.name, zone) if zone else b"\0"
        rd = soa_rdata(zone) if zone else wire(b"a.root-servers.net") + wire(b"nstld.verisign-grs.com") + struct.pack("!IIIII", 2026113000, 1800, 900, 604800, 86400)
        return 3, 0, 1, rr(owner, T_SOA, 60, rd)
    if kind == "av":  # reputation answers: 127.0.0.x
        return 0, 1, 0, rr(ptr, T_A, 300, bytes([127, 0, 0, e.arg or 1]))
    if kind == "dnsbl":  # mostly not listed
        if e.arg:
            return 0, 1, 0, rr(ptr, T_A, 300, bytes([127, 0, 0, 2]))
        zone = b"zen.spamhaus.org"
        return 3, 0, 1, rr(suffix_ptr(e.name, zone), T_SOA, 60, soa_rdata(zone))
    if kind == "ptr":
        return 0, 1, 0, rr(ptr, T_PTR, 3600, wire(e.arg))
    if kind == "txt":
        return 0, len(e.arg), 0, b"".join(rr(ptr, T_TXT, 300, txt_rdata(*s)) for s in e.arg)
    if kind == "mx":
        return 0, len(e.arg), 0, b"".join(rr(ptr, T_MX, 300, struct.pack("!H", p) + wire(x)) for p, x in e.arg)
    if kind == "srv":
        return 0, len(e.arg), 0, b"".join(rr(ptr, T_SRV, 600, struct.pack("!HHH", 0, 100, port) + wire(x)) for port, x in e.arg)
    raise ValueError(kind)


class Pool:
    """All benign entries, with Zipf weights by category."""

    def __init__(self, r, corpus):
        self.entries = []
        self.weights = []
        cdn_targets = []

        def add(cat_weight, items):
            # items already in popularity order; Zipf(1) inside the category
            h = sum(1.0 / (i + 1) for i in range(len(items)))
            for i, e in enumerate(items):
                self.entries.append(e)
                self.weights.append(cat_weight / h / (i + 1))

        # CDN edge names (targets of CNAME chains, also asked directly)
        for i in range(600):
            k = r.randrange(6)
            if k == 0:
                cdn_targets.append([("e%d.%s.akamaiedge.net" % (r.randrange(1, 99999), r.choice(("a", "b", "dscb", "dscx", "dsce")))).encode()])
            elif k == 1:
                cdn_targets.append([("d%s.cloudfront.net" % rs(r, ALNUM, 13)).encode()])
            elif k == 2:
                cdn_targets.append([("%s.map.fastly.net" % r.choice(("dualstack.n", "prod.r", "global.ssl", "dualstack.twitter"))).encode()])
            elif k == 3:
                cdn_targets.append([("%s.azureedge.net" % rs(r, ALNUM, r.randint(6, 14))).encode(),
                                    ("%s.ec.azureedge.net" % rs(r, ALNUM, 8)).encode()])
            elif k == 4:
                cdn_targets.append([("%s.edgekey.net" % rs(r, ALNUM, r.randint(5, 12))).encode(),
                                    ("e%d.dscg.akamaiedge.net" % r.randrange(1, 99999)).encode()])
            else:
                cdn_targets.append([("%s.trafficmanager.net" % rs(r, ALNUM, 10)).encode(),
                                    ("%s.cloudapp.azure.com" % rs(r, ALNUM, 12)).encode()])

        def web(name, v6=None):
            if r.random() < 0.35:
                return Entry(name, T_A, "cname", r.choice(cdn_targets), v6=r.random() < 0.6)
            return Entry(name, T_A, "a", r.choice((1, 1, 1, 2, 2, 4)), v6=(r.random() < 0.4) if v6 is None else v6)

        pop = [web(n) for n in POPULAR]
        r.shuffle(pop)
        add(30.0, pop)
        aws = []
        for reg in REGIONS:
            for svc in AWS_SVC:
                aws.append(Entry("%s.%s.amazonaws.com" % (svc, reg), T_A, "a", r.choice((1, 2, 4))))
        r.shuffle(aws)
        add(14.0, aws)
        # the long tail: corpus names, some with a host part
        tail = []
        for d in corpus:
            tail.append(web(d))
            if r.random() < 0.5:
                tail.append(web("www." + d))
            if r.random() < 0.15:
                tail.append(web("%s.%s" % (r.choice(("api", "cdn", "static", "img", "m", "assets", "app", "auth", "login", "media")), d)))
        r.shuffle(tail)
        add(16.0, tail)
        # CDN and cloud names asked directly (look random: hard negatives)
        cdn = []
        for _ in range(1500):
            k = r.randrange(7)
            if k == 0:
                name = "d%s.cloudfront.net" % rs(r, ALNUM, 13)
            elif k == 1:
                name = "rr%d---sn-%s.googlevideo.com" % (r.randint(1, 8), rs(r, ALNUM, 8))
            elif k == 2:
                name = "scontent-%s%d-%d.xx.fbcdn.net" % (r.choice(("fra", "iad", "lhr", "sjc", "ams")), r.randint(3, 5), r.randint(1, 2))
            elif k == 3:
                name = "%s.blob.core.windows.net" % rs(r, ALNUM, r.randint(8, 20))
            elif k == 4:
                name = "%s.s3.%s.amazonaws.com" % (rs(r, ALNUM, r.randint(6, 18)) + "-" + r.choice(("logs", "assets", "backups", "artifacts", "data")), r.choice(REGIONS))
            elif k == 5:
                name = "%s-%d.%s.elb.amazonaws.com" % ("internal-" + r.choice(("prod", "stage")) + "-" + r.choice(("api", "web", "auth", "batch")), r.randint(10**8, 10**10), r.choice(REGIONS))
            else:
                name = "vpce-0%s-%s.s3.%s.vpce.amazonaws.com" % (rs(r, HEX, 16), rs(r, ALNUM, 8), r.choice(REGIONS))
            cdn.append(Entry(name, T_A, "a", r.choice((1, 2, 4, 8))))
        add(10.0, cdn)
        # AWS infrastructure inside the VPC
        infra = []
        for _ in range(1500):
            k = r.randrange(3)
            reg = r.choice(REGIONS)
            if k == 0:
                infra.append(Entry("ip-10-%d-%d-%d.ec2.internal" % (r.randint(0, 3), r.randint(0, 255), r.randint(1, 254)), T_A, "a", 1))
            elif k == 1:
                infra.append(Entry("prod-db.cluster-%s.%s.rds.amazonaws.com" % (rs(r, ALNUM, 12), reg), T_A, "a", 1))
            else:
                infra.append(Entry("%s.%s.cache.amazonaws.com" % (rs(r, ALNUM, 6) + "." + rs(r, ALNUM, 6) + ".ng.0001", "use1"), T_A, "a", 1))
        add(4.0, infra)
        # PTR, mostly internal
        ptrs = []
        for _ in range(3000):
            if r.random() < 0.7:
                a = (10, r.randint(0, 3), r.randint(0, 255), r.randint(1, 254))
                target = "ip-%d-%d-%d-%d.ec2.internal" % a
            else:
                a = (r.randint(1, 223), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))
                target = "%s.%s" % ("-".join(map(str, a)), r.choice(("static.example.net", "dyn.isp.example", "compute.amazonaws.com")))
            ptrs.append(Entry("%d.%d.%d.%d.in-addr.arpa" % tuple(reversed(a)), T_PTR, "ptr", target.encode()))
        add(3.0, ptrs)
        # mail: SPF, DMARC, DKIM (base64 keys in TXT answers), MX
        mail = []
        for d in MAIL_DOMAINS + r.sample(corpus, 150):
            mail.append(Entry(d, T_TXT, "txt", [(b"v=spf1 include:_spf." + d.encode() + b" ip4:198.51.100.0/24 ~all",),
                                                 (("google-site-verification=" + rs(r, B64[:62], 43)).encode(),)]))
            mail.append(Entry("_dmarc." + d, T_TXT, "txt", [(b"v=DMARC1; p=reject; rua=mailto:dmarc@" + d.encode(),)]))
            key = ("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + rs(r, B64, 330) + "IDAQAB").encode()
            mail.append(Entry("%s._domainkey.%s" % (r.choice(("s1", "s2", "google", "selector1", "k1", "mx")), d), T_TXT, "txt", [(key[:255], key[255:])]))
            mail.append(Entry(d, T_MX, "mx", [(10, ("mx1." + d).encode()), (20, ("mx2." + d).encode())]))
        r.shuffle(mail)
        add(2.5, mail)
        srv = [Entry(n, T_SRV, "srv", [(p, ("dc%d.corp.example.com" % i).encode()) for i in range(1, 3)])
               for n, p in (("_ldap._tcp.dc._msdcs.corp.example.com", 389), ("_kerberos._udp.corp.example.com", 88),
                            ("_kerberos._tcp.corp.example.com", 88), ("_sip._tls.example.com", 443),
                            ("_xmpp-client._tcp.example.com", 5222), ("_etcd-server-ssl._tcp.cluster.example.com", 2380),
                            ("_imaps._tcp.gmail.com", 993), ("_submission._tcp.outlook.com", 587))]
        add(0.8, srv)
        self.n_regular = len(self.entries)
        # Families kept apart (asked by some clients only, see Client):
        # Sophos hashed reputation look-ups: a pool of file hashes, popular ones
        # looked up by many hosts (Zipf); McAfee GTI; Spamhaus DNSBL.
        self.av = [Entry("%s.%s.p.04.sophosxl.net" % (rs(r, HEX, 32), rs(r, HEX, 8)), T_A, "av", r.choice((1, 1, 1, 2))) for _ in range(20000)]
        self.av += [Entry("0.0.0.0.1.0.0.4e.%s.avqs.mcafee.com" % rs(r, B32[:26] + "0123456789", 26), T_A, "av", 1) for _ in range(4000)]
        r.shuffle(self.av)
        self.dnsbl = [Entry("%d.%d.%d.%d.zen.spamhaus.org" % (r.randint(1, 254), r.randint(0, 255), r.randint(0, 255), r.randint(1, 223)), T_A, "dnsbl", r.random() < 0.05) for _ in range(20000)]
        self.k8s = {}
        for ns in K8S_NS:
            for svc in K8S_SVC:
                self.k8s[(ns, svc)] = Entry("%s.%s.svc.cluster.local" % (svc, ns), T_A, "a", 1, v6=False)
        self.nx = {}
        total = sum(self.weights)
        acc = 0.0
        self.cum = []
        for w in self.weights:
            acc += w / total
            self.cum.append(acc)

    def nx_entry(self, name, zone):
        e = self.nx.get(name)
        if e is None:
            e = self.nx[name] = Entry(name, T_A, "nx", zone)
        return e


def zipf_cum(n, s=1.0):
    w = [1.0 / (i + 1) ** s for i in range(n)]
    t = sum(w)
    acc = 0.0
    out = []
    for x in w:
        acc += x / t
        out.append(acc)
    return out


# ----------------------------------------------------------------------------
# clients and benign events

class Client:
    __slots__ = ("ip", "mac", "res_ip", "res_mac", "profile", "edns", "cookie", "ws",
                 "dual", "next_port", "idx")


def make_clients(r, n, pool, v6_share=0.05):
    clients = []
    for i in range(n):
        c = Client()
        c.idx = i
        c.mac = bytes([0x02, 0x1E, 0x00, (i >> 16) & 255, (i >> 8) & 255, i & 255])
        c.res_mac = GW_MAC
        if r.random() < v6_share:
            c.ip = bytes.fromhex("fd00ec200001000000000000") + struct.pack("!I", 0x100 + i)
            c.res_ip = bytes.fromhex("fd00ec20000000000000000000000253")
        else:
            c.ip = bytes([10, 1, 1 + i // 250, 4 + i % 250])
            x = r.random()
            c.res_ip = bytes([10, 1, 0, 2]) if x < 0.96 else (bytes([8, 8, 8, 8]) if x < 0.98 else bytes([1, 1, 1, 1]))
        p = r.random()
        c.profile = "web" if p < 0.55 else "k8s" if p < 0.80 else "desktop" if p < 0.95 else "mail"
        c.edns = r.random() < 0.75
        c.cookie = r.randbytes(8) if r.random() < 0.3 else None
        c.dual = r.random() < 0.5
        c.next_port = r.randint(32768, 60999)
        # working set: the names this host asks again and again
        k = r.randint(20, 150)
        c.ws = sorted(set(r.choices(range(pool.n_regular), cum_weights=pool.cum, k=k)))
        r.shuffle(c.ws)
        clients.append(c)
    return clients


class Gen:
    def __init__(self, args):
        self.r = random.Random(args.seed)
        self.net = Net()
        self.heap = []
        self.seq = 0
        self.pps = args.pps
        self.duration_us = int(args.packets / args.pps * 1e6)
        self.t0 = START_SEC * 1000000
        corpus = []
        seen = set()
        with open(PLAIN_NAMES) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) != 2 or parts[0] != "0":
                    continue
                n = parts[1].rstrip(".").lower()
                if not n or n in seen or "in-addr" in n or not all(ch in ALNUM + "-." for ch in n):
                    continue
                seen.add(n)
                corpus.append(n)
        self.pool = Pool(self.r, corpus)
        self.clients = make_clients(self.r, args.clients, self.pool)
        self.client_cum = zipf_cum(len(self.clients), 0.6)
        self.av_cum = zipf_cum(len(self.pool.av), 0.9)
        self.dnsbl_cum = zipf_cum(len(self.pool.dnsbl), 0.5)
        self.batch = []
        self.labels = []
        self.tls_servers = [(bytes([10, 2, r_i, 10 + r_i]), sni) for r_i, sni in enumerate(
            ("api.internal-svc.example", "grafana.internal.example", "vault.internal.example",
             "payments.internal.example", "auth.internal.example", "search.internal.example"))]
        self.tls_cum = zipf_cum(len(self.tls_servers))

    def push(self, ts, frame):
        if ts <= self.now:  # nothing pending is due before it (run() emitted them)
            self.w.emit(ts, frame)
            return
        self.seq += 1
        heapq.heappush(self.heap, (ts, self.seq, frame))

    def port(self, c):
        c.next_port = c.next_port + 1 if c.next_port < 60999 else 32768
        return c.next_port

    # -- DNS over UDP ---------------------------------------------------------
    def dns(self, ts, c, e, qtype=None, rtt=None, resolver=None):
        r = self.r
        qtype = qtype or e.qtype
        qid = r.getrandbits(16)
        sport = self.port(c)
        res_ip = resolver or c.res_ip
        qwire = e.qwire if qtype == e.qtype else e.qwire[:-4] + struct.pack("!HH", qtype, 1)
        if c.edns:
            opt = opt_cookie(c.cookie) if c.cookie else OPT_PLAIN
            q = struct.pack("!HHHHHH", qid, 0x0120 if c.cookie else 0x0100, 1, 0, 0, 1) + qwire + opt
        else:
            q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qwire
        self.push(ts, self.net.udp(c.mac, c.res_mac, c.ip, res_ip, sport, 53, q))
        key = qtype
        cached = e.resp.get(key)
        if cached is None:
            cached = e.resp[key] = answer(r, e, qtype)
        rcode, an, ns, body = cached
        if rtt is None:
            rtt = int(r.expovariate(1 / 1500)) + 150 if r.random() < 0.8 else int(r.expovariate(1 / 25000)) + 2000
        resp = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, an, ns, 1 if c.edns else 0) + qwire + body + (OPT_RESP if c.edns else b"")
        self.push(ts + rtt, self.net.udp(c.res_mac, c.mac, res_ip, c.ip, 53, sport, resp, df=len(res_ip) == 4))
        return 2

    def benign_event(self, ts):
        r = self.r
        c = self.clients[self._pick_client()]
        x = r.random()
        pool = self.pool
        if c.profile == "k8s" and x < 0.35:
            # resolv.conf ndots:5: each search domain first, all NXDOMAIN, then the name
            if r.random() < 0.5:
                ns, svc = r.choice(K8S_NS), r.choice(K8S_SVC)
                return self.dns(ts, c, pool.k8s[(ns, svc)])
            e = pool.entries[c.ws[int(len(c.ws) * r.random() ** 2)]]
            if e.kind not in ("a", "cname"):
                return self.dns(ts, c, e)
            ns = r.choice(K8S_NS)
            n = 0
            t = ts
            for sfx in SEARCH:
                s = sfx.format(ns=ns)
                name = e.name.decode() + "." + s
                n += self.dns(t, c, pool.nx_entry(name, s.encode()), rtt=r.randint(80, 400))
                t += r.randint(300, 900)
            return n + self.dns(t, c, e)
        if c.profile == "desktop" and x < 0.12:
            return self.dns(ts, c, pool.av[self._zipf(self.av_cum)])
        if c.profile == "desktop" and x < 0.14:
            # Chrome's start-up probe: a random single label, NXDOMAIN from the root
            name = rs(r, "abcdefghijklmnopqrstuvwxyz", r.randint(7, 15))
            return self.dns(ts, c, Entry(name, T_A, "nx", b""))
        if c.profile == "mail" and x < 0.4:
            return self.dns(ts, c, pool.dnsbl[self._zipf(self.dnsbl_cum)])
        if x < 0.02:
            return self.dns(ts, c, pool.av[self._zipf(self.av_cum)])
        if x < 0.7:
            e = pool.entries[c.ws[int(len(c.ws) * r.random() ** 2)]]
        else:
            e = pool.entries[self._global()]
        n = self.dns(ts, c, e)
        if e.qtype == T_A and c.dual:
            n += self.dns(ts + r.randint(20, 200), c, e, qtype=T_AAAA)
        if c.profile == "desktop" and e.kind == "cname" and r.random() < 0.3:
            n += self.dns(ts + r.randint(20, 200), c, e, qtype=T_HTTPS)
        return n

    def _pick_client(self):
        return self._from(self.client_cum)

    def _zipf(self, cum):
        return self._from(cum)

    def _from(self, cum):
        return min(bisect.bisect_left(cum, self.r.random()), len(cum) - 1)

    def _global(self):
        if not self.batch:
            self.batch = self.r.choices(range(self.pool.n_regular), cum_weights=self.pool.cum, k=50000)
        return self.batch.pop()

    # -- DNS over TCP (truncated answer retried, or a large TXT) --------------
    def tcp_dns(self, ts, c):
        r = self.r
        if len(c.ip) != 4:
            return 0
        d = r.choice(MAIL_DOMAINS)
        e = Entry(d, T_TXT, "txt", [(("v=spf1 include:spf%d.%s ip4:198.51.%d.0/24 ~all" % (i, d, i)).encode(),) for i in range(12)]
                  + [(("verification-%d=%s" % (i, rs(r, ALNUM, 40))).encode(),) for i in range(8)])
        rcode, an, ns, body = answer(r, e, T_TXT)
        qid = r.getrandbits(16)
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + e.qwire
        resp = struct.pack("!HHHHHH", qid, 0x8180, 1, an, 0, 0) + e.qwire + body
        return self.tcp_session(ts, c, c.res_ip, 53, [(0, struct.pack("!H", len(q)) + q),
                                                       (1, struct.pack("!H", len(resp)) + resp)], rtt=400)

    def tcp_session(self, ts, c, server, sport_server, exchanges, rtt=500, mss=1448, tsv=1000):
        """Handshake, then (direction, bytes) exchanges cut into MSS segments
        (the receiver ACKs every second segment), then FIN both ways."""
        r = self.r
        net = self.net
        cp = self.port(c)
        cseq, sseq = r.getrandbits(32), r.getrandbits(32)
        cm, sm, ci = c.mac, c.res_mac, c.ip
        n = 0
        t = ts
        self.push(t, net.tcp(cm, sm, ci, server, cp, sport_server, cseq, 0, 0x02, ts=tsv)); n += 1
        t += rtt
        self.push(t, net.tcp(sm, cm, server, ci, sport_server, cp, sseq, cseq + 1, 0x12, ts=tsv)); n += 1
        t += 30
        cseq += 1; sseq += 1
        self.push(t, net.tcp(cm, sm, ci, server, cp, sport_server, cseq, sseq, 0x10, ts=tsv)); n += 1
        for direction, data in exchanges:
            t += 50 if direction == 0 else rtt
            segs = 0
            for off in range(0, len(data), mss):
                chunk = data[off:off + mss]
                if direction == 0:
                    self.push(t, net.tcp(cm, sm, ci, server, cp, sport_server, cseq, sseq, 0x18, chunk, ts=tsv)); cseq += len(chunk)
                else:
                    self.push(t, net.tcp(sm, cm, server, ci, sport_server, cp, sseq, cseq, 0x18, chunk, ts=tsv)); sseq += len(chunk)
                n += 1
                segs += 1
                t += 12 + len(chunk) // 100
                if segs % 2 == 0 or off + mss >= len(data):
                    if direction == 0:
                        self.push(t + rtt // 2, net.tcp(sm, cm, server, ci, sport_server, cp, sseq, cseq, 0x10, ts=tsv))
                    else:
                        self.push(t + 40, net.tcp(cm, sm, ci, server, cp, sport_server, cseq, sseq, 0x10, ts=tsv))
                    n += 1
        t += rtt
        self.push(t, net.tcp(cm, sm, ci, server, cp, sport_server, cseq, sseq, 0x11, ts=tsv)); n += 1
        t += rtt
        self.push(t, net.tcp(sm, cm, server, ci, sport_server, cp, sseq, cseq + 1, 0x11, ts=tsv)); n += 1
        t += 30
        self.push(t, net.tcp(cm, sm, ci, server, cp, sport_server, cseq + 1, sseq + 1, 0x10, ts=tsv)); n += 1
        return n

    # -- TLS on 8443 ----------------------------------------------------------
    def client_hello(self, sni):
        r = self.r
        sn = struct.pack("!BH", 0, len(sni)) + sni
        ext = [struct.pack("!HHH", 0, len(sn) + 2, len(sn)) + sn]
        groups = struct.pack("!4H", 0x001D, 0x0017, 0x0018, 0x0019)
        ext.append(struct.pack("!HHH", 10, len(groups) + 2, len(groups)) + groups)
        ext.append(struct.pack("!HHBB", 11, 2, 1, 0))
        ext.append(struct.pack("!HH", 35, 0))
        alpn = b"\x02h2\x08http/1.1"
        ext.append(struct.pack("!HHH", 16, len(alpn) + 2, len(alpn)) + alpn)
        ext.append(struct.pack("!HH", 22, 0) + struct.pack("!HH", 23, 0))
        sigs = struct.pack("!9H", 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0401)
        ext.append(struct.pack("!HHH", 13, len(sigs) + 2, len(sigs)) + sigs)
        ext.append(struct.pack("!HHB", 43, 5, 4) + b"\x03\x04\x03\x03")
        ext.append(struct.pack("!HHBB", 45, 2, 1, 1))
        ks = struct.pack("!HH", 0x001D, 32) + r.randbytes(32)
        ext.append(struct.pack("!HHH", 51, len(ks) + 2, len(ks)) + ks)
        exts = b"".join(ext)
        ciphers = struct.pack("!9H", 0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8)
        body = (b"\x03\x03" + r.randbytes(32) + b"\x20" + r.randbytes(32) + struct.pack("!H", len(ciphers)) + ciphers
                + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
        hs = b"\x01" + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs

    def records(self, ctype, total):
        """TLS records of content type ctype carrying `total` bytes."""
        r = self.r
        out = []
        while total > 0:
            n = min(total, 16384)
            out.append(bytes([ctype, 3, 3]) + struct.pack("!H", n) + r.randbytes(n))
            total -= n
        return b"".join(out)

    def tls_session(self, ts, c, server, sni, up, down, requests=1):
        r = self.r
        if len(c.ip) != 4:
            return 0
        ex = [(0, self.client_hello(sni)),
              (1, b"\x16\x03\x03\x00\x7a" + r.randbytes(0x7A) + b"\x14\x03\x03\x00\x01\x01" + self.records(0x17, r.randint(2500, 4200))),
              (0, b"\x14\x03\x03\x00\x01\x01" + self.records(0x17, 53))]
        for _ in range(requests):
            ex.append((0, self.records(0x17, up // requests)))
            ex.append((1, self.records(0x17, down // requests)))
        return self.tcp_session(ts, c, server, 8443, ex, rtt=r.randint(200, 2000), tsv=r.getrandbits(31))

    # -- noise ----------------------------------------------------------------
    def noise(self, ts, c):
        r = self.r
        if len(c.ip) == 4:
            req = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, GW_MAC, bytes([10, 1, 0, 1]), b"\0" * 6, c.ip)
            rep = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, c.mac, c.ip, GW_MAC, bytes([10, 1, 0, 1]))
            self.push(ts, b"\xff" * 6 + GW_MAC + b"\x08\x06" + req)
            self.push(ts + 3, GW_MAC + c.mac + b"\x08\x06" + rep)
            return 2
        # ICMPv6 router solicitation from the link-local address
        src = bytes.fromhex("fe80000000000000") + bytes([c.mac[0] ^ 2]) + c.mac[1:3] + b"\xff\xfe" + c.mac[3:]
        dst = bytes.fromhex("ff020000000000000000000000000002")
        body = struct.pack("!BBHI", 133, 0, 0, 0)
        ck = _fold(int.from_bytes(src + dst, "big") + len(body) + 58 + _sum16(body))
        body = struct.pack("!BBHI", 133, 0, ck, 0)
        self.push(ts, bytes.fromhex("333300000002") + c.mac + b"\x86\xdd" + struct.pack("!IHBB", 0x60000000, len(body), 58, 255)
                  + src + dst + body)
        return 1

    # -- tunnels --------------------------------------------------------------
    def tunnel_client(self, idx):
        c = self.clients[idx % len(self.clients)]
        while len(c.ip) != 4:
            idx += 1
            c = self.clients[idx % len(self.clients)]
        return c

    def plant_tunnels(self):
        r = self.r
        D = self.duration_us
        t0 = self.t0

        def window(start_frac, seconds):
            s = t0 + int(D * start_frac)
            e = min(s + int(seconds * 1e6), t0 + int(D * 0.85))
            return s, e

        def label(kind, c, domain, signature, s, e, npk, note):
            self.labels.append((kind, ".".join(map(str, c.ip)), domain, signature, s, e, npk, note))

        def labels63(payload):
            return b".".join(payload[i:i + 63] for i in range(0, len(payload), 63))

        # iodine, NULL records, base128 upstream (raw 8-bit labels), 40 q/s
        c = self.tunnel_client(3 * 250 + 73)
        dom = b"t1.cdn-metrics.net"
        s, e = window(0.10, 300)
        n = 0
        uid = r.choice(HEX).encode()
        hs = [b"vaaaaka" + rs(r, B32, 4).encode(), b"l" + rs(r, B32, 31).encode(),
              b"i" + rs(r, B32, 6).encode(), b"z" + rs(r, B32, 3).encode() + b"aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ",
              b"o" + uid + rs(r, B32, 5).encode(), b"n" + uid + rs(r, B32, 6).encode()]
        t = s
        for h in hs:
            n += self.tunnel_dns(t, c, h + b"." + dom, T_NULL, "null")
            t += 50000
        while t < e:
            if r.random() < 0.3:  # ping
                name = b"p" + uid + rs(r, B32, 6).encode() + b"." + dom
            else:
                room = 250 - len(dom) - 5
                data = uid + rs(r, B32, 3).encode() + bytes(r.choices(B128, k=r.randint(room // 2, room)))
                name = labels63(data) + b"." + dom
            n += self.tunnel_dns(t, c, name, T_NULL, "null")
            t += int(r.expovariate(40) * 1e6) + 1
        label("iodine-null", c, "cdn-metrics.net", "dns", s, t, n, "iodine NULL, base128 upstream, 40 q/s")

        # iodine, TXT records, base32 both ways, 20 q/s
        c = self.tunnel_client(9 * 250 + 37)
        dom = b"x.updates-mirror.org"
        s, e = window(0.30, 300)
        t, n = s, 0
        uid = r.choice(HEX).encode()
        n += self.tunnel_dns(t, c, b"vaaaaka" + rs(r, B32, 4).encode() + b"." + dom, T_TXT, "txt32")
        t += 80000
        while t < e:
            room = 250 - len(dom) - 5
            data = (uid + rs(r, B32, 3 + r.randint(room // 2, room)).encode())
            n += self.tunnel_dns(t, c, labels63(data) + b"." + dom, T_TXT, "txt32")
            t += int(r.expovariate(20) * 1e6) + 1
        label("iodine-txt", c, "updates-mirror.org", "dns", s, t, n, "iodine TXT, base32, 20 q/s")

        # dns2tcp, TXT, base64 labels, 10 q/s
        c = self.tunnel_client(12 * 250 + 4)
        dom = b"t2.backup-sync.io"
        s, e = window(0.20, 600)
        t, n = s, 0
        while t < e:
            if r.random() < 0.4:
                data = b"6d0A" + rs(r, B64, 6).encode()
            else:
                data = b"6d0A" + rs(r, B64, r.randint(120, 180)).encode()
            n += self.tunnel_dns(t, c, labels63(data) + b"." + dom, T_TXT, "txt64")
            t += int(r.expovariate(10) * 1e6) + 1
        label("dns2tcp", c, "backup-sync.io", "dns", s, t, n, "dns2tcp TXT, base64, 10 q/s")

        # dnscat2: hex, TXT/CNAME/MX, 5 q/s
        c = self.tunnel_client(14 * 250 + 19)
        dom = b"status-cloud.com"
        s, e = window(0.40, 400)
        t, n = s, 0
        sess = rs(r, HEX, 4)
        while t < e:
            data = (sess + rs(r, HEX, 8) + rs(r, HEX, 2 * r.randint(0, 100))).encode()
            name = b".".join(data[i:i + 62] for i in range(0, len(data), 62)) + b"." + dom
            n += self.tunnel_dns(t, c, name, r.choice((T_TXT, T_CNAME, T_MX)), "hexans")
            t += int(r.expovariate(5) * 1e6) + 1
        label("dnscat2", c, "status-cloud.com", "dns", s, t, n, "dnscat2-like hex, TXT/CNAME/MX, 5 q/s")

        # slow hex exfil: one A query every 3 s, 28 bytes each
        c = self.tunnel_client(5 * 250 + 196)
        dom = b"cdn-sync.example-c2.com"
        s, e = window(0.05, 900)
        t, n, i = s, 0, 0
        while t < e:
            name = rs(r, HEX, 56).encode() + b"." + str(i).encode() + b"." + dom
            n += self.dns(t, c, Entry(name, T_A, "a", 1), rtt=r.randint(500, 3000))
            i += 1
            t += 3000000 + r.randint(-200000, 200000)
        label("slow-hex", c, "example-c2.com", "dns", s, t, n, "hex labels, 1 A query per 3 s")

        # TLS bulk upload: 8 MB to an outside host on 8443 over ~60 s
        c = self.tunnel_client(7 * 250 + 3)
        s, _ = window(0.50, 60)
        server = bytes([203, 0, 113, 50])
        n = self.tls_session(s, c, server, b"backup.files-drop.net", up=8 << 20, down=6000, requests=4)
        label("tls-upload", c, "203.0.113.50:8443", "tls", s, s + 60000000, n, "8 MB TLS upload, SNI backup.files-drop.net")
        return

    def tunnel_dns(self, t, c, name, qtype, how):
        """A tunnel query through the VPC resolver and its answer."""
        r = self.r
        qid = r.getrandbits(16)
        sport = self.port(c)
        qwire = wire(name) + struct.pack("!HH", qtype, 1)
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + qwire + OPT_PLAIN
        self.push(t, self.net.udp(c.mac, c.res_mac, c.ip, c.res_ip, sport, 53, q))
        if how == "null":
            ans = rr(b"\xc0\x0c", T_NULL, 0, r.randbytes(r.choice((0, 200, 400, 600, 1000))))
        elif how == "txt32":
            ans = rr(b"\xc0\x0c", T_TXT, 0, txt_rdata(b"h" + rs(r, B32, r.randint(100, 500)).encode()))
        elif how == "txt64":
            ans = rr(b"\xc0\x0c", T_TXT, 0, txt_rdata(b"6d0A" + rs(r, B64, r.randint(8, 300)).encode()))
        else:
            data = rs(r, HEX, 2 * r.randint(8, 60)).encode()
            if qtype == T_TXT:
                ans = rr(b"\xc0\x0c", T_TXT, 0, txt_rdata(data))
            elif qtype == T_CNAME:
                ans = rr(b"\xc0\x0c", T_CNAME, 0, wire(data[:62] + b".status-cloud.com"))
            else:
                ans = rr(b"\xc0\x0c", T_MX, 0, struct.pack("!H", 10) + wire(data[:62] + b".status-cloud.com"))
        resp = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 1) + qwire + ans + OPT_RESP
        self.push(t + r.randint(2000, 40000), self.net.udp(c.res_mac, c.mac, c.res_ip, c.ip, 53, sport, resp, df=True))
        return 2

    # -- main loop ------------------------------------------------------------
    def run(self, w, total):
        r = self.r
        self.w = w
        self.now = -1  # tunnels: all into the heap
        self.plant_tunnels()
        heap = self.heap
        t = self.t0
        mean_us = 1e6 / self.pps
        while w.count < total:
            self.now = t
            x = r.random()
            c = None
            if x < 0.0009:
                c = self.clients[self._pick_client()]
                srv, sni = self.tls_servers[self._from(self.tls_cum)]
                k = self.tls_session(t, c, srv, sni.encode(), up=r.randint(300, 3000),
                                     down=r.randint(10000, 60000), requests=r.randint(1, 3))
            elif x < 0.0012:
                k = self.tcp_dns(t, self.clients[self._pick_client()])
            elif x < 0.0035:
                k = self.noise(t, self.clients[self._pick_client()])
            else:
                k = self.benign_event(t)
            # Poisson arrivals, rate so that the capture runs at `pps` on average
            t += int(r.expovariate(1.0 / (mean_us * max(k, 1)))) + 1
            self.now = -1
            while heap and heap[0][0] <= t:
                ts, _, frame = heapq.heappop(heap)
                w.emit(ts, frame)
                if w.count >= total:
                    break
        return t


def cache_key(args):
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    with open(PLAIN_NAMES, "rb") as f:
        h.update(f.read())
    h.update(repr((args.packets, args.seed, args.clients, args.pps, args.prefix_packets, sys.version_info[:2])).encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--packets", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--clients", type=int, default=4000)
    ap.add_argument("--pps", type=float, default=4200.0, help="average packets/s of the capture's clock")
    ap.add_argument("--prefix-packets", type=int, default=200_000)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    cache = os.environ.get("BENCH_CACHE", "/tmp/exfilwatch-bench")
    if args.out is None:
        m = args.packets / 1e6
        tag = ("%gM" % m) if args.packets >= 1_000_000 else ("%dk" % (args.packets // 1000))
        args.out = os.path.join(cache, "mixed-%s.pcap" % tag)
    out = os.path.abspath(args.out)
    stem = out[:-5] if out.endswith(".pcap") else out
    prefix = "%s.first%dk.pcap" % (stem, args.prefix_packets // 1000) if args.prefix_packets > 0 else None
    labels = out + ".labels.tsv"
    keyfile = out + ".key"
    key = cache_key(args)
    paths = [out, labels] + ([prefix] if prefix else [])
    if not args.force and all(os.path.exists(p) for p in paths) and os.path.exists(keyfile):
        with open(keyfile) as f:
            if f.read().strip() == key:
                print("cached: %s" % " ".join(paths))
                return
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(keyfile):
        os.unlink(keyfile)
    start = time.time()
    g = Gen(args)
    w = Writer(out + ".tmp", prefix + ".tmp" if prefix else None, args.prefix_packets, args.packets)
    end_t = g.run(w, args.packets)
    w.close()
    os.replace(out + ".tmp", out)
    if prefix:
        os.replace(prefix + ".tmp", prefix)
    with open(labels, "w") as f:
        f.write("kind\tclient\tdomain_or_destination\talert\tfirst_ts\tlast_ts\tpackets\twhat\n")
        for kind, client, dom, sig, s, e, n, note in g.labels:
            f.write("%s\t%s\t%s\t%s\t%.6f\t%.6f\t%d\t%s\n" % (kind, client, dom, sig, s / 1e6, e / 1e6, n, note))
    with open(keyfile, "w") as f:
        f.write(key + "\n")
    sys.stderr.write("gen_mixed: %d packets, %.0f s of traffic, %d clients, written in %.1f s\n"
                     % (w.count, (end_t - g.t0) / 1e6, len(g.clients), time.time() - start))
    print("wrote: %s" % " ".join(paths))


if __name__ == "__main__":
    main()
