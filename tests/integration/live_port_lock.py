#!/usr/bin/env python3
"""live_port_lock (issue #24): a second sensor cannot silently share the UDP
port. SO_REUSEPORT would let it join the first one's socket group and take
half of the mirrored flows, both printing `ready`. On loopback: a second
`run` on the same address and port exits non-zero naming the first one's
pid; so does one on the wildcard address and the same port (it would take
the first one's traffic too); a sensor on another port runs beside the
first, and each receives exactly what was sent to it; the port is free
again once the holder is gone, even killed with SIGKILL."""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import live_common as lc  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def refused(config, eve):
    """Runs `exfilwatch run` expecting it to give up; returns (rc, stderr)."""
    r = subprocess.run([lc.EXFILWATCH, "run", "--config", config, "--eve", eve],
                       capture_output=True, text=True, timeout=lc.START_TIMEOUT)
    return r.returncode, r.stderr


with lc.tempdir() as d:
    port, other = lc.free_port(), lc.free_port()
    da, db, dc = (os.path.join(d, n) for n in ("a", "b", "c"))
    for x in (da, db, dc):
        os.mkdir(x)
    cfg_a = lc.write_config(da, port, health_port=0)
    a = lc.Sensor(cfg_a, os.path.join(da, "eve.json"))

    # The same address and port: refused, naming the holder.
    rc, err = refused(lc.write_config(db, port, health_port=0), os.path.join(db, "eve.json"))
    expected = "another exfilwatch (pid %d) already listens on 127.0.0.1:%d/udp" % (a.proc.pid, port)
    check(rc != 0 and expected in err, "same port: exit %d, '%s' in: %s" % (rc, expected, err.strip()))
    check("exfilwatch run: ready" not in err, "same port: never ready")

    # The wildcard address on the same port overlaps 127.0.0.1: refused too.
    wild = os.path.join(db, "wild.yaml")
    with open(cfg_a) as f:
        text = f.read().replace("  address: 127.0.0.1\n", "  address: 0.0.0.0\n")
    with open(wild, "w") as f:
        f.write(text)
    rc, err = refused(wild, os.path.join(db, "eve2.json"))
    check(rc != 0 and re.search(r"another exfilwatch \(pid %d\) already listens on 127\.0\.0\.1:%d/udp, "
                                r"which overlaps 0\.0\.0\.0:%d" % (a.proc.pid, port, port), err) is not None,
          "wildcard on the same port: exit %d: %s" % (rc, err.strip()))

    # Another port: both run, and each gets exactly what was sent to it.
    c = lc.Sensor(lc.write_config(dc, other, health_port=0), os.path.join(dc, "eve.json"))
    capture = os.path.join(lc.CAPTURES, "iodine-null.pcap")
    sent_a = lc.mirror(port, [capture])
    sent_c = lc.mirror(other, [capture, capture])
    rc_a, stats_a = a.stop()
    rc_c, stats_c = c.stop()
    check(rc_a == 0 and rc_c == 0, "two ports: both ran and exited 0 (%d, %d)" % (rc_a, rc_c))
    check(stats_a["datagrams"] == sent_a and stats_a["processed"] == sent_a,
          "first sensor received all %d it was sent (%s)" % (sent_a, stats_a["datagrams"]))
    check(stats_c["datagrams"] == sent_c and stats_c["processed"] == sent_c,
          "second sensor received all %d it was sent (%s)" % (sent_c, stats_c["datagrams"]))

    # Released with the process, however it ends: after a clean stop, and
    # after SIGKILL (no file left behind to clean up).
    b = lc.Sensor(lc.write_config(db, port, health_port=0), os.path.join(db, "eve3.json"))
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(timeout=lc.START_TIMEOUT)
    b.err.close()
    again = lc.Sensor(cfg_a, os.path.join(da, "eve4.json"))
    rc, _ = again.stop()
    check(rc == 0, "the port is free again after the holder was killed (rc %d)" % rc)

if failures:
    print("FAILED: %d check(s)" % len(failures))
    sys.exit(1)
print("PASS")
