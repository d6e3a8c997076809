"""fleet_redis (issue 22): the fleet's Redis client (src/fleet) against real
redis-server processes this test starts on loopback, driven by
tests/integration/fleet_probe.cc:
- one node with a password and an ACL user: pipelined INCRBY / PFADD /
  SET NX EX / EXPIRE replies as Redis gives them, SELECT, error replies, and a
  start-up check that names a wrong password, an unknown user, a missing
  password and a closed port;
- a 3-master cluster: every key lands on the master of its slot (CLUSTER
  KEYSLOT agrees with the client), keys spread over all masters; a slot
  migrated by hand (SETSLOT MIGRATING/IMPORTING + MIGRATE, then SETSLOT NODE)
  answers ASK and then MOVED, and the counts stay right;
- TLS with certificates made by openssl now (client certificate required):
  replies, and clear errors for an untrusted CA and a wrong server name;
- Redis killed mid-run and restarted: down reported once, reconnects with
  backoff, up reported once, queued batches then succeed, overflow counted;
- fake servers that answer garbage or too slowly: errors counted, reconnects,
  no crash.
Every process it starts is killed at the end."""
import json
import os
import queue
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import redis_common as rc  # noqa: E402

PROBE = os.environ.get("FLEET_PROBE") or os.path.join(os.environ.get("BUILD_DIR", "build"), "tests",
                                                      "fleet_probe")


class Probe:
    """One fleet_probe, stepped line by line; state events and asynchronous
    batch results are kept aside."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([PROBE] + [str(a) for a in args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        rc._PROCESSES.append(self.proc)
        self.lines = queue.Queue()
        self.events = []
        self.results = {}
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def _next(self, timeout):
        try:
            obj = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("fleet_probe said nothing for %d s" % timeout)
        if obj is None:
            raise AssertionError("fleet_probe ended: " + self.proc.stderr.read())
        return obj

    def step(self, line, timeout=30):
        """Sends one step; returns its answer (state events and the results of
        earlier `submit`s arriving meanwhile are kept aside)."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        want = None
        if line.split()[0] in ("batch", "submit"):
            self.next_id += 1
            want = self.next_id
        while True:
            obj = self._next(timeout)
            if "event" in obj:
                self.events.append(obj)
            elif "ok" in obj and obj["batch"] != want:
                self.results[obj["batch"]] = obj
            else:
                return obj

    def stats(self):
        return self.step("stats")["stats"]

    def close(self):
        self.proc.stdin.close()
        final = None
        while True:
            try:
                obj = self._next(30)
            except AssertionError:
                break
            if "event" in obj:
                self.events.append(obj)
            elif "stats" in obj:
                final = obj["stats"]
            elif "ok" in obj:
                self.results[obj["batch"]] = obj
        assert self.proc.wait(timeout=30) == 0, self.proc.stderr.read()
        return final

    def states(self):
        return [e["up"] for e in self.events]


def check(*args):
    r = subprocess.run([PROBE] + [str(a) for a in args] + ["--check", "5000"], capture_output=True, text=True,
                       timeout=60)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (r.returncode == 0) == (out["check"] == "ok"), (r.returncode, out)
    return out


