#!/usr/bin/env python3
"""analyst_loop: `explain`, `rules test` and `rules diff` agree with `replay`.

On every shared capture (../shared/captures) and tunnel of the corpus:
- `rules test` counts and lists exactly the alerts replay writes (by packet
  and signature id);
- for every alerted pair (from `rules test`'s alert list), `explain` finds
  the pair and reports its verdicts; the verdicts of all pairs, together,
  are exactly replay's alerts: no pair's verdict is missing, none is counted
  for another pair;
- a pair an allow rule took is shown as allowed, with the rule, and a pair
  not in the capture gets a plain message and exit status 1;
- `rules diff` on real tuning changes to a copy of rules/ (an alerted
  domain allow-listed, a signature removed) lists exactly the alerts replay
  gains or loses, and `rules test` names the new allow rule as what
  suppresses them.
Alerts from replay are identified by Suricata's own fields (pcap_cnt,
alert.signature_id), one capture per run.
"""
import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SOURCE = os.environ["SOURCE_DIR"]
RULES = os.path.join(SOURCE, "rules")
failures = []
MAX_PAIRS = 25  # explained per capture (each explain replays the whole capture)
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


cache_home = tempfile.mkdtemp(prefix="exfilwatch-analyst-")
ENV = dict(os.environ, XDG_CACHE_HOME=cache_home)


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600, env=ENV)


def replay_alerts(pcap, config=None):
    args = ["replay", "--quiet"] + (["--config", config] if config else []) + [pcap]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    alerts = collections.Counter()
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        if rec.get("event_type") == "alert":
            alerts[(rec["pcap_cnt"], rec["alert"]["signature_id"])] += 1
    return alerts


def rules_test(pcap):
    r = run("rules", "test", "--json", pcap)
    check(r.returncode == 0, f"rules test {os.path.basename(pcap)} exits 0")
    return json.loads(r.stdout)


def explain(pcap, alert):
    args = ["explain", "--json", pcap, "--client", alert["client"]]
    args += ["--dest", alert["server"]] if "server" in alert else ["--domain", alert["domain"]]
    r = run(*args)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def short(pcap):
    return os.path.relpath(pcap, SHARED)


captures = sorted(glob.glob(os.path.join(SHARED, "captures", "*.pcap")))
captures += sorted(glob.glob(os.path.join(SHARED, "corpus", "tunnels", "**", "*.pcap"), recursive=True))

