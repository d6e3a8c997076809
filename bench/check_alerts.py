#!/usr/bin/env python3
"""check_alerts.py EVE LABELS: did the tunnels planted in the mixed capture
(gen_mixed.py's OUT.labels.tsv) raise alerts? Counts EVE alerts by client
and registered domain (DNS) or destination (TLS), prints one line per
planted tunnel with its alerts by signature, then every other alerted
(client, domain): on the benign part of the capture those are false
positives. Exit 1 when a planted tunnel has no alert.
"""
import collections
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    eve, labels_path = sys.argv[1], sys.argv[2]
    alerts = collections.defaultdict(collections.Counter)  # (client, domain) -> sid -> n
    names = {}
    total = 0
    with open(eve, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event_type") != "alert":
                continue
            total += 1
            a = rec["alert"]
            sid = a["signature_id"]
            names[sid] = a["signature"].replace(" (update)", "")
            dns = rec.get("dns")
            if dns is not None:
                client = rec["dest_ip"] if dns.get("type") == "response" else rec["src_ip"]
                queries = dns.get("queries") or [{}]
                domain = ((rec.get("exfilwatch") or {}).get("registered_domain")
                          or queries[0].get("rrname", "?"))
            else:  # TLS: the client is the side not on the server port
                if rec.get("dest_port") in (8443, 443):
                    client, domain = rec["src_ip"], "%s:%d" % (rec["dest_ip"], rec["dest_port"])
                else:
                    client, domain = rec["dest_ip"], "%s:%d" % (rec["src_ip"], rec["src_port"])
            alerts[(client, domain)][sid] += 1

    planted = []
    with open(labels_path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            planted.append(dict(zip(header, line.rstrip("\n").split("\t"))))

    def fmt(counter):
        return ", ".join("%d x %d %s" % (n, sid, names.get(sid, "")) for sid, n in sorted(counter.items()))

    missed = 0
    print("  detection on the mixed capture: %d alerts in all" % total)
    print("  %-12s %-12s %-20s %7s  %s" % ("planted", "client", "domain/destination", "alerts", "by signature"))
    for p in planted:
        key = (p["client"], p["domain_or_destination"])
        got = alerts.pop(key, collections.Counter())
        n = sum(got.values())
        missed += n == 0
        print("  %-12s %-12s %-20s %7d  %s%s" % (p["kind"], p["client"], p["domain_or_destination"], n,
                                                  fmt(got), "" if n else "MISSED"))
    others = sorted(alerts.items(), key=lambda kv: -sum(kv[1].values()))
    fp = sum(sum(c.values()) for _, c in others)
    print("  alerts outside the planted tunnels (benign traffic: false positives): %d on %d (client, domain) pairs"
          % (fp, len(others)))
    by_domain = collections.Counter()
    for (client, domain), c in others:
        by_domain[domain] += sum(c.values())
    for domain, n in by_domain.most_common(10):
        sids = collections.Counter()
        for (cl, d), c in others:
            if d == domain:
                sids.update(c)
        print("    %-40s %6d  %s" % (domain, n, fmt(sids)))
    print("  DETECTION: %d/%d planted tunnels alerted%s" % (len(planted) - missed, len(planted),
                                                          "" if not missed else "  <-- MISSED %d" % missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
