#!/usr/bin/env python3
"""replay_cli: the `exfilwatch replay` command line as a user meets it.

Exit codes, --eve to a file, --dns-log, the stderr summary, and clear
configuration errors with file:line. Runs against real captures in
../shared and a tiny bundled one.
"""
import json
import os
import subprocess
import sys
import tempfile

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SOURCE = os.environ["SOURCE_DIR"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


demo = os.path.join(SOURCE, "tests", "data", "demo-mixed.pcap")
iodine = os.path.join(SHARED, "captures", "iodine-null.pcap")

# stdout, --dns-log: one dns record per message, each valid JSON
r = run("replay", "--dns-log", demo)
check(r.returncode == 0, "replay --dns-log exits 0")
lines = [json.loads(l) for l in r.stdout.splitlines()]
dns = [l for l in lines if l["event_type"] == "dns"]
check(len(dns) > 400, f"dns records written ({len(dns)})")
check(all(l["exfilwatch"]["tunnel"] == {"type": "vxlan", "vni": 1234} for l in dns),
      "every record names its VXLAN tunnel and VNI")
check(all(l["tunnel"]["proto"] == "UDP" and l["tunnel"]["dest_port"] == 4789 and l["tunnel"]["depth"] == 1
          for l in dns), "every record has Suricata's tunnel: outer UDP to 4789, depth 1")
check(all(l["pcap_filename"] == demo for l in dns), "every record names its capture file")
summary = r.stderr
check("DNS messages" in summary and "packets/s" in summary and "anomalies:" in summary,
      "summary on stderr names packets, DNS messages, anomalies, packets/s")
msgs = int(summary.split(" DNS messages")[0].split("; ")[-1])
check(msgs == len(dns), f"summary count {msgs} equals records written {len(dns)}")

# without --dns-log: alerts only
r = run("replay", iodine)
alerts = [json.loads(l) for l in r.stdout.splitlines()]
check(r.returncode == 0 and len(alerts) >= 1, "iodine capture raises an alert")
check(all(a["event_type"] == "alert" for a in alerts), "without --dns-log only alerts are written")
check(any(a.get("exfilwatch", {}).get("registered_domain") == "tunnel-lab.net" and
          a["alert"]["metadata"]["registered_domain"] == ["tunnel-lab.net"] for a in alerts),
      "the alert names the tunnel's registered domain")

with tempfile.TemporaryDirectory() as tmp:
    eve = os.path.join(tmp, "eve.json")
    r = run("replay", "--eve", eve, "--dns-log", demo)
    check(r.returncode == 0 and r.stdout == "", "--eve writes to the file, not stdout")
    with open(eve) as f:
        n = sum(1 for line in f if json.loads(line))
    check(n >= len(dns), f"--eve file holds the records ({n})")

    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("dns:\n  ports: [53]\n  tcp:\n    max_flowz: 10\n")
    r = run("replay", "--config", bad, demo)
    check(r.returncode == 2, "unknown configuration key: exit 2")
    check(f"{bad}:4:" in r.stderr and "max_flowz" in r.stderr, "error names file:line and the key: " + r.stderr.strip())

    with open(bad, "w") as f:
        f.write("dns:\n  max_records: lots\n")
    r = run("replay", "--config", bad, demo)
    check(r.returncode == 2 and f"{bad}:2:" in r.stderr, "wrong type: exit 2 with file:line: " + r.stderr.strip())

    with open(bad, "w") as f:
        f.write("dns: [unclosed\n")
    r = run("replay", "--config", bad, demo)
    check(r.returncode == 2 and "invalid YAML" in r.stderr, "invalid YAML: exit 2: " + r.stderr.strip())

    good = os.path.join(tmp, "good.yaml")
    with open(good, "w") as f:
        f.write("sensor_name: test-sensor\ndns:\n  log: true\n")
    r = run("replay", "--config", good, demo)
    first = json.loads(r.stdout.splitlines()[0])
    check(r.returncode == 0 and first.get("host") == "test-sensor", "configured sensor name and dns log apply")

    notpcap = os.path.join(tmp, "not.pcap")
    with open(notpcap, "w") as f:
        f.write("this is not a capture\n")
    r = run("replay", notpcap, demo)
    check(r.returncode == 1 and "not.pcap" in r.stderr, "an unreadable file: exit 1, named in the message")

# The scorer's summary line, and an allow rule's reach into responses: the
# response to an allowed name must not feed the pair its domain's other
# names made (NXDOMAIN and answer bytes count only for scored names).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from robust_common import PcapWriter, dns_query, eth, ipv4, udp  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    rules_dir = os.path.join(tmp, "rules")
    os.mkdir(rules_dir)
    with open(os.path.join(rules_dir, "allow-www.yaml"), "w") as f:
        f.write("rules:\n  - id: 1009900\n    name: \"Allow www\"\n    field: dns.qname\n"
                "    pattern: '^www\\.'\n    action: allow\n")
    cfg = os.path.join(tmp, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write(f"rules:\n  directory: {rules_dir}\n")
    client, resolver = bytes([10, 0, 0, 5]), bytes([10, 0, 0, 2])
    pcap = os.path.join(tmp, "allowed-response.pcap")
    w = PcapWriter(pcap)
    t = 1796000000 * 1000000
    for qid, name in ((1, "a1b2c3.example.com"), (2, "www.example.com"), (3, "d4e5f6.example.com")):
        q = dns_query(qid, name)
        nx = q[:2] + bytes([0x81, 0x83]) + q[4:]  # response, NXDOMAIN
        w.write(t, eth(ipv4(client, resolver, 17, udp(40000 + qid, 53, q))))
        w.write(t + 1000, eth(ipv4(resolver, client, 17, udp(53, 40000 + qid, nx))))
        t += 100000
    w.close()
    r = run("replay", "--config", cfg, pcap)
    line = next((l for l in r.stderr.splitlines() if l.startswith("dns_scorer:")), "")
    vals = dict(kv.split("=") for kv in line.split()[1:])
    check(r.returncode == 0 and vals.get("queries") == "2",
          f"scorer summary: the allowed query is not scored ({line})")
    check(vals.get("responses_matched") == "2",
          "only the two scored names' responses reach their pair, not the allowed one's")
    check("registered_domain: cache_hits=" in r.stderr, "summary names the registered-domain cache")

    # A name is split by the public suffix list once: its response (and
    # any later message naming it) is served by the name cache, whether or
    # not the DNS log reports the domain.
    def counters(stderr, prefix):
        line = next((l for l in stderr.splitlines() if l.startswith(prefix)), "")
        return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    for label, res in (("DNS log off", r), ("DNS log on", None)):
        if res is None:
            res = r_log = run("replay", "--config", cfg, "--dns-log", pcap)
        rd = counters(res.stderr, "registered_domain:")
        names = counters(res.stderr, "rules:")
        check(rd.get("cache_hits", 0) + rd.get("suffix_walks", 0) == 3 and
              names.get("name_cache_misses") == 3 and names.get("name_cache_hits") == 3,
              f"{label}: one look-up per distinct name, responses from the name cache ({rd}, {names})")
    www = [json.loads(l) for l in r_log.stdout.splitlines() if "www.example.com" in l]
    check(len(www) == 2 and all(d["exfilwatch"].get("registered_domain") == "example.com" for d in www),
          "the DNS log names the allowed name's registered domain in query and response")

r = run("replay", "/nonexistent.pcap")
check(r.returncode == 1, "missing file: exit 1")
r = run("replay")
check(r.returncode == 2 and "usage" in r.stderr.lower(), "no file: usage, exit 2")
r = run("replay", "--bogus", demo)
check(r.returncode == 2, "unknown option: exit 2")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
