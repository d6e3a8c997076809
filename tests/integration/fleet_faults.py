#!/usr/bin/env python3
"""fleet_faults (issue 22): `exfilwatch run` with fleet state in a
redis-server this test starts on loopback.
- Two sensors, each fed half of one base32 leak (split as the NLB splits
  it): one initial alert over both, where each alone raises its own.
- Redis killed: the sensors keep detecting (a new leak is alerted, fail
  open), stay healthy for the load balancer, export exfilwatch_fleet_up 0
  and count the errors; nothing crashes.
- Redis restarted on the same port: the client reconnects, flushes resume
  (exfilwatch_fleet_flushes_total grows, the new leak's keys are in Redis).
- A wrong password at start: the sensor does not start; the error names
  fleet.password_file.
Every process it starts is killed at the end."""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import live_common as lc  # noqa: E402
import redis_common as rc  # noqa: E402
from detection_common import check, finish  # noqa: E402
from fleet_leaks import write_base32_leak  # noqa: E402

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SCORE_SID = 9000001


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("exfilwatch_fleet_"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def healthy(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def initial(eve, domain):
    n = 0
    if not os.path.exists(eve):
        return 0
    for line in open(eve):
        if f'"registered_domain":"{domain}"' in line and f'"signature_id":{SCORE_SID}' in line \
                and "(update)" not in line:
            n += 1
    return n


def sensor(d, name, url, extra=""):
    port, mport, hport = lc.free_port(), lc.free_port(), lc.free_port()
    cfg = lc.write_config(os.path.join(d, name), port, health_port=hport, workers=2, extra=(
        f"metrics:\n  address: 127.0.0.1:{mport}\nrules:\n  enabled: false\n"
        f"fleet:\n  url: {url}\n  flush_ms: 100\n  command_timeout_ms: 300\n" + extra))
    eve = os.path.join(d, name, "eve.json")
    return lc.Sensor(cfg, eve), port, mport, hport, eve


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    print("timed out: " + what)
    return False


rc.need("redis-server", "redis-cli")
with tempfile.TemporaryDirectory() as d:
    for n in ("a", "b"):
        os.makedirs(os.path.join(d, n))
    node = rc.Redis(d, "node")
    url = f"redis://127.0.0.1:{node.port}"
    leaks = {}
    for i, dom in enumerate(("split-leak.net", "down-leak.net", "back-leak.net")):
        p = os.path.join(d, dom + ".pcap")
        write_base32_leak(p, (10, 53, 1, 10 + i), dom, total=6000)
        leaks[dom] = p
    r = subprocess.run([sys.executable, os.path.join(SHARED, "lab", "fleet_split.py"),
                        leaks["split-leak.net"], "2", os.path.join(d, "half")], capture_output=True, text=True)
    halves = [os.path.join(d, f"half.{i}.pcap") for i in range(2)]

    # each half alone is alerted by a sensor without the fleet (replay shows it)
    alone = 0
    for h in halves:
        out = subprocess.run([EXE, "replay", h], capture_output=True, text=True).stdout
        alone += sum(1 for line in out.splitlines() if '"registered_domain":"split-leak.net"' in line
                     and f'"signature_id":{SCORE_SID}' in line and "(update)" not in line)
    check(alone == 2, f"without the fleet each half raises its own alert ({alone})")

    a, a_port, a_m, a_h, a_eve = sensor(d, "a", url)
    b, b_port, b_m, b_h, b_eve = sensor(d, "b", url)
    check(wait(lambda: metrics(a_m).get("exfilwatch_fleet_up") == 1.0, 20, "fleet up"),
          "exfilwatch_fleet_up is 1 with Redis up")
    lc.mirror(a_port, [halves[0]], "--pps", "400")
    lc.mirror(b_port, [halves[1]], "--pps", "400")
    wait(lambda: initial(a_eve, "split-leak.net") + initial(b_eve, "split-leak.net") >= 1, 20, "alert")
    time.sleep(2)  # flushes and claims settle
    n = initial(a_eve, "split-leak.net") + initial(b_eve, "split-leak.net")
    check(n == 1, f"two sensors with fleet state: one initial alert for the split leak ({n})")

    node.kill()
    check(wait(lambda: metrics(a_m).get("exfilwatch_fleet_up") == 0.0, 20, "fleet down"),
          "Redis killed: exfilwatch_fleet_up is 0")
    lc.mirror(a_port, [leaks["down-leak.net"]], "--pps", "400")
    check(wait(lambda: initial(a_eve, "down-leak.net") == 1, 20, "alert while down"),
          "Redis down: the sensor still alerts on local state")
    m = metrics(a_m)
    errs = sum(v for k, v in m.items() if k.startswith("exfilwatch_fleet_errors_total"))
    check(errs > 0, f"errors counted while Redis is down ({errs:.0f})")
    check(healthy(a_h), "Redis down: the sensor stays healthy for the load balancer (default)")
    flushes_down = m.get("exfilwatch_fleet_flushes_total", 0)

    node.start()
    check(wait(lambda: metrics(a_m).get("exfilwatch_fleet_up") == 1.0, 30, "fleet back"),
          "Redis restarted: the sensor reconnects (exfilwatch_fleet_up 1)")
    lc.mirror(a_port, [leaks["back-leak.net"]], "--pps", "400")
    check(wait(lambda: initial(a_eve, "back-leak.net") == 1, 20, "alert after restart"),
          "Redis back: alerts continue")
    check(wait(lambda: int(node.cli("EVAL", "return #redis.call('KEYS', '*back-leak.net*')", "0") or 0) > 0,
               10, "keys"), "Redis back: the new leak's state is shared again")
    m = metrics(a_m)
    check(m.get("exfilwatch_fleet_flushes_total", 0) > flushes_down, "flushes resume after the restart")
    check("exfilwatch_fleet_round_trip_seconds_count" in m, "round trips are exported as a histogram")
    for s in (a, b):
        rc_, _ = s.stop()
        check(rc_ == 0, f"sensor exits cleanly ({rc_})")
    log = a.log()
    downs = len(re.findall(r"fleet: Redis .* down", log))
    check(1 <= downs <= 2, f"down logged once per change of state ({downs})")

    # a wrong password: the sensor does not start, naming the key
    auth = rc.Redis(d, "auth", password="right")
    pw = os.path.join(d, "pw")
    open(pw, "w").write("wrong\n")
    cfg = lc.write_config(d, lc.free_port(), extra=(
        f"fleet:\n  url: redis://127.0.0.1:{auth.port}\n  password_file: {pw}\n"))
    r = subprocess.run([EXE, "run", "--config", cfg, "--eve", os.path.join(d, "x.json")],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "fleet.password_file" in r.stderr,
          f"wrong password: exit 2 naming fleet.password_file: {r.stderr.strip()[-200:]}")
    auth.kill()
finish()
