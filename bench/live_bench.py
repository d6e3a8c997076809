#!/usr/bin/env python3
"""live_bench.py BUILD_DIR: the highest rate the live sensor takes on
loopback with no loss, side by side with a bare recvmmsg loop that only
counts datagrams (bench/recvmmsg_loop.cc, same SO_RCVBUF and batch size).

For each rate (rising), `exfilwatch mirror --pps R --loop N` sends about
DURATION seconds of the iodine + benign captures to a fresh sensor, then to
a fresh bare loop; each is stopped with SIGTERM after the sender is done and
reports what it received. Loss = sent - processed; for the sensor it must
equal the drops it counted itself (kernel SO_RXQ_OVFL/SO_MEMINFO + hand-off
ring drops). Ends with both no-loss rates (the rate the sender actually achieved, which
on a loaded machine can be below the target) and their ratio; when the
sender's own ceiling is reached first, both figures are that ceiling.

Environment: DURATION (s, default 2), RATES (comma list), WORKERS (sensor
workers, default 1 = the bare loop's single thread), EXTRA_CONFIG (YAML
appended to the sensor's config).
"""
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
shared = os.path.join(root, "..", "shared", "captures")
pcaps = [os.path.join(shared, "iodine-null.pcap"), os.path.join(shared, "benign-dns.pcap")]
EXFILWATCH = os.path.join(build, "exfilwatch")
LOOP = os.path.join(build, "bench", "recvmmsg_loop")
DURATION = float(os.environ.get("DURATION", "2"))
RATES = [int(r) for r in os.environ.get(
    "RATES", "10000,20000,40000,60000,80000,100000,150000,200000,300000,400000").split(",")]
WORKERS = int(os.environ.get("WORKERS", "1"))
RCVBUF = 4 << 20
# Outer source ports: several, so the kernel's REUSEPORT spread and the
# hand-off are exercised, few, so sendmmsg batches stay large.
SOURCE_PORTS = os.environ.get("SOURCE_PORTS", "8")
DATAGRAMS_PER_PASS = 6778  # iodine-null + benign-dns


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def mirror(port, rate):
    loops = max(1, math.ceil(rate * DURATION / DATAGRAMS_PER_PASS))
    r = subprocess.run([EXFILWATCH, "mirror", *pcaps, "--to", "127.0.0.1:%d" % port,
                        "--pps", str(rate), "--loop", str(loops), "--source-ports", SOURCE_PORTS],
                       capture_output=True, text=True)
    sent = int(re.search(r"sent (\d+) datagrams", r.stdout).group(1))
    achieved = float(re.search(r"\(([\d.]+)/s\)", r.stderr).group(1))
    return sent, achieved


def run_sensor(rate, tmp):
    port = free_port()
    cfg = os.path.join(tmp, "bench.yaml")
    with open(cfg, "w") as f:
        f.write("listen:\n  address: 127.0.0.1\n  vxlan_port: %d\n  health_port: 0\n  workers: %d\n"
                "  rcvbuf_bytes: %d\n%s" % (port, WORKERS, RCVBUF, os.environ.get("EXTRA_CONFIG", "")))
    err = open(os.path.join(tmp, "sensor.err"), "w+")
    p = subprocess.Popen([EXFILWATCH, "run", "--config", cfg, "--eve", "/dev/null"],
                         stdout=subprocess.DEVNULL, stderr=err)
    while "ready" not in open(err.name).read():
        if p.poll() is not None:
            sys.exit("sensor did not start:\n" + open(err.name).read())
        time.sleep(0.05)
    sent, achieved = mirror(port, rate)
    p.send_signal(signal.SIGTERM)
    p.wait()
    text = open(err.name).read()
    line = [l for l in text.splitlines() if l.startswith("stats: final")][-1]
    st = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
    counted = st["kernel_drops"] + st["handoff_drops"]
    return sent, achieved, st["processed"], counted


def run_loop(rate):
    port = free_port()
    p = subprocess.Popen([LOOP, str(port), str(RCVBUF), "64"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    sent, achieved = mirror(port, rate)
    p.send_signal(signal.SIGTERM)
    out = p.communicate()[0]
    m = re.search(r"received (\d+) kernel_drops (\d+)", out)
    return sent, achieved, int(m.group(1)), int(m.group(2))


best = {"sensor": 0, "loop": 0}
lossy = {"sensor": 0, "loop": 0}
mismatches = 0
print("%-9s %-7s %10s %10s %10s %8s %8s  %s" % ("rate", "who", "sent", "achieved", "processed", "loss", "counted", ""))
with tempfile.TemporaryDirectory() as tmp:
    for rate in RATES:
        if lossy["sensor"] >= 2 and lossy["loop"] >= 2:
            break
        for who in ("loop", "sensor"):
            if lossy[who] >= 2:
                continue
            sent, achieved, processed, counted = run_sensor(rate, tmp) if who == "sensor" else run_loop(rate)
            loss = sent - processed
            note = ""
            if loss != counted:
                note = "LOSS != COUNTED DROPS"
                mismatches += who == "sensor"
            if achieved < 0.9 * rate:
                note += " sender could not reach the rate"
            print("%-9d %-7s %10d %10.0f %10d %8d %8d  %s" % (rate, who, sent, achieved, processed, loss, counted, note))
            sys.stdout.flush()
            # The rate taken is the one the sender achieved (a loaded machine
            # may not reach the target), judged by loss alone.
            if loss == 0:
                best[who] = max(best[who], int(achieved))
                lossy[who] = 0
            elif loss != 0:
                lossy[who] += 1
print("highest no-loss rate: sensor %d pps (workers=%d), bare recvmmsg loop %d pps" % (best["sensor"], WORKERS, best["loop"]))
if best["loop"]:
    print("ratio: %.0f%% (target >= 70%%)" % (100.0 * best["sensor"] / best["loop"]))
print("sensor loss == its own counted drops at every rate: %s" % ("yes" if mismatches == 0 else "NO (%d)" % mismatches))
