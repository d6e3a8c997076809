#!/usr/bin/env python3
"""stage_costs.py BASE.out RUN.out PACKETS [BARE_IR_PER_PACKET]: instructions per
packet by stage of the packet path, from two callgrind profiles of
`exfilwatch replay` that differ only in how many packets they read (the
difference cancels start-up: rule compilation or cache load, model, public
suffix list, table allocation). Prints markdown table rows.

Attribution. Every instruction callgrind counted belongs to a (function,
source file) pair; with -g the file is the one the code came from after
inlining (callgrind's fi=/fe=), so code the compiler (and LTO) folded into
Engine::process still lands in decode/, dns/ or score/. Stages:

  libpcap read       libpcap.so, src/capture (PcapSource)
  decode             src/decode (link, VXLAN/GENEVE, IP, fragments, UDP/TCP)
  DNS parse          src/dns/message (Parser), src/dns/tcp_stream (DNS over TCP)
  registered domain  src/dns/registered_domain (cache), libpsl, libidn2, libunistring
  features           src/score/lexical, src/score/ngram_model (entropy, n-gram bits)
  Hyperscan          libhs.so, src/rules (matcher: scans, hits, allow/alert lists)
  state              src/score/dns_scorer, state_table.h, window.h (per-pair tables)
  TLS 8443           src/tls, src/score/tls_tracker, libcrypto (JA3/JA4)
  output             src/alert (EVE formatter, JSON writer, sink), stdio writes
  engine glue        src/engine, src/sensor, src/app (Engine::process, handleDns,
                     detect, replay loop)
Generic headers (src/decode/packet.h's ByteReader, src/common,
src/dns/message.h's accessors, C++ library headers) go by the function they
were inlined into. Code outside the project
and the libraries above (libc memcpy/memset/malloc, libstdc++, libm) goes to
the stage that called it, in proportion to the calls' inclusive costs
(exact for leaf functions such as memcpy).

Columns: self = the stage's own instructions plus the library code it called
(the rows add up to the total); inclusive = self plus the stages it called
(state includes features when the scorer computes them, engine glue
includes nearly everything).
"""
import collections
import os
import re
import sys

STAGES = ["libpcap read", "decode", "DNS parse", "registered domain", "features", "Hyperscan",
          "state", "TLS 8443", "output", "engine glue", "other"]

FILE_RULES = [  # (regex on the source file, stage); first match wins
    (r"src/common/|src/decode/packet\.h$|src/dns/message\.h$", None),  # generic: by function
    (r"src/capture/", "libpcap read"),
    (r"src/decode/", "decode"),
    (r"src/dns/(message|tcp_stream)\.", "DNS parse"),
    (r"src/dns/registered_domain\.", "registered domain"),
    (r"src/score/(lexical|ngram_model)\.", "features"),
    (r"src/score/tls_tracker\.", "TLS 8443"),
    (r"src/score/(dns_scorer|state_table|window|score_config|reasons)\.", "state"),
    (r"src/rules/", "Hyperscan"),
    (r"src/tls/", "TLS 8443"),
    (r"src/alert/", "output"),
    (r"src/(engine|sensor|app)/", "engine glue"),
    (r"src/(config|metrics)/", "other"),
]
FN_RULES = [  # (regex on the function name, stage)
    (r"exfilwatch::PcapSource::", "libpcap read"),
    (r"exfilwatch::(decode::|Decoder::|FragmentReassembler|Fragment)", "decode"),
    (r"exfilwatch::dns::(Parser|DnsMessage|TcpStream|TcpDns|Tcp)", "DNS parse"),
    (r"exfilwatch::dns::RegisteredDomain", "registered domain"),
    (r"exfilwatch::score::(lexicalFeatures|judgeLexical|prefixInfoBits|prefixModelBitsPerChar|NgramModel|shannon)", "features"),
    (r"exfilwatch::score::(Tls|tls)", "TLS 8443"),
    (r"exfilwatch::score::", "state"),
    (r"exfilwatch::rules::", "Hyperscan"),
    (r"exfilwatch::tls::", "TLS 8443"),
    (r"exfilwatch::(EveFormatter|JsonWriter|FileEveSink|AsyncEveSink|EvidenceRecorder|alert::)", "output"),
    (r"exfilwatch::(Engine|engine::|app::)", "engine glue"),
    (r"^(main|__libc_start_main)", "engine glue"),
]
OBJ_RULES = [
    (r"libpcap\.so", "libpcap read"),
    (r"libhs\.so", "Hyperscan"),
    (r"lib(psl|idn2|unistring)\.so", "registered domain"),
    (r"libcrypto\.so", "TLS 8443"),
]
# libc's stdio write path is output wherever it is called from; its read
# path is the capture file.
LIBC_OUTPUT = re.compile(r"^(_IO_(new_)?file_(write|xsputn|overflow)|_IO_do_write|new_do_write|fwrite|fputs|fflush|__GI___libc_write|write)$")
LIBC_READ = re.compile(r"^(_IO_file_xsgetn|_IO_(new_)?file_underflow|fread|_IO_fread|__GI___libc_read|read|__read_nocancel)$")


