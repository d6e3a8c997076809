#!/usr/bin/env python3
"""Compare `exfilwatch replay --dns-log` with Zeek's expected dns.log baselines
(SHARED_DIR/corpus/parsers/zeek, zeek/zeek @a13de64, BSD-3-Clause).

Which baselines: TEST_TO_TRACE.txt maps a btest to its trace(s); the btest's
baseline folder is its path with '/' -> '.' (testing/btest/scripts/base/
protocols/dns/flip.zeek -> Baseline/scripts.base.protocols.dns.flip). We use
  * dns.log (full Zeek log, '#fields' header),
  * dns.<name>.log / dns.log.cut (zeek-cut output: a plain header line),
when the test maps to one trace, or when a dns.<name>.log names its trace
(dnssec: dns.ed448.log <-> dnssec/ed448.no.pcap).

How a Zeek row is aligned with our messages. Zeek logs one row per
transaction (query joined with its reply by connection and trans_id):
  * qtype set          -> the query was seen: we must have a query (QR=0)
  * rcode set          -> a reply was seen: we must have a response (QR=1)
    (zeek-cut files without rcode: answers set -> a reply was seen)
  * both looked up by DNS id == trans_id, the endpoints {orig, resp} (as an
    unordered pair: Zeek may flip orig/resp, see the flip test), and the query
    name when the row has one; each of our messages is consumed at most once,
    in order (the duplicate-responses test has two rows for two replies).
Compared fields: query name (lower-cased: Zeek logs it lower-cased), qtype
(number), rcode (number; Zeek's rcode is the header rcode, so our value is
masked & 0xF, see tshark_agreement.py), AA/TC/RD/RA, and for the reply the
answer section: same number of entries as Zeek's `answers`, TTLs equal, and
rdata equal for the types we decode, converted to what Zeek logs:
  A/AAAA address; CNAME/NS/PTR name; MX -> exchange only (Zeek drops the
  preference); SRV -> target only; SOA -> mname only; TXT -> Zeek logs
  "TXT <len> <string>" per string, we compare the concatenated strings with
  whitespace removed on both sides (our TXT join is not fixed by the schema).
Zeek rows on ports other than 53 (mDNS 5353, ...) are skipped: exfilwatch
parses port 53 only. Our port-53 messages that no Zeek row accounts for are
reported and fail unless EXPLAINED lists the trace.
"""
import ipaddress
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ZEEK = os.path.join(common.SHARED_DIR, "corpus", "parsers", "zeek")
TRACES = os.path.join(ZEEK, "testing", "btest", "Traces")
BASELINE = os.path.join(ZEEK, "testing", "btest", "Baseline")

DECODED = {"A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SRV", "SOA"}

# Types whose Zeek reply events do not call DNS::do_reply, so they leave no
# entry in `answers` (Zeek base/protocols/dns/main.zeek).
ZEEK_SILENT = {"WKS", "HINFO", "TKEY", "TSIG", "OPT"}

# (trace relative to Traces/, baseline file relative to Baseline/) -> reason.
# Entries make that pair's mismatches non-fatal (still printed).
EXPLAINED = {
}

# Baselines that are not plain dns.log semantics (the btest's own script
# changes what is logged): not compared at all.
NOT_COMPARABLE = {
    "scripts.base.protocols.dns.dnssec/dns.ed25519.log":
        "dnssec.zeek appends the key/signature algorithm name as an extra answers entry",
    "scripts.base.protocols.dns.dnssec/dns.ed448.log":
        "dnssec.zeek appends the key/signature algorithm name as an extra answers entry",
    "scripts.base.protocols.dns.dynamic-update/dns.log":
        "UPDATE (opcode 5): Zeek logs the updated name and pseudo answers (pre:/del:/add:) from the "
        "update sections, not the zone section; no field maps to our rrname/answers",
}


def zeek_unescape(s):
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def parse_log(path):
    """-> list of dict rows (column name -> raw string)."""
    fields = None
    rows = []
    sep = "\t"
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("### BTest") or not line.strip():
                continue
            if line.startswith("#"):
                if line.startswith("#fields"):
                    fields = line.split(sep)[1:]
                continue
            cols = line.split(sep)
            if fields is None:   # zeek-cut output: first line names the columns
                fields = cols
                continue
            rows.append(dict(zip(fields, cols)))
    return rows


