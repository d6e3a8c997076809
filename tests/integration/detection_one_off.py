#!/usr/bin/env python3
"""detection_one_off: one-off random-ID names of cloud services (function
URLs, object-storage and CDN object hosts, app-platform and tracker ids)
never raise a scoring alert on their own, however tunnel-shaped: a tunnel
is a channel, so a verdict needs several new names of one pair within a
window (score.dns.min_new_names) or a rule. The same names sent by one
client in a burst, as a channel would, do alert.

The case is built here: 300 clients over an hour, each asking one or two
random ids (base32, hex, alphanumeric; 20-56 characters) under a handful of
cloud-style domains that are not in the public suffix list.
"""
import os
import random
import string
import tempfile

from detection_common import check, finish, no_rules_config, replay, score_alerts
from dns_synth import frame, write_pcap

rng = random.Random(23)
DOMAINS = ["lambda-url.eu-west-3.example-cloud.com", "objects.storage-example.net",
           "apps.platform-example.io", "t.tracker-example.com", "edge.cdn-example.org"]
ALPHABETS = [string.ascii_lowercase + "234567", "0123456789abcdef", string.ascii_lowercase + string.digits]


def random_id():
    a = rng.choice(ALPHABETS)
    return "".join(rng.choice(a) for _ in range(rng.randrange(20, 57)))


t0 = 1_700_000_000
one_off, burst = [], []
qid = 0
for c in range(300):
    client = [10, 60, c // 250, 1 + c % 250]
    for _ in range(rng.choice((1, 1, 2))):
        qid += 1
        one_off.append((t0 + rng.uniform(0, 3600), frame(client, qid, f"{random_id()}.{rng.choice(DOMAINS)}")))
# Control: one client, 12 new ids under one domain in a minute.
for i in range(12):
    burst.append((t0 + 5 * i, frame([10, 61, 0, 1], 60000 + i, f"{random_id()}.{DOMAINS[0]}")))


def gate_off_config():
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write("rules:\n  enabled: false\nscore:\n  dns:\n    min_new_names: 1\n")
    return path


with tempfile.TemporaryDirectory() as d:
    p_one, p_burst = os.path.join(d, "one_off.pcap"), os.path.join(d, "burst.pcap")
    write_pcap(p_one, one_off)
    write_pcap(p_burst, burst)
    for mode, extra in (("rules", ()), ("score-only", ("--config", no_rules_config()))):
        recs, _ = replay(p_one, *extra)
        sa = score_alerts(recs)
        check(not sa, f"[{mode}] {len(one_off)} one-off cloud ids from 300 clients: no scoring alert ({len(sa)})")
        recs, _ = replay(p_burst, *extra)
        check(bool(score_alerts(recs)), f"[{mode}] the same kind of ids as a burst from one client: alert")
    # Without the repeated-use gate the one-off names do alert: the case is real.
    recs, _ = replay(p_one, "--config", gate_off_config())
    n = len(score_alerts(recs))
    print(f"min_new_names: 1 -> {n} scoring alerts on the one-off names")
    check(n > 0, "with min_new_names 1 the one-off ids alert (the gate is what holds them)")
finish()
