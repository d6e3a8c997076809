#!/usr/bin/env python3
"""eve_schema: every EVE record `replay --dns-log` writes for every shared
capture validates against Suricata 8's own EVE schema
(../shared/corpus/eve/suricata-8.0.6-schema.json), extended in exactly one
place: the top-level object `exfilwatch` (docs/eve-exfilwatch.schema.json).
The fleet lab's 5-host spread is added for the domain view's alert.
Also: every record has a 51-bit flow_id and the capture's pcap_filename; DNS
records use the v3 layout; every alert about a DNS message shares its
flow_id with that message's DNS record (the analyst's pivot); TLS alerts
carry a `tls` object, and where the capture holds the ServerHello its JA3S
and negotiated version equal tshark's reading of that capture.

All captures go through one replay (the engine's state spans files, which
only matters for which alerts fire, not for their layout); records are
validated in parallel with python3-jsonschema (Debian).
"""
import copy
import json
import multiprocessing
import os
import subprocess
import sys

import jsonschema

EXE = os.environ["EXFILWATCH"]
SHARED = os.environ["SHARED_DIR"]
SOURCE = os.environ["SOURCE_DIR"]
SURICATA_SCHEMA = os.path.join(SHARED, "corpus", "eve", "suricata-8.0.6-schema.json")
EXTENSION = os.path.join(SOURCE, "docs", "eve-exfilwatch.schema.json")
CHUNK = 2000

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def schema():
    with open(SURICATA_SCHEMA) as f:
        s = json.load(f)
    with open(EXTENSION) as f:
        ext = json.load(f)
    # Suricata's schema admits no unknown top-level key: the extension is
    # the only one added, nothing else is relaxed.
    assert s.get("additionalProperties") is False
    assert "exfilwatch" not in s["properties"]
    s = copy.deepcopy(s)
    s["properties"]["exfilwatch"] = ext
    return s


_validator = None


def init():
    global _validator
    s = schema()
    _validator = jsonschema.validators.validator_for(s)(s)


def validate(chunk):
    """Validates lines; returns (errors, facts) with facts per record."""
    errors, facts = [], []
    for line in chunk:
        try:
            r = json.loads(line)
        except ValueError as e:
            errors.append(f"not JSON ({e}): {line[:200]}")
            continue
        err = None if _validator.is_valid(r) else next(iter(_validator.iter_errors(r)))
        if err is not None:
            path = "/".join(str(p) for p in err.absolute_path)
            errors.append(f"{path}: {err.message[:300]}")
        dns = r.get("dns") or {}
        tls = r.get("tls") or {}
        facts.append((r.get("event_type"), r.get("flow_id"), r.get("pcap_filename"),
                      r.get("pcap_cnt"), dns.get("version"), dns.get("type"),
                      (r.get("alert") or {}).get("signature_id"),
                      bool(tls.get("sni")) and bool(tls.get("ja3", {}).get("hash")) and
                      bool(tls.get("ja4")), r.get("proto"),
                      (tls.get("ja3s") or {}).get("hash"), (tls.get("ja3s") or {}).get("string"),
                      tls.get("version")))
    return errors, facts


def invalid_records(path):
    """Problems of the records of an EVE file (for the live tests' files)."""
    init()
    with open(path) as f:
        errors, _ = validate([line.rstrip("\n") for line in f if line.strip()])
    return errors


# Suricata's names for what the ServerHello chose (supported_versions for
# TLS 1.3, else the legacy version).
SURICATA_VERSIONS = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLSv1",
                     0x0300: "SSLv3"}


def server_hellos(pcap):
    """{(ja3s, ja3s_full, version name)} of the capture's ServerHellos, by tshark."""
    r = subprocess.run(["tshark", "-r", pcap, "-d", "tcp.port==8443,tls", "-Y",
                        "tls.handshake.type == 2", "-T", "fields", "-E", "occurrence=f",
                        "-e", "tls.handshake.ja3s", "-e", "tls.handshake.ja3s_full",
                        "-e", "tls.handshake.version",
                        "-e", "tls.handshake.extensions.supported_version"],
                       capture_output=True, text=True, timeout=300)
    out = set()
    for line in r.stdout.splitlines():
        ja3s, full, legacy, selected = (line.split("\t") + ["", "", "", ""])[:4]
        if ja3s:
            out.add((ja3s, full, SURICATA_VERSIONS.get(int(selected or legacy, 16), "UNDETERMINED")))
    return out