def discover():
    """-> list of (trace_path, baseline_path)."""
    mapping = {}
    with open(os.path.join(ZEEK, "TEST_TO_TRACE.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue
            test, trace = parts
            name = re.sub(r"\.(zeek|test)$", "", test[len("testing/btest/"):]).replace("/", ".")
            mapping.setdefault(name, []).append(trace)
    pairs, skipped = [], []
    for name, traces in sorted(mapping.items()):
        bdir = os.path.join(BASELINE, name)
        if not os.path.isdir(bdir):
            continue
        logs = sorted(fn for fn in os.listdir(bdir) if fn.startswith("dns.") and (fn.endswith(".log") or fn.endswith(".cut")))
        for fn in logs:
            trace = None
            if len(traces) == 1:
                trace = traces[0]
            else:
                tag = fn[len("dns."):].split(".")[0]
                cand = [t for t in traces if os.path.basename(t).startswith(tag)]
                if len(cand) == 1:
                    trace = cand[0]
            if trace is None:
                skipped.append("%s/%s: cannot tell which of %s it belongs to" % (name, fn, traces))
                continue
            if "%s/%s" % (name, fn) in NOT_COMPARABLE:
                skipped.append("%s/%s: %s" % (name, fn, NOT_COMPARABLE["%s/%s" % (name, fn)]))
                continue
            pairs.append((os.path.join(TRACES, trace), os.path.join(bdir, fn)))
    return pairs, skipped


def val(row, key):
    v = row.get(key)
    if v is None or v == "-":
        return None
    return v


def ip_eq(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def endpoints_ok(row, rec):
    oh, op, rh, rp = val(row, "id.orig_h"), val(row, "id.orig_p"), val(row, "id.resp_h"), val(row, "id.resp_p")
    if oh is None or rh is None:
        return True
    a = (rec.get("src_ip"), str(rec.get("src_port")))
    b = (rec.get("dest_ip"), str(rec.get("dest_port")))
    def same(x, h, p):
        return ip_eq(x[0], h) and (p is None or x[1] == p)
    return (same(a, oh, op) and same(b, rh, rp)) or (same(a, rh, rp) and same(b, oh, op))


def zeek_answers(row):
    a = row.get("answers")
    if a is None or a == "-":
        return None
    if a == "(empty)":
        return []
    return [zeek_unescape(x) for x in a.split(",")]


def zeek_ttls(row):
    t = row.get("TTLs")
    if t is None or t in ("-", "(empty)"):
        return None
    return [float(x) for x in t.split(",")]


def txt_strings_zeek(s):
    out = []
    b = s.encode("latin-1", "replace")
    pos = 0
    while pos < len(b):
        m = re.match(rb"(?:TXT|SPF) (\d+) ", b[pos:])
        if not m:
            return None
        n = int(m.group(1))
        start = pos + m.end()
        out.append(b[start:start + n])
        pos = start + n
        if b[pos:pos + 1] == b" ":
            pos += 1
    return out


def rdata_matches(ans, z):
    """Our answer dict vs Zeek's answers entry: (ok, what-we-compared)."""
    t = ans.get("rrtype")
    rd = ans.get("rdata")
    if t not in DECODED:
        return True, None
    if rd is None:
        return False, "no rdata for decoded type %s" % t
    if t in ("A", "AAAA"):
        return ip_eq(rd, z), rd
    if t in ("CNAME", "NS", "PTR"):
        return common.norm_name_ours(rd) == common.norm_name_zeek(z), rd
    if t == "MX":  # Suricata's MX rdata is the exchange only
        return common.norm_name_ours(rd) == common.norm_name_zeek(z), rd
    if t in ("SRV", "SOA"):
        parts = rd.split(" ")
        idx = {"SRV": 3, "SOA": 0}[t]
        if len(parts) <= idx:
            return False, rd
        return common.norm_name_ours(parts[idx]) == common.norm_name_zeek(z), parts[idx]
    if t == "TXT":
        zs = txt_strings_zeek(z)
        if zs is None:
            return False, rd
        zj = re.sub(rb"\s", b"", b"".join(zs))
        ob = common._unescape_to_bytes(rd)
        oj = re.sub(rb"\s", b"", ob)
        return zj == oj, rd
    return True, None


def flag(rec, name):
    return bool((rec.get("dns") or {}).get(name))


def main():
    common.require_binary()
    pairs, skipped_logs = discover()
    rep = common.Report("golden_zeek")
    n_rows = n_rows_checked = n_msgs = n_answers = n_rdata = 0
    traces_checked = set()
    skipped_rows = []
    for trace, blog in pairs:
        key = (os.path.relpath(trace, TRACES), os.path.relpath(blog, BASELINE))
        label = "%s vs %s" % key
        rows = parse_log(blog)
        res = common.run_replay(trace)
        if res.rc != 0:
            rep.fail("%s: replay %s" % (label, res.describe_rc()))
            continue
        # Zeek drops packets with a wrong checksum unless the btest runs it
        # with -C (we cannot see the btest scripts); exfilwatch does not
        # validate checksums. So our messages from such frames may be missing
        # from Zeek's log without that being an error (they are still matched
        # when Zeek does log them).
        bad = common.tshark_bad_checksum_frames(trace)
        ours = res.dns
        used = [False] * len(ours)
        errors = []
        checked_here = 0

        def find(row, want_qr, qname):
            tid = val(row, "trans_id")
            for i, r in enumerate(ours):
                if used[i]:
                    continue
                d = r.get("dns") or {}
                if (d.get("type") == "response") != want_qr:
                    continue
                if tid is not None and d.get("id") != int(tid):
                    continue
                if not endpoints_ok(row, r):
                    continue
                if qname is not None and common.norm_name_ours(common.our_qname(r)[0]) != qname:
                    continue
                used[i] = True
                return r
            return None

        for row in rows:
            n_rows += 1
            ports = {val(row, "id.orig_p"), val(row, "id.resp_p")}
            if None not in ports and "53" not in ports:
                skipped_rows.append("%s: row on ports %s (not 53): %s" % (label, sorted(ports), val(row, "query")))
                continue
            qname = common.norm_name_zeek(val(row, "query"))
            has_query = val(row, "qtype") is not None or val(row, "qtype_name") is not None
            if "rcode" in row or "rcode_name" in row:
                has_reply = val(row, "rcode") is not None or val(row, "rcode_name") is not None
            else:
                has_reply = zeek_answers(row) is not None
            desc = "trans_id=%s query=%s" % (val(row, "trans_id"), val(row, "query"))
            checked_here += 1
            n_rows_checked += 1
            q = r = None
            if has_query:
                q = find(row, False, qname)
                if q is None:
                    errors.append("%s: no matching query message" % desc)
                else:
                    n_msgs += 1
                    qtype = common.our_qname(q)[1]
                    qt = val(row, "qtype")
                    if qt is not None and common.rrtype_num(qtype) != int(qt):
                        errors.append("%s: qtype ours=%s zeek=%s (pcap_cnt %s)" % (desc, qtype, qt, q.get("pcap_cnt")))
                    qtn = val(row, "qtype_name")
                    if qt is None and qtn is not None and common.rrtype_num(qtype) != common.rrtype_num(qtn):
                        errors.append("%s: qtype ours=%s zeek=%s" % (desc, qtype, qtn))
            if has_reply:
                r = find(row, True, qname)
                if r is None:
                    errors.append("%s: no matching response message" % desc)
                else:
                    n_msgs += 1
                    d = r["dns"]
                    where = "(pcap_cnt %s)" % r.get("pcap_cnt")
                    rc = val(row, "rcode")
                    ours_rc = common.rcode_num(d.get("rcode"))
                    if isinstance(ours_rc, int):
                        ours_rc &= 0xF
                    if rc is not None and ours_rc != int(rc):
                        errors.append("%s: rcode ours=%s zeek=%s %s" % (desc, d.get("rcode"), rc, where))
                    za = zeek_answers(row) or []
                    zt = zeek_ttls(row)
                    # TXT runs merged on both sides (Suricata splits TXT RRs by string)
                    if zt is not None and len(zt) == len(za):
                        runs = common.merge_txt_runs(
                            [((z, t), [z]) for z, t in zip(za, zt)],
                            lambda x: x[1] if re.match(r"(?:TXT|SPF) \d+ ", x[0]) else None)
                        za = [" ".join(strs) for _, strs in runs]
                        zt = [x[1] for x, _ in runs]
                    oa_all = common.our_rrs(d, "answers")
                    oa = [a for a in oa_all if a.get("rrtype") not in ZEEK_SILENT]
                    # Zeek sets AA/RA from the reply only while logging an answer
                    if oa:
                        for zf, of in (("AA", "aa"), ("RA", "ra")):
                            zv = val(row, zf)
                            if zv is not None and (zv == "T") != flag(r, of):
                                errors.append("%s: %s ours=%s zeek=%s %s" % (desc, zf, flag(r, of), zv, where))
                    if len(za) != len(oa):
                        errors.append("%s: %d answers ours vs %d zeek %s: ours=%s zeek=%s" % (
                            desc, len(oa), len(za), where, [(a.get("rrtype"), a.get("rdata")) for a in oa][:6], za[:6]))
                    else:
                        for i, (a, z) in enumerate(zip(oa, za)):
                            n_answers += 1
                            ok, what = rdata_matches(a, z)
                            if what is not None:
                                n_rdata += 1
                            if not ok:
                                errors.append("%s: answer %d %s rdata ours=%r zeek=%r %s" % (desc, i, a.get("rrtype"), a.get("rdata"), z, where))
                            if zt is not None and i < len(zt) and a.get("ttl") != int(zt[i]):
                                errors.append("%s: answer %d ttl ours=%s zeek=%s %s" % (desc, i, a.get("ttl"), zt[i], where))
            # RD comes from the query (Zeek leaves it F on reply-only rows); TC
            # from the last message seen
            for zf, of, src in (("RD", "rd", q), ("TC", "tc", r if r is not None else q)):
                zv = val(row, zf)
                if zv is not None and src is not None and (zv == "T") != flag(src, of):
                    errors.append("%s: %s ours=%s zeek=%s (pcap_cnt %s)" % (desc, zf, flag(src, of), zv, src.get("pcap_cnt")))
        # full dns.log only: our port-53 messages Zeek does not account for
        if "trans_id" in (rows[0] if rows else {}):
            extra = [o for i, o in enumerate(ours) if not used[i] and 53 in (o.get("src_port"), o.get("dest_port"))]
            unseen = [o for o in extra if o.get("pcap_cnt") in bad]
            extra = [o for o in extra if o.get("pcap_cnt") not in bad]
            if unseen:
                print("    (%d of our messages not in Zeek's log come from frames with a bad checksum: pcap_cnt %s)"
                      % (len(unseen), [o.get("pcap_cnt") for o in unseen][:10]))
            for o in extra[:5]:
                d = o["dns"]
                errors.append("our message not in Zeek's log: pcap_cnt %s id=%s %s %s %s" % (
                    o.get("pcap_cnt"), d.get("id"), d.get("type"), *common.our_qname(o)))
            if len(extra) > 5:
                errors.append("... %d more of our messages not in Zeek's log" % (len(extra) - 5))
        traces_checked.add(trace)
        print("%-60s rows=%d ours=%d %s" % (label, checked_here, len(ours), "ok" if not errors else "%d problem(s)" % len(errors)))
        for e in errors:
            print("    " + e)
        if errors:
            if EXPLAINED.get(key):
                print("    explained: " + EXPLAINED[key])
            else:
                rep.fail("%s: %d problem(s)" % (label, len(errors)))
    for s in skipped_logs + skipped_rows:
        print("skipped: " + s)
    if len(traces_checked) < 10:
        rep.fail("only %d traces checked (baselines missing?)" % len(traces_checked))
    return rep.finish([
        "baseline logs: %d, traces checked: %d" % (len(pairs), len(traces_checked)),
        "zeek rows: %d (checked %d, skipped %d non-53)" % (n_rows, n_rows_checked, len(skipped_rows)),
        "messages matched: %d, answers compared: %d (rdata compared: %d)" % (n_msgs, n_answers, n_rdata),
        "skipped baselines: %d" % len(skipped_logs),
    ])


if __name__ == "__main__":
    sys.exit(main())
