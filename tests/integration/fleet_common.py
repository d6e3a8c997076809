"""fleet_common: a fleet of live sensors behind a load balancer, in network
namespaces, the way AWS runs one (issue 22). Stdlib only; run as root.

    fwNsrc  `exfilwatch mirror` (outer sources rewritten per inner client:
       |     one mirrored ENI per client host, 10.70.0.<host>)
    fwNlb   the balancer: nftables DNATs UDP 4789 for
       |      VIP 10.60.0.1 by jhash of the outer 5-tuple (the NLB),
       |      VIP 10.60.0.2 by jhash of the outer source (source-IP stickiness);
       |     redis-server, when a test wants one, on 10.60.0.9
    fwNhK / fwNsK / fwNone  sensors (`exfilwatch run`, one worker each):
             group "hash" behind .1, group "sticky" behind .2, and one sensor
             fed directly, the single-sensor reference.

Time: a live sensor's windows follow receive time, so the captures are sent
`--speed SCALE` times faster and every time-valued setting of the sensors
is divided by SCALE (scaled_config); SCALE must divide 60, the shortest
window in seconds. Hooks (seconds of receive time, callable) act mid-run,
e.g. kill redis-server and start it again.
"""
import atexit
import collections
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

EXE = os.environ.get("EXFILWATCH", "build/exfilwatch")
SOURCE = os.environ.get("SOURCE_DIR", os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..")))
SHARED = os.environ.get("SHARED_DIR", os.path.join(SOURCE, "..", "shared"))
LAB_DATA = os.path.join(SOURCE, "tests", "data", "fleet-lab")
BENIGN = os.path.join(SHARED, "captures", "benign-dns.pcap")
SCORE_SIDS = {9000001, 9000003, 9000004}
# The domain view: one registered domain over all its clients. Its client
# (src_ip) is whichever host's query tipped it, so it is compared per domain.
DOMAIN_SID = 9000005
START_TIMEOUT = 120  # rule compilation on a cold cache; not a performance bound

# The leaks of tests/data/fleet-lab (README there) and the domain each uses.
LEAKS = {"slow-leak": "drip-relay.net", "base32-leak": "b32-drop.org", "spread-5hosts": "fanout-sync.com"}
CLIENT_HOSTS = ["10.53.0.%d" % h for h in range(2, 7)]

_cleanups = []


def _run_cleanups():
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as e:  # keep tearing down the rest
            print("cleanup: %s" % e, file=sys.stderr)


atexit.register(_run_cleanups)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def need_root_tools(*programs):
    if os.geteuid() != 0:
        raise SystemExit("fleet tests need root (network namespaces)")
    missing = [p for p in ("ip", "nft", "mergecap") + programs if shutil.which(p) is None]
    if missing:
        raise SystemExit("missing %s (deploy/debian-packages.txt)" % ", ".join(missing))


def sh(*args, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(map(str, args)), r.stderr.strip()))
    return r.stdout


# ---- captures ----------------------------------------------------------------

def mixed_capture(directory, leaks=tuple(LEAKS)):
    """benign-dns.pcap stretched over the hour (../shared/lab/pcap_stretch.py)
    merged with the lab leaks: what the tests replay and mirror."""
    out = os.path.join(directory, "fleet-mix.pcap")
    if not os.path.exists(out):
        stretched = os.path.join(directory, "benign-1h.pcap")
        sh(sys.executable, os.path.join(SHARED, "lab", "pcap_stretch.py"), BENIGN, stretched, 3600)
        sh("mergecap", "-F", "pcap", "-w", out, stretched,
           *[os.path.join(LAB_DATA, n + ".pcap") for n in leaks])
    return out


def split_capture(pcap, n, directory):
    """../shared/lab/fleet_split.py: the shards an NLB would give n sensors."""
    prefix = os.path.join(directory, os.path.basename(pcap)[:-5] + ".shard")
    sh(sys.executable, os.path.join(SHARED, "lab", "fleet_split.py"), pcap, n, prefix)
    return ["%s.%d.pcap" % (prefix, i) for i in range(n)]


# ---- alerts ------------------------------------------------------------------

