#!/usr/bin/env python3
"""fleet_e2e_shared: the fleet WITH shared state in Redis (issue 22, "Done
when"), on the lab leaks of tests/data/fleet-lab merged into the benign lab
traffic stretched over one hour (fleet_common.mixed_capture):

1. replay_shards: `exfilwatch replay --fleet URL` on the 3 NLB shards
   (../shared/lab/fleet_split.py), run at once against one redis-server,
   gives the initial alerts one replay of the whole capture gives: same
   (signature, client, registered domain) set, one initial alert per pair
   fleet-wide.
2. live_fleet: 3 `exfilwatch run` sensors with `fleet: url:` behind the
   5-tuple-hashing balancer give the single sensor's initial alerts, one
   per pair, and the domain view (9000005) flags the 5-host spread once
   fleet-wide, no pair of it crossing.
3. live_redis_restart: the same with redis-server killed mid-run and
   started again: the sensors keep running, flush to the new Redis and
   alerts continue after the restart (the slow leak still alerts, once).
4. domain_view: the leak spread over 5 hosts (about 600 B a host in the
   hour), which no (client, domain) pair crosses (neither a window nor the
   daily budget), is flagged by the domain view: once by one replay (no
   Redis) and once fleet-wide by the 3 shards with --fleet (each shard
   alone misses it: fleet_e2e); no benign domain is.
5. workers_2: one `exfilwatch run --config` with listen.workers 2 and no
   Redis, fed by `exfilwatch mirror`: the 5 hosts' clients land on both
   workers (each processes datagrams), and the domain view, one table per
   sensor shared by its workers, flags the spread once (one worker's part
   alone would miss it: tests/unit/test_score.cc).

The domain view's alert names whichever client tipped it, so the verdicts
are compared per (signature, client, domain) without it, and it per domain.
About 4 minutes (three live runs of 60 s at 60x). Run as root:
EXFILWATCH=build/exfilwatch python3 tests/integration/fleet_e2e_shared.py [NAME...]
"""
import collections
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import fleet_common as fc  # noqa: E402
import redis_common as rc  # noqa: E402

PAIR_SID = 9000001  # the per-(client, registered domain) DNS scoring verdict
SLOW, B32, SPREAD = (fc.LEAKS[k] for k in ("slow-leak", "base32-leak", "spread-5hosts"))
SCALE = 60
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def fleet_block(url, prefix, flush_ms=100):
    # flush_ms: at 60x, 100 ms of receive time is 6 s of packet time, well
    # inside the shortest (scaled) window of 1 s.
    return 'fleet:\n  url: %s\n  key_prefix: "%s"\n  flush_ms: %d\n' % (url, prefix, flush_ms)


def total(per_sensor):
    return sum((fc.pairs_without_domain_view(a) for a in per_sensor), collections.Counter())


def domain_view(alerts, domain):
    return fc.domain_view(alerts, domain)


def pair_alerts(alerts, domain):
    return [a for a in fc.initial(fc.for_domain(alerts, domain)) if a["alert"]["signature_id"] == PAIR_SID]


def same_as_one(label, one, fleet):
    """fleet: Counter over the fleet; one: Counter of one sensor/replay."""
    check(set(fleet) == set(one), f"[{label}] the fleet raises the single sensor's initial alerts "
          f"({len(fleet)} vs {len(one)} (signature, client, domain))")
    if set(fleet) != set(one):
        print("  only fleet:", sorted(set(fleet) - set(one)), " only one:", sorted(set(one) - set(fleet)))
    extra = {k: v for k, v in fleet.items() if v > 1}
    check(not extra, f"[{label}] one initial alert per pair fleet-wide (more: {extra})")


