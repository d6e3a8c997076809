#!/usr/bin/env python3
"""fleet_tls (issue 22): the fleet shares per (client, destination) TLS upload
volume. tests/data/fleet-lab/tls-split-upload.pcap is one upload split over
15 TLS connections to one server (README there); the NLB puts each
connection (its own source port) on one sensor (lab/fleet_split.py), so
each of 3 sensors sees a part of it.

Asserted: one replay of the whole capture raises the TLS upload alert; each
shard replayed alone raises none; the 3 shards replayed at once with
`--fleet` against one redis-server this test starts raise exactly one
initial TLS upload alert over the three processes, for the pair the whole
capture names; every key in Redis has an expiry, and the destination's keys
carry its hash tag. An ordinary TLS capture (API calls) keeps its pairs
out of Redis (the local floor) and raises nothing.

Live (`exfilwatch run`, the WorkerLink path): 3 sensors with `fleet:`
behind the balancer namespace that hashes the outer 5-tuple (fleet_common.Lab,
`exfilwatch mirror` giving each inner flow its own outer source port) raise
one initial TLS upload alert fleet-wide, as the single sensor fed the whole
capture does.
"""
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
import fleet_common as fc  # noqa: E402
import redis_common as rc  # noqa: E402
from detection_common import check, finish, no_rules_config  # noqa: E402

TLS_SIDS = {9000003, 9000004}
CAPTURE = os.path.join(fc.LAB_DATA, "tls-split-upload.pcap")
BENIGN_TLS = os.path.join(fc.SHARED, "captures", "https-8443-benign.pcap")
NO_TTL = ("local out = {} for _, k in ipairs(redis.call('KEYS', '*')) do "
          "if redis.call('TTL', k) == -1 then out[#out + 1] = k end end return out")


def tls_pairs(alerts, initial_only=True):
    """(signature_id, client, server, port) of each TLS upload alert, repeats kept."""
    chosen = fc.initial(alerts) if initial_only else alerts
    return [(a["alert"]["signature_id"], a.get("src_ip"), a.get("dest_ip"), a.get("dest_port"))
            for a in chosen if a["alert"]["signature_id"] in TLS_SIDS]


rc.need("redis-server", "redis-cli")
config = no_rules_config()
with tempfile.TemporaryDirectory(prefix="exfilwatch-fleet-tls-") as d:
    whole = tls_pairs(fc.replay([CAPTURE], config, d, "whole"))
    print("whole capture:", whole, flush=True)
    check(len(whole) == 1, f"one replay of the whole capture raises one TLS upload alert: {whole}")

    parts = fc.split_capture(CAPTURE, 3, d)
    alone = [tls_pairs(fc.replay([p], config, d, "alone%d" % i), False) for i, p in enumerate(parts)]
    print("each shard alone:", alone, flush=True)
    check(all(not a for a in alone), f"no shard alone raises a TLS upload alert: {alone}")

    node = rc.Redis(d, "node")
    url = f"redis://127.0.0.1:{node.port}"
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda ip: fc.replay([ip[1]], config, d, "fleet%d" % ip[0],
                                                  ("--fleet", url)), enumerate(parts)))
    got = [p for r in runs for p in tls_pairs(r)]
    every = [p for r in runs for p in tls_pairs(r, False)]
    print("3 shards with --fleet:", got, "all:", every, flush=True)
    check(len(got) == 1, f"3 shards with --fleet raise one initial TLS upload alert: {got}")
    check(set(got) == set(whole), f"... for the pair the whole capture names: {got} vs {whole}")
    check(len(every) == len(got), f"... and no update beside it: {every}")
    fleet_alert = [a for r in runs for a in r if a["alert"]["signature_id"] in TLS_SIDS]
    if fleet_alert:
        up = fc.reasons_of(fleet_alert[0]).get("upload_bytes_10m", 0)
        check(up >= 1000000, f"the fleet's alert reads the fleet's upload volume: {up}")

    keys = [k for k in node.cli("KEYS", "*").split("\n") if k]
    tls_keys = [k for k in keys if "{t:" in k]
    no_ttl = [k for k in node.cli("EVAL", NO_TTL, "0").split("\n") if k]
    check(bool(tls_keys), f"the shards shared the TLS pair in Redis ({len(tls_keys)} keys)")
    check(bool(tls_keys) and bool(whole) and
          all("{t:%s:%s}" % (whole[0][2], whole[0][3]) in k for k in tls_keys),
          f"the TLS keys carry the destination's hash tag: {tls_keys[:3]}")
    check(not no_ttl, f"all {len(keys)} keys in Redis have an expiry {no_ttl[:3]}")

    # API calls (small requests, larger answers): nothing shared, nothing raised.
    node.cli("FLUSHALL")
    if os.path.exists(BENIGN_TLS):
        benign = tls_pairs(fc.replay([BENIGN_TLS], config, d, "benign", ("--fleet", url)), False)
        keys = [k for k in node.cli("KEYS", "*").split("\n") if "{t:" in k]
        check(not benign and not keys,
              f"ordinary TLS pairs stay under the local floor: alerts {benign}, keys {keys[:3]}")
    node.kill()

    fc.need_root_tools("redis-server", "redis-cli")
    lab = fc.Lab(os.path.join(d, "live"), sensors=3, groups=("hash",), single=True, scale=1,
                 config_extra=lambda g: "" if g == "single" else
                 'fleet:\n  url: redis://%s:6379\n  flush_ms: 100\n' % fc.Lab.REDIS_ADDR)
    redis = lab.start_redis()
    lab.start_sensors()
    lab.mirror(CAPTURE)
    got = lab.stop_sensors(settle=3.0)
    single = tls_pairs(got["single"][0])
    per_sensor = [tls_pairs(a, False) for a in got["hash"]]
    fleet = [p for a in got["hash"] for p in tls_pairs(a)]
    print("live: single sensor", single, "3 sensors with the fleet", per_sensor, flush=True)
    for a in got["hash"]:
        for x in a:
            print("  live fleet alert:", (x.get("exfilwatch") or {}).get("reasons", "")[:200], flush=True)
    check(len(single) == 1, f"[live] the single sensor raises one TLS upload alert: {single}")
    check(len(fleet) == 1 and set(fleet) == set(single),
          f"[live] 3 sensors with the fleet raise one initial TLS upload alert: {per_sensor}")
    check(sum(map(len, per_sensor)) == 1, f"[live] and nothing else: {per_sensor}")
    keys = [k for k in redis.cli("KEYS", "*").split("\n") if "{t:" in k]
    check(bool(keys), f"[live] the sensors shared the TLS pair ({len(keys)} keys)")
    lab.close()
finish()
