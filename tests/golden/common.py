"""Shared helpers for the golden tests that replay real captures.

Environment (set by tests/meson.build, or by hand):
  EXFILWATCH      path to the exfilwatch binary
  EXFILWATCH_ASAN optional path to an ASan/UBSan build (replay_all.py only)
  SHARED_DIR      ../shared (read-only data; corpus attribution in its README)
  SOURCE_DIR      the project checkout

Everything here is stdlib only (plus PyYAML in golden_suricata.py).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

SHARED_DIR = os.environ.get("SHARED_DIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))
SOURCE_DIR = os.environ.get("SOURCE_DIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXFILWATCH = os.environ.get("EXFILWATCH") or os.path.join(SOURCE_DIR, "build", "exfilwatch")

CAPTURE_EXTS = (".pcap", ".pcapng", ".cap")

MANDATORY_FIELDS = ("timestamp", "event_type", "src_ip", "src_port", "dest_ip",
                    "dest_port", "proto", "pcap_cnt")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000$")


def die(msg, code=2):
    print("ERROR: " + msg, file=sys.stderr)
    sys.exit(code)


def require_binary(path=None):
    path = path or EXFILWATCH
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        die("exfilwatch binary not found or not executable: %r (set EXFILWATCH)" % path)
    return path


def rel(path):
    """Path relative to SHARED_DIR, for messages and table keys."""
    try:
        return os.path.relpath(path, SHARED_DIR)
    except ValueError:
        return path


def find_captures(*subdirs):
    """Every capture file (*.pcap, *.pcapng, *.cap) under SHARED_DIR/subdir, sorted."""
    out = []
    for sub in subdirs:
        root = os.path.join(SHARED_DIR, sub)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.lower().endswith(CAPTURE_EXTS):
                    out.append(os.path.join(dirpath, fn))
    return sorted(out)


# --------------------------------------------------------------------------
# Running exfilwatch
# --------------------------------------------------------------------------

class ReplayResult:
    def __init__(self, rc, records, bad_lines, stderr, cmd):
        self.rc = rc                # exit code (negative = killed by signal, None = timeout)
        self.records = records      # parsed JSON objects, in output order
        self.bad_lines = bad_lines  # [(line_no, text, error)]
        self.stderr = stderr
        self.cmd = cmd

    @property
    def dns(self):
        return [r for r in self.records if r.get("event_type") == "dns"]

    def describe_rc(self):
        if self.rc is None:
            return "timeout"
        if self.rc < 0:
            return "killed by signal %d" % -self.rc
        return "exit %d" % self.rc


def run_replay(pcap, extra_args=("--dns-log",), binary=None, timeout=120, env=None):
    binary = binary or EXFILWATCH
    cmd = [binary, "replay"] + list(extra_args) + [pcap]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            p = subprocess.run(cmd, stdout=out, stderr=err, timeout=timeout, env=env)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = None
        out.seek(0)
        err.seek(0)
        raw = out.read()
        stderr = err.read().decode("utf-8", "replace")
    records, bad = [], []
    for i, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            bad.append((i, line[:200], "not UTF-8: %s" % e))
            continue
        try:
            obj = json.loads(text)
        except ValueError as e:
            bad.append((i, text[:200], "invalid JSON: %s" % e))
            continue
        if not isinstance(obj, dict):
            bad.append((i, text[:200], "not a JSON object"))
            continue
        records.append(obj)
    return ReplayResult(rc, records, bad, stderr, cmd)


def check_mandatory(rec):
    """Schema problems of one EVE record (empty list if fine)."""
    errs = []
    for f in MANDATORY_FIELDS:
        if f not in rec:
            errs.append("missing %s" % f)
    ts = rec.get("timestamp")
    if isinstance(ts, str) and not TIMESTAMP_RE.match(ts):
        errs.append("bad timestamp %r" % ts)
    if rec.get("event_type") not in ("dns", "alert"):
        errs.append("unexpected event_type %r" % rec.get("event_type"))
    if "proto" in rec and rec["proto"] not in ("UDP", "TCP"):
        errs.append("bad proto %r" % rec["proto"])
    for f in ("src_port", "dest_port"):
        v = rec.get(f)
        if f in rec and not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535):
            errs.append("bad %s %r" % (f, v))
    v = rec.get("pcap_cnt")
    if "pcap_cnt" in rec and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        errs.append("bad pcap_cnt %r" % v)
    for f in ("src_ip", "dest_ip"):
        if f in rec and not isinstance(rec[f], str):
            errs.append("bad %s %r" % (f, rec[f]))
    if "tunnel" in rec:  # Suricata's: outer packet, depth
        t = rec["tunnel"]
        if not (isinstance(t, dict) and isinstance(t.get("depth"), int) and t["depth"] >= 1):
            errs.append("bad tunnel %r" % (t,))
    t = (rec.get("exfilwatch") or {}).get("tunnel")
    if t is not None and not (t.get("type") in ("vxlan", "geneve") and isinstance(t.get("vni"), int)):
        errs.append("bad exfilwatch.tunnel %r" % (t,))
    if "vlan" in rec and not (isinstance(rec["vlan"], list) and all(isinstance(x, int) for x in rec["vlan"])):
        errs.append("bad vlan %r" % (rec["vlan"],))
    if rec.get("event_type") == "dns":
        d = rec.get("dns")
        if not isinstance(d, dict):
            errs.append("dns record without dns object")
        else:
            if d.get("version") != 3 or d.get("type") not in ("request", "response"):
                errs.append("bad dns.type %r" % d.get("type"))
            if not isinstance(d.get("id"), int):
                errs.append("bad dns.id %r" % d.get("id"))
    if rec.get("event_type") == "alert":
        a = rec.get("alert")
        if not isinstance(a, dict):
            errs.append("alert record without alert object")
        else:
            for f in ("signature_id", "signature", "category", "severity"):
                if f not in a:
                    errs.append("alert without %s" % f)

    return errs


# --------------------------------------------------------------------------
# DNS tables
# --------------------------------------------------------------------------

RRTYPES = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT",
    17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP-PTR",
    24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT",
    31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT",
    38: "A6", 39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP",
    45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3",
    51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP", 56: "NINFO", 57: "RKEY",
    58: "TALINK", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD",
    64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC",
    104: "NID", 105: "L32", 106: "L64", 107: "LP", 108: "EUI48", 109: "EUI64",
    249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA",
    255: "ANY", 256: "URI", 257: "CAA", 258: "AVC", 259: "DOA", 260: "AMTRELAY",
    32768: "TA", 32769: "DLV",
}
RRTYPE_NUM = {v: k for k, v in RRTYPES.items()}
RRTYPE_NUM["*"] = 255

RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
    16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG",
    22: "BADTRUNC", 23: "BADCOOKIE",
}
RCODE_NUM = {v: k for k, v in RCODES.items()}
RCODE_NUM.update({"BADSIG": 16, "NOTIMPL": 4, "NXRRSET": 8, "SERVFAIL": 2})

OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
OPCODE_NUM = {v: k for k, v in OPCODES.items()}


def rrtype_num(x):
    """Our rrtype mnemonic ("A", "TYPE1234") -> number; None if unknown/absent."""
    if x is None:
        return None
    if isinstance(x, int):
        return x
    s = str(x).upper()
    if s in RRTYPE_NUM:
        return RRTYPE_NUM[s]
    m = re.match(r"^TYPE(\d+)$", s)
    if m:
        return int(m.group(1))
    if s.isdigit():
        return int(s)
    return "?" + s  # unknown mnemonic: keeps mismatches visible


def rcode_num(x):
    """Our rcode string ("NOERROR", "17") -> number; unknown names kept as '?NAME'."""
    if x is None:
        return None
    if isinstance(x, int):
        return x
    s = str(x).upper()
    if s in RCODE_NUM:
        return RCODE_NUM[s]
    if s.isdigit():
        return int(s)
    return "?" + s


# --------------------------------------------------------------------------
# Name normalisation
#
# The three renderings of a DNS name we compare:
#   ours   : Suricata style, printable ASCII raw, other bytes "\xNN" (JSON may
#            also carry raw control characters as \u00NN).
#   tshark : printable ASCII raw, some bytes as octal "\NNN", invalid UTF-8
#            replaced by U+FFFD, valid UTF-8 printed as the character,
#            "<Root>" for the root, "<...>" sentinels for broken names.
#   zeek   : printable ASCII raw, other bytes "\xNN" (log escaping).
# Canonical form: bytes, ASCII lower-cased, and every byte that is not a
# printable non-space ASCII character replaced by "?". This loses the identity
# of the odd bytes (tshark's U+FFFD already lost it) but keeps their position
# and count, so a mangled label still mismatches.
# --------------------------------------------------------------------------

_ESC_RE = re.compile(r"\\x([0-9a-fA-F]{2})|\\([0-7]{3})|\\(.)", re.S)
INVALID_NAME = "<invalid-name>"


def _unescape_to_bytes(s, tshark=False):
    out = bytearray()
    pos = 0
    for m in _ESC_RE.finditer(s):
        chunk = s[pos:m.start()]
        out += _text_bytes(chunk, tshark)
        if m.group(1):
            out.append(int(m.group(1), 16))
        elif m.group(2):
            out.append(int(m.group(2), 8) & 0xFF)
        else:
            c = m.group(3)
            out += {"t": b"\t", "n": b"\n", "r": b"\r", "\\": b"\\"}.get(c, b"\\" + _text_bytes(c, tshark))
        pos = m.end()
    out += _text_bytes(s[pos:], tshark)
    return bytes(out)


def _text_bytes(chunk, tshark):
    if tshark:
        chunk = chunk.replace("\ufffd", "\x00")  # one odd byte
    return chunk.encode("utf-8", "surrogateescape")


def _canon(b):
    return "".join(chr(c).lower() if 0x21 <= c <= 0x7e else "?" for c in b)


def norm_name_ours(s):
    if s is None:
        return None
    # no trailing-dot stripping: the schema prints names without the root
    # dot, so a final '.' belongs to the last label (sll2.pcap: label ",.")
    return _canon(_unescape_to_bytes(s))


def norm_name_tshark(s):
    if s is None:
        return None
    if s == "<Root>":
        return ""
    if s.startswith("<") and s.endswith(">"):
        return INVALID_NAME
    return _canon(_unescape_to_bytes(s, tshark=True))


def norm_name_zeek(s):
    if s is None or s == "-":
        return None
    if s == "(empty)":
        return ""
    s = s[:-1] if s.endswith(".") else s
    return _canon(_unescape_to_bytes(s))


# --------------------------------------------------------------------------
# tshark
# --------------------------------------------------------------------------

TSHARK = os.environ.get("TSHARK", "tshark")

# Frames we compare: DNS on port 53 (UDP or TCP), not the copy of a datagram
# quoted inside an ICMP error (we do not parse quoted packets).
TSHARK_PORT53_FILTER = "dns && (udp.port == 53 || tcp.port == 53) && !icmp && !icmpv6"


class _Multi(list):
    """Repeated keys in tshark's JSON (one frame, several DNS PDUs)."""