def stage_of(obj, fil, fn):
    """A stage, or None: neutral code, attributed to its callers."""
    name = re.sub(r"'\d+$", "", fn)
    if fil:
        for rx, st in FILE_RULES:
            if re.search(rx, fil):
                if st is not None:
                    return st
                break
    for rx, st in FN_RULES:
        if re.search(rx, name):
            return st
    for rx, st in OBJ_RULES:
        if re.search(rx, obj or ""):
            return st
    if "libc.so" in (obj or ""):
        if LIBC_OUTPUT.match(name):
            return "output"
        if LIBC_READ.match(name):
            return "libpcap read"
    return None


def parse(path):
    """Self cost per (obj, file, fn) and call arcs (caller key, callee fn key, inclusive)."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    self_cost = collections.Counter()
    arcs = collections.Counter()  # ((obj, file, fn), (cobj, cfn)) -> inclusive Ir
    total = 0
    ob = fl = fi = fn = None
    cob = cfn = None
    pending_call = False

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
            return m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                ir = int(parts[1])
                if pending_call:
                    arcs[((ob, fi, fn), (cob, cfn))] += ir
                    pending_call = False
                else:
                    self_cost[(ob, fi, fn)] += ir
                continue
            if line.startswith("fn="):
                fn = name("fn", line[3:].rstrip("\n"))
                fi = fl
                cob = None
            elif line.startswith("fl="):
                fl = fi = name("fl", line[3:].rstrip("\n"))
            elif line.startswith(("fi=", "fe=")):
                fi = name("fl", line[3:].rstrip("\n"))
            elif line.startswith("ob="):
                ob = name("ob", line[3:].rstrip("\n"))
            elif line.startswith("cob="):
                cob = name("ob", line[4:].rstrip("\n"))
            elif line.startswith(("cfi=", "cfl=")):
                name("fl", line[4:].rstrip("\n"))
            elif line.startswith("cfn="):
                cfn = name("fn", line[4:].rstrip("\n"))
            elif line.startswith("calls="):
                pending_call = True
                if cob is None:
                    cob = ob
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return self_cost, arcs, total


def attribute(self_cost, arcs):
    """Per stage: self (with neutral callees folded in) and calls to other stages."""
    fn_obj = {}
    for (ob, fi, fn) in self_cost:
        fn_obj.setdefault(fn, ob)
    # inbound arcs per callee function (callees are known by (obj, fn))
    inbound = collections.defaultdict(list)
    for (caller, (cob, cfn)), ir in arcs.items():
        inbound[cfn].append((caller, ir))
    memo = {}

    def shares(fn, depth=0):
        """Stage fractions a neutral function's cost goes to."""
        if fn in memo:
            return memo[fn]
        memo[fn] = {"other": 1.0}  # cycle guard
        tot = sum(ir for _, ir in inbound.get(fn, []))
        out = collections.Counter()
        if tot == 0 or depth > 50:
            out["other"] = 1.0
        else:
            for (ob, fi, cfn), ir in inbound[fn]:
                st = stage_of(ob, fi, cfn)
                if st is not None:
                    out[st] += ir / tot
                else:
                    for s2, w in shares(cfn, depth + 1).items():
                        out[s2] += w * ir / tot
        memo[fn] = dict(out)
        return memo[fn]

    self_by = collections.Counter()
    detail = collections.Counter()  # (stage, function) -> Ir
    for (ob, fi, fn), ir in self_cost.items():
        st = stage_of(ob, fi, fn)
        short = re.sub(r"\(.*", "", fn.replace("(anonymous namespace)", "{anon}"))[:100]
        if st is not None:
            self_by[st] += ir
            detail[(st, short)] += ir
        else:
            for s2, w in shares(fn).items():
                self_by[s2] += ir * w
                detail[(s2, short)] += ir * w
    # nested: calls from a stage's code into another stage's function
    nested = collections.Counter()
    for ((ob, fi, fn), (cob, cfn)), ir in arcs.items():
        st = stage_of(ob, fi, fn)
        if st is None:
            continue
        # the callee's stage: by its name/object (its file is unknown here:
        # take the file its own cost was recorded under most)
        cst = callee_stage(cob, cfn)
        if cst is not None and cst != st:
            nested[st] += ir
    return self_by, nested, detail


