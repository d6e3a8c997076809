#!/usr/bin/env python3
"""The module layering of src/ (the `layers` table of the root meson.build).

  layers.py includes          every `#include "module/..."` under src/ names a
                              module the including module may use (itself or
                              the transitive closure of its dependencies);
                              every src/ folder is in the table, in order.
  layers.py farms CXX...      the build's include farms hold exactly those
                              modules, and a reach-back include compiled
                              through a farm fails while an allowed one
                              compiles (the compiler is the build's own).

SOURCE_DIR and BUILD_DIR come from the environment (tests/meson.build).
"""
import os
import re
import subprocess
import sys

SOURCE_DIR = os.environ["SOURCE_DIR"]
BUILD_DIR = os.environ.get("BUILD_DIR", "")
SRC = os.path.join(SOURCE_DIR, "src")


def read_table():
    text = open(os.path.join(SOURCE_DIR, "meson.build")).read()
    block = re.search(r"^layers = \{\n(.*?)^\}", text, re.S | re.M)
    if not block:
        sys.exit("layers: no `layers = {...}` table in meson.build")
    table = {}
    for name, uses in re.findall(r"^\s*'(\w+)'\s*:\s*\[([^\]]*)\]", block.group(1), re.M):
        table[name] = re.findall(r"'(\w+)'", uses)
    return table


def closures(table):
    out, failures = {}, []
    for name, uses in table.items():  # the table lists a module after what it uses
        reach = {name}
        for used in uses:
            if used not in out:
                failures.append(f"{name} uses {used}, which is not listed before it")
                continue
            reach |= out[used]
        out[name] = reach
    return out, failures


def check_includes(table, reach, failures):
    folders = sorted(d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d)))
    for folder in folders:
        if folder not in table:
            failures.append(f"src/{folder} is not in the layers table")
        elif not os.path.isfile(os.path.join(SRC, folder, "meson.build")):
            failures.append(f"src/{folder} has no meson.build")
    for name in table:
        if name not in folders:
            failures.append(f"the layers table names {name}, but there is no src/{name}")
    checked = 0
    for folder in folders:
        for root, _, files in os.walk(os.path.join(SRC, folder)):
            for f in sorted(files):
                if not f.endswith((".h", ".cc")):
                    continue
                path = os.path.join(root, f)
                for n, line in enumerate(open(path, encoding="utf-8"), 1):
                    m = re.match(r'\s*#\s*include\s+"([^"/]+)/', line)
                    if not m:
                        continue
                    checked += 1
                    if m.group(1) not in reach.get(folder, set()):
                        failures.append(f"{os.path.relpath(path, SOURCE_DIR)}:{n}: {folder} may not "
                                        f"include {m.group(1)}/ ({line.strip()})")
    if checked < 100:  # the tree has hundreds: finding none means the scan is broken
        failures.append(f"only {checked} module includes found under src/")
    print(f"layers: {checked} module includes in {len(folders)} folders checked")


def compile_through(cxx, module, source):
    farm = os.path.join(BUILD_DIR, "layers", module)
    r = subprocess.run(cxx + ["-std=c++20", "-fsyntax-only", "-I" + farm, "-I" + BUILD_DIR,
                              "-x", "c++", "-"],
                       input=source, capture_output=True, text=True)
    return r.returncode, r.stderr


def check_farms(table, reach, cxx, failures):
    for name in table:
        farm = os.path.join(BUILD_DIR, "layers", name)
        held = set(os.listdir(farm)) if os.path.isdir(farm) else set()
        if held != reach[name]:
            failures.append(f"build/layers/{name} holds {sorted(held)}, "
                            f"the table allows {sorted(reach[name])}")
        for link in held:
            target = os.path.realpath(os.path.join(farm, link))
            if target != os.path.realpath(os.path.join(SRC, link)):
                failures.append(f"build/layers/{name}/{link} points at {target}")
    # decode may include capture (below it) but not score (above it).
    rc, err = compile_through(cxx, "decode", '#include "decode/packet.h"\n#include "capture/frame.h"\n')
    if rc != 0:
        failures.append(f"an allowed include does not compile through the decode farm:\n{err}")
    rc, err = compile_through(cxx, "decode", '#include "score/dns_scorer.h"\n')
    if rc == 0 or "score/dns_scorer.h" not in err or "No such file" not in err:
        failures.append(f"a reach-back include from decode did not fail as expected (rc {rc}):\n{err}")
    else:
        print("layers: reach-back include refused:", err.strip().splitlines()[0])


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("includes", "farms"):
        sys.exit(__doc__)
    table = read_table()
    reach, failures = closures(table)
    if len(table) < 10:
        failures.append(f"the layers table has {len(table)} modules")
    if sys.argv[1] == "includes":
        check_includes(table, reach, failures)
    else:
        check_farms(table, reach, sys.argv[2:], failures)
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)


main()
