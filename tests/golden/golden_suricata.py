#!/usr/bin/env python3
"""Evaluate suricata-verify's expected EVE `checks:` (OISF/suricata-verify
@10a45e4, MIT; SHARED_DIR/corpus/parsers/suricata-verify) against
`exfilwatch replay --dns-log` on the same pcap.

Scope: every test.yaml with `filter` checks on `event_type: dns` (or on dns.*
keys without an event_type). Each such filter is evaluated like
suricata-verify does: count the records that match every key, compare with
`count`. A filter is SKIPPED (and listed, with the reason) when:
  * it uses a field our schema does not have (app_proto, flow_id, direction,
    ether.*, pkt_src, has-key of a non-DNS field, rrname_truncated,
    alert.*) - alerts from Suricata rules are out of scope: we do not run
    Suricata's rule language, so nothing comparable exists;
  * its own `requires` excludes Suricata 8 (we compare with Suricata 8
    semantics: DNS EVE v3 by default, v2 when the test sets
    SURICATA_EVE_DNS_VERSION=2), or it reads another output file (filename:).
A whole test is SKIPPED when its `requires` excludes Suricata 8, when its args
move DNS to another port (detection-ports: we parse port 53 only), or when it
is in SKIP_TESTS (its expected output depends on a suricata.yaml that changes
what is logged, which the corpus does not carry).

Mapping Suricata -> our records (documented, not guessed per file): our
records are Suricata 8's DNS v3 layout, so v3 filters apply as written.
  event_type, src_ip, src_port, dest_ip, dest_port, proto, pcap_cnt: same.
    v2 logs a response with the *flow's* direction (client as src_ip); v3 with
    the packet's. For v2 filters on responses we therefore swap src/dest.
  dns.type: v2 query/answer -> our request/response.
  dns.rrname, dns.rrtype (v2 only): our dns.queries[0].rrname/rrtype.
  A boolean flag absent in our record is false (Suricata prints only true
    ones, too).
  dns.grouped.<TYPE>[i]: the i-th rdata among our answers of that type
    (Suricata's optional grouped format, which we do not write).
  srv/soa objects where we keep rdata text (sections whose schema lacks the
    object): parsed from "prio weight port target" / "mname rname serial ...".
  rdata of a type we do not decode: the filter is skipped.
  rdata of A/AAAA: compared as addresses.
  pcap_cnt of a TCP record: not compared (Suricata in IDS mode logs TCP app
    data at the frame that ACKs it; ours is the frame completing the message).
  v2 or v3: per filter: dns.version if present, else dns.type's vocabulary
    (query/answer = v2, request/response = v3), else v2 when it reads
    dns.rrname/dns.rrtype (only v2 has them), else the test's env.
  KEY.__len: length of the list/string at KEY.
  dns.tx_id, dns.version: Suricata logger bookkeeping with no DNS meaning;
    dropped from the filter (the filter is still evaluated on its other keys).
"""
import ipaddress
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SV = os.path.join(common.SHARED_DIR, "corpus", "parsers", "suricata-verify")
SURICATA_VERSION = 8

