#!/usr/bin/env python3
"""detection_captures: every tunnel and exfiltration capture raises a scoring
alert naming its domain (uploads: the destination), with the analyst rules
on and off; the benign sets raise no alert at all. Prints, per capture, the
queries (or bytes) that passed before the first scoring alert.
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


print("capture\tmode\tnamed\tbefore_first_alert")
for pcap, want in POSITIVE:
    short = os.path.relpath(pcap, SHARED)
    for mode, extra in (("rules", ()), ("score-only", ("--config", no_rules_config()))):
        recs, _ = replay(pcap, *extra, dns_log=True)
        sa = score_alerts(recs)
        check_one_per_interval(short, mode, recs)
        hit = [a for a in sa if named(a) == want]
        check(bool(hit), f"{short} [{mode}]: scoring alert naming {want} (got {sorted({named(a) for a in sa})})")
        if not hit:
            continue
        first = hit[0]
        if first["proto"] == "TCP":
            before = f'{reasons(first).get("upload_bytes_10m")} bytes uploaded'
        else:
            # queries of the pair up to and including the alerting one
            client = first["src_ip"]
            n = sum(1 for r in recs if r["event_type"] == "dns" and r["dns"]["type"] == "query"
                    and r["src_ip"] == client and r["pcap_cnt"] <= first["pcap_cnt"])
            before = f"{n} queries"
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
