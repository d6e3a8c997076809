#!/usr/bin/env python3
"""detection_captures: every tunnel and exfiltration capture raises an alert
naming its domain (uploads: the destination) with the analyst rules on, and
a scoring alert with them off when it is a channel (at least
score.dns.min_new_names new names from one client); within 10 queries of
the pair; one alert per pair and detector per interval. The benign sets
raise no alert at all. Prints, per capture, the queries (or bytes) of the
pair up to the first alert.
"""
import collections
import datetime
import glob
import os

from detection_common import (SHARED, check, finish, named, no_rules_config, reasons, replay,
                              score_alerts, alerts)

C = os.path.join(SHARED, "captures")
T = os.path.join(SHARED, "corpus", "tunnels")
POSITIVE = [
    (f"{C}/iodine-null.pcap", "tunnel-lab.net"),
    (f"{C}/iodine-txt-base32.pcap", "tunnel-lab.net"),
    (f"{C}/dns2tcp-txt.pcap", "tunnel-lab.net"),
    (f"{C}/slow-hex-exfil.pcap", "example-c2.com"),
    (f"{C}/https-8443-upload.pcap", "10.53.0.1:8443"),
    (f"{T}/nDPI/dns-tunnel-iodine.pcap", "pirate.sea"),
    (f"{T}/nDPI/bad-dns-traffic.pcap", "skullseclabs.org"),
    (f"{T}/nDPI/dns-exf.pcap", "test.txt"),
    # dnscat2 straight to its server, names without a TLD: the pair is the server
    (f"{T}/nDPI/dns_exfiltration.pcap", "@192.168.203.167"),
] + [(p, "example.attack") for p in sorted(glob.glob(f"{T}/korving-dns-tunnel-dataset/**/*.pcap", recursive=True))]

BENIGN = [f"{C}/benign-dns.pcap", f"{C}/https-8443-benign.pcap"] + sorted(
    p for p in glob.glob(os.path.join(SHARED, "corpus", "benign", "**", "*"), recursive=True)
    if p.endswith((".pcap", ".pcapng")))

SUPPRESS_S = 300  # detect.suppress_seconds default


def ts(rec):
    return datetime.datetime.strptime(rec["timestamp"][:19], "%Y-%m-%dT%H:%M:%S").timestamp()


def check_one_per_interval(short, mode, recs):
    """One alert per (client, aggregation domain, detector) per interval:
    names without a public suffix included (their domain is "@server")."""
    by = collections.defaultdict(list)
    for a in alerts(recs):
        client = a["dest_ip"] if a.get("dns", {}).get("type") == "response" else a["src_ip"]
        by[(client, named(a), a["alert"]["signature_id"])].append(ts(a))
    worst = max(((len(t) - 1 - (max(t) - min(t)) // SUPPRESS_S, k) for k, t in by.items()), default=(0, None))
    check(worst[0] <= 0, f"{short} [{mode}]: one alert per pair and detector per interval "
          f"({sum(map(len, by.values()))} alerts, {len(by)} pairs; worst {worst[1]})")


MIN_NEW_NAMES = 3  # score.dns.min_new_names default: a scoring verdict needs repeated use
TTD_MAX = 10       # queries of the pair up to the first alert, for every DNS tunnel

print("capture\tmode\tnamed\tbefore_first_alert")
for pcap, want in POSITIVE:
    short = os.path.relpath(pcap, SHARED)
    for mode, extra in (("rules", ()), ("score-only", ("--config", no_rules_config()))):
        recs, _ = replay(pcap, *extra, dns_log=True)
        check_one_per_interval(short, mode, recs)
        every = [a for a in alerts(recs) if named(a) == want]
        hit = [a for a in score_alerts(recs) if named(a) == want]
        queries = [r for r in recs if r["event_type"] == "dns" and r["dns"]["type"] == "request"
                   and (r.get("exfilwatch") or {}).get("registered_domain") == want]
        names = collections.Counter(r["src_ip"] for r in {(q["src_ip"], q["dns"]["queries"][0]["rrname"]): q
                                                         for q in queries}.values())
        channel = not queries or max(names.values()) >= MIN_NEW_NAMES
        if mode == "rules":
            check(bool(every), f"{short} [{mode}]: an alert naming {want} (got {sorted({named(a) for a in alerts(recs)})})")
            first = every[0] if every else None
        elif channel:
            check(bool(hit), f"{short} [{mode}]: scoring alert naming {want} (got {sorted({named(a) for a in score_alerts(recs)})})")
            first = hit[0] if hit else None
        else:
            # Fewer new names than min_new_names from any client: not a channel
            # to the scorer; the rules must have caught it (checked above).
            print(f"{short}\t{mode}\t{want}\tbelow min_new_names ({max(names.values())} names): rules only")
            continue
        if first is None:
            continue
        if first["proto"] == "TCP":
            before = f'{reasons(first).get("upload_bytes_10m")} bytes uploaded'
        else:
            client = first["src_ip"]
            n = sum(1 for q in queries if q["src_ip"] == client and q["pcap_cnt"] <= first["pcap_cnt"])
            before = f"{n} queries"
            check(n <= TTD_MAX, f"{short} [{mode}]: detected within {TTD_MAX} queries of the pair ({n})")
        print(f"{short}\t{mode}\t{want}\t{before}", flush=True)

for pcap in BENIGN:
    short = os.path.relpath(pcap, SHARED)
    recs, _ = replay(pcap)
    a = alerts(recs)
    check(not a, f"{short}: no alert at all ({len(a)}: {[x['alert']['signature'] for x in a[:3]]})")
    recs, _ = replay(pcap, "--config", no_rules_config())
    sa = score_alerts(recs)
    check(not sa, f"{short}: no scoring alert with the rules off ({[reasons(x).get('first_name') for x in sa[:3]]})")
finish()
