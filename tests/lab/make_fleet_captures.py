#!/usr/bin/env python3
"""make_fleet_captures: records the fleet lab's leak captures (issue 22) in
tests/data/fleet-lab/, with the shared lab's tools, as root:

- slow-leak.pcap: 2 bytes of a random secret per A query as 4 hex
  characters plus a sequence-number label (low entropy: no query is
  tunnel-shaped), re-timed to one query every 4 s (0.5 B/s) over one hour;
- base32-leak.pcap: 32 bytes per query as 52 base32 characters (every
  query is tunnel-shaped), one query every 0.5 s for 24 s;
- spread-5hosts.pcap: 4 bytes per query as 8 hex characters plus a
  sequence number, one query every 4.8 s over one hour, the client
  address rewritten per query in turn to 10.53.0.2-6
  (inside the VXLAN frame: the five hosts behind one mirrored ENI), so
  each host carries a fifth of it;
- tls-split-upload.pcap: 15 TLS connections from 10.53.0.2 to the same
  server (10.53.0.1:8443, socat's OPENSSL sink), each uploading 100,000
  random bytes, one after the other: 1.5 MB in a few seconds, more than
  the bulk threshold (1 MB in the middle window) on one sensor, while the
  NLB puts each connection (its own source port) on one of the sensors.
  Recorded with SNAP=600 (the ClientHello fits; bytes come from the IP
  length fields) and kept at its own time.

Each leak is recorded in the mirror lab (../shared/lab/mirrorlab.sh: dig in
the client namespace, dnsmasq answering every name, the kernel mirroring
the client's frames as VXLAN to the monitor, tcpdump there), then re-timed
with ../shared/lab/pcap_even_dns.py to start at the first packet of
../shared/captures/benign-dns.pcap. The tests merge each with that benign
traffic stretched over the hour (fleet_common.merged_capture:
pcap_stretch.py then mergecap), so only the leaks are kept here.

usage: make_fleet_captures.py [--out DIR] [--only NAME]
"""
import argparse
import base64
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
SHARED = os.environ.get("SHARED_DIR") or os.path.normpath(os.path.join(SRC, "..", "shared"))
LAB = os.path.join(SHARED, "lab")
BENIGN = os.path.join(SHARED, "captures", "benign-dns.pcap")
PREFIX = "fcap"

SEED = 22


def hex_names(domain, nbytes, seed, chunk):
    rng = random.Random(seed)
    secret = bytes(rng.randrange(256) for _ in range(nbytes))
    return [f"{secret[i:i + chunk].hex()}.{i // chunk + 1}.{domain}" for i in range(0, nbytes, chunk)]


def base32_names(domain, nbytes):
    rng = random.Random(SEED + 1)
    secret = bytes(rng.randrange(256) for _ in range(nbytes))
    out = []
    for i in range(0, nbytes, 32):
        b = base64.b32encode(secret[i:i + 32]).decode().rstrip("=").lower()
        out.append(f"{b}.{i // 32 + 1}.{domain}")
    return out


# name -> (domain, names maker, seconds between queries, client rewrite)
CAPTURES = {
    # 900 queries x 2 B = 1,800 B over 3,600 s
    "slow-leak": ("drip-relay.net", lambda d: hex_names(d, 1800, SEED, 2), 4.0, None),
    # 48 queries x 32 B
    "base32-leak": ("b32-drop.org", lambda d: base32_names(d, 1536), 0.5, None),
    # 750 queries x 4 B = 3,000 B over 3,600 s, 150 queries and 600 B per host:
    # no host crosses a per-pair threshold (1 h window nor daily budget)
    "spread-5hosts": ("fanout-sync.com", lambda d: hex_names(d, 3000, SEED + 2, 4), 4.8,
                      ["10.53.0.%d" % h for h in range(2, 7)]),
}

# name -> (connections, bytes each, SNI): the TLS recordings
TLS_CAPTURES = {
    "tls-split-upload": (15, 100000, "vault.split-sink.net"),
}


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, **kw)


