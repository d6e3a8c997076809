"""robust_floods (issue #8): generated floods replayed with a small memory
budget. Four floods, written as pcaps on the fly: random subdomains under
many registered domains, many clients, many half-open DNS-over-TCP streams,
IPv4 fragments that never complete. For each: the replay succeeds, its peak
RSS stays within the RSS of the same configuration on a small benign capture
plus the configured budgets (score state, TCP buffers, fragment buffers) plus
a fixed allowance, the state the flood asks for exceeds the configured
capacity (so the bound is real), and the eviction counters show it."""
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from robust_common import (CAPTURES, EXFILWATCH, PcapWriter, dns_query, eth, ipv4, kv, run_measured, tcp,
                           udp, v4)

MiB = 1 << 20
DNS_MEMORY = 4 * MiB
TLS_MEMORY = 1 * MiB
TCP_BUFFERED = 256 * 1024
TCP_FLOWS = 1024
FRAG_BYTES = 256 * 1024
FRAG_DATAGRAMS = 256
# allocator slack, pcap read buffers, thread stacks: independent of the flood size
FIXED_ALLOWANCE = 16 * MiB
BUDGET = DNS_MEMORY + TLS_MEMORY + TCP_BUFFERED + FRAG_BYTES

CONFIG = f"""score:
  dns:
    memory_bytes: {DNS_MEMORY}
  tls:
    memory_bytes: {TLS_MEMORY}
dns:
  tcp:
    max_flows: {TCP_FLOWS}
    max_buffered_bytes: {TCP_BUFFERED}
decode:
  fragments:
    max_datagrams: {FRAG_DATAGRAMS}
    max_bytes: {FRAG_BYTES}
detect:
  suppress_slots: 4096
"""

RESOLVER = bytes([10, 255, 0, 53])
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def rand_label(rng, n):
    return "".join(rng.choice(B32) for _ in range(n))


def flood_random_subdomains(path, rng, n=60000):
    """One client, random 40-char prefixes under 30000 registered domains."""
    w = PcapWriter(path)
    for i in range(n):
        name = "%s.d%d.com" % (rand_label(rng, 40), rng.randrange(30000))
        w.write(1_000_000 + i * 20, eth(ipv4(v4(1), RESOLVER, 17, udp(30000 + i % 30000, 53, dns_query(i, name)))))
    w.close()
    return n


def flood_many_clients(path, rng, n=100000):
    """100000 distinct clients, each asking one random name of 200 domains."""
    w = PcapWriter(path)
    for i in range(n):
        name = "%s.c%d.net" % (rand_label(rng, 12), rng.randrange(200))
        w.write(1_000_000 + i * 20, eth(ipv4(v4(0x10000 + i), RESOLVER, 17, udp(40000, 53, dns_query(i, name)))))
    w.close()
    return n


def flood_half_open_tcp(path, rng, flows=40000):
    """SYN, then the first 100 bytes of a 1000-byte length-prefixed DNS
    message, and nothing more: every stream holds a partial message."""
    w = PcapWriter(path)
    ts = 1_000_000
    for i in range(flows):
        cli, sport, isn = v4(0x20000 + i), 1024 + i % 60000, rng.getrandbits(32)
        w.write(ts, eth(ipv4(cli, RESOLVER, 6, tcp(sport, 53, isn, 0x02))))
        body = (1000).to_bytes(2, "big") + dns_query(i, "%s.half.org" % rand_label(rng, 20))
        body = body[:100].ljust(100, b"\0")
        w.write(ts + 5, eth(ipv4(cli, RESOLVER, 6, tcp(sport, 53, isn + 1, 0x18, body))))
        ts += 20
    w.close()
    return 2 * flows


def flood_fragments(path, rng, n=60000):
    """First fragments (MF, offset 0) of 1400-byte UDP DNS datagrams whose
    rest never comes, each with its own IP id."""
    w = PcapWriter(path)
    for i in range(n):
        payload = udp(50000, 53, dns_query(i, "%s.frag.io" % rand_label(rng, 30)).ljust(1392, b"x"))
        first = payload[:1000]
        w.write(1_000_000 + i * 20,
                eth(ipv4(v4(0x30000 + i % 5000), RESOLVER, 17, first, ident=i, flags_frag=0x2000,
                         total=20 + len(first))))
    w.close()
    return n