def batch(probe, *commands):
    r = probe.step("batch " + " ; ".join(commands))
    assert r["ok"], r
    return r["replies"]


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def single_node(d):
    node = rc.Redis(d, "single", password="admin-pw")
    node.cli("acl", "setuser", "sensor", "on", ">sensor-pw", "~exfilwatch:*", "+@all")
    pw = write(d, "sensor.pw", "sensor-pw\n")
    url = "redis://sensor@127.0.0.1:%d" % node.port

    assert check("--url", url, "--password_file", pw) == {"check": "ok"}
    bad = write(d, "bad.pw", "nope\n")
    out = check("--url", url, "--password_file", bad)
    assert out["message"] == ("fleet.password_file: AUTH as user 'sensor' refused by 127.0.0.1:%d: WRONGPASS "
                              "invalid username-password pair or user is disabled." % node.port), out
    out = check("--url", "redis://nobody@127.0.0.1:%d" % node.port, "--password_file", pw)
    assert out["message"].startswith("fleet.password_file: AUTH as user 'nobody' refused by"), out
    out = check("--url", "redis://127.0.0.1:%d" % node.port)
    assert out["message"] == ("fleet.password_file: 127.0.0.1:%d requires a password (set fleet.password_file): "
                              "NOAUTH Authentication required." % node.port), out
    closed = rc.free_tcp_port()
    out = check("--url", "redis://127.0.0.1:%d" % closed)
    assert out["message"] == "fleet.url: cannot connect to 127.0.0.1:%d: Connection refused" % closed, out
    out = check("--url", "redis://no-such-host.invalid:6379")  # NXDOMAIN, or no resolver at all
    assert out["message"].startswith("fleet.url: ") and "no-such-host.invalid" in out["message"], out

    p = Probe("--url", url + "/3", "--password_file", pw)
    t = "exfilwatch:{c:10.0.0.7|example.com}"
    replies = batch(p, "INCRBY %s:q 5" % t, "INCRBY %s:q 7" % t, "PFADD %s:n a b c" % t, "PFADD %s:n a" % t,
                    "PFCOUNT %s:n" % t, "SET %s:s v NX EX 60" % t, "SET %s:s w NX EX 60" % t,
                    "EXPIRE %s:q 60" % t, "TTL %s:q" % t, "GET %s:s" % t, "GET other:key", "PING")
    assert replies[:8] == [5, 12, 1, 0, 3, {"status": "OK"}, None, 1], replies
    assert 55 <= replies[8] <= 60 and replies[9] == "v", replies
    assert replies[10]["error"].startswith("NOPERM"), replies  # the ACL user's key pattern
    assert replies[11] == {"status": "PONG"}, replies
    # What Redis holds, read by redis-cli in database 3 (SELECT on connect).
    assert node.cli("-n", 3, "get", t + ":q") == "12"
    assert node.cli("-n", 0, "exists", t + ":q") == "0"
    assert node.cli("-n", 3, "pfcount", t + ":n") == "3"
    s = p.close()
    assert s["errors"]["reply"] == 1 and s["commands_sent"] == 12 and s["batches_completed"] == 1, s
    assert p.states() == [True], p.events

    # A wrong password after start: down once, counted, no crash.
    p = Probe("--url", url, "--password_file", bad, "--backoff-min-ms", 20, "--backoff-max-ms", 40)
    assert p.step("wait_down 5000") == {"wait_down": True}
    time.sleep(0.3)
    s = p.close()
    assert p.states() == [False] and "WRONGPASS" in p.events[0]["reason"], p.events
    assert s["errors"]["auth"] >= 3 and s["connects"] == 0, s
    print("single node: replies, SELECT, NOPERM, start-up check errors: ok")