DECODED_TYPES = {"A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SRV", "SOA", "NULL"}
GENERIC_KEYS = {"event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "pcap_cnt"}
DROPPED_KEYS = {"dns.tx_id", "dns.version"}

# test dir (relative to suricata-verify/tests) -> why the whole test is out of scope
SKIP_TESTS = {
    "cond-log-dns-dig": "conditional EVE logging (only flows with an alert are logged): config-dependent",
    "dns/dns-udp-eve-log-aaaa-only": "its suricata.yaml (not in the corpus) logs AAAA only",
    "dns/dns-udp-eve-log-answer-only": "its suricata.yaml (not in the corpus) logs answers only",
    "dns/dns-udp-eve-log-mx-only": "its suricata.yaml (not in the corpus) logs MX only",
    "dns/dns-udp-eve-log-query-only": "its suricata.yaml (not in the corpus) logs queries only",
    "dns/v2/dns-udp-eve-log-aaaa-only": "its suricata.yaml (not in the corpus) logs AAAA only",
    "dns/v2/dns-udp-eve-log-answer-only": "its suricata.yaml (not in the corpus) logs answers only",
    "dns/v2/dns-udp-eve-log-mx-only": "its suricata.yaml (not in the corpus) logs MX only",
    "dns/v2/dns-udp-eve-log-query-only": "its suricata.yaml (not in the corpus) logs queries only",
    "dns-over-http2": "DNS over HTTPS (HTTP/2 in TLS): exfilwatch parses DNS on port 53 only",
    "dns-over-http2-post": "DNS over HTTPS (HTTP/2 in TLS): exfilwatch parses DNS on port 53 only",
    "dns-over-http2-limit": "DNS over HTTPS (HTTP/2 in TLS): exfilwatch parses DNS on port 53 only",
    "dns-over-http2-progress": "DNS over HTTPS (HTTP/2 in TLS): exfilwatch parses DNS on port 53 only",
}

# test dir -> reason: the test's mismatches are printed but do not fail.
EXPLAINED = {
}


class Unsupported(Exception):
    pass


def version_ok(req):
    if not isinstance(req, dict):
        return True
    def major(v):
        return int(str(v).split(".")[0])
    if "min-version" in req and major(req["min-version"]) > SURICATA_VERSION:
        return False
    if "lt-version" in req and major(req["lt-version"]) <= SURICATA_VERSION:
        return False
    if "version" in req and major(req["version"]) != SURICATA_VERSION:
        return False
    return True


def find_pcap(test_dir, y):
    p = y.get("pcap")
    if p is False:
        return None
    if isinstance(p, str):
        path = os.path.normpath(os.path.join(test_dir, p))
        return path if os.path.exists(path) else None
    cands = sorted(f for f in os.listdir(test_dir) if f.lower().endswith(common.CAPTURE_EXTS))
    return os.path.join(test_dir, cands[0]) if len(cands) == 1 else None


_PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(key):
    out = []
    for m in _PATH_RE.finditer(key):
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return out


MISSING = object()


def derived(view, parts):
    """Resolve a path on our record with the derivations documented above."""
    cur = view
    i = 0
    while i < len(parts):
        p = parts[i]
        if p == "__len":
            return len(cur) if isinstance(cur, (list, str, dict)) else MISSING
        if isinstance(cur, dict) and p == "grouped" and "grouped" not in cur:
            # dns.grouped.TYPE[i]
            if i + 1 >= len(parts):
                raise Unsupported("dns.grouped")
            t = parts[i + 1]
            cur = [a.get("rdata") for a in cur.get("answers") or [] if a.get("rrtype") == t]
            i += 2
            continue
        if isinstance(cur, dict) and p in ("srv", "soa") and p not in cur:
            rd = cur.get("rdata")
            if cur.get("rrtype") != p.upper() or not isinstance(rd, str):
                return MISSING
            f = rd.split(" ")
            names = {"srv": ["priority", "weight", "port", "name"],
                     "soa": ["mname", "rname", "serial", "refresh", "retry", "expire", "minimum"]}[p]
            if len(f) != len(names):
                return MISSING
            obj = {}
            for n, v in zip(names, f):
                obj[n] = int(v) if v.isdigit() else v
            cur = obj
            i += 1
            continue
        if p in ("rrname_truncated", "opt", "svcb", "https", "mx", "caa"):
            raise Unsupported(p)
        if isinstance(p, int):
            if not isinstance(cur, list) or p >= len(cur):
                return MISSING
            cur = cur[p]
        else:
            if not isinstance(cur, dict) or p not in cur:
                return MISSING
            cur = cur[p]
        i += 1
    return cur


def values_equal(key, exp, got, rec_view, parts):
    if got is MISSING:
        # a boolean flag Suricata would print only when true
        return exp is False and len(parts) == 2 and parts[0] == "dns" and parts[1] in (
            "qr", "aa", "tc", "rd", "ra", "z", "ad", "cd")
    if isinstance(exp, bool) or isinstance(got, bool):
        return exp is got
    if isinstance(exp, str) and isinstance(got, str):
        if exp == got:
            return True
        if parts[-1] == "rdata" or (len(parts) >= 3 and parts[1] == "grouped" and parts[2] in ("A", "AAAA")):
            # addresses: compare values (Suricata <7 printed AAAA uncompressed)
            try:
                if ipaddress.ip_address(exp) == ipaddress.ip_address(got):
                    return True
            except ValueError:
                pass
        if parts[-1] == "rdata" and len(parts) >= 3:
            ans = derived(rec_view, parts[:-1])
            if isinstance(ans, dict) and ans.get("rrtype") == "TXT":
                return re.sub(r"\s", "", exp) == re.sub(r"\s", "", got)
        if len(parts) >= 3 and parts[1] == "grouped" and parts[2] == "TXT":
            return re.sub(r"\s", "", exp) == re.sub(r"\s", "", got)
        return False
    if isinstance(exp, (int, float)) and isinstance(got, (int, float)):
        return exp == got
    return str(exp) == str(got)


def make_view(rec, v2):
    view = dict(rec)
    d = dict(rec.get("dns") or {})
    view["dns"] = d
    if v2:
        # v2 names the first question at the top of the dns object.
        q = (d.get("queries") or [{}])[0]
        for k in ("rrname", "rrtype"):
            if k in q:
                d.setdefault(k, q[k])
        if d.get("type") == "response":
            view["src_ip"], view["dest_ip"] = rec.get("dest_ip"), rec.get("src_ip")
            view["src_port"], view["dest_port"] = rec.get("dest_port"), rec.get("src_port")
    return view


def filter_is_v2(flt, test_v2):
    """DNS EVE format a filter was written for: explicit dns.version, else the
    dns.type vocabulary (v2 query/answer, v3 request/response), else the
    test's SURICATA_EVE_DNS_VERSION. (Some v2-era tests set the version in a
    suricata.yaml the corpus does not carry.)"""
    m = flt.get("match") or {}
    if "dns.version" in m:
        return str(m["dns.version"]) == "2"
    t = m.get("dns.type")
    if t in ("query", "answer"):
        return True
    if t in ("request", "response"):
        return False
    if "dns.rrname" in m or "dns.rrtype" in m:
        return True  # only v2 names the first question at the top
    return test_v2


def classify_filter(flt, v2):
    """-> (criteria list of (key, parts, expected), None) or (None, skip reason)."""
    if not version_ok(flt.get("requires")):
        return None, "filter requires a Suricata version other than %d" % SURICATA_VERSION
    if flt.get("filename") not in (None, "eve.json"):
        return None, "reads output file %s" % flt.get("filename")
    match = flt.get("match") or {}
    et = match.get("event_type")
    if et is None and not any(str(k).startswith("dns.") for k in match):
        return None, "not a DNS filter"
    if et not in (None, "dns"):
        return None, "event_type %s" % et
    crit = []
    for k, v in match.items():
        k = str(k)
        if k in DROPPED_KEYS:
            continue
        if k in ("has-key", "not-has-key"):
            if not str(v).startswith("dns."):
                return None, "%s %s (not in our schema)" % (k, v)
            crit.append((k, split_path(str(v)), v))
            continue
        if k in GENERIC_KEYS:
            crit.append((k, split_path(k), v))
            continue
        if not k.startswith("dns."):
            return None, "field %s not in our schema" % k
        parts = split_path(k)
        if any(p in ("rrname_truncated",) for p in parts if isinstance(p, str)):
            return None, "field %s not in our schema" % k
        if k == "dns.type":
            v = {"query": "request", "answer": "response"}.get(v, v) if v2 else v
        crit.append((k, parts, v))
    return crit, None


def rec_matches(view, crit):
    for k, parts, exp in crit:
        if k == "has-key":
            if derived(view, parts) is MISSING:
                return False
            continue
        if k == "not-has-key":
            if derived(view, parts) is not MISSING:
                return False
            continue
        if k == "event_type":
            if view.get("event_type") != exp:
                return False
            continue
        if k == "pcap_cnt" and view.get("proto") == "TCP":
            # Suricata in IDS mode hands TCP data to the app layer when the
            # other side ACKs it, so its pcap_cnt for a TCP DNS record is a
            # later frame than the one completing the message (ours).
            continue
        if parts and parts[-1] == "rdata" and len(parts) >= 3:
            parent = derived(view, parts[:-1])
            if isinstance(parent, dict) and parent.get("rrtype") not in DECODED_TYPES:
                raise Unsupported("rdata of %s (we do not decode it)" % parent.get("rrtype"))
        got = derived(view, parts)
        if not values_equal(k, exp, got, view, parts):
            return False
    return True


def main():
    common.require_binary()
    rep = common.Report("golden_suricata")
    tests = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(SV, "tests")):
        dirnames.sort()
        if "test.yaml" in filenames:
            tests.append(dirpath)
    tests.sort()
    n_tests = n_filters = n_skipped_filters = 0
    pcaps = set()
    n_records = 0
    skipped_tests = []
    skipped_filters = []
    cache = {}
    for tdir in tests:
        name = os.path.relpath(tdir, os.path.join(SV, "tests"))
        with open(os.path.join(tdir, "test.yaml")) as f:
            y = yaml.safe_load(f) or {}
        checks = [c["filter"] for c in (y.get("checks") or []) if isinstance(c, dict) and "filter" in c]
        dns_like = [c for c in checks if (c.get("match") or {}).get("event_type") == "dns"
                    or ((c.get("match") or {}).get("event_type") is None
                        and any(str(k).startswith("dns.") for k in (c.get("match") or {})))]
        if not dns_like:
            continue
        if name in SKIP_TESTS:
            skipped_tests.append("%s: %s" % (name, SKIP_TESTS[name]))
            continue
        if not version_ok(y.get("requires")):
            skipped_tests.append("%s: requires %s (we compare with Suricata %d)" % (name, y.get("requires"), SURICATA_VERSION))
            continue
        args = " ".join(str(a) for a in (y.get("args") or []))
        m = re.search(r"detection-ports\.dp=(\d+)", args)
        if m and m.group(1) != "53":
            skipped_tests.append("%s: DNS moved to port %s by args (we parse port 53)" % (name, m.group(1)))
            continue
        pcap = find_pcap(tdir, y)
        if pcap is None:
            skipped_tests.append("%s: pcap not found" % name)
            continue
        v2 = str((y.get("env") or {}).get("SURICATA_EVE_DNS_VERSION", "")) == "2"
        if pcap not in cache:
            cache[pcap] = common.run_replay(pcap)
        res = cache[pcap]
        if res.rc != 0:
            rep.fail("%s: replay %s" % (name, res.describe_rc()))
            continue
        views_by = {v: [make_view(r, v) for r in res.records] for v in (False, True)}
        problems = []
        evaluated = 0
        for i, flt in enumerate(checks):
            fv2 = filter_is_v2(flt, v2)
            views = views_by[fv2]
            crit, why = classify_filter(flt, fv2)
            if crit is None:
                if flt in dns_like:
                    n_skipped_filters += 1
                    skipped_filters.append("%s filter #%d: %s" % (name, i + 1, why))
                continue
            try:
                got = sum(1 for v in views if rec_matches(v, crit))
            except Unsupported as e:
                n_skipped_filters += 1
                skipped_filters.append("%s filter #%d: field %s not in our schema" % (name, i + 1, e))
                continue
            evaluated += 1
            want = flt.get("count")
            ok = (got >= 1) if want is None else (got == want)
            if not ok:
                # explain which key fails on the closest candidate
                hint = closest(views, crit)
                problems.append("filter #%d: expected count %s, got %d; %s" % (
                    i + 1, want if want is not None else ">=1", got, hint))
        if evaluated == 0:
            continue
        n_tests += 1
        n_filters += evaluated
        pcaps.add(pcap)
        n_records += len(res.dns)
        status = "ok" if not problems else "%d problem(s)" % len(problems)
        print("%-55s %s filters=%d dns_records=%d %s" % (name, "v2" if v2 else "v3", evaluated, len(res.dns), status))
        for p in problems:
            print("    " + p)
        if problems:
            if EXPLAINED.get(name):
                print("    explained: " + EXPLAINED[name])
            else:
                rep.fail("%s: %d filter(s) failed (pcap %s)" % (name, len(problems), common.rel(pcap)))
    print()
    for s in skipped_tests:
        print("skipped test: " + s)
    for s in skipped_filters:
        print("skipped filter: " + s)
    if n_filters < 50:
        rep.fail("only %d filters evaluated" % n_filters)
    return rep.finish([
        "tests evaluated: %d, distinct pcaps: %d, DNS records in them: %d" % (n_tests, len(pcaps), n_records),
        "filters evaluated: %d, skipped: %d; tests skipped: %d" % (n_filters, n_skipped_filters, len(skipped_tests)),
    ])


def closest(views, crit):
    best, best_bad = None, None
    for v in views:
        bad = []
        for c in crit:
            try:
                if not rec_matches(v, [c]):
                    bad.append(c)
            except Unsupported:
                pass
        if best_bad is None or len(bad) < len(best_bad):
            best, best_bad = v, bad
    if best is None:
        return "no records at all"
    if not best_bad:
        return "(every record that matches is counted; count differs)"
    diffs = []
    for k, parts, exp in best_bad[:4]:
        got = derived(best, parts) if k not in ("has-key", "not-has-key") else "-"
        diffs.append("%s: want %r got %r" % (k, exp, None if got is MISSING else got))
    return "closest record pcap_cnt %s differs in %s" % (best.get("pcap_cnt"), "; ".join(diffs))


if __name__ == "__main__":
    sys.exit(main())
