#!/usr/bin/env python3
"""live_foreign_source (issue #24): only the mirror sources feed the sensor.
With listen.sources [127.0.0.2/32] and the sensor on 127.0.0.1, VXLAN
datagrams carrying DNS queries sent from 127.0.0.1 are dropped before
decoding and counted (socket.foreign_source, on /metrics and the stats
line), while the same datagrams sent from 127.0.0.2 are decoded. Without
listen.sources the sensor warns at start that any sender is accepted, and
decodes both. A bad prefix is a configuration error with its line."""
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import delivery_common as dc  # noqa: E402
import live_common as lc  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def dns_query(qid, name):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def datagram(i):
    """VXLAN, Ethernet, IPv4, UDP to 53, one DNS query (a distinct name each)."""
    payload = dns_query(i, "host%d.example.org" % i)
    udp = struct.pack("!HHHH", 40000 + i % 1000, 53, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                     socket.inet_aton("10.9.0.2"), socket.inet_aton("10.9.0.1"))
    words = struct.unpack("!10H", ip)
    csum = sum(words)
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    return struct.pack("!B3xI", 0x08, 7 << 8) + eth + ip + udp


def send(src, port, first, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    for i in range(first, first + n):
        s.sendto(datagram(i), ("127.0.0.1", port))
    s.close()


def scrape_counts(mport):
    text = dc.scrape(mport)
    foreign = dc.metric_values(text, "exfilwatch_anomalies_total").get('{name="socket.foreign_source"}')
    queries = dc.metric_values(text, "exfilwatch_dns_messages_total").get('{type="query"}')
    return foreign, queries


FOREIGN, OWN = 120, 80
with lc.tempdir() as d:
    port, mport = lc.free_port(), lc.free_port()
    extra = "  sources: [127.0.0.2/32]\nmetrics:\n  address: 127.0.0.1:%d\n" % mport
    sensor = lc.Sensor(lc.write_config(d, port, extra=extra, health_port=0),
                       os.path.join(d, "eve.json"))
    check("listen.sources is empty" not in sensor.log(), "no any-sender warning with listen.sources set")
    send("127.0.0.1", port, 0, FOREIGN)
    got = dc.wait_until(lambda: (lambda c: c if c[0] == FOREIGN else None)(scrape_counts(mport)), 30,
                        "socket.foreign_source == %d" % FOREIGN)
    check(got == (FOREIGN, 0), "from 127.0.0.1: %d dropped and counted, 0 queries decoded (%s)" % (FOREIGN, got))
    send("127.0.0.2", port, FOREIGN, OWN)
    got = dc.wait_until(lambda: (lambda c: c if c[1] == OWN else None)(scrape_counts(mport)), 30,
                        "%d queries decoded" % OWN)
    check(got == (FOREIGN, OWN), "from 127.0.0.2: %d decoded, foreign count unchanged (%s)" % (OWN, got))
    rc, stats = sensor.stop()
    check(rc == 0, "exit 0")
    check(stats.get("socket.foreign_source") == FOREIGN and stats["processed"] == OWN
          and stats["datagrams"] == FOREIGN + OWN and stats["dns_messages"] == OWN,
          "final stats: foreign %s, processed %s, datagrams %s, dns %s"
          % (stats.get("socket.foreign_source"), stats["processed"], stats["datagrams"], stats["dns_messages"]))

    # No listen.sources: any sender, and a warning at start.
    port = lc.free_port()
    sensor = lc.Sensor(lc.write_config(d, port, health_port=0), os.path.join(d, "eve2.json"))
    check("warning: listen.sources is empty" in sensor.log(), "warning at start without listen.sources")
    send("127.0.0.1", port, 0, 10)
    send("127.0.0.2", port, 10, 10)
    rc, stats = sensor.stop()
    check(rc == 0 and stats["dns_messages"] == 20 and "socket.foreign_source" not in stats,
          "without listen.sources both senders are decoded (%s)" % stats.get("dns_messages"))

    # A bad prefix fails the start with the file and line.
    for bad in ("127.0.0.2/33", "not-an-address", "10.0.0.0/"):
        cfg = lc.write_config(d, port, extra="  sources: [%s]\n" % bad, health_port=0)
        r = subprocess.run([lc.EXFILWATCH, "run", "--config", cfg, "--eve", os.path.join(d, "e.json")],
                           capture_output=True, text=True, timeout=lc.START_TIMEOUT)
        check(r.returncode == 2 and "sensor.yaml:" in r.stderr and "listen.sources" in r.stderr,
              "sources: [%s] refused: rc %d: %s" % (bad, r.returncode, r.stderr.strip()))

if failures:
    print("FAILED: %d check(s)" % len(failures))
    sys.exit(1)
print("PASS")