def _pairs_hook(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            if not isinstance(d[k], _Multi):
                d[k] = _Multi([d[k]])
            d[k].append(v)
        else:
            d[k] = v
    return d


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, _Multi):
        return list(x)
    return [x]


def _int(s, default=None):
    if s is None:
        return default
    try:
        return int(str(s), 0)
    except ValueError:
        return default


def tshark_messages(pcap, display_filter=TSHARK_PORT53_FILTER, timeout=300, extra=(), wire_names=False):
    """DNS messages tshark decodes, one dict per DNS PDU:
    frame, id, qr, opcode, rcode, qname (normalised, None if no question),
    qname_raw, qtype, qdcount, ancount, malformed (bool: frame had _ws.malformed
    or an expert error).
    wire_names: take the question name from the bytes tshark says it decoded
    it from (-x, dns.qry.name_raw) when they hold the whole name (no
    compression pointer). tshark's text loses 8-bit bytes: it replaces
    invalid UTF-8 runs with one U+FFFD each, prints the overlong pair C1 BE
    as "~" and valid non-printing characters as \\uXXXX, so iodine's base128
    names never compare equal as text. The bytes do."""
    cmd = [TSHARK, "-r", pcap, "-n", "-T", "json", "-J", "frame dns _ws.malformed",
           "-Y", display_filter] + (["-x"] if wire_names else []) + list(extra)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    text = p.stdout.decode("utf-8", "surrogateescape")
    if not text.strip():
        return []
    try:
        frames = json.loads(text, object_pairs_hook=_pairs_hook)
    except ValueError:
        # tshark aborted mid-file (truncated capture): keep what parsed
        cut = text.rfind("\n  }\n")
        frames = json.loads(text[:cut + 4] + "\n]", object_pairs_hook=_pairs_hook) if cut > 0 else []
    out = []
    for fr in frames:
        layers = fr["_source"]["layers"]
        fnum = _int(_first(layers.get("frame", {})).get("frame.number"))
        malformed = "_ws.malformed" in layers
        for d in _as_list(layers.get("dns")):
            if not isinstance(d, dict):
                continue
            out.append(_tshark_msg(d, fnum, malformed))
    return out


