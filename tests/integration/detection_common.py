"""detection_common: helpers for the scoring engine's integration tests.

Replays a capture, splits the alerts the scoring engine raised (signature
ids 9000001 DNS, 9000003 TLS bulk, 9000004 TLS drip) from rule alerts, and
counts how many queries of the pair passed before the first one.
"""
import json
import os
import subprocess
import sys
import tempfile

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SOURCE = os.environ["SOURCE_DIR"]
SCORE_SIDS = {9000001, 9000003, 9000004}

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def finish():
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


_norules = None


def no_rules_config():
    """A config with the analyst rules off: the scorer alone."""
    global _norules
    if _norules is None:
        fd, _norules = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write("rules:\n  enabled: false\n")
    return _norules


def replay(pcap, *extra, dns_log=False):
    args = [EXE, "replay", *extra]
    if dns_log:
        args.append("--dns-log")
    r = subprocess.run(args + [pcap], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"replay {pcap} failed: {r.stderr}")
    recs = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return recs, r.stderr


def alerts(recs):
    return [x for x in recs if x["event_type"] == "alert"]


def score_alerts(recs):
    return [x for x in alerts(recs) if x["alert"]["signature_id"] in SCORE_SIDS]


def reasons(alert):
    """The verdict's typed values (EVE exfilwatch.values)."""
    return (alert.get("exfilwatch") or {}).get("values", {})


def domain(rec):
    """The registered domain a record names (EVE exfilwatch.registered_domain)."""
    return (rec.get("exfilwatch") or {}).get("registered_domain")


def named(alert):
    """What the alert names: the DNS pair's domain, or the TLS destination."""
    if "dns" in alert and domain(alert):
        return domain(alert)
    return reasons(alert).get("destination", f'{alert["dest_ip"]}:{alert["dest_port"]}')