def cluster(d):
    c = rc.Cluster(d)
    url = "redis://127.0.0.1:%d" % c.nodes[0].port
    assert check("--url", url, "--cluster", "true") == {"check": "ok"}
    p = Probe("--url", url, "--cluster", "true")
    assert p.step("wait_up 10000") == {"wait_up": True}

    # 48 pairs' keys: each on the master of its slot, all masters used.
    keys = ["exfilwatch:{c:10.0.0.%d|example.com}:q" % i for i in range(48)]
    replies = batch(p, *["INCRBY %s %d" % (k, i + 1) for i, k in enumerate(keys)])
    assert replies == list(range(1, 49)), replies
    owners = set()
    for i, k in enumerate(keys):
        slot = int(c.nodes[0].cli("cluster", "keyslot", k))
        assert p.step("slot " + k)["slot"] == slot, k
        owner = c.owner(slot)
        assert owner.cli("get", k) == str(i + 1), k
        owners.add(owner.port)
    assert len(owners) == 3, owners
    s = p.stats()
    assert s["moved"] == 0 and s["ask"] == 0, s

    # Migrate one slot by hand: ASK while it moves, MOVED once it has moved.
    tag = "{d:resharded.example}"
    slot = int(c.nodes[0].cli("cluster", "keyslot", tag))
    src = c.owner(slot)
    dst = [n for n in c.nodes if n is not src][0]
    x, y, z = ("exfilwatch:%s:%s" % (tag, k) for k in "xyz")
    assert batch(p, "INCRBY %s 1" % x, "INCRBY %s 1" % y) == [1, 1]
    assert dst.cli("cluster", "setslot", slot, "importing", c.node_id(src)) == "OK"
    assert src.cli("cluster", "setslot", slot, "migrating", c.node_id(dst)) == "OK"
    assert src.cli("migrate", "127.0.0.1", dst.port, x, 0, 5000) == "OK"
    # x has moved (ASK), y has not, z is new (ASK: the importing node creates it).
    assert batch(p, "INCRBY %s 1" % x, "INCRBY %s 1" % y, "INCRBY %s 1" % z) == [2, 2, 1]
    before = p.stats()
    assert before["ask"] == 2 and before["moved"] == 0, before
    assert src.cli("migrate", "127.0.0.1", dst.port, y, 0, 5000) == "OK"
    for n in [dst, src] + [n for n in c.nodes if n is not src and n is not dst]:
        assert n.cli("cluster", "setslot", slot, "node", c.node_id(dst)) == "OK"
    assert batch(p, "INCRBY %s 1" % x, "INCRBY %s 1" % y, "INCRBY %s 1" % z) == [3, 3, 2]
    s = p.stats()
    assert s["moved"] == 3 and s["ask"] == 2, s  # all three were pipelined to the old owner
    assert batch(p, "INCRBY %s 1" % x, "INCRBY %s 1" % y, "INCRBY %s 1" % z) == [4, 4, 3]
    s = p.stats()
    assert s["moved"] == 3 and s["slot_map_refreshes"] > before["slot_map_refreshes"], s  # map learnt
    assert [dst.cli("get", k) for k in (x, y, z)] == ["4", "4", "3"]
    assert src.cli("cluster", "countkeysinslot", slot) == "0"
    assert [batch(p, "INCRBY %s 0" % k)[0] for k in keys] == list(range(1, 49))  # nothing else moved
    s = p.stats()
    assert s["errors"]["redirect"] == 0 and s["batches_failed"] == 0, s
    assert p.states() == [True], p.events
    print("cluster: keys on their slot's master over 3 masters, ASK x2 then MOVED x3: ok")

    # Failover: a master dies, its replica takes over; the client follows.
    victim = c.owner(int(c.nodes[0].cli("cluster", "keyslot", keys[0])))
    on_victim = [i for i, k in enumerate(keys) if c.owner(int(c.nodes[0].cli("cluster", "keyslot", k))) is victim]
    replica = c.add_replica(victim)
    assert victim.cli("wait", 1, 5000) == "1"  # the counts so far are on the replica too
    victim.kill()
    assert p.step("wait_down 5000") == {"wait_down": True}
    assert replica.cli("cluster", "failover", "takeover") == "OK"
    rc.wait_for(lambda: "role:master" in replica.cli("info", "replication"), 10, "the replica promoted")
    assert p.step("wait_up 10000") == {"wait_up": True}
    assert [batch(p, "INCRBY %s 1" % keys[i])[0] for i in on_victim] == [i + 2 for i in on_victim]
    assert replica.cli("get", keys[on_victim[0]]) == str(on_victim[0] + 2)
    final = p.close()
    assert p.states() == [True, False, True], p.events
    assert final["disconnects"] == 1 and final["batches_failed"] == 0, final
    print("cluster failover: down once, %d keys followed to the promoted replica, up once: ok" % len(on_victim))


def tls(d):
    certs = rc.Certs(d)
    node = rc.Redis(d, "tls", tls=certs, conf=["tls-auth-clients yes"])
    url = "rediss://127.0.0.1:%d" % node.port
    client = ["--tls_cert_file", certs.client_crt, "--tls_key_file", certs.client_key]
    assert check("--url", url, "--tls_ca_file", certs.ca_crt, *client) == {"check": "ok"}
    out = check("--url", url, "--tls_ca_file", certs.other_ca, *client)
    assert out["message"].startswith("fleet.tls_ca_file: TLS handshake with 127.0.0.1:%d failed: certificate "
                                     "verify failed" % node.port), out
    out = check("--url", url, "--tls_ca_file", certs.ca_crt, "--tls_server_name", "wrong.example", *client)
    assert out["message"].startswith("fleet.tls_server_name: TLS handshake with 127.0.0.1:%d failed" % node.port)
    assert out["message"].endswith("(the certificate is not for 'wrong.example')"), out
    out = check("--url", url, "--tls_ca_file", certs.ca_crt)  # the server wants a client certificate
    assert out["message"].startswith("fleet.tls_cert_file: ") and "certificate required" in out["message"], out
    # Plain RESP to a TLS port is refused, not misread.
    out = check("--url", "redis://127.0.0.1:%d" % node.port)
    assert out["check"] == "error", out

    p = Probe("--url", url, "--tls_ca_file", certs.ca_crt, *client)
    t = "exfilwatch:{c:10.0.0.9|tls.example}"
    assert batch(p, "INCRBY %s:q 3" % t, "PFADD %s:n x y" % t, "SET %s:s 1 NX EX 30" % t, "GET %s:q" % t) == \
        [3, 1, {"status": "OK"}, "3"]
    s = p.close()
    assert s["errors"]["tls"] == 0 and s["connects"] == 1, s
    node.cli("--cert", certs.client_crt, "--key", certs.client_key, "ping")
    assert node.cli("--cert", certs.client_crt, "--key", certs.client_key, "get", t + ":q") == "3"
    print("tls: replies over rediss://, untrusted CA, wrong name, no client certificate: ok")