def _wire_name(raw):
    """Name bytes (labels joined by '.') from tshark's [hex, offset, length,
    ...] raw field, or None when the bytes end in a compression pointer or
    are not a whole name."""
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        return None
    try:
        b = bytes.fromhex(raw[0])
    except ValueError:
        return None
    labels, i = [], 0
    while i < len(b):
        n = b[i]
        if n == 0:
            return b".".join(labels) if i + 1 == len(b) else None
        if n & 0xC0:
            return None
        labels.append(b[i + 1:i + 1 + n])
        i += 1 + n
    return None


def _first(x):
    l = _as_list(x)
    return l[0] if l else {}


def _tshark_msg(d, fnum, malformed):
    flags = _int(d.get("dns.flags"), 0)
    ft = d.get("dns.flags_tree", {}) or {}
    qr = _int(ft.get("dns.flags.response"))
    if qr is None:
        qr = (flags >> 15) & 1
    rcode = _int(ft.get("dns.flags.rcode"))
    if rcode is None:
        rcode = flags & 0xF
    opcode = _int(ft.get("dns.flags.opcode"))
    if opcode is None:
        opcode = (flags >> 11) & 0xF
    qname_raw = qtype = None
    qname_wire = None
    # UPDATE (opcode 5) messages: tshark calls the question section "Zone"
    # (RFC 2136 zone section, same wire format); we report it as the question.
    queries = d.get("Queries", d.get("Zone"))
    if isinstance(queries, dict):
        for _, q in queries.items():
            for qq in _as_list(q):
                if isinstance(qq, dict) and qname_raw is None:
                    qname_raw = qq.get("dns.qry.name")
                    qname_wire = _wire_name(qq.get("dns.qry.name_raw"))
                    qtype = _int(qq.get("dns.qry.type"))
    elif isinstance(queries, _Multi):
        for qs in queries:
            if isinstance(qs, dict) and qname_raw is None:
                for _, q in qs.items():
                    for qq in _as_list(q):
                        if isinstance(qq, dict) and qname_raw is None:
                            qname_raw = qq.get("dns.qry.name")
                            qname_wire = _wire_name(qq.get("dns.qry.name_raw"))
                            qtype = _int(qq.get("dns.qry.type"))
    qdcount = _int(d.get("dns.count.queries", d.get("dns.count.zones")))
    if qname_raw is None and qdcount:
        # tshark has a question count but could not decode the name
        # ("Queries": "" for a malformed name): an unusable question
        qname = INVALID_NAME
    elif qname_wire is not None and qname_raw is not None and not qname_raw.startswith("<"):
        qname = _canon(qname_wire)
    else:
        qname = norm_name_tshark(qname_raw)
    return {
        "frame": fnum,
        "id": _int(d.get("dns.id")),
        "qr": bool(qr),
        "opcode": opcode,
        "rcode": rcode,
        "qname": qname,
        "qname_raw": qname_raw,
        "qtype": qtype,
        "qdcount": qdcount,
        "ancount": _int(d.get("dns.count.answers")),
        "malformed": malformed,
    }


