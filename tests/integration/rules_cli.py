#!/usr/bin/env python3
"""rules_cli: `exfilwatch rules check|test|list` as an analyst uses them.

- check passes on the shipped rules, fails with file:line, the rule id and
  Hyperscan's message on a broken copy;
- test on ../shared/captures: the tool signatures fire on the iodine and
  dns2tcp captures, no default alert rule fires on benign-dns.pcap, and the
  allow list does not hide the tunnels;
- list prints one line per rule;
- replay raises the rule alerts with the rule's id, name and severity.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SOURCE = os.environ["SOURCE_DIR"]
RULES = os.path.join(SOURCE, "rules")
CAPTURES = os.path.join(SHARED, "captures")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    # A private cache directory: the test must not depend on (or fill) ~/.cache.
    env = dict(os.environ, XDG_CACHE_HOME=cache_home)
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600, env=env)


def rules_test(*pcaps):
    r = run("rules", "test", "--json", RULES, *pcaps)
    check(r.returncode == 0, f"rules test {' '.join(os.path.basename(p) for p in pcaps)} exits 0")
    return json.loads(r.stdout)


def by_action(report, action):
    return {r["id"]: r for r in report["rules"] if r["action"] == action}


cache_home = tempfile.mkdtemp(prefix="exfilwatch-rules-cli-")
try:
    # --- check ---
    r = run("rules", "check", RULES)
    check(r.returncode == 0, "rules check passes on the shipped rules")
    check(" 0 failed" in r.stdout and "cache miss" in r.stdout, "first check compiles (cache miss), all rule tests pass")
    r = run("rules", "check", RULES)
    check("cache hit" in r.stdout, "second check loads the compiled databases from the cache")

    broken = tempfile.mkdtemp(prefix="exfilwatch-broken-rules-")
    shutil.copy(os.path.join(RULES, "tunnel-tools.yaml"), broken)
    with open(os.path.join(broken, "bad.yaml"), "w") as f:
        f.write("rules:\n  - id: 1234567\n    name: bad\n    field: dns.qname\n    pattern: 'abc[def'\n")
    r = run("rules", "check", broken)
    check(r.returncode != 0, "rules check exits non-zero on a bad regex")
    check("bad.yaml:5: rule 1234567: pattern 'abc[def': Hyperscan:" in r.stderr,
          "the error names file, line, rule id and Hyperscan's message")
    with open(os.path.join(broken, "bad.yaml"), "w") as f:
        f.write("rules:\n  - id: 1000001\n    name: dup\n    field: dns.qname\n    literal: x\n")
    r = run("rules", "check", broken)
    # Files load in name order: bad.yaml first, so tunnel-tools.yaml holds the duplicate.
    check(r.returncode != 0 and "tunnel-tools.yaml:" in r.stderr and
          "rule 1000001: duplicate id (first defined at " in r.stderr and "bad.yaml:2)" in r.stderr,
          "a duplicate id across files is an error naming both places")
    shutil.rmtree(broken)

    # --- list ---
    r = run("rules", "list", RULES)
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    check(r.returncode == 0 and len(lines) >= 20, f"rules list prints the rules ({len(lines)})")
    check(any(l.startswith("1000001 ") and "iodine" in l for l in lines), "list shows id, action and name")

    # --- test: tool signatures on the tunnels ---
    for name, wanted in [("iodine-null.pcap", {1000001, 1000002, 1000003}),
                         ("iodine-txt-base32.pcap", {1000001, 1000002, 1000003}),
                         ("dns2tcp-txt.pcap", {1000010, 1000011})]:
        rep = rules_test(os.path.join(CAPTURES, name))
        alerts = by_action(rep, "alert")
        check(wanted <= set(alerts), f"{name}: tool signatures {sorted(wanted)} fire (got {sorted(alerts)})")
        check(all(r["samples"] for r in alerts.values()), f"{name}: each hit comes with sample names")
        check(not by_action(rep, "allow"), f"{name}: no allow rule hides the tunnel")
        check(rep["rule_alerts"] > 0, f"{name}: rule alerts reach the alert stream ({rep['rule_alerts']})")

    # --- test: nothing alerts on benign traffic, the allow list works ---
    rep = rules_test(os.path.join(CAPTURES, "benign-dns.pcap"))
    alerts = by_action(rep, "alert")
    check(not alerts, f"benign-dns.pcap: no default alert rule fires (got {sorted(alerts)})")
    check(rep["alerts"] == 0, f"benign-dns.pcap: no alert at all ({rep['alerts']})")
    allows = by_action(rep, "allow")
    check({1009001, 1009010, 1009030} <= set(allows),
          f"benign-dns.pcap: antivirus, DNSBL and reverse look-ups are allowed (got {sorted(allows)})")
    check(all("suppressed" in r for r in allows.values()), "allow rules report what they suppressed")

    # --- text output names the rule and samples ---
    r = run("rules", "test", RULES, os.path.join(CAPTURES, "dns2tcp-txt.pcap"))
    check("1000010" in r.stdout and "=auth" in r.stdout, "text report shows the rule and a sample name")

    # --- replay: rule alerts in EVE ---
    r = run("replay", os.path.join(CAPTURES, "iodine-null.pcap"))
    alerts = [json.loads(l) for l in r.stdout.splitlines()]
    sids = {a["alert"]["signature_id"] for a in alerts}
    check(sids and sids <= {1000001, 1000002, 1000003, 9000001},
          f"replay emits iodine's rule alerts with their ids ({sorted(sids)})")
    # One alert per (client, domain) per interval, whichever rule or scorer
    # fires first: the three iodine signatures on one pair are one alert.
    pairs = collections.Counter((a["src_ip"], a["exfilwatch"]["registered_domain"]) for a in alerts)
    check(pairs and max(pairs.values()) == 1, f"one alert per pair ({dict(pairs)})")
    a = next((a for a in alerts if a["alert"]["signature_id"] == 1000001), None)
    check(a is not None and a["alert"]["signature"].startswith("EXFILWATCH iodine") and a["alert"]["severity"] == 1,
          "the alert carries the rule's name and severity")

    # --- config: rules disabled, and a broken rules directory is a clear start-up error ---
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as cfg:
        cfg.write("rules:\n  enabled: false\n")
    r = run("replay", "--config", cfg.name, os.path.join(CAPTURES, "iodine-null.pcap"))
    sids = {json.loads(l)["alert"]["signature_id"] for l in r.stdout.splitlines()}
    check(not any(1000000 <= s < 1010000 for s in sids), "rules.enabled: false turns the rule engine off")
    with open(cfg.name, "w") as f:
        f.write("rules:\n  directory: /nonexistent/rules\n")
    r = run("replay", "--config", cfg.name, os.path.join(CAPTURES, "iodine-null.pcap"))
    check(r.returncode == 2 and "/nonexistent/rules" in r.stderr, "a missing rules directory stops the start")
    os.unlink(cfg.name)
finally:
    shutil.rmtree(cache_home, ignore_errors=True)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
