#!/usr/bin/env python3
"""Compare `exfilwatch replay --dns-log` with dnscap's expected `-g` output
(DNS-OARC/dnscap @dd4427c, BSD-3-Clause; SHARED_DIR/corpus/parsers/dnscap).

Goldens used: the ones that are plain `dnscap -g -r X.pcap` output (see
src/test/TEST_SCRIPT_REFERENCES.txt; a gold may hold several identical runs,
e.g. with and without -o use_layers=yes, each run is compared):
  dns.gold (dns.pcap), dnspad.gold, edns.gold, ether_padd.gold (ether_padd.pcap
  and ipv6-with-ethernet-padding.pcap), icmp.gold (no DNS: we must report none),
  sll2.gold, test10.gold (dns6.pcap), vlan11.gold,
  and frags.pcap against dns.gold (test3.sh: `dnscap -g -f -o defrag_ipv4=yes`
  on the IP-fragmented copy of dns.pcap must print dns.gold without the time
  stamps; exfilwatch always reassembles fragments).
Not used: test7/test8 (TCP reassembly option variants), test9/test14/
test_regex_match (query filters) - not plain -g runs.

The dnscap -g record:
  [len] date time [#n file vlan] \\
      [src].sport [dst].dport  \\
      dns OPCODE,RCODE,ID,flags \\
      QD q... AN rr... NS rr... AR rr...
with q = name,class,type and rr = name,class,type,ttl,rdata (',' inside a
name escaped as '\\,'; rdata of types dnscap does not decode is "[len]"; OPT
as ".,udpsize,udpsize,0,edns0[len=..,UDP=..,ver=..,rcode=..,DO=..,z=..],
edns0opt[code=..,codelen=..]...").

Per message we compare: timestamp (dnscap prints UTC here: same instant as
the pcap) + ports, id, opcode, rcode, the flag set (qr aa tc rd ra z ad cd),
the question (name, type), and every answer/authority/additional RR (name,
type, ttl, and rdata for A, AAAA, CNAME, NS, PTR, MX, SRV, SOA), the OPT RR
against our "edns" (udp_payload_size, version, do, option codes/lengths).
Messages are aligned per file by (timestamp, id, QR) (frags: by (id, QR) in
order, the transformed gold has no time stamps).
"""
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TESTDIR = os.path.join(common.SHARED_DIR, "corpus", "parsers", "dnscap", "src", "test")

# gold file -> pcaps whose records it holds (by the file name in each header)
GOLDS = ["dns.gold", "dnspad.gold", "edns.gold", "ether_padd.gold", "icmp.gold",
         "sll2.gold", "test10.gold", "vlan11.gold"]
# (pcap, gold, gold's pcap name, compare timestamps?)
EXTRA = [("frags.pcap", "dns.gold", "dns.pcap", False)]

DECODED = {"A", "AAAA", "CNAME", "NS", "PTR", "MX", "SRV", "SOA"}

# (pcap, gold) -> reason; mismatches printed but not fatal
EXPLAINED = {
}

HEADER_RE = re.compile(
    r"^\[(\d+)\] (\S+ \S+) \[#(\d+) (\S+)(?: \(vlan (\d+)\))? (\d+)\] "
    r"\[([^\]]*)\]\.(\d+) \[([^\]]*)\]\.(\d+)\s*(.*)$")


def split_unescaped(s, sep=","):
    out, cur, i = [], "", 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur += s[i:i + 2]
            i += 2
            continue
        if c == sep:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return out


def dnscap_name(s):
    """dnscap presentation name -> our canonical form."""
    if s == ".":
        return common.norm_name_ours("")
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            m = re.match(r"\\(\d{3})", s[i:])
            if m:
                out.append(int(m.group(1)))
                i += 4
                continue
            out += s[i + 1].encode()
            i += 2
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    if out.endswith(b"."):
        out = out[:-1]
    return "".join(chr(c).lower() if 0x21 <= c <= 0x7e else "?" for c in bytes(out))


def read_records(path):
    """-> list of record strings (continuation lines joined)."""
    recs, cur = [], []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("--") or not line.strip() and not cur:
                continue
            cont = line.endswith("\\")
            if cont:
                line = line[:-1]
            cur.append(line.strip())
            if not cont:
                recs.append(" ".join(x for x in cur if x))
                cur = []
    if cur:
        recs.append(" ".join(x for x in cur if x))
    return recs


