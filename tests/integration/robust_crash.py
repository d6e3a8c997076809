"""robust_crash (issue #8): kill -9 at random moments during a mirrored replay
loses no EVE line the sensor reported written, and a restart resumes cleanly.

"Reported written" is the `eve_lines` counter of the sensor's `stats:` lines:
the writer counts a line only after handing it to the kernel (docs/internals.md, "Crash safety"), so every stats line printed before the kill is a promise. Each of
ROUNDS rounds: start `exfilwatch run --dns-log --stats-interval 1` on an EVE
file that earlier rounds already wrote, mirror captures at it, SIGKILL it
after a random delay, then check the file holds at least the promised lines
beyond what was there before, every complete line is one JSON record, and at
most the last line is torn. The next start must cut a torn tail: at the end
(after a clean SIGTERM) every line of the file is a whole JSON record and the
last run's final count matches what it appended."""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from live_common import CAPTURES, EXFILWATCH, Sensor, free_port, parse_stats, tempdir, write_config

ROUNDS = int(os.environ.get("ROBUST_CRASH_ROUNDS", "4"))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def read_eve(path):
    """(complete JSON lines, torn tail bytes, unparsable complete lines)."""
    if not os.path.exists(path):
        return 0, b"", 0
    data = open(path, "rb").read()
    *lines, tail = data.split(b"\n")
    bad = 0
    for l in lines:
        try:
            json.loads(l)
        except ValueError:
            bad += 1
    return len(lines), tail, bad


def promised(log):
    """eve_lines of the last periodic stats line, 0 before the first."""
    try:
        return parse_stats(log).get("eve_lines", 0)
    except AssertionError:
        return 0


def main():
    rng = random.Random(int(os.environ.get("ROBUST_CRASH_SEED", str(int(time.time())))))
    pcaps = [os.path.join(CAPTURES, p) for p in ("iodine-txt-base32.pcap", "benign-dns.pcap", "dns2tcp-txt.pcap")]
    with tempdir() as d:
        port = free_port()
        config = write_config(d, port)
        eve = os.path.join(d, "eve.json")
        # As a crash in the middle of a buffer write leaves it: one whole line
        # and a torn one. The first start must cut the torn one.
        with open(eve, "wb") as f:
            f.write(b'{"event_type":"stats","whole":true}\n{"event_type":"alert","alert":{"sig')
        for rnd in range(ROUNDS):
            before, tail, _ = read_eve(eve)
            s = Sensor(config, eve, args=("--dns-log", "--stats-interval", "1"))
            after_start, tail2, _ = read_eve(eve)
            check(tail2 == b"" and after_start == before and (rnd > 0 or (before == 1 and tail)),
                  "round %d: restart cut the torn tail (%d bytes) and kept %d whole lines"
                  % (rnd, len(tail), before))
            mirror = subprocess.Popen([EXFILWATCH, "mirror", *pcaps, "--to", "127.0.0.1:%d" % port,
                                       "--pps", "20000", "--loop", "1000"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Some promise on record first (stats every second), then a random moment.
            deadline = time.monotonic() + 60
            while promised(s.log()) == 0 and time.monotonic() < deadline and s.proc.poll() is None:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 2.5))
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait()
            mirror.kill()
            mirror.wait()
            s.err.close()
            n = promised(s.log())
            total, tail, bad = read_eve(eve)
            check(n > 0, "round %d: the sensor reported %d lines written before the kill" % (rnd, n))
            check(total - before >= n,
                  "round %d: kill -9 lost no reported line (%d on disk >= %d reported)" % (rnd, total - before, n))
            check(bad == 0, "round %d: every complete line is one JSON record (%d bad)" % (rnd, bad))
            print("     round %d: torn tail %d bytes" % (rnd, len(tail)))
        # A clean run after the crashes: the file is whole again.
        before, _, _ = read_eve(eve)
        s = Sensor(config, eve, args=("--dns-log",))
        subprocess.run([EXFILWATCH, "mirror", pcaps[0], "--to", "127.0.0.1:%d" % port, "--pps", "5000"],
                       check=True, capture_output=True)
        time.sleep(0.5)
        rc, final = s.stop()
        total, tail, bad = read_eve(eve)
        check(rc == 0, "final run exits 0 after SIGTERM")
        check(tail == b"" and bad == 0, "after restart and clean stop: every line whole JSON")
        check(total - before == final.get("eve_lines", -1),
              "final run appended exactly its eve_lines (%d == %d)" % (total - before, final.get("eve_lines", -1)))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
