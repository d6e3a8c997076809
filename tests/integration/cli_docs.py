#!/usr/bin/env python3
"""cli_docs: the binary, its man page and the configuration reference agree.

- docs/configuration.md carries `exfilwatch config --reference` verbatim
  between its BEGIN/END KEYS markers (--update rewrites that block);
- for every command, the options its --help lists are the options the man
  page's SYNOPSIS gives it, and every one is described under OPTIONS.
"""
import os
import re
import subprocess
import sys

EXE = os.environ["EXFILWATCH"]
SOURCE = os.environ.get("SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60)


# --- configuration reference -------------------------------------------------
ref_path = os.path.join(SOURCE, "docs", "configuration.md")
begin, end = "<!-- BEGIN KEYS (generated: exfilwatch config --reference) -->\n", "<!-- END KEYS -->"
with open(ref_path) as f:
    doc = f.read()
generated = run("config", "--reference").stdout
check(begin in doc and end in doc, "configuration.md has the generated-keys markers")
start = doc.index(begin) + len(begin)
stop = doc.index(end)
if "--update" in sys.argv:
    with open(ref_path, "w") as f:
        f.write(doc[:start] + generated + doc[stop:])
    print("updated", ref_path)
    sys.exit(0)
check(doc[start:stop] == generated,
      "docs/configuration.md equals `exfilwatch config --reference` (regenerate: "
      "EXFILWATCH=build/exfilwatch python3 tests/integration/cli_docs.py --update)")

# --- man page and --help -----------------------------------------------------
with open(os.path.join(SOURCE, "docs", "exfilwatch.1")) as f:
    man = f.read()
synopsis = man[man.index(".SH SYNOPSIS"):man.index(".SH DESCRIPTION")]
options_section = man[man.index(".SH OPTIONS"):man.index(".SH SIGNALS")]
OPT = re.compile(r"\\-\\-([a-z][a-z0-9\\-]*)")


def man_options(text):
    return {"--" + o.replace("\\-", "-") for o in OPT.findall(text)}


# SYNOPSIS entries: ".B exfilwatch CMD [SUB]" up to the next ".br".
entries = {}
for block in synopsis.split(".br\n"):
    m = re.search(r"^\.B exfilwatch ([a-z]+(?: (?:check|test|list|diff|train|score))?)", block, re.M)
    if m:
        entries[m.group(1)] = man_options(block)
described = {"--" + o.replace("\\-", "-") for o in
             re.findall(r"^\.(?:B|BI|BR) (?:\\-[a-z] \", \" )?\\-\\-([a-z][a-z0-9\\-]*)",
                        options_section, re.M)}

commands = ["run", "replay", "check", "config", "mirror", "rules check", "rules test",
            "rules list", "rules diff", "model train", "model score", "explain", "version"]
check(set(entries) == set(commands), "the SYNOPSIS has every command: %s" % sorted(entries))
for cmd in commands:
    r = run(*cmd.split(), "--help")
    check(r.returncode == 0, f"`{cmd} --help` exits 0")
    opts = set(re.findall(r"^\s+(?:-[a-z],)?(--[a-z][a-z0-9-]*)", r.stdout, re.M)) - {"--help"}
    in_man = entries.get(cmd, set())
    check(opts == in_man, f"`{cmd}`: --help and the man page list the same options"
          f" (only --help: {sorted(opts - in_man)}, only man: {sorted(in_man - opts)})")
    check(opts <= described, f"`{cmd}`: every option is described under OPTIONS"
          f" (missing: {sorted(opts - described)})")

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