def replay(config, pcap):
    r, rss = run_measured([EXFILWATCH, "replay", "--config", config, "--eve", os.devnull, pcap])
    assert r.returncode == 0, r.stderr
    return kv(r.stderr), rss, r.stderr


def main():
    rng = random.Random(8)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="exfilwatch-floods-") as d:
        config = os.path.join(d, "budget.yaml")
        with open(config, "w") as f:
            f.write(CONFIG)
        base, base_rss, _ = replay(config, os.path.join(CAPTURES, "benign-dns.pcap"))
        limit = base_rss + BUDGET + FIXED_ALLOWANCE
        print("baseline peak RSS %.1f MiB; limit %.1f MiB (baseline + %.1f MiB budget + %.1f MiB fixed)"
              % (base_rss / MiB, limit / MiB, BUDGET / MiB, FIXED_ALLOWANCE / MiB))

        def check(name, cond, detail):
            nonlocal failures
            print("%s %s: %s" % ("ok  " if cond else "FAIL", name, detail))
            if not cond:
                failures += 1

        floods = [
            ("random_subdomains", flood_random_subdomains,
             lambda s: [("pairs over capacity", 25000 > s["dns_pairs_capacity"],
                         "~26000 pairs asked, capacity %d" % s["dns_pairs_capacity"]),
                        ("dns_evictions moved", s.get("dns_evictions", 0) > 0, "dns_evictions=%d" % s.get("dns_evictions", 0)),
                        ("pairs bounded", s["dns_pairs"] <= s["dns_pairs_capacity"], "dns_pairs=%d" % s["dns_pairs"])]),
            ("many_clients", flood_many_clients,
             lambda s: [("pairs over capacity", 100000 > s["dns_pairs_capacity"],
                         "100000 clients, capacity %d" % s["dns_pairs_capacity"]),
                        ("dns_evictions moved", s.get("dns_evictions", 0) > 0, "dns_evictions=%d" % s.get("dns_evictions", 0)),
                        ("pairs bounded", s["dns_pairs"] <= s["dns_pairs_capacity"], "dns_pairs=%d" % s["dns_pairs"])]),
            ("half_open_tcp", flood_half_open_tcp,
             lambda s: [("flow evictions counted", s.get("dns_tcp.flow_evicted", 0) > 0,
                         "dns_tcp.flow_evicted=%d" % s.get("dns_tcp.flow_evicted", 0)),
                        ("buffer budget enforced", s.get("dns_tcp.buffer_budget_exceeded", 0) > 0,
                         "dns_tcp.buffer_budget_exceeded=%d" % s.get("dns_tcp.buffer_budget_exceeded", 0))]),
            ("fragments", flood_fragments,
             lambda s: [("fragment evictions counted",
                         s.get("ip.fragment_table_full", 0) + s.get("ip.fragment_timeout", 0) > 0,
                         "ip.fragment_table_full=%d ip.fragment_timeout=%d"
                         % (s.get("ip.fragment_table_full", 0), s.get("ip.fragment_timeout", 0))),
                        ("held fragments counted", s.get("fragments_held", 0) >= 60000 - FRAG_DATAGRAMS,
                         "fragments_held=%d" % s.get("fragments_held", 0))]),
        ]
        for name, gen, checks in floods:
            pcap = os.path.join(d, name + ".pcap")
            packets = gen(pcap, rng)
            s, rss, text = replay(config, pcap)
            os.unlink(pcap)
            print("--- %s: %d packets, peak RSS %.1f MiB\n%s" % (name, packets, rss / MiB, text.strip()))
            check(name + ": all packets read", s.get("packets") == packets or str(packets) in text, "")
            check(name + ": peak RSS within budget", rss <= limit, "%.1f MiB <= %.1f MiB" % (rss / MiB, limit / MiB))
            for label, cond, detail in checks(s):
                check(name + ": " + label, cond, detail)
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
