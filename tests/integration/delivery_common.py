"""delivery_common: helpers for the alert-delivery and metrics tests (issue #6):
a scrape of the sensor's /metrics, a real Prometheus / Alertmanager on free
loopback ports with temporary data directories (never a system service).
Stdlib only."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import live_common as lc

SOURCE = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def need(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        raise SystemExit("missing %s (deploy/debian-packages.txt)" % ", ".join(missing))


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def scrape(port):
    return http_get("http://127.0.0.1:%d/metrics" % port)


def metric_values(text, name):
    """{label-string: value} of the samples of `name`."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        base = key.split("{", 1)[0]
        if base == name:
            out[key[len(base):]] = float(value)
    return out


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class Daemon:
    """A process with its log in a file; stop() terminates and waits."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def text(self):
        with open(self.log_path) as f:
            return f.read()


def start_prometheus(directory, target_port):
    port = lc.free_port()
    cfg = os.path.join(directory, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: exfilwatch\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % target_port)
    d = Daemon(["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(directory, "tsdb"),
                "--web.listen-address=127.0.0.1:%d" % port], os.path.join(directory, "prometheus.log"))
    wait_until(lambda: _ready("http://127.0.0.1:%d/-/ready" % port, d), 60, "prometheus ready")
    return d, port


def start_alertmanager(directory, port=None):
    port = port or lc.free_port()
    cfg = os.path.join(directory, "alertmanager.yml")
    with open(cfg, "w") as f:
        f.write("route:\n  receiver: devnull\n  group_wait: 1s\nreceivers:\n  - name: devnull\n")
    cluster = lc.free_port()
    d = Daemon(["prometheus-alertmanager", "--config.file=" + cfg,
                "--storage.path=" + os.path.join(directory, "am-data"),
                "--web.listen-address=127.0.0.1:%d" % port,
                "--cluster.listen-address=", "--cluster.advertise-address=127.0.0.1:%d" % cluster],
               os.path.join(directory, "alertmanager-%d.log" % time.monotonic_ns()))
    wait_until(lambda: _ready("http://127.0.0.1:%d/-/ready" % port, d), 60, "alertmanager ready")
    return d, port


def _ready(url, daemon):
    if daemon.proc.poll() is not None:
        raise AssertionError("daemon exited:\n" + daemon.text())
    try:
        http_get(url, timeout=2)
        return True
    except OSError:
        return False


def prom_query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(expr))
    r = json.loads(http_get(url))
    assert r["status"] == "success", r
    return r["data"]["result"]
