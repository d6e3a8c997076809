#!/usr/bin/env python3
"""live_bad_input: garbage on the tunnel socket. Non-VXLAN datagrams, VXLAN
with a cleared I flag, runts, 9000-byte jumbo frames, datagrams larger than
the receive slot, then random bytes as fast as Python sends them. Each kind
is counted under its own name in the sensor's statistics, nothing crashes,
and memory stays flat (RSS after the flood within a small bound of RSS after
a warm-up with the same traffic)."""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import live_common as lc  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def vxlan(inner, flags=0x08, vni=1):
    return struct.pack("!B3xI", flags, vni << 8) + inner


def udp_frame(payload, sport=40000, dport=53, src="10.9.0.2", dst="10.9.0.1"):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    return eth + ip + udp


DNS_QUERY = bytes.fromhex("1234010000010000000000000377777706676f6f676c6503636f6d0000010001")
rng = random.Random(7)
with lc.tempdir() as d:
    port = lc.free_port()
    config = lc.write_config(d, port, extra="rules:\n  enabled: false\n")
    sensor = lc.Sensor(config, os.path.join(d, "eve.json"), args=["--stats-interval", "1"])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    dest = ("127.0.0.1", port)
    sent = {"not_tunnel": 0, "bad_flags": 0, "runt": 0, "jumbo": 0, "oversize": 0, "random": 0}

    def burst(seconds, pace=True):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(50):
                s.sendto(DNS_QUERY, dest)  # a plain DNS query: not a tunnel
                s.sendto(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", dest)
                sent["not_tunnel"] += 2
                s.sendto(vxlan(udp_frame(DNS_QUERY), flags=0x00), dest)
                sent["bad_flags"] += 1
                s.sendto(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 22))), dest)
                sent["runt"] += 1
            # 9000-byte jumbo frames (AWS mirror MTU 9001): decoded, DNS junk inside.
            s.sendto(vxlan(udp_frame(os.urandom(8950 - 42 - 8))), dest)
            sent["jumbo"] += 1
            s.sendto(vxlan(udp_frame(os.urandom(12000))), dest)  # > 9216-byte slot
            sent["oversize"] += 1
            if pace:
                time.sleep(0.002)  # keep the deterministic kinds loss-free

    def flood(seconds):
        end = time.monotonic() + seconds
        blobs = [bytearray(os.urandom(rng.randrange(1, 1500))) for _ in range(512)]
        for b in blobs:
            # A random blob can pass for a VXLAN header with the I flag
            # cleared (1 in 32,768) and would then be counted, each of the
            # hundreds of times it is resent, as vxlan.bad_flags: keep the
            # reserved last byte non-zero so it stays socket.not_tunnel.
            if len(b) >= 8 and b[7] == 0:
                b[7] = 1
        blobs = [bytes(b) for b in blobs]
        while time.monotonic() < end:
            for b in blobs:
                s.sendto(b, dest)
            sent["random"] += len(blobs)

    burst(1.0)
    flood(1.0)
    sensor.wait_for("stats: datagrams", count=2)
    time.sleep(1.2)
    warm = lc.parse_stats(sensor.log())["rss_kb"]
    burst(2.0)
    flood(3.0)
    time.sleep(1.2)
    rc, stats = sensor.stop()
    print("sent:", sent)
    print("stats:", {k: v for k, v in stats.items() if "." in k or k in ("datagrams", "kernel_drops", "rss_kb")})
    check(rc == 0, "exit 0 after the garbage (got %s)" % rc)
    check(stats.get("socket.not_tunnel", 0) >= sent["not_tunnel"], "socket.not_tunnel counted (%s)" % stats.get("socket.not_tunnel"))
    check(stats.get("vxlan.bad_flags", 0) == sent["bad_flags"], "vxlan.bad_flags == %d (%s)" % (sent["bad_flags"], stats.get("vxlan.bad_flags")))
    check(stats.get("socket.runt", 0) >= sent["runt"], "socket.runt counted (%s)" % stats.get("socket.runt"))
    check(stats.get("socket.oversize", 0) == sent["oversize"], "socket.oversize == %d (%s)" % (sent["oversize"], stats.get("socket.oversize")))
    total = sum(sent.values())
    check(stats.get("datagrams", 0) + stats.get("kernel_drops", 0) == total,
          "received + kernel drops == sent (%s + %s vs %d)" % (stats.get("datagrams"), stats.get("kernel_drops"), total))
    check(stats.get("frames", 0) == stats.get("processed", -1), "every received datagram went through the decoder")
    growth = stats["rss_kb"] - warm
    check(growth < 16 * 1024, "memory flat: RSS %d kB after warm-up, %d kB at the end (+%d kB)" % (warm, stats["rss_kb"], growth))

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
