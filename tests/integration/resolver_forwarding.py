#!/usr/bin/env python3
"""resolver_forwarding: what dnsmasq and unbound forward reaches the scorer.

Replays every recording in tests/data/resolver-forwarding (odd DNS messages a
client sent through a real resolver; README.md there) and checks, per file:
 * every query message whose first question tshark decodes is scored: the
   summary's `dns_scorer: queries=` equals tshark's count of such queries
   (nothing is dropped between the parser and the scorer because of its
   opcode, class, question count, compression or EDNS options);
 * our dns log reports each of those queries with that name first;
 * the oddity is named in the summary's anomalies, for the cases that have one.
"""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
import common  # noqa: E402

DATA = os.path.join(common.SOURCE_DIR, "tests", "data", "resolver-forwarding")

# case -> anomaly names the dnsmasq recording must show (the client's message
# and the forwarded copy carry the same oddity).
ANOMALIES = {
    "fwdptr-2q": ("dns.pointer_forward", "dns.multiple_questions"),
    "fwdptr-additional": ("dns.pointer_forward",),
    "iquery": ("dns.opcode_iquery",),
    "iquery-question": ("dns.opcode_iquery",),
    "status": ("dns.opcode_other",),
    "opcode3": ("dns.opcode_other",),
    "opcode15": ("dns.opcode_other",),
    "dso": ("dns.opcode_other",),
    "notify": ("dns.opcode_notify",),
    "update": ("dns.opcode_update",),
    "qd2": ("dns.multiple_questions",),
    "class-ch": ("dns.class_not_in",),
    "class-hs": ("dns.class_not_in",),
    "class-none": ("dns.class_not_in",),
    "class-any": ("dns.class_not_in",),
    "class-class0": ("dns.class_not_in",),
    "class-class4660": ("dns.class_not_in",),
    "edns-bad-option": ("dns.opt_bad",),
    "edns-two-opt": ("dns.opt_multiple",),
}


def tshark_queries(pcap):
    """(frame, qname canonical) of each query whose first name tshark decodes."""
    out = []
    for m in common.tshark_messages(pcap, wire_names=True):
        if not m["qr"] and m["qname"] not in (None, common.INVALID_NAME):
            out.append(m["qname"])
    return out


def one(pcap):
    res = common.run_replay(pcap)
    return pcap, res, tshark_queries(pcap)


def main():
    common.require_binary()
    files = sorted(os.path.join(DATA, r, f) for r in ("dnsmasq", "unbound")
                   for f in os.listdir(os.path.join(DATA, r)) if f.endswith(".pcap"))
    if len(files) < 60:
        common.die("expected the dnsmasq and unbound recordings in %s, found %d" % (DATA, len(files)))
    rep = common.Report("resolver_forwarding")
    scored_total = 0
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        results = list(ex.map(one, files))
    for pcap, res, theirs in results:
        r = os.path.relpath(pcap, DATA)
        case = os.path.basename(pcap)[:-5]
        if res.rc != 0:
            rep.fail("%s: replay %s" % (r, res.describe_rc()))
            continue
        m = re.search(r"^dns_scorer: queries=(\d+)", res.stderr, re.M)
        scored = int(m.group(1)) if m else -1
        # Every query whose first name tshark decodes is scored; later
        # questions and UPDATE/IQUERY record names are scored too (up to 4
        # names a message), so the scorer may count more names than that.
        queries = sum(1 for x in res.dns if x.get("dns", {}).get("type") == "query")
        if not len(theirs) <= scored <= 4 * max(queries, len(theirs)):
            rep.fail("%s: %d names scored, tshark decodes %d queries with a question (%d queries)"
                     % (r, scored, len(theirs), queries))
        scored_total += max(scored, 0)
        ours = sorted(common.norm_name_ours(common.our_msg(x)["qname_raw"]) for x in res.dns
                      if x.get("dns", {}).get("type") == "request" and common.our_msg(x)["qname_raw"] is not None)
        if ours != sorted(theirs):
            rep.fail("%s: first names of queries differ: ours %s, tshark %s" % (r, ours, sorted(theirs)))
        if r.startswith("dnsmasq/"):
            a = re.search(r"^anomalies: (.*)$", res.stderr, re.M)
            named = a.group(1) if a else ""
            for want in ANOMALIES.get(case, ()):
                if want + "=" not in named:
                    rep.fail("%s: anomaly %s not counted (anomalies: %s)" % (r, want, named))
    return rep.finish(["recordings: %d" % len(files), "queries scored: %d" % scored_total])


if __name__ == "__main__":
    sys.exit(main())