def captures():
    out = []
    for top in ("captures", "corpus"):
        for root, _, files in os.walk(os.path.join(SHARED, top)):
            out += [os.path.join(root, f) for f in files if f.endswith((".pcap", ".pcapng", ".cap"))]
    return sorted(out)


def chunks(stream):
    buf = []
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            continue
        buf.append(line)
        if len(buf) >= CHUNK:
            yield buf
            buf = []
    if buf:
        yield buf


def main():
    pcaps = captures()
    check(len(pcaps) >= 100, f"{len(pcaps)} shared captures found")
    # the fleet lab's leak spread over 5 hosts: the domain view's alert (9000005)
    pcaps.append(os.path.join(SOURCE, "tests", "data", "fleet-lab", "spread-5hosts.pcap"))
    proc = subprocess.Popen([EXE, "replay", "--dns-log", *pcaps], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="surrogateescape")
    records = 0
    tls_servers = {}  # pcap -> {(ja3s hash, ja3s string, version)} of its TLS alerts
    errors = []
    flows = {}  # (pcap, pcap_cnt) -> flow ids of DNS records
    alert_refs = []  # DNS alerts: (pcap, pcap_cnt, flow_id)
    bad_flow = bad_pcap = bad_dns = 0
    tls_alerts = tls_with_hello = domain_alerts = 0
    known = set(pcaps)
    with multiprocessing.Pool(os.cpu_count() or 1, initializer=init) as pool:
        for errs, facts in pool.imap(validate, chunks(proc.stdout)):
            errors += errs
            for (etype, flow, pcap, cnt, dver, dtype, sid, hello, proto, ja3s, ja3s_string,
                 version) in facts:
                records += 1
                if not (isinstance(flow, int) and 0 < flow < 2 ** 51):
                    bad_flow += 1
                if pcap not in known:
                    bad_pcap += 1
                if etype == "dns":
                    if dver != 3 or dtype not in ("request", "response"):
                        bad_dns += 1
                    flows.setdefault((pcap, cnt), set()).add(flow)
                elif etype == "alert":
                    if dver is not None:
                        if dver != 3 or dtype not in ("request", "response"):
                            bad_dns += 1
                        alert_refs.append((pcap, cnt, flow))
                    domain_alerts += sid == 9000005
                    if sid in (9000003, 9000004):
                        tls_alerts += 1
                        tls_with_hello += hello
                        tls_servers.setdefault(pcap, set()).add((ja3s, ja3s_string, version))
    stderr = proc.stderr.read()
    proc.wait()
    check(proc.returncode in (0, 1), f"replay exit status {proc.returncode} ({stderr[-300:]!r})")
    check(records > 100000, f"{records} records from {len(pcaps)} captures")
    distinct = sorted(set(errors))
    check(not errors, f"every record validates against Suricata 8's schema + `exfilwatch` "
          f"({len(errors)} invalid, {len(distinct)} distinct problems)")
    for e in distinct[:15]:
        print("     " + e)
    check(bad_flow == 0, f"every record has a 51-bit positive flow_id ({bad_flow} without)")
    check(bad_pcap == 0, f"every record names its capture in pcap_filename ({bad_pcap} not)")
    check(bad_dns == 0, f"every dns object is DNS v3, type request/response ({bad_dns} not)")
    unmatched = [a for a in alert_refs if a[2] not in flows.get((a[0], a[1]), ())]
    check(alert_refs and not unmatched,
          f"{len(alert_refs)} DNS alerts share flow_id with their message's dns record "
          f"({len(unmatched)} do not: {unmatched[:3]})")
    check(domain_alerts > 0, f"domain-view alerts (9000005) validate too ({domain_alerts})")
    check(tls_alerts > 0 and tls_with_hello > 0,
          f"TLS alerts carry tls.sni, tls.ja3.hash and tls.ja4 ({tls_with_hello} of {tls_alerts})")
    for pcap, seen in sorted(tls_servers.items()):
        hellos = server_hellos(pcap)
        name = os.path.basename(pcap)
        if not hellos:
            check(all(h is None for h, _, _ in seen),
                  f"{name}: no ServerHello in the capture, no tls.ja3s ({seen})")
            continue
        check(all(h is not None for h, _, _ in seen) and seen <= hellos,
              f"{name}: TLS alerts' tls.ja3s {{hash, string}} and version are the capture's "
              f"ServerHello as tshark reads it\n  alerts: {seen}\n  tshark: {hellos}")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
