#!/usr/bin/env python3
"""live_health: the NLB health-check listener. While the sensor cannot do
its job (here: health.require_rules with no rule set loaded, a real state
of the control plane) connections are refused; after a SIGHUP that makes it
usable they are accepted and closed; a bad reload is refused with a
file:line log line and the running generation stays; SIGTERM exits 0."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import live_common as lc  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def probe(port):
    """'accept-close', 'refused' or an error string."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "error: %s" % e
    try:
        data = s.recv(16)  # the sensor closes at once: EOF
        return "accept-close" if data == b"" else "got data %r" % data
    except ConnectionResetError:
        return "accept-close"
    except OSError as e:
        return "error: %s" % e
    finally:
        s.close()


UNUSABLE = "rules:\n  enabled: false\nhealth:\n  require_rules: true\n"
USABLE = "rules:\n  enabled: false\nhealth:\n  require_rules: false\n"

with lc.tempdir() as d:
    port = lc.free_port()
    # The config is rewritten in place and reloaded with SIGHUP.
    config = lc.write_config(d, port, extra=UNUSABLE)
    sensor = lc.Sensor(config, os.path.join(d, "eve.json"))
    check("UNHEALTHY" in sensor.log(), "starts unhealthy and says why")
    check(probe(port) == "refused", "no usable rules: health check refused")

    lc.write_config(d, port, extra=USABLE)
    sensor.signal(1)  # SIGHUP
    sensor.wait_for("reload: generation 2")
    # The listener opens right after that line, on the control thread, which
    # runs at a lower priority (health.h): on a loaded machine (a sanitizer
    # build, tests in parallel) the probe could come first. Wait for the
    # sensor to say it accepts, then probe.
    sensor.wait_for("health: healthy, accepting checks")
    check(probe(port) == "accept-close", "usable after reload: accept and close")
    results = [probe(port) for _ in range(200)]
    check(all(r == "accept-close" for r in results), "200 checks in a row all accepted and closed")

    with open(config, "a") as f:
        f.write("listen_typo: 1\n")
    sensor.signal(1)
    sensor.wait_for("reload refused:")
    line = [l for l in sensor.log().splitlines() if "reload refused:" in l][-1]
    check("sensor.yaml:" in line and "keeping generation 2" in line,
          "bad reload refused with file:line and the kept generation: %s" % line)
    check(probe(port) == "accept-close", "still healthy on the kept generation")

    lc.write_config(d, port, extra=UNUSABLE)
    sensor.signal(1)
    sensor.wait_for("reload: generation 3")
    sensor.wait_for("health: UNHEALTHY, refusing checks", count=2)  # as above: closed after that line
    check(probe(port) == "refused", "reload to a plane without rules: refused again")

    rc, stats = sensor.stop()
    check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
    check(stats.get("reloads") == 2 and stats.get("reload_failures") == 1,
          "reload counters: %s ok, %s refused" % (stats.get("reloads"), stats.get("reload_failures")))
    check(stats.get("health_accepted", 0) >= 201, "accepted checks counted (%s)" % stats.get("health_accepted"))

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
