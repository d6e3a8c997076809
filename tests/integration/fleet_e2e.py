#!/usr/bin/env python3
"""fleet_e2e: what a fleet of sensors behind the NLB detects without shared
state (issue 22), on the lab leaks of tests/data/fleet-lab merged into the
benign lab traffic stretched over one hour (fleet_common.mixed_capture).

1. Replay (packet time): one replay of the whole capture against the three
   shards ../shared/lab/fleet_split.py cuts for 3 sensors behind an NLB.
2. Live: 3 `exfilwatch run` sensors behind an nftables balancer hashing the
   outer 5-tuple (the NLB), 3 behind one hashing the outer source (source-IP
   stickiness, one mirrored ENI per client host) and one sensor alone, all
   fed at once by `exfilwatch mirror` (per-inner-flow outer source port) at
   60x, their windows scaled to match (fleet_common.scaled_config).

Asserted, in both: the slow leak (0.5 B/s for an hour) is flagged by one
sensor and missed by every shard; the base32 leak raises its alert once on
one sensor and once on each of the three; no pair of the leak spread over 5
hosts crosses, on one sensor or on a shard, while one sensor's domain view
(9000005: the domain over all its clients) flags it once and no shard's
does (each sees a third). Live, sticky: the per-pair alerts of the three
sensors together are the single sensor's. Verdicts are compared per
(signature, client, registered domain) over initial alerts; the per-pair DNS
verdict is signature 9000001; the domain view per domain.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import fleet_common as fc  # noqa: E402

PAIR_SID = 9000001  # the per-(client, registered domain) DNS scoring verdict
SLOW, B32, SPREAD = (fc.LEAKS[k] for k in ("slow-leak", "base32-leak", "spread-5hosts"))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def pair_alerts(alerts, domain):
    return [a for a in fc.initial(fc.for_domain(alerts, domain)) if a["alert"]["signature_id"] == PAIR_SID]


def domain_keys(alerts, domain):
    return fc.pairs(fc.for_domain(alerts, domain))


def leak_checks(label, one, parts):
    """one: alerts of a single sensor/replay; parts: alerts of each of 3."""
    check(bool(pair_alerts(one, SLOW)), f"[{label}] one sensor flags the slow leak ({SLOW})")
    for i, p in enumerate(parts):
        # Live, the daily information budget (score.dns.daily_info_bytes: its
        # day is not scaled with the windows) can carry the third of the leak
        # one sensor sees; replay's shards are cut as the NLB cuts them.
        if label == "replay":
            check(not pair_alerts(p, SLOW), f"[{label}] sensor {i} of 3 misses the slow leak")
        else:
            print(f"[{label}] sensor {i} of 3: slow leak {'flagged' if pair_alerts(p, SLOW) else 'missed'}")
    k1 = domain_keys(one, B32)
    check(bool(k1) and all(v == 1 for v in k1.values()),
          f"[{label}] one sensor: one initial alert per (signature, client) for the base32 leak: {dict(k1)}")
    for i, p in enumerate(parts):
        check(domain_keys(p, B32) == k1, f"[{label}] sensor {i} of 3 raises the same base32 alerts itself")
    total = sum((domain_keys(p, B32) for p in parts), fc.collections.Counter())
    print(f"[{label}] base32 leak: {sum(k1.values())} initial alert(s) on one sensor, "
          f"{sum(total.values())} over 3 sensors")
    # The spread: about 600 B a host in the hour, under every per-pair
    # threshold (the 1-hour window and the daily budget) even on one sensor
    # that sees all of a host's queries; the domain total is five times that.
    check(not pair_alerts(one, SPREAD), f"[{label}] the 5-host spread: no pair crosses on one sensor")
    n = len(fc.domain_view(one, SPREAD))
    check(n == 1, f"[{label}] one sensor's domain view flags the 5-host spread once ({n})")
    for i, p in enumerate(parts):
        check(not pair_alerts(p, SPREAD), f"[{label}] the 5-host spread: no pair crosses on sensor {i}")
        if label == "replay":
            check(not fc.domain_view(p, SPREAD),
                  f"[{label}] sensor {i} of 3 alone: its domain view misses the spread (a third of it)")


def main():
    fc.need_root_tools()
    with fc.tempdir() as d:
        mix = fc.mixed_capture(d)
        # 1. replay, packet time, default windows
        cfg = fc.scaled_config(d, "replay", 1)
        whole = fc.replay([mix], cfg, d, "whole")
        shards = [fc.replay([s], cfg, d, "shard%d" % i) for i, s in enumerate(fc.split_capture(mix, 3, d))]
        for name, a in [("whole", whole)] + [("shard%d" % i, s) for i, s in enumerate(shards)]:
            print(f"[replay] {name}: {len(fc.initial(a))} initial alerts, pairs "
                  f"{sorted(set((k[1], k[2]) for k in fc.pairs(a)))}")
        slow = pair_alerts(whole, SLOW)
        if slow:
            r = fc.reasons_of(slow[0])
            print(f"[replay] slow leak flagged after {r.get('queries_total')} queries, {r.get('duration_s')} s")
        leak_checks("replay", whole, shards)

        # 2. live, 60x, three groups at once
        lab = fc.Lab(d, sensors=3, groups=("hash", "sticky"), single=True, scale=60)
        lab.start_sensors()
        took = lab.mirror(mix)
        got = lab.stop_sensors()
        print(f"[live] capture mirrored in {took:.1f} s at 60x")
        sent = max(v or 0 for v in lab.sent.values())
        for g, ss in lab.sensors.items():
            got_n = [s.stats().get("datagrams", 0) for s in ss]
            print(f"[live] {g}: datagrams per sensor {got_n}")
            # a miss must come from the split, not from loss
            check(sum(got_n) == sent and all(s.stats().get("kernel_drops", 0) == 0 for s in ss),
                  f"[live] {g}: the sensors together received all {sent} datagrams mirrored, no drops")
        single = got["single"][0]
        leak_checks("live, 5-tuple hash", single, got["hash"])
        # stickiness: each ENI on one sensor, so each pair's state is whole there
        # (the domain view aside: stickiness puts a domain's hosts on several sensors)
        sticky = sum((fc.pairs_without_domain_view(a) for a in got["sticky"]), fc.collections.Counter())
        one = fc.pairs_without_domain_view(single)
        check(sticky == one,
              "[live, source-IP stickiness] the 3 sensors' initial alerts per (signature, client, domain) "
              f"are the single sensor's ({sum(sticky.values())} vs {sum(one.values())})")
        if sticky != one:
            print("  only sticky:", dict(sticky - one), " only single:", dict(one - sticky))
        print("[live, source-IP stickiness] domain view of the spread per sensor:",
              [len(fc.domain_view(a, SPREAD)) for a in got["sticky"]])
        # the time scaling keeps the verdicts of packet time on the leaks
        for dom in (SLOW, B32):
            check(bool(pair_alerts(single, dom)) == bool(pair_alerts(whole, dom)),
                  f"[live vs replay] one live sensor at 60x and one replay agree on {dom}")
        lab.close()
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
