"""redis_common: real redis-server processes for the fleet tests (issue 22),
on free loopback ports with temporary directories: one node (optionally with
a password and ACL users), a cluster of masters (`redis-cli --cluster
create`), TLS (certificates made by `openssl` at test time), and fake
servers that answer garbage or slowly. Everything started is killed at exit,
also when the test is terminated. Stdlib only."""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import live_common as lc  # noqa: E402

_PROCESSES = []


def _cleanup():
    for p in _PROCESSES:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def need(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        raise SystemExit("missing %s (deploy/debian-packages.txt)" % ", ".join(missing))


def free_tcp_port():
    return lc.free_port()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Redis:
    """One redis-server. `conf` lines are added to a generated redis.conf;
    tls: a Certs to serve TLS only (port 0, tls-port)."""

    def __init__(self, directory, name, conf=(), tls=None, password=None):
        self.dir = os.path.join(directory, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_tcp_port()
        self.tls = tls
        self.password = password
        lines = ["bind 127.0.0.1", "save \"\"", "appendonly no", "dir " + self.dir,
                 "logfile " + os.path.join(self.dir, "log"), "protected-mode no"]
        if tls:
            lines += ["port 0", "tls-port %d" % self.port, "tls-cert-file " + tls.server_crt,
                      "tls-key-file " + tls.server_key, "tls-ca-cert-file " + tls.ca_crt]
        else:
            lines.append("port %d" % self.port)
        if password:
            lines.append("requirepass " + password)
        lines += list(conf)
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.start()

    def start(self):
        log = os.path.join(self.dir, "log")
        seen = open(log).read().count("Ready to accept connections") if os.path.exists(log) else 0
        self.proc = subprocess.Popen(["redis-server", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _PROCESSES.append(self.proc)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited: " + open(log).read()[-2000:])
            return os.path.exists(log) and open(log).read().count("Ready to accept connections") > seen
        wait_for(ready, 20, "redis-server on port %d" % self.port)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def cli(self, *args, user=None, password=None, check=True):
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.tls:
            argv += ["--tls", "--cacert", self.tls.ca_crt]
        password = password or self.password
        if user:
            argv += ["--user", user]
        if password:
            argv += ["--pass", password]
        r = subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError("redis-cli %s: %s" % (" ".join(map(str, args)), r.stderr))
        return r.stdout.strip()


class Cluster:
    """`masters` cluster-enabled redis-servers joined by redis-cli --cluster create."""

    def __init__(self, directory, masters=3):
        self.dir = directory
        self.nodes = [self._node("cluster%d" % i) for i in range(masters)]
        addrs = ["127.0.0.1:%d" % n.port for n in self.nodes]
        subprocess.run(["redis-cli", "--cluster", "create"] + addrs +
                       ["--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        wait_for(lambda: all("cluster_state:ok" in n.cli("cluster", "info") for n in self.nodes),
                 30, "cluster_state:ok")

    def _node(self, name):
        return Redis(self.dir, name, conf=[
            "cluster-enabled yes", "cluster-port %d" % free_tcp_port(),
            "cluster-config-file " + os.path.join(self.dir, name, "nodes.conf"), "cluster-node-timeout 5000"])

    def live(self):
        return [n for n in self.nodes if n.proc.poll() is None]

    def add_replica(self, master):
        """A new node replicating `master`, in sync and known to every live node."""
        r = self._node("replica%d" % len(self.nodes))
        subprocess.run(["redis-cli", "--cluster", "add-node", "127.0.0.1:%d" % r.port,
                        "127.0.0.1:%d" % master.port, "--cluster-slave", "--cluster-master-id",
                        self.node_id(master)], check=True, capture_output=True, timeout=60)
        self.nodes.append(r)
        rid = self.node_id(r)
        wait_for(lambda: "master_link_status:up" in r.cli("info", "replication"), 30, "replica in sync")
        wait_for(lambda: all(rid in n.cli("cluster", "nodes") for n in self.live()), 30, "replica known")
        return r

    def node_id(self, node):
        return node.cli("cluster", "myid")

    def owner(self, slot):
        """The live node serving `slot`, from its own view."""
        for n in self.live():
            for line in n.cli("cluster", "nodes").splitlines():
                f = line.split()
                if "myself" in f[2] and "master" in f[2]:
                    for r in f[8:]:
                        if r.startswith("["):
                            continue
                        lo, _, hi = r.partition("-")
                        if int(lo) <= slot <= int(hi or lo):
                            return n
        return None


class Certs:
    """A CA, a server certificate for 127.0.0.1/localhost and a client
    certificate, all made by openssl now."""

    def __init__(self, directory):
        d = os.path.join(directory, "tls")
        os.makedirs(d, exist_ok=True)

        def p(name):
            return os.path.join(d, name)

        def run(*args):
            subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)

        self.ca_crt, self.ca_key = p("ca.crt"), p("ca.key")
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=exfilwatch test CA",
            "-keyout", self.ca_key, "-out", self.ca_crt)
        with open(p("server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        self.server_crt, self.server_key = p("server.crt"), p("server.key")
        self.client_crt, self.client_key = p("client.crt"), p("client.key")
        for crt, key, cn, ext in ((self.server_crt, self.server_key, "localhost", ["-extfile", p("server.ext")]),
                                  (self.client_crt, self.client_key, "sensor", [])):
            csr = crt + ".csr"
            run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", key, "-out", csr)
            run("x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key, "-CAcreateserial",
                "-days", "2", "-out", crt, *ext)
        # A second CA that signed nothing here: a client trusting it must refuse the server.
        self.other_ca = p("other-ca.crt")
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
            "-keyout", p("other-ca.key"), "-out", self.other_ca)


class FakeServer:
    """A TCP server on loopback that answers PING with +PONG (so the client's
    handshake passes) and any other command `reply(data)` after `delay`."""

    def __init__(self, reply, delay=0.0):
        self.reply, self.delay = reply, delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                out = b""
                if b"PING" in data:
                    out += b"+PONG\r\n"
                if b"PING" not in data or data.count(b"*") > 1:
                    if self.delay:
                        time.sleep(self.delay)
                    out += self.reply(data)
                try:
                    c.sendall(out)
                except OSError:
                    return

    def stop(self):
        self.stopped = True
        self.sock.close()