try:
    alerted_captures = 0
    for pcap in captures:
        want = replay_alerts(pcap)
        rep = rules_test(pcap)
        got = collections.Counter((a["pcap_cnt"], a["signature_id"]) for a in rep["alert_list"])
        check(rep["alerts"] == sum(want.values()) and got == want,
              f"{short(pcap)}: rules test lists replay's {sum(want.values())} alerts (count {rep['alerts']})")
        by_sig = {g["signature_id"]: g["alerts"] for g in rep["alerts_by_signature"]}
        check(by_sig == dict(collections.Counter(k[1] for k in want.elements())),
              f"{short(pcap)}: rules test's alerts by signature id match replay's")
        if not want:
            continue
        alerted_captures += 1
        # explain each alerted pair (an even sample of MAX_PAIRS when there are more):
        # its verdicts are exactly replay's alerts of that pair, and when every
        # pair is explained, their verdicts together are all of replay's alerts
        pairs = {}
        for a in rep["alert_list"]:
            pairs.setdefault((a["client"], a.get("server") or a["domain"]), []).append(a)
        keys = sorted(pairs)
        if len(keys) > MAX_PAIRS:
            keys = keys[::(len(keys) + MAX_PAIRS - 1) // MAX_PAIRS]
        union = collections.Counter()
        bad = []
        for key in keys:
            rc, out, err = explain(pcap, pairs[key][0])
            if rc != 0 or out is None or not out["found"]:
                bad.append(f"{key}: exit {rc} {err.strip()}")
                continue
            mine = collections.Counter((v["pcap_cnt"], v["signature_id"]) for v in out["verdicts"] if not v["held_back"])
            theirs = collections.Counter((a["pcap_cnt"], a["signature_id"]) for a in pairs[key])
            if mine != theirs:
                bad.append(f"{key}: explain {sorted(mine.elements())[:4]} != replay {sorted(theirs.elements())[:4]}")
            union += mine
            bad += [f"{key}: time {v['time']} is not ISO 8601" for v in out["verdicts"] if not ISO.match(v["time"])]
        check(not bad, f"{short(pcap)}: explain's verdicts equal replay's alerts for {len(keys)} of {len(pairs)} alerted pair(s) "
              + "; ".join(bad[:3]))
        if len(keys) == len(pairs):
            check(union == want,
                  f"{short(pcap)}: explain's verdicts over all its pairs are replay's {sum(want.values())} alerts"
                  f" (missing {sorted((want - union).elements())[:5]}, extra {sorted((union - want).elements())[:5]})")
    check(alerted_captures >= 5, f"alerts to compare on {alerted_captures} captures")

    # --- allowed names are shown as allowed, with the rule ---
    benign = os.path.join(SHARED, "captures", "benign-dns.pcap")
    rep = rules_test(benign)
    samples = rep["allow_samples"]
    check(len(samples) >= 3, f"benign-dns.pcap: allow rules took names ({len(samples)} rules)")
    for s in samples[:4]:
        r = run("explain", benign, "--client", s["client"], "--domain", s["domain"])
        rows = [l.split("\t") for l in r.stdout.splitlines() if l and not l.startswith(("#", "time"))]
        allowed_rows = [row for row in rows if f"allowed by rule {s['allow_rule_id']}" in row[-2]]
        check(r.returncode == 0 and allowed_rows and all(row[-1] for row in rows),
              f"explain {s['client']} {s['domain']}: rows say 'allowed by rule {s['allow_rule_id']}', every row names its query")
        check(all(ISO.match(row[0]) for row in rows), f"explain {s['client']} {s['domain']}: ISO 8601 times")
        rc, out, _ = explain(benign, s)
        allowed = {a["rule_id"]: a["names"] for a in out["allowed"]}
        check(rc == 0 and allowed.get(s["allow_rule_id"], 0) >= 1,
              f"explain --json {s['domain']}: allow rule {s['allow_rule_id']} counted ({allowed})")
        check(all(v.get("name") != s["name"] for v in out["verdicts"]),
              f"explain {s['domain']}: no verdict on the allowed name {s['name']}")

    # --- a pair that is not in the capture ---
    s = samples[0]
    r = run("explain", benign, "--client", s["client"], "--domain", "not-in-this-capture.invalid")
    check(r.returncode == 1 and "sent no name under" in r.stderr and "time\t" not in r.stdout,
          f"explain of a pair not in the capture: exit 1 and a message ({r.returncode}: {r.stderr.strip()[:80]})")

    # --- rules diff: identical rule sets ---
    work = tempfile.mkdtemp(prefix="exfilwatch-diff-")
    old = os.path.join(work, "old")
    shutil.copytree(RULES, old)
    iodine = os.path.join(SHARED, "captures", "iodine-null.pcap")
    r = run("rules", "diff", "--json", old, RULES, iodine, benign)
    d = json.loads(r.stdout)
    check(r.returncode == 0 and not d["added"] and not d["removed"] and not d["changed_pairs"],
          "rules diff of a copy of the rules: no difference, exit 0")

    def tuned(name, edit):
        """A copy of rules/ with edit(doc) applied to each file, and a config using it."""
        new = os.path.join(work, name)
        shutil.copytree(RULES, new)
        for path in sorted(glob.glob(os.path.join(new, "*.yaml"))):
            with open(path) as f:
                doc = yaml.safe_load(f)
            if edit(doc, os.path.basename(path)):
                with open(path, "w") as f:
                    yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True)
        cfg = os.path.join(work, name + ".yaml")
        with open(cfg, "w") as f:
            f.write(f"rules:\n  directory: {new}\n")
        return new, cfg

    def without_rule(rule_id):
        def edit(doc, _):
            n = len(doc["rules"])
            doc["rules"] = [x for x in doc["rules"] if x["id"] != rule_id]
            return len(doc["rules"]) != n
        return edit

    def diff_matches_replay(new, cfg, pcap, what):
        r = run("rules", "diff", "--json", old, new, pcap)
        d = json.loads(r.stdout)
        before, after = replay_alerts(pcap), replay_alerts(pcap, cfg)
        added = collections.Counter((a["pcap_cnt"], a["signature_id"]) for a in d["added"])
        removed = collections.Counter((a["pcap_cnt"], a["signature_id"]) for a in d["removed"])
        check(r.returncode == 1 and added == after - before and removed == before - after and
              (added or removed),
              f"rules diff, {what} on {os.path.basename(pcap)}: +{sum(added.values())} -{sum(removed.values())},"
              f" exactly replay's difference")
        changed = {c["pair"] for c in d["changed_pairs"]}
        touched = {a["client"] + " " + (a.get("server") or a["domain"]) for a in d["added"] + d["removed"]}
        check(changed == touched, f"rules diff, {what}: the pairs whose verdict changed are those of the alerts")
        return d

    # an analyst allow-lists the domain of an alerted pair: its DNS alerts go,
    # and `rules test` with the new rules says which allow rule suppresses them
    iodine_rep = rules_test(iodine)
    dns_alerts = [a for a in iodine_rep["alert_list"] if "domain" in a]
    check(dns_alerts, f"iodine-null.pcap: DNS alerts ({len(dns_alerts)})")
    if dns_alerts:
        domain = collections.Counter(a["domain"] for a in dns_alerts).most_common(1)[0][0]
        free_id = max(x["id"] for f in glob.glob(os.path.join(RULES, "*.yaml"))
                      for x in yaml.safe_load(open(f))["rules"]) + 1
        allow = {"id": free_id, "name": f"Allow: {domain} (tuning)", "field": "dns.qname",
                 "literal": domain, "anchor": "domain", "action": "allow"}

        def add_allow(doc, base):
            if base != "allow.yaml":
                return False
            doc["rules"].append(allow)
            return True
        new, cfg = tuned("allow-domain", add_allow)
        d = diff_matches_replay(new, cfg, iodine, f"allow rule for {domain} added")
        check(d["removed"] and not d["added"] and all(a.get("domain") == domain for a in d["removed"]),
              f"allow-listing {domain} removes only that domain's alerts ({len(d['removed'])})")
        r = run("rules", "test", "--json", new, iodine)
        t = json.loads(r.stdout)
        by_allow = collections.Counter()
        for h in t["suppressed_by_allow"]:
            by_allow[h["allow_rule_id"]] += h["alerts"]
        check(by_allow[free_id] >= len(d["removed"]) and t["alerts"] == sum(replay_alerts(iodine, cfg).values()),
              f"rules test names allow rule {free_id} as suppressing the {len(d['removed'])} alerts"
              f" ({dict(by_allow)}), and counts replay's alerts under the new rules")
    # a signature removed: its alerts on the iodine capture go
    rule_sids = sorted({a["signature_id"] for a in iodine_rep["alert_list"] if a["signature_id"] < 9000000})
    check(rule_sids, f"iodine-null.pcap: rule signatures alert ({rule_sids})")
    if rule_sids:
        new, cfg = tuned("no-signature", without_rule(rule_sids[0]))
        d = diff_matches_replay(new, cfg, iodine, f"signature {rule_sids[0]} removed")
        check(any(a["signature_id"] == rule_sids[0] for a in d["removed"]) and
              not any(a["signature_id"] == rule_sids[0] for a in d["added"]),
              f"signature {rule_sids[0]}'s alerts are removed")
    r = run("rules", "diff", old, RULES, iodine)
    check(r.returncode == 0 and "0 alert(s) added, 0 removed" in r.stdout, "text diff summary line")
    shutil.rmtree(work)
finally:
    shutil.rmtree(cache_home, ignore_errors=True)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