def parse_record(rec):
    m = HEADER_RE.match(rec)
    if not m:
        return None
    r = {"len": int(m.group(1)), "time": m.group(2), "n": int(m.group(3)), "file": m.group(4),
         "vlan": m.group(5), "src": m.group(7), "sport": int(m.group(8)), "dst": m.group(9),
         "dport": int(m.group(10)), "dns": None}
    rest = m.group(11).split()
    if not rest or rest[0] != "dns":
        return r
    hdr = rest[1].split(",")
    d = {"opcode": hdr[0], "rcode": hdr[1], "id": int(hdr[2]),
         "flags": set(f for f in hdr[3].split("|") if f) if len(hdr) > 3 else set()}
    toks = rest[2:]
    sections = []
    i = 0
    for sec in range(4):
        if i >= len(toks):
            break
        n = int(toks[i])
        i += 1
        items = toks[i:i + n]
        i += n
        sections.append([split_unescaped(x) for x in items])
    while len(sections) < 4:
        sections.append([])
    d["qd"], d["an"], d["ns"], d["ar"] = sections
    r["dns"] = d
    return r


def load_gold(gold):
    """-> {pcap name: [run, ...]} with run = [record, ...]."""
    runs = defaultdict(list)
    for rec in read_records(os.path.join(TESTDIR, gold)):
        r = parse_record(rec)
        if r is None:
            raise SystemExit("cannot parse %s record: %r" % (gold, rec[:200]))
        lst = runs[r["file"]]
        if not lst or r["n"] == 0:
            lst.append([])
        lst[-1].append(r)
    return runs


def our_time(rec):
    ts = rec.get("timestamp", "")
    return ts.replace("T", " ")[:-len("+0000")] if ts.endswith("+0000") else ts.replace("T", " ")


def rdata_to_ours(t, fields):
    """dnscap rdata fields (after ttl) -> our presentation, None if not compared."""
    if t not in DECODED or not fields or fields[0].startswith("["):
        return None
    if t in ("A", "AAAA"):
        return ("ip", fields[0])
    if t in ("CNAME", "NS", "PTR"):
        return ("name", dnscap_name(fields[0]))
    if t == "MX":  # Suricata's MX rdata is the exchange only
        return ("mx", dnscap_name(fields[1]))
    if t == "SRV":
        return ("srv", int(fields[0]), int(fields[1]), int(fields[2]), dnscap_name(fields[3]))
    if t == "SOA":
        return ("soa", dnscap_name(fields[0]), dnscap_name(fields[1])) + tuple(int(x) for x in fields[2:7])
    return None


def our_rdata(t, rd):
    if rd is None:
        return None
    try:
        if t in ("A", "AAAA"):
            import ipaddress
            return ("ip", str(ipaddress.ip_address(rd)))
        if t in ("CNAME", "NS", "PTR"):
            return ("name", common.norm_name_ours(rd))
        p = rd.split(" ")
        if t == "MX":
            return ("mx", common.norm_name_ours(rd))
        if t == "SRV":
            return ("srv", int(p[0]), int(p[1]), int(p[2]), common.norm_name_ours(p[3]))
        if t == "SOA":
            return ("soa", common.norm_name_ours(p[0]), common.norm_name_ours(p[1])) + tuple(int(x) for x in p[2:7])
    except (ValueError, IndexError):
        return ("unparsable", rd)
    return None


def norm_ip(x):
    import ipaddress
    try:
        return ("ip", str(ipaddress.ip_address(x[1])))
    except ValueError:
        return x