_callee_files = {}


def callee_stage(cob, cfn):
    fil = _callee_files.get(cfn)
    return stage_of(cob, fil, cfn)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, run, packets = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bare = float(sys.argv[4]) if len(sys.argv) > 4 else None
    results = []
    for path in (base, run):
        sc, arcs, total = parse(path)
        # main file of each function: where most of its own cost is
        best = {}
        for (ob, fi, fn), ir in sc.items():
            if ir > best.get(fn, (0, None))[0]:
                best[fn] = (ir, fi)
        _callee_files.clear()
        _callee_files.update({fn: fi for fn, (ir, fi) in best.items()})
        self_by, nested, detail = attribute(sc, arcs)
        results.append((self_by, nested, total, detail))
    (s0, n0, t0, d0), (s1, n1, t1, d1) = results
    total = (t1 - t0) / packets
    print("| stage | instructions/packet (self) | share | instructions/packet (inclusive) |")
    print("|---|---:|---:|---:|")
    for st in STAGES:
        self_pp = (s1[st] - s0[st]) / packets
        incl_pp = self_pp + (n1[st] - n0[st]) / packets
        if abs(self_pp) < 0.5 and st in ("other", "TLS 8443"):
            continue
        print("| %s | %.0f | %.1f%% | %.0f |" % (st, self_pp, 100 * self_pp / total if total else 0, incl_pp))
    print("| **total** (replay, per packet) | **%.0f** | 100%% | |" % total)
    if bare:
        print("| bare libpcap loop (bench/pcap_loop), for scale | %.0f | %.1f%% of replay | |" % (bare, 100 * bare / total))
    if os.environ.get("DETAIL"):  # the largest functions in each stage
        diff = collections.Counter()
        for k in set(d0) | set(d1):
            diff[k] = (d1.get(k, 0) - d0.get(k, 0)) / packets
        print()
        for st in STAGES:
            top = sorted(((v, fn) for (s2, fn), v in diff.items() if s2 == st and abs(v) >= 1), reverse=True)
            if top:
                print("%s:" % st)
                for v, fn in top[: int(os.environ["DETAIL"])]:
                    print("  %7.0f  %s" % (v, fn))


if __name__ == "__main__":
    main()
