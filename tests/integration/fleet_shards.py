#!/usr/bin/env python3
"""fleet_shards (issue 22): `exfilwatch replay --fleet` on 3 shards of a
capture, split the way the NLB splits a mirror (lab/fleet_split.py) and
replayed at once against one redis-server this test starts, detects what one
replay of the whole capture detects, with one initial alert per (client,
domain) pair over the three processes, not one per shard.

Captures: the shared tunnel captures (iodine base32 and NULL, dns2tcp), the
hex leak re-timed by lab/pcap_even_dns.py to a slow leak that no shard sees
enough of on its own (the shards without --fleet are shown to miss it), and
a fast base32 leak (alerted by every shard alone, once with --fleet), and
the benign capture (no alert either way). Then: every key in Redis has an
expiry (a key with TTL -1 fails), and a wrong URL or password stops replay
with an error naming the fleet key.
"""
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
import redis_common as rc  # noqa: E402
from detection_common import check, finish, no_rules_config  # noqa: E402
from fleet_leaks import write_base32_leak, write_daily_leak, write_slow_leak  # noqa: E402

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
LAB = os.path.join(SHARED, "lab")
SCORE_SID = 9000001
# Keys without an expiry (TTL -1), listed by the server in one call.
NO_TTL = ("local out = {} for _, k in ipairs(redis.call('KEYS', '*')) do "
          "if redis.call('TTL', k) == -1 then out[#out + 1] = k end end return out")


def run(args, timeout=600):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return r


def replay(pcap, *extra):
    r = run([EXE, "replay", "--config", no_rules_config(), *extra, pcap])
    if r.returncode != 0:
        raise RuntimeError(f"replay {pcap} {extra} failed ({r.returncode}): {r.stderr}")
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return recs, r.stderr


def initial_pairs(recs):
    """(client, domain) of each initial DNS scoring alert, with repeats."""
    out = []
    for a in recs:
        if a.get("event_type") != "alert" or a["alert"]["signature_id"] != SCORE_SID:
            continue
        if a["alert"]["signature"].endswith("(update)"):
            continue
        out.append((a["src_ip"], (a.get("dns") or {}).get("registered_domain", "")))
    return out


def shards(pcap, d, name):
    pre = os.path.join(d, name)
    r = run([sys.executable, os.path.join(LAB, "fleet_split.py"), pcap, "3", pre])
    assert r.returncode == 0, r.stderr
    return [f"{pre}.{i}.pcap" for i in range(3)]


rc.need("redis-server", "redis-cli")
with tempfile.TemporaryDirectory() as d:
    node = rc.Redis(d, "node")
    url = f"redis://127.0.0.1:{node.port}"

    slow = os.path.join(d, "slow-leak.pcap")
    write_slow_leak(slow)
    b32 = os.path.join(d, "base32-leak.pcap")
    write_base32_leak(b32)
    daily = os.path.join(d, "daily-leak.pcap")
    write_daily_leak(daily)

    captures = [os.path.join(SHARED, "captures", c) for c in
                ("iodine-txt-base32.pcap", "iodine-null.pcap", "dns2tcp-txt.pcap", "benign-dns.pcap")]
    captures += [slow, b32, daily]
    for pcap in captures:
        name = os.path.basename(pcap)
        whole, _ = replay(pcap)
        want = Counter(initial_pairs(whole))
        parts = shards(pcap, d, name)
        node.cli("FLUSHALL")
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda p: replay(p, "--fleet", url), parts))
        got = Counter()
        for recs, _ in results:
            got.update(initial_pairs(recs))
        print(f"{name}: whole {dict(want)}; 3 shards with --fleet {dict(got)}", flush=True)
        check(set(got) == set(want), f"{name}: 3 shards with --fleet detect the pairs one replay does")
        check(all(n == 1 for n in got.values()), f"{name}: one initial alert per pair over the shards")
        if "fleet: flushes=" not in results[0][1]:
            check(False, f"{name}: replay --fleet reports its fleet counters")
        # every key expires with its window
        keys = int(node.cli("DBSIZE") or 0)
        no_ttl = [k for k in node.cli("EVAL", NO_TTL, "0").split("\n") if k]
        check(keys > 0 or not want, f"{name}: the shards shared state in Redis ({keys} keys)")
        check(not no_ttl, f"{name}: all {keys} keys in Redis have an expiry {no_ttl[:3]}")
        if pcap == b32:
            alone = Counter()
            for p in parts:
                recs, _ = replay(p)
                alone.update(initial_pairs(recs))
            check(bool(want) and all(alone[k] == 3 for k in want),
                  f"without --fleet the base32 leak is alerted once per shard: {dict(alone)}")
        if pcap in (slow, daily):
            what = "slow" if pcap == slow else "daily-budget"
            check(bool(want), f"the {what} leak is detected on the whole capture")
            if pcap == daily:
                first = next(a["exfilwatch"]["values"] for a in whole if a.get("event_type") == "alert")
                check(first["info_bytes_1h"] < 2500 and first["info_bytes_24h"] > 1400,
                      f"the daily-budget leak is caught by its 24-hour information, under the hour's: {first}")
            alone = Counter()
            for p in parts:
                recs, _ = replay(p)
                alone.update(initial_pairs(recs))
            check(not (set(want) & set(alone)),
                  f"the {what} leak is missed by each shard alone (without --fleet): {dict(alone)}")

    # bad URL / password: a clear error naming the key, nothing replayed
    r = run([EXE, "replay", "--fleet", "redis://127.0.0.1:1", captures[0]])
    check(r.returncode == 2 and "fleet.url" in r.stderr, f"closed port: exit 2 naming fleet.url: {r.stderr.strip()}")
    r = run([EXE, "replay", "--fleet", "http://x", captures[0]])
    check(r.returncode == 2 and "fleet.url" in r.stderr, f"bad scheme: exit 2 naming fleet.url: {r.stderr.strip()}")
    node.kill()
finish()