def replay_fleet_shards(d, redis, name):
    """The 3 shards replayed at once with `--fleet URL` against one empty
    Redis."""
    redis.cli("FLUSHALL")
    shards = fc.split_capture(fc.mixed_capture(d), 3, d)
    cfg = fc.scaled_config(d, "replay", 1)
    procs, eves = [], []
    for i, s in enumerate(shards):
        eve = os.path.join(d, "%s.shard%d.json" % (name, i))
        eves.append(eve)
        procs.append(subprocess.Popen([fc.EXE, "replay", "--config", cfg, "--fleet", redis.url, "--eve", eve,
                                       "--quiet", s], stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=900)
        check(p.returncode == 0, "replay --fleet of a shard exits 0 " + err[-300:])
    return [fc.read_eve(e) for e in eves]


def replay_shards(d, redis):
    whole = fc.replay([fc.mixed_capture(d)], fc.scaled_config(d, "replay1", 1), d, "whole")
    shards = replay_fleet_shards(d, redis, "replay")
    same_as_one("replay --fleet, 3 shards", fc.pairs_without_domain_view(whole), total(shards))
    check(any(fc.for_domain(s, SLOW) for s in shards), "[replay --fleet] the slow leak is flagged")


def live(d, hooks_for=None, name="live"):
    """3 sensors with fleet: behind the 5-tuple balancer, one without."""
    lab = fc.Lab(os.path.join(d, name), sensors=3, groups=("hash",), single=True, scale=SCALE,
                 config_extra=lambda g: "" if g == "single" else
                 fleet_block("redis://%s:6379" % fc.Lab.REDIS_ADDR, "exfilwatch:%s:" % name))
    redis = lab.start_redis()
    lab.start_sensors()
    hooks = hooks_for(lab, redis) if hooks_for else []
    lab.mirror(fc.mixed_capture(d), hooks=hooks)
    keys_after = int(redis.cli("DBSIZE") or 0)
    got = lab.stop_sensors()
    return lab, got, keys_after


def live_fleet(d):
    """One live run serves the fleet-equals-one checks and the domain view's."""
    lab, got, keys = live(d, name="live")
    check(keys > 0, f"[live fleet] the sensors' state is in Redis ({keys} keys at the end)")
    same_as_one("live fleet, 3 sensors", fc.pairs_without_domain_view(got["single"][0]), total(got["hash"]))
    n = sum(len(domain_view(s, SPREAD)) for s in got["hash"])
    check(n == 1, f"[domain view] 3 live sensors with the fleet state: the 5-host spread flagged once ({n})")
    p = sum(len(pair_alerts(s, SPREAD)) for s in got["hash"] + got["single"])
    check(p == 0, f"[domain view] live: no pair of the 5-host spread crosses ({p} pair alerts)")
    lab.close()


def live_redis_restart(d):
    times = {}

    def hooks(lab, redis):
        def kill():
            redis.kill()
            times["killed"] = time.time()

        def start():
            redis.start()
            times["started"] = time.time()
        # receive seconds 5 and 10: packet minutes 5 and 10 of the hour
        return [(5, kill), (10, start)]
    lab, got, keys = live(d, hooks, name="restart")
    check(set(times) == {"killed", "started"}, "redis-server was killed and started again mid-run")
    check(keys > 0, f"[redis restart] the sensors flush to the restarted Redis ({keys} keys)")
    after = [a for s in got["hash"] for a in s
             if fc.epoch(a.get("timestamp", "")) > times.get("started", float("inf"))]
    check(bool(after), f"[redis restart] alerts continue after the restart ({len(after)} alerts)")
    slow = [a for s in got["hash"] for a in fc.initial(fc.for_domain(s, SLOW))
            if a["alert"]["signature_id"] == PAIR_SID]
    check(len(slow) == 1, f"[redis restart] the slow leak is flagged once fleet-wide ({len(slow)})")
    for s in lab.sensors["hash"]:
        check(s.proc.returncode == 0, f"[redis restart] {s.name} ran through and stopped cleanly")
    lab.close()


def domain_view_spread(d, redis):
    whole = fc.replay([fc.mixed_capture(d)], fc.scaled_config(d, "replay1", 1), d, "whole")
    check(not pair_alerts(whole, SPREAD),
          "[domain view] one replay: no (client, domain) pair of the 5-host spread crosses")
    dv = domain_view(whole, SPREAD)
    check(len(dv) == 1, f"[domain view] one replay (no Redis) flags the 5-host spread ({SPREAD}) once")
    if dv:
        r = fc.reasons_of(dv[0])
        print("  reasons:", (dv[0].get("exfilwatch") or {}).get("reasons", "")[:300])
        check(int(float(r.get("clients", "0"))) >= 5, "[domain view] its reasons count the 5 clients")
        values = (dv[0].get("exfilwatch") or {}).get("values", {})
        check(isinstance(values.get("clients"), (int, float)) and isinstance(values.get("domain_info_bytes_1h"), (int, float)),
              "[domain view] EVE's exfilwatch.values has clients and domain_info_bytes_1h as numbers")
    others = {fc.domain_of(a) for a in fc.initial(whole) if a["alert"]["signature_id"] == fc.DOMAIN_SID}
    check(others <= set(fc.LEAKS.values()), f"[domain view] flags no benign domain ({sorted(others)})")
    shards = replay_fleet_shards(d, redis, "dv")
    n = sum(len(domain_view(s, SPREAD)) for s in shards)
    check(n == 1, f"[domain view] replay --fleet on 3 shards: flagged once fleet-wide ({n})")
    p = sum(len(pair_alerts(s, SPREAD)) for s in shards)
    check(p == 0, f"[domain view] replay --fleet on 3 shards: no pair of the spread crosses ({p})")


def workers_2(d):
    lab = fc.Lab(os.path.join(d, "workers2"), sensors=0, groups=(), single=True, scale=SCALE, workers=2)
    lab.start_sensors()
    lab.mirror(fc.mixed_capture(d))
    sensor = lab.sensors["single"][0]
    got = lab.stop_sensors()["single"][0]
    log = sensor.log().splitlines()
    processed = {}
    for line in log:  # the last per-worker lines are the final ones
        if line.startswith("stats worker="):
            kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            processed[kv["worker"]] = int(kv["processed"])
    check(len(processed) == 2 and all(v > 0 for v in processed.values()),
          f"[workers 2] both workers process the 5 hosts' traffic ({processed})")
    n = len(domain_view(got, SPREAD))
    check(n == 1, f"[workers 2] one sensor with 2 workers, no Redis: the 5-host spread flagged once ({n})")
    p = len(pair_alerts(got, SPREAD))
    check(p == 0, f"[workers 2] no pair of the 5-host spread crosses ({p} pair alerts)")
    others = {fc.domain_of(a) for a in fc.initial(got) if a["alert"]["signature_id"] == fc.DOMAIN_SID}
    check(others <= set(fc.LEAKS.values()), f"[workers 2] the domain view flags no benign domain ({sorted(others)})")
    lab.close()


TESTS = ["replay_shards", "live_fleet", "live_redis_restart", "domain_view", "workers_2"]


def main():
    fc.need_root_tools("redis-server", "redis-cli")
    names = sys.argv[1:] or list(TESTS)
    with fc.tempdir() as d:
        redis = rc.Redis(d, "replay")  # loopback, for the replays
        redis.url = "redis://127.0.0.1:%d" % redis.port
        for n in names:
            print("== " + n, flush=True)
            if n == "replay_shards":
                replay_shards(d, redis)
            elif n == "live_fleet":
                live_fleet(d)
            elif n == "live_redis_restart":
                live_redis_restart(d)
            elif n == "domain_view":
                domain_view_spread(d, redis)
            elif n == "workers_2":
                workers_2(d)
            else:
                raise SystemExit("unknown test " + n)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
