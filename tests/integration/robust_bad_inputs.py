"""robust_bad_inputs (issue #8): a table of broken configurations and rule
files, each with the message it must produce (file:line and the problem).
Configurations go through `exfilwatch replay --config` (exit 2, nothing
replayed) and `exfilwatch run --config` (exit 2: a sensor with a bad
configuration does not start); rule files through `exfilwatch rules check`
(exit 1)."""
import os
import subprocess
import sys
import tempfile

EXE = os.environ.get("EXFILWATCH", "build/exfilwatch")
SHARED = os.environ.get("SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
PCAP = os.path.join(SHARED, "captures", "slow-hex-exfil.pcap")

# (name, config text, expected fragment of stderr[, exit code of run, default 2])
BAD_CONFIGS = [
    ("unknown top-level key", "bogus: 1\n", "c.yaml:1: unknown key 'bogus'"),
    ("unknown nested key", "dns:\n  portz: [53]\n", "c.yaml:2: unknown key 'dns.portz' (known: log, max_records, ports"),
    ("port out of range", "dns:\n  ports: [70000]\n", "c.yaml:2: dns.ports: 70000 is out of range [1, 65535]"),
    ("ports not a list", "decode:\n  vxlan_ports: 5\n", "c.yaml:2: decode.vxlan_ports: expected a list of ports"),
    ("integer expected", "detect:\n  suppress_seconds: abc\n",
     "c.yaml:2: detect.suppress_seconds: expected an integer, got 'abc'"),
    ("negative workers", "listen:\n  workers: -1\n", "c.yaml:2: listen.workers: -1 is out of range [0, 256]"),
    ("memory budget too small", "score:\n  dns:\n    memory_bytes: 10\n",
     "c.yaml:3: score.dns.memory_bytes: 10 is out of range [65536,"),
    ("tcp buffer budget too small", "dns:\n  tcp:\n    max_buffered_bytes: 100\n",
     "c.yaml:3: dns.tcp.max_buffered_bytes: 100 is out of range"),
    ("broken YAML", "dns: [1\n", "c.yaml:2: invalid YAML"),
    ("missing model file", "score:\n  dns:\n    model: /nonexistent/model\n",
     "c.yaml:3: score.dns.model: /nonexistent/model: cannot open"),
    ("missing public suffix list", "dns:\n  public_suffix_list: /nonexistent/psl\n",
     "c.yaml:2: dns.public_suffix_list: /nonexistent/psl: cannot open"),
]

RULE = '  - id: {id}\n    name: "r{id}"\n    field: dns.qname\n    pattern: "{pattern}"\n    severity: {sev}\n'
# (name, rule file text, expected fragment of stderr)
BAD_RULES = [
    ("unknown field", RULE.format(id=1, pattern="a", sev=1).replace("dns.qname", "dns.bogus"),
     "r.yaml:4: rule 1: field: unknown field 'dns.bogus'"),
    ("regex does not compile", RULE.format(id=1, pattern="(a", sev=1),
     "r.yaml:5: rule 1: pattern '(a': Hyperscan: Missing close parenthesis"),
    ("severity out of range", RULE.format(id=1, pattern="a", sev=9), "r.yaml:6: rule 1: severity: 9 is out of range [1, 3]"),
    ("missing id", RULE.format(id=1, pattern="a", sev=1).replace("  - id: 1\n    name", "  - name"),
     "r.yaml:2: missing required key 'id'"),
    ("duplicate id", RULE.format(id=1, pattern="a", sev=1) + RULE.format(id=1, pattern="b", sev=1),
     "r.yaml:7: rule 1: duplicate id (first defined at"),
    ("unknown rule key", RULE.format(id=1, pattern="a", sev=1) + "    extra: 2\n", "r.yaml:7: rule 1: unknown key 'extra'"),
    ("rule's own test fails", RULE.format(id=1, pattern="^abc$", sev=1) + "    tests:\n      match: ['xyz']\n",
     "r.yaml:2: rule 1: test: 'xyz' should match but does not"),
]
BAD_RULE_FILES = [
    ("broken YAML", "rules: [\n", "r.yaml:2: invalid YAML: end of sequence flow not found"),
    ("unknown top-level key", "nope: 1\n", "r.yaml:1: unknown top-level key 'nope'"),
]

failures = []


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else "\n     " + detail))
    if not cond:
        failures.append(what)


def main():
    with tempfile.TemporaryDirectory(prefix="exfilwatch-bad-") as d:
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(d, "cache"))
        cfg = os.path.join(d, "c.yaml")
        for name, text, expect, *run_rc in BAD_CONFIGS:
            run_rc = run_rc[0] if run_rc else 2
            with open(cfg, "w") as f:
                f.write(text)
            r = subprocess.run([EXE, "replay", "--config", cfg, "--eve", os.devnull, PCAP],
                               capture_output=True, text=True, env=env, timeout=300)
            check(r.returncode == 2 and expect in r.stderr and "packets" not in r.stderr,
                  "config, replay: %s -> %r" % (name, expect), "rc=%d stderr=%r" % (r.returncode, r.stderr))
            r = subprocess.run([EXE, "run", "--config", cfg, "--eve", os.path.join(d, "eve.json")],
                               capture_output=True, text=True, env=env, timeout=300)
            check(r.returncode == run_rc and expect in r.stderr and "ready" not in r.stderr,
                  "config, run: %s -> exit %d" % (name, run_rc), "rc=%d stderr=%r" % (r.returncode, r.stderr))
        rd = os.path.join(d, "rules")
        os.makedirs(rd)
        for name, text, expect in [(n, "rules:\n" + t, e) for n, t, e in BAD_RULES] + BAD_RULE_FILES:
            with open(os.path.join(rd, "r.yaml"), "w") as f:
                f.write(text)
            r = subprocess.run([EXE, "rules", "check", "--no-cache", rd], capture_output=True, text=True, env=env,
                               timeout=300)
            check(r.returncode == 1 and expect in r.stderr + r.stdout,
                  "rules: %s -> %r" % (name, expect), "rc=%d stderr=%r" % (r.returncode, r.stderr))
        # A sensor whose configuration names a broken rule set does not start.
        with open(os.path.join(rd, "r.yaml"), "w") as f:
            f.write("rules:\n" + BAD_RULES[1][1])
        with open(cfg, "w") as f:
            f.write("rules:\n  directory: %s\n  cache_directory: 'off'\n" % rd)
        r = subprocess.run([EXE, "run", "--config", cfg, "--eve", os.path.join(d, "eve.json")],
                           capture_output=True, text=True, env=env, timeout=300)
        check(r.returncode == 2 and "r.yaml:5: rule 1: pattern '(a'" in r.stderr and "ready" not in r.stderr,
              "run with a broken rule set -> exit 2", "rc=%d stderr=%r" % (r.returncode, r.stderr))
        # The same input with the error fixed loads: the table tests the error, not the harness.
        with open(os.path.join(rd, "r.yaml"), "w") as f:
            f.write("rules:\n" + RULE.format(id=1, pattern="a", sev=1))
        r = subprocess.run([EXE, "rules", "check", "--no-cache", rd], capture_output=True, text=True, env=env)
        check(r.returncode == 0, "rules: the corrected file passes", r.stderr)
        with open(cfg, "w") as f:
            f.write("dns:\n  ports: [53]\n")
        r = subprocess.run([EXE, "replay", "--config", cfg, "--eve", os.devnull, PCAP], capture_output=True, text=True,
                           env=env)
        check(r.returncode == 0, "config: the corrected file replays", r.stderr)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
