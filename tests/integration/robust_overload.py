"""robust_overload (issue #8; opt-in: `make test-overload`, about 3 minutes
of both cores). On loopback: measure the sensor's no-loss rate, then mirror
benign-dns.pcap at twice that rate for OVERLOAD_SECONDS (default 60).

CPU pinning (why, and why in both phases). On loopback the kernel runs the
whole receive path up to the socket queue (loopback "transmit", IP and UDP
receive, the socket enqueue and the receiver's wake-up) in the softirq of
the CPU that *sends*. Unpinned, the sender(s) and the sensor share both
cores and the senders' kernel work takes the CPU the sensor needs: the
previous version of this test reached 1.7x on a loaded machine and 1.14x
on a quiet one (3 senders, 370,969/s against a "no-loss rate" of 325,738/s
that was really the sender's ceiling; 0.01% lost). So the sensor (every
thread: pinned before it starts, threads inherit) runs on one CPU and every
mirror process on the other, in the calibration and in the overload alike:
the no-loss rate is the sensor's on one CPU, measured in the very set-up
that is then overloaded, and the sender has a whole CPU to reach twice it.
OVERLOAD_WORKERS (default 1): a sensor with one CPU runs one worker
(`workers: 0` is one per core); 2 puts both on that CPU and exercises the
hand-off rings too. The sender uses one outer source port with one worker
(larger sendmmsg batches; with one socket the port cannot matter), 8 with
more. Needs two CPUs.

--dns-log (OVERLOAD_DNS_LOG=1, the default). Pinned, one CPU of sender is
still no faster than one CPU of sensor: one mirror process sending as fast
as it can (350,654/s) lost nothing into a pinned one-worker sensor (903,000
datagrams; 2-core VM, quiet). Pinning alone leaves no 2x to reach. With
every DNS message logged (an EVE record each, formatted on the worker,
written by the writer thread on the same CPU: a real configuration, and an
overload of the EVE path as well) the sensor's no-loss rate is about 150k/s
and the sender reaches twice it. The EVE file then grows by tens of MB/s:
it goes to tmpfs (/dev/shm) when there is one, rotated at 64 MiB, 2 kept.

1. No-loss rate: steps of STEP_SECONDS (2) at rising rates, doubling from
   8,000/s until a step loses datagrams (sent - processed > 0), then
   bisecting the requested rate between the last good and the first lossy
   step BISECT_STEPS (4) times, so the figure is within ~6% of the edge. The
   no-loss rate is the highest rate the sender *achieved* in a step with no
   loss. A step whose sender fell short of its rate (something else took
   its CPU) is repeated, up to 3 times. Each step prints its loss beside
   the drops the sensor counted so far (SO_RXQ_OVFL rides on later
   datagrams, so the tail of a step's drops may show only in the next step;
   the final statistics read SO_MEMINFO and are exact, which is what check
   3 uses).
2. Overload: twice that rate for OVERLOAD_SECONDS. Fails unless the sender
   achieved at least 1.9x the no-loss rate (else it was not an overload
   test) and the sensor lost datagrams (else the no-loss rate was wrong).
3. Checks: the process stays up; its RSS (stats lines) stays within the RSS
   after calibration plus its queue budgets plus a fixed allowance; every
   datagram sent is accounted for (sent == processed + handoff_drops +
   kernel_drops in the final statistics); afterwards a tunnel capture
   mirrored at half the no-loss rate raises the alerts `replay` raises.
Prints the figures (rates, ratio, losses, RSS) for the closing note.
Measured (2-core VM, quiet): no-loss 151,995/s; overload 303,990/s (2.00x)
for 60 s, 53.3% lost, every datagram accounted for, RSS 128.2 MiB (budget
161.8), the tunnel's 4 alert keys afterwards; 3 min 14 s."""
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from live_common import (CAPTURES, EXFILWATCH, Sensor, alert_keys, free_port, pinned, replay_alerts,
                         write_config)

MiB = 1 << 20
OVERLOAD_SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "60"))
STEP_SECONDS = float(os.environ.get("STEP_SECONDS", "2"))
BISECT_STEPS = int(os.environ.get("BISECT_STEPS", "4"))
WORKERS = int(os.environ.get("OVERLOAD_WORKERS", "1"))
SOURCE_PORTS = 1 if WORKERS == 1 else 8
DNS_LOG = os.environ.get("OVERLOAD_DNS_LOG", "1") == "1"
EVE_ROTATE = 64 * MiB  # with --dns-log: at most 3 x 64 MiB of EVE on disk
MIN_RATIO = 1.9
RING = 1 * MiB
SLOTS = 64 * 9216  # one recvmmsg batch of receive slots per worker
FIXED_ALLOWANCE = 32 * MiB
BENIGN = os.path.join(CAPTURES, "benign-dns.pcap")
TUNNEL = os.path.join(CAPTURES, "iodine-txt-base32.pcap")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    sys.stdout.flush()
    if not cond:
        failures.append(what)