def read_eve(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            out = [json.loads(l) for l in f if l.strip()]
    return [r for r in out if r.get("event_type") == "alert"]


def epoch(ts):
    """EVE's RFC 3339 UTC timestamp (2016-10-20T15:23:01.075993Z) as seconds."""
    try:
        return datetime.datetime.strptime(ts.replace("+0000", "Z"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return 0.0


def domain_of(alert):
    return (alert.get("exfilwatch") or {}).get("registered_domain")


def reasons_of(alert):
    """An alert's typed reasons (EVE `exfilwatch.values`)."""
    return (alert.get("exfilwatch") or {}).get("values") or {}


def initial(alerts):
    """Alerts that open a verdict (not the '(update)' repeats)."""
    return [a for a in alerts if not a["alert"].get("signature", "").endswith("(update)")]


def pairs(alerts):
    """Counter of (signature_id, client, registered domain) over initial alerts."""
    return collections.Counter((a["alert"]["signature_id"], a.get("src_ip"), domain_of(a))
                               for a in initial(alerts))


def pairs_without_domain_view(alerts):
    """pairs() of every verdict but the domain view's (per domain, not per client)."""
    return collections.Counter({k: v for k, v in pairs(alerts).items() if k[0] != DOMAIN_SID})


def domain_view(alerts, domain):
    """Initial domain-view alerts naming `domain`."""
    return [a for a in initial(for_domain(alerts, domain)) if a["alert"]["signature_id"] == DOMAIN_SID]


def score_pairs(alerts):
    return collections.Counter({k: v for k, v in pairs(alerts).items() if k[0] in SCORE_SIDS})


def for_domain(alerts, domain):
    return [a for a in alerts if domain_of(a) == domain]


def replay(pcaps, config, directory, name, extra=()):
    eve = os.path.join(directory, name + ".json")
    if os.path.exists(eve):
        os.unlink(eve)
    r = subprocess.run([EXE, "replay", "--config", config, "--eve", eve, "--quiet", *extra, *pcaps],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError("replay %s: %s" % (pcaps, r.stderr))
    return read_eve(eve)


# ---- configuration -----------------------------------------------------------

# Every time-valued setting a verdict depends on, with its default (seconds).
TIMED_DEFAULTS = {
    "score.dns.windows": [60, 600, 3600],
    "score.tls.windows": [60, 600, 3600],
    "score.tls.flow_idle_seconds": 600,
    "detect.suppress_seconds": 300,
    "dns.tcp.idle_timeout_seconds": 60,
}


def scaled_config(directory, name, scale=1, extra="", rules_cache=None, workers=1):
    """A sensor configuration whose time-valued settings are the defaults
    divided by `scale` (receive time runs `scale` times faster than packet
    time when the capture is mirrored at --speed scale). `extra`: more
    top-level YAML (e.g. a fleet: block), appended; `workers`: listen.workers."""
    if 60 % scale:
        raise ValueError("scale must divide 60 (the 1-minute window is whole seconds)")

    def s(v):
        return [x // scale for x in v] if isinstance(v, list) else max(1, v // scale)
    t = {k: s(v) for k, v in TIMED_DEFAULTS.items()}
    path = os.path.join(directory, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"""listen:
  address: 0.0.0.0
  vxlan_port: 4789
  health_address: 0.0.0.0
  health_port: 4789
  workers: {workers}
  rcvbuf_bytes: 4194304
  eve_queue_bytes: 1048576
  handoff_ring_bytes: 262144
metrics:
  address: ""
dns:
  tcp:
    idle_timeout_seconds: {t["dns.tcp.idle_timeout_seconds"]}
detect:
  suppress_seconds: {t["detect.suppress_seconds"]}
rules:
  cache_directory: "{rules_cache or os.path.join(directory, "rules-cache")}"
score:
  dns:
    memory_bytes: 8388608
    seen_names_bytes: 1048576
    windows: {t["score.dns.windows"]}
  tls:
    memory_bytes: 1048576
    max_flows: 4096
    flow_idle_seconds: {t["score.tls.flow_idle_seconds"]}
    windows: {t["score.tls.windows"]}
{extra}""")
    return path


# ---- the lab -----------------------------------------------------------------

class Sensor:
    """`exfilwatch run` in a namespace; restartable."""

    def __init__(self, ns, config, eve, name):
        self.ns, self.config, self.eve, self.name = ns, config, eve, name
        self.log_path = eve + ".stderr"
        self.proc = None
        self.start()

    def start(self):
        self.err = open(self.log_path, "a")
        self.mark = self.log().count("exfilwatch run: ready")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, EXE, "run", "--config", self.config,
                                      "--eve", self.eve],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        _cleanups.append(self.kill)

    def log(self):
        return open(self.log_path).read() if os.path.exists(self.log_path) else ""

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count("exfilwatch run: ready") > self.mark:
                return
            if self.proc.poll() is not None:
                raise AssertionError("sensor %s exited (%s):\n%s" % (self.name, self.proc.returncode, self.log()[-3000:]))
            time.sleep(0.05)
        raise AssertionError("sensor %s not ready:\n%s" % (self.name, self.log()[-3000:]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=START_TIMEOUT)
        self.err.close()
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alerts(self):
        return read_eve(self.eve)

    def stats(self):
        """The final 'stats:' line as a dict of ints."""
        lines = [l for l in self.log().splitlines() if l.startswith("stats: final ")]
        out = {}
        for kv in (lines[-1][len("stats: final "):].split() if lines else []):
            k, _, v = kv.partition("=")
            if v.isdigit():
                out[k] = int(v)
        return out


class RedisNs:
    """redis-server in the balancer namespace on REDIS_ADDR; kill() and
    start() again on the same port (what a restart looks like)."""

    def __init__(self, ns, addr, port, directory, conf=()):
        self.ns, self.addr, self.port = ns, addr, port
        self.dir = os.path.join(directory, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(["bind " + addr, "port %d" % port, 'save ""', "appendonly no",
                               "dir " + self.dir, "logfile " + os.path.join(self.dir, "log"),
                               "protected-mode no", *conf]) + "\n")
        self.url = "redis://%s:%d" % (addr, port)
        self.proc = None
        self.start()

    def start(self):
        log = os.path.join(self.dir, "log")
        seen = open(log).read().count("Ready to accept connections") if os.path.exists(log) else 0
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "redis-server", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _cleanups.append(self.kill)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(log) and open(log).read().count("Ready to accept connections") > seen:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("redis-server did not start: " + (open(log).read()[-2000:] if os.path.exists(log) else ""))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args):
        return sh("ip", "netns", "exec", self.ns, "redis-cli", "-h", self.addr, "-p", self.port, *args).strip()


class Lab:
    """The namespaces, links and nftables rules above. `groups`: sensors per
    balancer group ("hash", "sticky"); `single`: add the reference sensor.
    config_extra: YAML appended to every sensor's configuration, or a
    function of the group name ("hash", "sticky", "single") returning it
    (e.g. a fleet: block with a key prefix per group). `workers`: each
    sensor's listen.workers. Tear down with close() (also at exit)."""

    VIP = {"hash": "10.60.0.1", "sticky": "10.60.0.2"}
    REDIS_ADDR = "10.60.0.9"
    # outer header offsets, in bits from the outer UDP header: UDP 8 + VXLAN 8
    # + inner Ethernet 14 bytes, then the inner IPv4 source (+12), destination (+16)
    INNER_SRC_BITS, INNER_DST_BITS = (8 + 8 + 14 + 12) * 8, (8 + 8 + 14 + 16) * 8

    def __init__(self, directory, sensors=3, groups=("hash", "sticky"), single=True, scale=60,
                 config_extra="", seed=0x2201, workers=1):
        self.dir, self.scale, self.groups, self.workers = directory, scale, groups, workers
        os.makedirs(directory, exist_ok=True)
        self.p = "fw%d" % (os.getpid() % 10000)
        self.ns_src, self.ns_lb = self.p + "src", self.p + "lb"
        self.namespaces = []
        self.sensors = {}  # group -> [Sensor]
        self.redis = None
        _cleanups.append(self.close)
        self.config_extra = config_extra
        self._net(sensors, single, seed)

    # -- network
    def _ns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _link(self, ns, ifname, addr, lb_if, lb_addr):
        sh("ip", "link", "add", lb_if, "netns", self.ns_lb, "type", "veth", "peer", "name", ifname, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", ifname)
        sh("ip", "-n", self.ns_lb, "addr", "add", lb_addr + "/24", "dev", lb_if)
        for n, i in ((ns, ifname), (self.ns_lb, lb_if)):
            sh("ip", "-n", n, "link", "set", i, "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", lb_addr)

    def _net(self, per_group, single, seed):
        self._ns(self.ns_lb)
        self._ns(self.ns_src)
        sh("ip", "netns", "exec", self.ns_lb, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for vip in list(self.VIP.values()) + [self.REDIS_ADDR]:
            sh("ip", "-n", self.ns_lb, "addr", "add", vip + "/32", "dev", "lo")
        self._link(self.ns_src, "src0", "10.70.0.1", "lbsrc", "10.70.0.254")
        self.targets = {}
        k = 0
        for g in self.groups:
            self.targets[g] = []
            for i in range(per_group):
                ns = "%s%s%d" % (self.p, g[0], i)
                self._ns(ns)
                self._link(ns, "eth0", "10.61.%d.1" % k, "lb%s%d" % (g[0], i), "10.61.%d.254" % k)
                self.targets[g].append((ns, "10.61.%d.1" % k))
                k += 1
        self.single = None
        if single:
            ns = self.p + "one"
            self._ns(ns)
            self._link(ns, "eth0", "10.61.99.1", "lbone", "10.61.99.254")
            self.single = (ns, "10.61.99.1")
        # One mirrored ENI per client host: the outer source becomes
        # 10.70.0.<host> by the inner client (source of a query, destination
        # of an answer), stateless, as each ENI has its own mirror session.
        rules = []
        for host in CLIENT_HOSTS:
            last = host.split(".")[-1]
            hexaddr = "0x%08x" % int.from_bytes(bytes(map(int, host.split("."))), "big")
            for bits in (self.INNER_SRC_BITS, self.INNER_DST_BITS):
                rules.append("udp dport 4789 @th,%d,32 %s ip saddr set 10.70.0.%s" % (bits, hexaddr, last))
        self._nft(self.ns_src, "table ip eni {\n chain out {\n  type filter hook postrouting priority 0; policy accept;\n"
                  + "".join("  %s\n" % r for r in rules) + " }\n}\n")
        # The balancer: per VIP a jhash over the outer 5-tuple (the NLB) or
        # the outer source only (stickiness), modulo the group's size.
        chains = []
        keys = {"hash": "ip saddr . udp sport . ip daddr . udp dport", "sticky": "ip saddr"}
        for g in self.groups:
            m = ", ".join("%d : %s" % (i, a) for i, (_, a) in enumerate(self.targets[g]))
            chains.append("  ip daddr %s udp dport 4789 dnat to jhash %s mod %d seed 0x%x map { %s }\n"
                          % (self.VIP[g], keys[g], len(self.targets[g]), seed, m))
        self._nft(self.ns_lb, "table ip nlb {\n chain pre {\n  type nat hook prerouting priority dstnat; policy accept;\n"
                  + "".join(chains) + " }\n}\n")

    def _nft(self, ns, text):
        path = os.path.join(self.dir, ns + ".nft")
        with open(path, "w") as f:
            f.write(text)
        sh("ip", "netns", "exec", ns, "nft", "-f", path)

    # -- processes
    def start_redis(self, conf=()):
        self.redis = RedisNs(self.ns_lb, self.REDIS_ADDR, 6379, self.dir, conf)
        return self.redis

    def start_sensors(self):
        """Starts every sensor; the first alone, so the rest find the rule
        cache warm."""
        extra = self.config_extra if callable(self.config_extra) else (lambda g: self.config_extra)
        all_ = [(g, ns) for g in self.groups for ns, _ in self.targets[g]]
        if self.single:
            all_.append(("single", self.single[0]))
        for i, (g, ns) in enumerate(all_):
            config = scaled_config(self.dir, ns, self.scale,
                                   "sensor_name: %s\n%s" % (ns, extra(g)),
                                   rules_cache=os.path.join(self.dir, "rules-cache"), workers=self.workers)
            s = Sensor(ns, config, os.path.join(self.dir, ns + ".eve.json"), ns)
            self.sensors.setdefault(g, []).append(s)
            if i == 0:
                s.wait_ready()
        for g in self.sensors.values():
            for s in g:
                s.wait_ready()

    def mirror(self, pcap, hooks=(), source_ports=64):
        """Plays `pcap` at --speed scale to every group's VIP and the single
        sensor at once; hooks: (seconds of receive time, callable). Returns
        the wall time it took; self.sent: datagrams sent per destination."""
        dests = [self.VIP[g] for g in self.groups] + ([self.single[1]] if self.single else [])
        procs = [subprocess.Popen(["ip", "netns", "exec", self.ns_src, EXE, "mirror", pcap,
                                   "--to", "%s:4789" % d, "--speed", str(self.scale),
                                   "--source-ports", str(source_ports)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in dests]
        t0 = time.monotonic()
        for at, fn in sorted(hooks, key=lambda h: h[0]):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            fn()
        self.sent = {}
        for d, p in zip(dests, procs):
            out, err = p.communicate(timeout=3600)
            if p.returncode != 0:
                raise RuntimeError("mirror failed: %s %s" % (out, err))
            m = re.search(r"sent (\d+) datagrams", out)
            self.sent[d] = int(m.group(1)) if m else None
        return time.monotonic() - t0

    def stop_sensors(self, settle=2.0):
        """Lets the sensors finish what they received, stops them (SIGTERM
        drains and flushes EVE); returns {group: [alerts per sensor]}."""
        time.sleep(settle)
        out = {}
        for g, ss in self.sensors.items():
            out[g] = []
            for s in ss:
                rc = s.stop()
                if rc != 0:
                    raise AssertionError("sensor %s exit %s:\n%s" % (s.name, rc, s.log()[-3000:]))
                out[g].append(s.alerts())
        return out

    def close(self):
        for ss in self.sensors.values():
            for s in ss:
                s.kill()
        if self.redis:
            self.redis.kill()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []


def tempdir():
    return tempfile.TemporaryDirectory(prefix="exfilwatch-fleet-")