def tshark_count(pcap, display_filter):
    """Number of DNS PDUs tshark decodes among frames matching display_filter."""
    cmd = [TSHARK, "-r", pcap, "-n", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
           "-e", "dns.id", "-Y", display_filter]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    n = 0
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        if line.strip():
            n += len(line.split("|"))
    return n


# --------------------------------------------------------------------------
# Our records -> comparable message keys
# --------------------------------------------------------------------------

def our_msg(rec):
    d = rec.get("dns", {}) or {}
    qname, qtype = our_qname(rec)
    return {
        "frame": rec.get("pcap_cnt"),
        "id": d.get("id"),
        "qr": d.get("type") == "response" or bool(d.get("qr")),
        "opcode": d.get("opcode"),
        "rcode": rcode_num(d.get("rcode")),
        "qname": norm_name_ours(qname),
        "qname_raw": qname,
        "qtype": rrtype_num(qtype),
    }


def msg_key(m, rcode_mask=False):
    """(qname, qtype, rcode, id, qr). A question tshark could not decode
    (INVALID_NAME) keys as "no question": it then matches our message only if
    we, too, report no question (header-only, "incomplete") for it; a name we
    invent for bytes tshark calls malformed still mismatches."""
    if m["qname"] == INVALID_NAME:
        m = dict(m, qname=None, qtype=None)
    rc = m["rcode"]
    if rcode_mask and isinstance(rc, int):
        rc &= 0xF
    return (m["qname"], m["qtype"], rc, m["id"], m["qr"])