def stats_lines(log):
    out = []
    for l in log.splitlines():
        if l.startswith("stats: ") and not l.startswith("stats: final"):
            out.append({k: int(v) for k, v in re.findall(r"(\S+?)=(-?\d+)(?=\s|$)", l[7:])})
    return out


def mirror(port, pcap, pps, packets, cpus):
    """Mirrors about `packets` datagrams of pcap at pps from one mirror
    process pinned to `cpus`; returns (sent, achieved datagrams/s as the
    mirror measured it from its first send to its last)."""
    loops = max(1, -(-int(packets) // pcap_packets(pcap)))
    p = subprocess.run([EXFILWATCH, "mirror", pcap, "--to", "127.0.0.1:%d" % port, "--pps", str(max(1, int(pps))),
                        "--loop", str(loops), "--source-ports", str(SOURCE_PORTS)],
                       capture_output=True, text=True, preexec_fn=pinned(cpus))
    m = re.search(r"sent (\d+) datagrams", p.stdout)
    r = re.search(r"\(([\d.]+)/s\)", p.stderr)
    assert p.returncode == 0 and m and r, p.stdout + p.stderr
    return int(m.group(1)), float(r.group(1))


_counts = {}


def pcap_packets(pcap):
    if pcap not in _counts:
        import struct
        n = 0
        with open(pcap, "rb") as f:
            f.read(24)
            while True:
                h = f.read(16)
                if len(h) < 16:
                    break
                f.seek(struct.unpack("<I", h[8:12])[0], 1)
                n += 1
        _counts[pcap] = n
    return _counts[pcap]


def settled(sensor):
    """The latest stats once `processed` stopped moving for two intervals."""
    last, same = None, 0
    for _ in range(120):
        time.sleep(1.0)
        lines = stats_lines(sensor.log())
        cur = lines[-1] if lines else {}
        if last is not None and cur.get("processed") == last.get("processed"):
            same += 1
            if same >= 2:
                return cur
        else:
            same = 0
        last = cur
    raise AssertionError("the sensor never settled")


def drops(st):
    return st.get("kernel_drops", 0) + st.get("handoff_drops", 0)


def main():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        check(False, "two CPUs to pin the sensor and the sender apart (have %d)" % len(cpus))
        return 1
    sensor_cpu, sender_cpu = {cpus[0]}, {cpus[1]}
    print("     sensor pinned to CPU %d (%d worker(s)%s), mirror pinned to CPU %d (%d source port(s))"
          % (cpus[0], WORKERS, ", --dns-log" if DNS_LOG else "", cpus[1], SOURCE_PORTS))
    # With --dns-log the EVE file grows by tens of MB/s: on tmpfs when there
    # is one, so disk write-back cannot slow the sensor between the phases.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="exfilwatch-overload-", dir=shm) as d:
        port = free_port()
        config = write_config(d, port, extra="  handoff_ring_bytes: %d\n  eve_queue_bytes: %d\n"
                              "output:\n  rotate_bytes: %d\n  rotate_keep: 2\n" % (RING, RING, EVE_ROTATE),
                              workers=WORKERS)
        eve = os.path.join(d, "eve.json")
        s = Sensor(config, eve, args=("--stats-interval", "1") + (("--dns-log",) if DNS_LOG else ()),
                   cpus=sensor_cpu)
        s.wait_for("stats: ", count=1)
        sent_total = 0
        settled(s)

        # 1. No-loss rate, in the pinned set-up: doubling, then bisection.
        no_loss, good_req, lossy_req, sender_short = 0.0, 0, 0, []

        def step(pps):
            nonlocal sent_total, no_loss, good_req, lossy_req
            for attempt in range(3):
                before = settled(s)
                sent, achieved = mirror(port, BENIGN, pps, pps * STEP_SECONDS, sender_cpu)
                sent_total += sent
                after = settled(s)
                lost = sent - (after["processed"] - before["processed"])
                counted = drops(after) - drops(before)
                short = achieved < 0.95 * pps
                print("     step %7d/s: sent %7d at %8.0f/s, lost %6d, drops counted so far %6d%s"
                      % (pps, sent, achieved, lost, counted, "  (sender short of the rate: again)" if short else ""))
                sys.stdout.flush()
                # A sender short of its rate means something else took its
                # CPU (a shared machine): that step says nothing, repeat it.
                if not short:
                    break
            if lost > 0:
                lossy_req = pps if not lossy_req else min(lossy_req, pps)
                return False
            if achieved < 0.95 * pps:
                sender_short.append((pps, achieved))
            no_loss = max(no_loss, achieved)
            good_req = max(good_req, pps)
            return True

        pps = 8000
        while pps <= 4_000_000 and step(pps):
            pps *= 2
        if lossy_req:
            for _ in range(BISECT_STEPS):
                step((good_req + lossy_req) // 2)
        check(no_loss > 0 and lossy_req > 0,
              "no-loss rate %.0f datagrams/s (highest lossless step; first lossy request %d/s)" % (no_loss, lossy_req))
        check(not sender_short, "the sender reached every lossless step's rate (short: %s)" % sender_short)
        rss_calibrated = max(l.get("rss_kb", 0) for l in stats_lines(s.log())) * 1024
        n_before = len(stats_lines(s.log()))

        # 2. Twice that rate for OVERLOAD_SECONDS, same pinning.
        before = settled(s)
        target = 2 * no_loss
        sent, achieved = mirror(port, BENIGN, target, target * OVERLOAD_SECONDS, sender_cpu)
        sent_total += sent
        after = settled(s)
        processed = after["processed"] - before["processed"]
        lost = sent - processed
        counted = drops(after) - drops(before)
        ratio = achieved / no_loss if no_loss else 0
        print("     overload: asked %.0f/s for %.0f s; sent %d at %.0f/s = %.2fx the no-loss rate; processed %d "
              "(%.0f/s over the send time); lost %d (%.1f%%), drops counted so far %d"
              % (target, OVERLOAD_SECONDS, sent, achieved, ratio, processed, processed * achieved / max(sent, 1),
                 lost, 100.0 * lost / max(sent, 1), counted))
        check(ratio >= MIN_RATIO, "the overload reached %.2fx the no-loss rate (>= %.1fx)" % (ratio, MIN_RATIO))
        check(lost > 0, "at twice the no-loss rate the sensor does lose (else the no-loss rate was not measured)")
        check(s.proc.poll() is None, "the sensor is still up after the overload")
        during = stats_lines(s.log())[n_before:]
        rss_peak = max(l.get("rss_kb", 0) for l in during) * 1024
        budget = WORKERS * (WORKERS - 1) * RING + WORKERS * (RING + SLOTS) + FIXED_ALLOWANCE
        check(rss_peak <= rss_calibrated + budget,
              "RSS during the overload %.1f MiB <= %.1f MiB (%.1f MiB after calibration + %.1f MiB queue budget "
              "and allowance)" % (rss_peak / MiB, (rss_calibrated + budget) / MiB, rss_calibrated / MiB, budget / MiB))

        # 3. Detection at the normal rate afterwards.
        expected = replay_alerts([TUNNEL], config, d)
        sent2, _ = mirror(port, TUNNEL, max(1000, no_loss / 2), pcap_packets(TUNNEL), sender_cpu)
        sent_total += sent2
        settled(s)
        got = collections.Counter()
        for path in (eve, eve + ".1", eve + ".2"):  # rotated by output.rotate_bytes
            if os.path.exists(path):
                got.update(alert_keys(path))
        missing = [k for k in expected if k not in got]
        check(expected and not missing, "after the overload the tunnel capture raises its %d alert keys (missing %s)"
              % (len(expected), missing))
        rc, final = s.stop()
        check(rc == 0, "clean exit after SIGTERM")
        acc = final.get("processed", 0) + final.get("handoff_drops", 0) + final.get("kernel_drops", 0)
        print("     final: sent %d datagrams=%d processed=%d handoff_drops=%d kernel_drops=%d eve_drops=%d rss_kb=%d"
              % (sent_total, final.get("datagrams", -1), final.get("processed", -1), final.get("handoff_drops", -1),
                 final.get("kernel_drops", -1), final.get("eve_drops", -1), final.get("rss_kb", -1)))
        check(acc == sent_total, "sent (%d) == processed + handoff_drops + kernel_drops (%d)" % (sent_total, acc))
        print("     summary: no-loss %.0f/s, overload %.0f/s (%.2fx) for %.0f s, lost %.1f%%, RSS peak %.1f MiB"
              % (no_loss, achieved, ratio, OVERLOAD_SECONDS, 100.0 * lost / max(sent, 1), rss_peak / MiB))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