def restart(d):
    node = rc.Redis(d, "restart")
    p = Probe("--url", "redis://127.0.0.1:%d" % node.port, "--max-pending", 4, "--queue-timeout-ms", 30000,
              "--backoff-min-ms", 50, "--backoff-max-ms", 400)
    assert p.step("wait_up 5000") == {"wait_up": True}
    k = "exfilwatch:{c:10.0.0.1|restart.example}:q"
    assert batch(p, "INCRBY %s 1" % k) == [1]
    node.kill()
    killed = time.monotonic()
    assert p.step("wait_down 5000") == {"wait_down": True}
    accepted = [p.step("submit INCRBY %s 1" % k)["submitted"] for _ in range(6)]
    assert accepted == [True] * 4 + [False] * 2, accepted
    time.sleep(1.5)
    node.start()  # same port, empty: no persistence
    down_ms = (time.monotonic() - killed) * 1000
    assert p.step("wait_up 5000") == {"wait_up": True}
    assert p.step("drain 10000") == {"drain": True}
    queued = sorted(r["replies"][0] for r in p.results.values())
    assert queued == [1, 2, 3, 4], p.results  # waited for the new server, then ran in order
    assert batch(p, "INCRBY %s 1" % k) == [5]
    assert node.cli("get", k) == "5"
    s = p.close()
    assert p.states() == [True, False, True], p.events  # once per change
    assert s["disconnects"] == 1 and s["connects"] == 2 and s["batches_dropped"] == 2, s
    retries = s["errors"]["connect"]
    # Backoff: 25-50, 50-100, 100-200, then 200-400 ms between attempts
    # (a fixed 50 ms would make down_ms / 50).
    assert 2 <= retries <= 4 + down_ms / 200, (retries, down_ms)
    print("restart: down once, %d reconnect attempts in %d ms, up once, 4 queued ok, 2 dropped: ok"
          % (retries, down_ms))


def faults():
    garbage = rc.FakeServer(lambda data: b"\x00\xff<html>garbage\r\n")
    p = Probe("--url", "redis://127.0.0.1:%d" % garbage.port, "--backoff-min-ms", 20, "--backoff-max-ms", 40)
    assert p.step("wait_up 5000") == {"wait_up": True}
    r = p.step("batch INCRBY k 1 ; INCRBY k 2")
    assert not r["ok"] and r["failures"] == ["disconnected", "disconnected"], r
    rc.wait_for(lambda: p.stats()["connects"] >= 2, 5, "a reconnect after garbage")
    s = p.close()
    assert s["errors"]["protocol"] >= 1 and s["batches_failed"] == 1, s
    assert p.states()[:3] == [True, False, True], p.events
    garbage.stop()

    slow = rc.FakeServer(lambda data: b":1\r\n", delay=1.5)
    p = Probe("--url", "redis://127.0.0.1:%d" % slow.port, "--command_timeout_ms", 300, "--backoff-min-ms", 20,
              "--backoff-max-ms", 40)
    assert p.step("wait_up 5000") == {"wait_up": True}
    r = p.step("batch INCRBY k 1")
    assert not r["ok"] and r["failures"] == ["timeout"], r
    rc.wait_for(lambda: p.stats()["connects"] >= 2, 5, "a reconnect after the timeout")
    s = p.close()
    assert s["errors"]["timeout"] >= 1 and s["disconnects"] >= 1, s
    slow.stop()
    print("fake servers: garbage -> protocol error, slow -> timeout, both reconnect: ok")


def main():
    rc.need("redis-server", "redis-cli", "openssl")
    assert os.path.exists(PROBE), PROBE
    start = time.monotonic()
    with rc.lc.tempdir() as d:
        single_node(d)
        cluster(d)
        tls(d)
        restart(d)
        faults()
    print("fleet_redis: all passed in %.1f s" % (time.monotonic() - start))


if __name__ == "__main__":
    main()