def fmt_key(k):
    qname, qtype, rcode, mid, qr = k
    return "id=%s %s %s %s rcode=%s" % (mid, "R" if qr else "Q", qname if qname is not None else "<no question>",
                                        RRTYPES.get(qtype, qtype) if qtype is not None else "-", rcode)


def multiset_diff(ours, theirs):
    a, b = Counter(ours), Counter(theirs)
    matched = sum((a & b).values())
    return matched, a - b, b - a


class Report:
    """Collects failures; prints a summary; exit code."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.notes = []

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL: " + msg)

    def note(self, msg):
        self.notes.append(msg)
        print("note: " + msg)

    def finish(self, summary_lines):
        print()
        print("=" * 72)
        print("%s summary" % self.name)
        for l in summary_lines:
            print("  " + l)
        if self.failures:
            print("  RESULT: FAIL (%d failure(s))" % len(self.failures))
            return 1
        print("  RESULT: PASS")
        return 0


def tshark_bad_checksum_frames(pcap):
    """Frame numbers whose IPv4 header, UDP or TCP checksum tshark finds wrong.
    Zeek (and Suricata, by default) drop such packets; exfilwatch, a passive
    sensor behind a mirror (checksum offload), does not validate them."""
    cmd = [TSHARK, "-r", pcap, "-n", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
           "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
           "-e", "frame.number", "-e", "ip.checksum.status", "-e", "udp.checksum.status",
           "-e", "tcp.checksum.status"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    bad = set()
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        cols = line.split("\t")
        if not cols or not cols[0].isdigit():
            continue
        if any("0" in c.split(",") for c in cols[1:]):
            bad.add(int(cols[0]))
    return bad


# --------------------------------------------------------------------------
# Our records in Suricata 8's DNS v3 layout, seen RR by RR
#
# Suricata writes one answers[] entry per TXT character-string, so the RR
# boundaries of a TXT RRset are gone: comparisons merge a run of TXT entries
# with the same name and TTL into one, and do the same to the peer's RRs
# (merge_txt_runs). SRV and SOA come as objects where Suricata's schema has
# them, as rdata text elsewhere; MX rdata is the exchange only. EDNS goes
# under exfilwatch.dns.edns, its options in the OPT entry of additionals.
# --------------------------------------------------------------------------

TXT_TYPES = ("TXT", "SPF")  # character-string RDATA, split per string


def rdata_text(a):
    """One of our RR entries' RDATA in presentation form ("prio weight port
    target" for SRV, "mname rname serial refresh retry expire minimum" for
    SOA, the exchange for MX), None when we give none."""
    if isinstance(a.get("srv"), dict):
        s = a["srv"]
        return "%s %s %s %s" % (s.get("priority"), s.get("weight"), s.get("port"), s.get("name"))
    if isinstance(a.get("soa"), dict):
        s = a["soa"]
        return " ".join(str(s.get(k)) for k in ("mname", "rname", "serial", "refresh", "retry",
                                                 "expire", "minimum"))
    return a.get("rdata")


def merge_txt_runs(rrs, key):
    """Merges consecutive TXT RRs whose key(rr) (name, ttl) are equal; each
    item is (rr, [strings]); returns [(first rr, [all strings])]."""
    out = []
    for rr, strings in rrs:
        if out and out[-1][0] is not None and key(rr) is not None and key(out[-1][0]) == key(rr):
            out[-1] = (out[-1][0], out[-1][1] + strings)
        else:
            out.append((rr, list(strings)))
    return out


def our_rrs(d, section):
    """Our RRs of a section (OPT left out) as dicts with rdata in text form;
    TXT entries of one run merged, their strings joined by a space."""
    items = []
    for a in d.get(section) or []:
        if a.get("rrtype") == "OPT":
            continue
        a = dict(a, rdata=rdata_text(a))
        txt = a.get("rrtype") in TXT_TYPES
        items.append((a, [a["rdata"]] if txt and a.get("rdata") is not None else []))
    key = lambda a: (a.get("rrname"), a.get("rrtype"), a.get("ttl")) if a.get("rrtype") in TXT_TYPES else None
    out = []
    for a, strings in merge_txt_runs(items, key):
        if a.get("rrtype") in TXT_TYPES:
            a = dict(a, rdata=" ".join(strings) if strings else a.get("rdata"))
        out.append(a)
    return out


def our_flags(rec):
    """Header flags that are set: Suricata's booleans plus ad/cd (exfilwatch.dns)."""
    d = rec.get("dns") or {}
    ext = (rec.get("exfilwatch") or {}).get("dns") or {}
    return set(f for f in ("qr", "aa", "tc", "rd", "ra", "z") if d.get(f)) | set(
        f for f in ("ad", "cd") if ext.get(f))


def our_edns(rec):
    """{udp_payload_size, version, do, options: [{code, length}]} or None."""
    e = ((rec.get("exfilwatch") or {}).get("dns") or {}).get("edns")
    if e is None:
        return None
    opts = []
    for a in (rec.get("dns") or {}).get("additionals") or []:
        if a.get("rrtype") == "OPT":
            opts = [{"code": o.get("code"), "length": len(o.get("data", "")) // 2}
                    for o in a.get("opt") or []]
            break
    return dict(e, options=opts)


def our_qname(rec):
    """(rrname, rrtype) of the first question, (None, None) without one."""
    q = ((rec.get("dns") or {}).get("queries") or [{}])[0]
    return q.get("rrname"), q.get("rrtype")
