#!/usr/bin/env python3
"""Replay every capture under SHARED_DIR (captures/ and corpus/: *.pcap,
*.pcapng, *.cap, the broken ones included) one at a time with --dns-log.

Asserts per file: the process exits 0 (broken input is counted, not fatal; a
signal, a timeout or a non-zero code fails), every stdout line is a JSON object
with the mandatory EVE fields (common.check_mandatory), stderr does not carry a
sanitizer report. If EXFILWATCH_ASAN names a sanitizer build, the same is done
with it (ASAN_OPTIONS/UBSAN_OPTIONS are set so that any report aborts).
Under `make test-asan` (EXFILWATCH_SANITIZED=1) EXFILWATCH itself is the
sanitizer build: its one pass is the sanitizer pass, with that pass's
environment and timeout.

Runs files in parallel (GOLDEN_JOBS, default = CPUs) to stay well under three
minutes; prints per-run counts.
"""
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer",
                     "SUMMARY: UndefinedBehaviorSanitizer")


def check_file(binary, path, env, timeout):
    res = common.run_replay(path, binary=binary, env=env, timeout=timeout)
    problems = []
    if res.rc != 0:
        problems.append(res.describe_rc())
    for line_no, text, err in res.bad_lines[:3]:
        problems.append("stdout line %d: %s: %r" % (line_no, err, text))
    if len(res.bad_lines) > 3:
        problems.append("... %d more bad lines" % (len(res.bad_lines) - 3))
    nbad = 0
    for i, rec in enumerate(res.records):
        errs = common.check_mandatory(rec)
        if errs:
            nbad += 1
            if nbad <= 3:
                problems.append("record %d: %s" % (i + 1, "; ".join(errs)))
    if nbad > 3:
        problems.append("... %d records with schema problems" % nbad)
    for m in SANITIZER_MARKERS:
        if m in res.stderr:
            idx = res.stderr.find(m)
            problems.append("sanitizer: " + res.stderr[idx:idx + 300].replace("\n", " | "))
            break
    kinds = Counter(r.get("event_type") for r in res.records)
    return path, problems, kinds, res


def run_all(label, binary, files, env, timeout, rep):
    t0 = time.time()
    jobs = int(os.environ.get("GOLDEN_JOBS", str(max(2, (os.cpu_count() or 2)))))
    totals = Counter()
    nfail = 0
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        for path, problems, kinds, res in ex.map(lambda f: check_file(binary, f, env, timeout), files):
            totals.update(kinds)
            if problems:
                nfail += 1
                rep.fail("[%s] %s: %s" % (label, common.rel(path), " / ".join(problems)))
    dt = time.time() - t0
    line = "[%s] %d files, %d failed; records: dns=%d alert=%d other=%d; %.1f s" % (
        label, len(files), nfail, totals.get("dns", 0), totals.get("alert", 0),
        sum(v for k, v in totals.items() if k not in ("dns", "alert")), dt)
    print(line)
    return line


def main():
    binary = common.require_binary()
    files = common.find_captures("captures", "corpus")
    if len(files) < 100:
        common.die("expected the whole corpus, found only %d capture files under %s" % (len(files), common.SHARED_DIR))
    rep = common.Report("replay_all")
    lines = ["capture files: %d (captures/ + corpus/)" % len(files)]
    if os.environ.get("EXFILWATCH_SANITIZED") == "1":
        # make test-asan: the binary under test is the sanitizer build
        lines.append(run_all("asan", binary, files, sanitizer_env(), 600, rep))
        return rep.finish(lines)
    lines.append(run_all("release", binary, files, None, 120, rep))
    asan = os.environ.get("EXFILWATCH_ASAN")
    if asan:
        common.require_binary(asan)
        lines.append(run_all("asan", asan, files, sanitizer_env(), 600, rep))
    else:
        lines.append("EXFILWATCH_ASAN not set: sanitizer pass skipped")
    return rep.finish(lines)


def sanitizer_env():
    """The environment for a sanitizer build: any report aborts the run."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    return env


if __name__ == "__main__":
    sys.exit(main())
