#!/usr/bin/env python3
"""detection_memory: 5 million queries for unique random subdomains from
1,000 clients (bench/score_flood: random 16-character labels under 100,000
registered domains, so up to 10^8 (client, domain) pairs) stay inside the
configured scoring budget. Peak RSS of the replay is measured (wait4
rusage) and compared with the same run on 100,000 queries: the scoring
tables are preallocated from the budget, so a flood must not add to them;
evictions are counted and bytes per tracked pair reported.
"""
import os
import re
import subprocess
import tempfile

from detection_common import EXE, check, finish

FLOOD = os.environ.get("SCORE_FLOOD", "")
PACKETS = int(os.environ.get("FLOOD_PACKETS", "5000000"))
DNS_BUDGET = 32 << 20
SEEN_BUDGET = 8 << 20
DOMAIN_BUDGET = 2 << 20  # the domain view's table
TLS_BUDGET = 1 << 20


def run(packets, cfg):
    gen = subprocess.Popen([FLOOD, str(packets), "1000", "100000", "7"], stdout=subprocess.PIPE)
    rep = subprocess.Popen([EXE, "replay", "--config", cfg, "--eve", "/dev/null", "-"], stdin=gen.stdout,
                           stderr=subprocess.PIPE, text=True)
    gen.stdout.close()
    err = rep.stderr.read()
    _, status, usage = os.wait4(rep.pid, 0)
    gen.wait()
    return status, usage.ru_maxrss * 1024, err


if not os.path.exists(FLOOD):
    print(f"SKIP: flood generator {FLOOD!r} not built")
    raise SystemExit(77)

with tempfile.TemporaryDirectory() as d:
    cfg = os.path.join(d, "budget.yaml")
    with open(cfg, "w") as f:
        f.write("rules:\n  enabled: false\nscore:\n"
                f"  dns:\n    memory_bytes: {DNS_BUDGET}\n    seen_names_bytes: {SEEN_BUDGET}\n"
                f"    domain:\n      memory_bytes: {DOMAIN_BUDGET}\n"
                f"  tls:\n    memory_bytes: {TLS_BUDGET}\n    max_flows: 1024\n    hello_buffers: 16\n")
    st_small, rss_small, _ = run(100_000, cfg)
    st, rss, err = run(PACKETS, cfg)
    check(st == 0 and st_small == 0, "replay of the flood exits 0")
    m = re.search(r"score: dns_pairs=(\d+)/(\d+) dns_evictions=(\d+) dns_bytes_per_pair=([\d.]+) dns_memory=(\d+)", err)
    check(m is not None, "replay reports scoring state")
    pkts = re.search(r"(\d+) packets", err)
    print(f"flood: {pkts.group(1) if pkts else '?'} queries from 1,000 clients; "
          f"peak RSS {rss / 2**20:.1f} MiB (100k-query run: {rss_small / 2**20:.1f} MiB); "
          f"budget dns {DNS_BUDGET >> 20} MiB + seen names {SEEN_BUDGET >> 20} MiB + domains "
          f"{DOMAIN_BUDGET >> 20} MiB")
    if m:
        pairs, cap, ev, bpp, mem = int(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4)), int(m.group(5))
        print(f"pairs tracked {pairs}/{cap}, evictions {ev}, {bpp:.1f} bytes per tracked pair, "
              f"scoring memory {mem / 2**20:.1f} MiB")
        check(mem <= DNS_BUDGET + SEEN_BUDGET + DOMAIN_BUDGET, "scoring tables within the configured budget")
        check(bpp <= 256, f"bytes per tracked pair <= 256 ({bpp:.1f})")
        check(ev > 0 and pairs == cap, "the table filled and evicted (LRU), counted")
    check(rss - rss_small <= 8 << 20,
          f"5M unique names grow peak RSS by at most 8 MiB over 100k ({(rss - rss_small) / 2**20:.1f} MiB)")
finish()