def first_ts(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        rec = f.read(16)
    end = "<" if hdr[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    div = 1e9 if hdr[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
    s, frac = struct.unpack(end + "II", rec[:8])
    return s + frac / div


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def rewrite_clients(src, dst, clients):
    """The k-th query's client becomes clients[k % n]; its answer goes to the
    same one (matched by client port and DNS id). Inner IPv4 and UDP
    checksums are recomputed, and the outer UDP one that covers them."""
    data = open(src, "rb").read()
    end = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off, k, owner = [data[:24]], 24, 0, {}
    ip0 = 14 + 20 + 8 + 8 + 14  # outer Ethernet, IPv4, UDP, VXLAN; inner Ethernet
    while off + 16 <= len(data):
        hdr = data[off:off + 16]
        incl = struct.unpack(end + "I", hdr[8:12])[0]
        pkt = bytearray(data[off + 16:off + 16 + incl])
        off += 16 + incl
        if len(pkt) >= ip0 + 28 and pkt[ip0] >> 4 == 4 and pkt[ip0 + 9] == 17:
            ihl = (pkt[ip0] & 15) * 4
            u = ip0 + ihl
            sport, dport = struct.unpack("!HH", pkt[u:u + 4])
            qid = bytes(pkt[u + 8:u + 10])
            if dport == 53:
                new = clients[k % len(clients)]
                k += 1
                owner[(sport, qid)] = new
                pkt[ip0 + 12:ip0 + 16] = bytes(map(int, new.split(".")))
            elif sport == 53 and (dport, qid) in owner:
                pkt[ip0 + 16:ip0 + 20] = bytes(map(int, owner[(dport, qid)].split(".")))
            pkt[ip0 + 10:ip0 + 12] = b"\0\0"
            pkt[ip0 + 10:ip0 + 12] = struct.pack("!H", csum16(bytes(pkt[ip0:ip0 + ihl])))
            ulen = struct.unpack("!H", pkt[u + 4:u + 6])[0]
            pkt[u + 6:u + 8] = b"\0\0"
            pseudo = bytes(pkt[ip0 + 12:ip0 + 20]) + struct.pack("!BBH", 0, 17, ulen)
            c = csum16(pseudo + bytes(pkt[u:u + ulen]))
            pkt[u + 6:u + 8] = struct.pack("!H", c or 0xFFFF)
            if pkt[34 + 6:34 + 8] != b"\0\0":  # the outer UDP checksum covers the inner frame
                olen = struct.unpack("!H", pkt[34 + 4:34 + 6])[0]
                pkt[34 + 6:34 + 8] = b"\0\0"
                pseudo = bytes(pkt[26:34]) + struct.pack("!BBH", 0, 17, olen)
                c = csum16(pseudo + bytes(pkt[34:34 + olen]))
                pkt[34 + 6:34 + 8] = struct.pack("!H", c or 0xFFFF)
        out.append(hdr + bytes(pkt))
    open(dst, "wb").write(b"".join(out))
    return k


def record(name, out_dir):
    domain, make, gap, clients = CAPTURES[name]
    names = make(domain)
    lab = os.path.join(LAB, "mirrorlab.sh")
    env = dict(os.environ, LAB_PREFIX=PREFIX)
    work = tempfile.mkdtemp()
    dnsmasq = None
    try:
        subprocess.run([lab, "down"], env=env, capture_output=True)
        sh(lab, "up", env=env)
        # a catch-all authoritative server, as scenarios.sh runs it
        dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", PREFIX + "srv", "dnsmasq", "-k", "--no-resolv", "--no-hosts",
             "--listen-address=10.53.0.1", "--bind-interfaces", "--address=/#/198.51.100.7"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sh("sleep", "0.5")
        qfile = os.path.join(work, "names")
        with open(qfile, "w") as f:
            f.writelines(f"{n} A\n" for n in names)
        raw = os.path.join(work, "raw.pcap")
        # mirrorlab's capture exits 1 from its clean-up trap: judge by the file
        subprocess.run([lab, "capture", raw, "--", "dig", "-b", "10.53.0.2", "@10.53.0.1",
                        "+tries=1", "+time=1", "-f", qfile], env=env, stdout=subprocess.DEVNULL)
        if not os.path.exists(raw) or os.path.getsize(raw) <= 24:
            sys.exit(f"{name}: nothing recorded")
        timed = os.path.join(work, "timed.pcap")
        sh(sys.executable, os.path.join(LAB, "pcap_even_dns.py"), raw, timed, str(gap),
           "%.6f" % first_ts(BENIGN))
        dst = os.path.join(out_dir, name + ".pcap")
        if clients:
            rewrite_clients(timed, dst, clients)
        else:
            shutil.copyfile(timed, dst)
        print(f"{name}: {len(names)} queries to {domain}, one every {gap} s -> {dst}")
    finally:
        if dnsmasq:
            dnsmasq.terminate()
            dnsmasq.wait()
        subprocess.run([lab, "down"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def record_tls(name, out_dir):
    flows, size, sni = TLS_CAPTURES[name]
    lab = os.path.join(LAB, "mirrorlab.sh")
    env = dict(os.environ, LAB_PREFIX=PREFIX)
    work = tempfile.mkdtemp()
    server = None
    try:
        subprocess.run([lab, "down"], env=env, capture_output=True)
        sh(lab, "up", env=env)
        key, cert = os.path.join(work, "k.pem"), os.path.join(work, "c.pem")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=srv",
           "-keyout", key, "-out", cert, "-days", "2", capture_output=True)
        # the sink of scenarios.sh https-8443-upload: takes every upload, answers nothing
        server = subprocess.Popen(
            ["ip", "netns", "exec", PREFIX + "srv", "socat",
             f"OPENSSL-LISTEN:8443,bind=10.53.0.1,cert={cert},key={key},verify=0,fork,reuseaddr",
             "SYSTEM:cat >/dev/null"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sh("sleep", "0.5")
        rng = random.Random(SEED + 3)
        files = []
        for i in range(flows):
            f = os.path.join(work, f"part{i}")
            with open(f, "wb") as out:
                out.write(bytes(rng.randrange(256) for _ in range(size)))
            files.append(f)
        script = "; ".join(
            f"socat -u FILE:{f} OPENSSL:10.53.0.1:8443,verify=0,snihost={sni}; sleep 0.2"
            for f in files)
        dst = os.path.join(out_dir, name + ".pcap")
        subprocess.run([lab, "capture", dst, "--", "bash", "-c", script],
                       env=dict(env, SNAP="600"), stdout=subprocess.DEVNULL)
        if not os.path.exists(dst) or os.path.getsize(dst) <= 24:
            sys.exit(f"{name}: nothing recorded")
        print(f"{name}: {flows} TLS uploads of {size} B to 10.53.0.1:8443 ({sni}) -> {dst}")
    finally:
        if server:
            server.terminate()
            server.wait()
        subprocess.run([lab, "down"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(SRC, "tests", "data", "fleet-lab"))
    ap.add_argument("--only", choices=sorted(list(CAPTURES) + list(TLS_CAPTURES)))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the lab uses network namespaces")
    os.makedirs(a.out, exist_ok=True)
    for name in [a.only] if a.only else list(CAPTURES) + list(TLS_CAPTURES):
        (record_tls if name in TLS_CAPTURES else record)(name, a.out)


if __name__ == "__main__":
    main()
