"""fleet_leaks: synthetic leaks for the fleet tests (issue 22): DNS queries
inside VXLAN framed as the mirror lab records them, each from its own source
port (as a resolver library sends them), so that lab/fleet_split.py spreads
one client's queries over the shards as the NLB spreads them over sensors."""
import base64
import random
import struct

from dns_synth import dns_query, ipv4


def frame(client, qid, name):
    """A DNS query inside VXLAN, as the mirror lab records it; each query
    from its own source port, as a resolver library sends them."""
    q = dns_query(qid, name)
    udp = struct.pack("!HHHH", 30000 + qid % 20000, 53, 8 + len(q), 0) + q
    inner = (b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" +
             ipv4(client, [10, 53, 0, 1], len(udp)) + udp)
    vx = struct.pack("!BBBBI", 0x08, 0, 0, 0, 1234 << 8) + inner
    outer = struct.pack("!HHHH", 40000 + qid % 20000, 4789, 8 + len(vx), 0) + vx
    return (b"\x02\x00\x00\x00\x00\x0a\x02\x00\x00\x00\x00\x0b\x08\x00" +
            ipv4([10, 54, 0, 2], [10, 54, 0, 1], len(outer)) + outer)


def write_leak(path, client, chunk, gap, encode, domain, total=3600):
    """`total` random bytes leaked `chunk` at a time, one query every `gap`
    seconds, each name `encode(chunk)` under `domain`."""
    rng = random.Random(22)
    secret = bytes(rng.randrange(256) for _ in range(total))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for k, i in enumerate(range(0, len(secret), chunk)):
            data = frame(client, k, encode(secret[i:i + chunk]) + "." + domain)
            t = 1_700_000_000 + k * gap
            f.write(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)), len(data), len(data)) + data)


def write_slow_leak(path):
    """1 byte/s for an hour as 32 hex characters every 16 s: short labels, so
    no query looks tunnel-shaped; only the information volume over the hour
    (2,500 bytes by default) gives it away, and a third of it never does."""
    write_leak(path, [10, 53, 0, 7], 16, 16, bytes.hex, "c2-slow.net")


def write_daily_leak(path):
    """0.2 byte/s for four hours as 16 hex characters every 40 s: under
    every window (about 900 bytes of information an hour), so only the
    daily budget (1,600 bytes) catches it, after about two hours; a third
    of it stays under the budget for the whole capture."""
    write_leak(path, [10, 53, 0, 8], 8, 40, bytes.hex, "c2-daily.net", total=2880)


def write_base32_leak(path, client=(10, 53, 0, 9), domain="b32-drop.net", total=30000):
    """A fast base32 leak: 30 bytes per name (48 characters), 4 names a second."""
    write_leak(path, list(client), 30, 0.25,
               lambda b: base64.b32encode(b).decode().lower().rstrip("="), domain, total)
