"""live_common: start `exfilwatch run` on loopback ports, feed it with
`exfilwatch mirror`, stop it, read its statistics. Stdlib only."""
import collections
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

EXFILWATCH = os.environ.get("EXFILWATCH", "build/exfilwatch")
SHARED = os.environ.get("SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
CAPTURES = os.path.join(SHARED, "captures")
START_TIMEOUT = 120  # generous: rule compilation on a cold cache; not a performance bound


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 (the sensor uses both)."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def write_config(directory, port, extra="", workers=2, health_port=None):
    path = os.path.join(directory, "sensor.yaml")
    with open(path, "w") as f:
        f.write("listen:\n  address: 127.0.0.1\n  vxlan_port: %d\n  health_address: 127.0.0.1\n"
                "  health_port: %d\n  workers: %d\n  rcvbuf_bytes: 4194304\n%s"
                % (port, port if health_port is None else health_port, workers,
                   extra + os.environ.get("EXFILWATCH_LIVE_EXTRA_CONFIG", "")))
    return path


def pinned(cpus):
    """A Popen preexec_fn that restricts the child (and every thread it
    creates later) to `cpus`; None when cpus is None (no pinning)."""
    if cpus is None:
        return None
    cpus = set(cpus)
    return lambda: os.sched_setaffinity(0, cpus)


class Sensor:
    def __init__(self, config, eve, args=(), cpus=None):
        """cpus: a set of CPU numbers to pin the sensor to (all its threads)."""
        self.stderr_path = eve + ".stderr"
        self.err = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen([EXFILWATCH, "run", "--config", config, "--eve", eve, *args],
                                     stdout=subprocess.DEVNULL, stderr=self.err, preexec_fn=pinned(cpus))
        self.eve = eve
        self.wait_for("exfilwatch run: ready")

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def wait_for(self, needle, count=1, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError("sensor exited (%s) before '%s':\n%s" % (self.proc.returncode, needle, self.log()))
            time.sleep(0.05)
        raise AssertionError("timed out waiting for '%s':\n%s" % (needle, self.log()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM; returns (exit code, final stats dict)."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=START_TIMEOUT)
        self.err.close()
        return rc, parse_stats(self.log(), final=True)


def parse_stats(text, final=False):
    """The last 'stats:' line as a dict of ints (weird names included)."""
    prefix = "stats: final " if final else "stats: "
    lines = [l for l in text.splitlines() if l.startswith(prefix)]
    if not lines:
        raise AssertionError("no '%s' line in:\n%s" % (prefix, text))
    out = {}
    for kv in lines[-1][len(prefix):].split():
        k, _, v = kv.partition("=")
        if re.fullmatch(r"-?\d+", v):
            out[k] = int(v)
    return out


def mirror(port, pcaps, *args):
    """Sends captures; returns the number of datagrams sent."""
    r = subprocess.run([EXFILWATCH, "mirror", *pcaps, "--to", "127.0.0.1:%d" % port, *args],
                       capture_output=True, text=True, check=True)
    m = re.search(r"sent (\d+) datagrams", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1))


def alert_keys(path):
    """Counter of (signature_id, src_ip, dest_ip, registered_domain) over the alerts."""
    c = collections.Counter()
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("event_type") != "alert":
                continue
            c[(r["alert"]["signature_id"], r.get("src_ip"), r.get("dest_ip"),
               (r.get("exfilwatch") or {}).get("registered_domain"))] += 1
    return c


def tunnels(path):
    """The `tunnel` object of every record of an EVE file ({} where absent)."""
    with open(path) as f:
        return [json.loads(line).get("tunnel") or {} for line in f if line.strip()]


def replay_alerts(pcaps, config, directory):
    eve = os.path.join(directory, "replay.json")
    if os.path.exists(eve):
        os.unlink(eve)
    subprocess.run([EXFILWATCH, "replay", "--config", config, "--eve", eve, "--quiet", *pcaps], check=True)
    return alert_keys(eve)


def tempdir():
    return tempfile.TemporaryDirectory(prefix="exfilwatch-live-")