def compare_message(g, o, errs, where, stats):
    d = o.get("dns") or {}
    gd = g["dns"]
    if d.get("id") != gd["id"]:
        errs.append("%s id ours=%s gold=%s" % (where, d.get("id"), gd["id"]))
    if common.OPCODES.get(d.get("opcode"), str(d.get("opcode"))) != gd["opcode"]:
        errs.append("%s opcode ours=%s gold=%s" % (where, d.get("opcode"), gd["opcode"]))
    # Suricata's rcode is the header's 4 bits; the EDNS-extended one, when
    # it differs, is exfilwatch.dns.rcode.
    rcode = ((o.get("exfilwatch") or {}).get("dns") or {}).get("rcode", d.get("rcode"))
    if str(rcode) != gd["rcode"]:
        errs.append("%s rcode ours=%s gold=%s" % (where, rcode, gd["rcode"]))
    ours_flags = common.our_flags(o)
    if ours_flags != gd["flags"]:
        errs.append("%s flags ours=%s gold=%s" % (where, sorted(ours_flags), sorted(gd["flags"])))
    if (o.get("src_port"), o.get("dest_port")) != (g["sport"], g["dport"]):
        errs.append("%s ports ours=%s>%s gold=%s>%s" % (where, o.get("src_port"), o.get("dest_port"), g["sport"], g["dport"]))
    if not common_ip_eq(o.get("src_ip"), g["src"]) or not common_ip_eq(o.get("dest_ip"), g["dst"]):
        errs.append("%s addresses ours=%s>%s gold=%s>%s" % (where, o.get("src_ip"), o.get("dest_ip"), g["src"], g["dst"]))
    if g["vlan"] is not None and o.get("vlan") != [int(g["vlan"])]:
        errs.append("%s vlan ours=%s gold=%s" % (where, o.get("vlan"), g["vlan"]))
    # question
    oq = d.get("queries") or []
    if len(oq) != len(gd["qd"]):
        errs.append("%s %d questions ours vs %d gold" % (where, len(oq), len(gd["qd"])))
    for q, gq in zip(oq, gd["qd"]):
        if common.norm_name_ours(q.get("rrname")) != dnscap_name(gq[0]) or q.get("rrtype") != gq[2]:
            errs.append("%s question ours=%s/%s gold=%s/%s" % (where, q.get("rrname"), q.get("rrtype"), gq[0], gq[2]))
    # sections
    gar = [rr for rr in gd["ar"] if not (len(rr) > 4 and rr[4].startswith("edns0["))]
    gopt = [rr for rr in gd["ar"] if len(rr) > 4 and rr[4].startswith("edns0[")]
    for sec, gsec in (("answers", gd["an"]), ("authorities", gd["ns"]), ("additionals", gar)):
        # TXT runs merged on both sides (Suricata splits TXT RRs by string)
        osec = common.our_rrs(d, sec)
        gsec = [rr for rr, _ in common.merge_txt_runs(
            [(rr, []) for rr in gsec],
            lambda rr: (rr[0], rr[2], rr[3] if len(rr) > 3 else None) if rr[2] in common.TXT_TYPES else None)]
        if len(osec) != len(gsec):
            errs.append("%s %d %s ours vs %d gold: ours=%s gold=%s" % (
                where, len(osec), sec, len(gsec), [(a.get("rrname"), a.get("rrtype")) for a in osec][:5],
                [(x[0], x[2]) for x in gsec][:5]))
            continue
        for i, (a, grr) in enumerate(zip(osec, gsec)):
            stats["rrs"] += 1
            t = grr[2]
            if common.norm_name_ours(a.get("rrname")) != dnscap_name(grr[0]):
                errs.append("%s %s[%d] name ours=%r gold=%r" % (where, sec, i, a.get("rrname"), grr[0]))
            if a.get("rrtype") != t:
                errs.append("%s %s[%d] type ours=%s gold=%s" % (where, sec, i, a.get("rrtype"), t))
            if len(grr) > 3 and str(a.get("ttl")) != grr[3]:
                errs.append("%s %s[%d] ttl ours=%s gold=%s" % (where, sec, i, a.get("ttl"), grr[3]))
            want = rdata_to_ours(t, grr[4:])
            if want is not None:
                stats["rdata"] += 1
                got = our_rdata(t, a.get("rdata"))
                if want[0] == "ip":
                    want = norm_ip(want)
                if got != want:
                    errs.append("%s %s[%d] %s rdata ours=%r gold=%r" % (where, sec, i, t, a.get("rdata"), ",".join(grr[4:])))
    # EDNS
    e = common.our_edns(o)
    if gopt and not e:
        errs.append("%s gold has OPT, we have no edns" % where)
    elif e and not gopt:
        errs.append("%s we have edns, gold has no OPT" % where)
    elif gopt:
        stats["edns"] += 1
        text = ",".join(gopt[0][4:])
        m = re.search(r"edns0\[len=\d+,UDP=(\d+),ver=(\d+),rcode=\d+,DO=(\d),z=\d+\]", text)
        opts = []
        for body in re.findall(r"edns0opt\[([^\]]*)\]", text):
            mo = re.match(r"code=(\d+),codelen=(\d+)", body)
            if mo:
                opts.append((int(mo.group(1)), int(mo.group(2))))
            elif body.startswith("ECS,"):
                opts.append((8, None))   # dnscap decodes ECS and omits its length
            else:
                opts.append((body, None))
        if m:
            want = (int(m.group(1)), int(m.group(2)), m.group(3) == "1", opts)
            got = (e.get("udp_payload_size"), e.get("version"), bool(e.get("do")),
                   [(x.get("code"), x.get("length") if i >= len(opts) or opts[i][1] is not None else None)
                    for i, x in enumerate(e.get("options") or [])])
            if want != got:
                errs.append("%s edns ours=%s gold=%s" % (where, got, want))


