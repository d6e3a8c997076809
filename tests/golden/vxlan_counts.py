#!/usr/bin/env python3
"""For each capture in SHARED_DIR/captures (the VXLAN mirror lab), the number of
DNS messages `exfilwatch replay --dns-log` reports equals the number of DNS
PDUs tshark decodes in the same file (tshark decodes VXLAN on UDP 4789 by
default; TCP DNS is reassembled by both; several PDUs per frame are counted).

tshark is restricted to DNS on port 53 (inner UDP/TCP), not quoted in ICMP:
the same scope exfilwatch parses (see tshark_agreement.py). Also checks that
every one of our DNS records carries exfilwatch.tunnel {"type": "vxlan", "vni": 1234}
and Suricata's tunnel (outer packet to UDP 4789)
the lab uses (README: VNI 1234), and that the files labelled as DNS traffic
have DNS at all, so an empty-vs-empty pass is impossible for them.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LAB_VNI = 1234


def labels():
    out = {}
    p = os.path.join(common.SHARED_DIR, "captures", "LABELS.tsv")
    with open(p) as f:
        head = f.readline().rstrip("\n").split("\t")
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2:
                out[cols[0]] = dict(zip(head, cols))
    return out


def one(path):
    res = common.run_replay(path, timeout=300)
    n_tshark = common.tshark_count(path, common.TSHARK_PORT53_FILTER)
    return path, res, n_tshark


def main():
    common.require_binary()
    files = common.find_captures("captures")
    if not files:
        common.die("no captures in %s/captures" % common.SHARED_DIR)
    lab = labels()
    rep = common.Report("vxlan_counts")
    tot_ours = tot_theirs = 0
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        results = list(ex.map(one, files))
    for path, res, n_tshark in results:
        name = os.path.basename(path)
        if res.rc != 0:
            rep.fail("%s: replay %s" % (name, res.describe_rc()))
            continue
        dns = res.dns
        n_ours = len(dns)
        tot_ours += n_ours
        tot_theirs += n_tshark
        status = "ok" if n_ours == n_tshark else "MISMATCH"
        print("%-28s ours=%6d tshark=%6d  %s" % (name, n_ours, n_tshark, status))
        if n_ours != n_tshark:
            rep.fail("%s: %d DNS messages, tshark decodes %d" % (name, n_ours, n_tshark))
        bad_tunnel = [r for r in dns if (r.get("exfilwatch") or {}).get("tunnel") != {"type": "vxlan", "vni": LAB_VNI}
                      or (r.get("tunnel") or {}).get("dest_port") != 4789]
        if bad_tunnel:
            rep.fail("%s: %d DNS records without tunnel vxlan/%d, first: %r" % (
                name, len(bad_tunnel), LAB_VNI, (bad_tunnel[0].get("tunnel"), bad_tunnel[0].get("exfilwatch"))))
        what = (lab.get(name, {}).get("what", "") + " " + lab.get(name, {}).get("made_by", "")).lower()
        is_dns_traffic = any(w in what for w in ("iodine", "dns2tcp", "dig", "queries"))
        if is_dns_traffic and n_tshark == 0:
            rep.fail("%s: labelled as DNS traffic but tshark finds no DNS on port 53 (filter wrong?)" % name)
    return rep.finish([
        "captures: %d" % len(files),
        "DNS messages: ours=%d tshark=%d" % (tot_ours, tot_theirs),
    ])


if __name__ == "__main__":
    sys.exit(main())