def common_ip_eq(a, b):
    import ipaddress
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except (ValueError, TypeError):
        return a == b


def main():
    common.require_binary()
    rep = common.Report("golden_dnscap")
    jobs = []  # (pcap, gold, gold pcap name, use time)
    for gold in GOLDS:
        for name in sorted(load_gold(gold)):
            jobs.append((name, gold, name, True))
    jobs += EXTRA
    stats = defaultdict(int)
    pcaps_done = set()
    for pcap, gold, gname, use_time in jobs:
        runs = load_gold(gold)[gname]
        path = os.path.join(TESTDIR, pcap)
        res = common.run_replay(path)
        if res.rc != 0:
            rep.fail("%s: replay %s" % (pcap, res.describe_rc()))
            continue
        ours = res.dns
        pcaps_done.add(pcap)
        for ri, run in enumerate(runs):
            errs = []
            gmsgs = [g for g in run if g["dns"] is not None]
            used = [False] * len(ours)
            for g in gmsgs:
                qr = "qr" in g["dns"]["flags"]
                where = "[#%d %s]" % (g["n"], g["time"])
                hit = None
                for i, o in enumerate(ours):
                    if used[i]:
                        continue
                    d = o.get("dns") or {}
                    if d.get("id") != g["dns"]["id"] or (d.get("type") == "response") != qr:
                        continue
                    if use_time and our_time(o) != g["time"]:
                        continue
                    hit = i
                    break
                if hit is None:
                    errs.append("%s no message of ours for id=%d %s" % (where, g["dns"]["id"], "R" if qr else "Q"))
                    continue
                used[hit] = True
                stats["messages"] += 1
                compare_message(g, ours[hit], errs, where + " pcap_cnt %s" % ours[hit].get("pcap_cnt"), stats)
            extra = [o for i, o in enumerate(ours) if not used[i]]
            for o in extra[:5]:
                errs.append("our message not in gold: pcap_cnt %s id=%s %s %s" % (
                    o.get("pcap_cnt"), (o.get("dns") or {}).get("id"), (o.get("dns") or {}).get("type"),
                    common.our_qname(o)[0]))
            label = "%s vs %s run %d" % (pcap, gold, ri + 1)
            print("%-45s gold msgs=%d ours=%d %s" % (label, len(gmsgs), len(ours), "ok" if not errs else "%d problem(s)" % len(errs)))
            for e in errs[:40]:
                print("    " + e)
            if len(errs) > 40:
                print("    ... %d more" % (len(errs) - 40))
            if errs:
                if EXPLAINED.get((pcap, gold)):
                    print("    explained: " + EXPLAINED[(pcap, gold)])
                else:
                    rep.fail("%s: %d problem(s)" % (label, len(errs)))
    return rep.finish([
        "captures: %d (%s)" % (len(pcaps_done), ", ".join(sorted(pcaps_done))),
        "messages compared: %d, RRs: %d, rdata compared: %d, EDNS compared: %d" % (
            stats["messages"], stats["rrs"], stats["rdata"], stats["edns"]),
    ])


if __name__ == "__main__":
    sys.exit(main())
