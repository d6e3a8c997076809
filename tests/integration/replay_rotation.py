"""replay_rotation (issue #6): `exfilwatch replay` rotates its EVE file the
way the live sensor does (output.rotate_*), when the EVE output is a file
(--eve FILE); without --eve, records go to stdout even when the
configuration names the live sensor's output.eve.

By size: many files; the records in all of them = the records replay says
it wrote; every line is valid JSON and every file ends with a newline (no
torn record); rotation falls between whole lines (each rotated file reached
rotate_bytes with its last line, not before); oldest-to-newest they hold
exactly what the same replay writes to stdout.

By age: measured in packet time, not wall time: three captures spanning
~50 s of capture time replay in well under that, yet split into files that
each span less than rotate_seconds of packet time, and two runs give the
same files (a wall clock would give one file, or different splits)."""
import datetime
import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import live_common as lc

EXE = lc.EXFILWATCH


def replay(args):
    r = subprocess.run([EXE, "replay", *args], capture_output=True, timeout=600)
    err = r.stderr.decode()
    assert r.returncode == 0, "replay %s: rc=%d\n%s" % (args, r.returncode, err)
    return r.stdout, err


def written(stderr, path):
    """(records, rotations) from the summary's eve: line."""
    m = re.search(r"^eve: (\d+) records written to (.+), (\d+) rotations$", stderr, re.M)
    assert m, stderr
    assert m.group(2) == path, (m.group(2), path)
    return int(m.group(1)), int(m.group(3))


def rotated_files(eve):
    """FILE.N (oldest) .. FILE.1, FILE."""
    older = sorted(glob.glob(eve + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]), reverse=True)
    return older + [eve]


def read_records(files):
    """Every line of every file as parsed JSON, asserting whole lines."""
    out = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        assert data, "empty file " + path
        assert data.endswith(b"\n"), "torn last record in " + path
        for line in data.split(b"\n")[:-1]:
            out.append((path, json.loads(line)))
    return out


def seconds(ts):
    return int(datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def write_config(d, body):
    path = os.path.join(d, "replay.yaml")
    with open(path, "w") as f:
        f.write(body)
    return path


def by_size():
    rotate = 32768
    captures = [os.path.join(lc.CAPTURES, c) for c in ("benign-dns.pcap", "iodine-null.pcap")]
    with lc.tempdir() as d:
        eve = os.path.join(d, "eve.json")
        cfg = write_config(d, "dns:\n  log: true\ndetect:\n  suppress_seconds: 0\n"
                              "output:\n  rotate_bytes: %d\n  rotate_keep: 100000\n" % rotate)
        out, err = replay(["--config", cfg, "--eve", eve, *captures])
        assert out == b"", "records went to stdout, not to --eve"
        records, rotations = written(err, eve)
        files = rotated_files(eve)
        got = read_records(files)
        assert len(files) >= 20, len(files)
        assert rotations == len(files) - 1, (rotations, len(files))
        assert len(got) == records, (len(got), records)
        alerts = sum(1 for _, r in got if r["event_type"] == "alert")
        assert alerts > 0 and records - alerts > 1000, (alerts, records)
        longest = max(len(json.dumps(r)) for _, r in got) + 64
        for path in files[:-1]:
            size = os.path.getsize(path)
            assert rotate <= size < rotate + longest, (path, size)
        # The same replay to stdout: identical records, identical order.
        stdout, err2 = replay(["--config", cfg, "--eve", "-", *captures])
        assert "records written to stdout" in err2, err2
        joined = b"".join(open(p, "rb").read() for p in files)
        assert joined == stdout, "rotated files differ from the stdout replay"
        print("by size: %d files (rotate_bytes %d), %d records (%d alerts) = replay's count; "
              "valid JSON, whole lines, same bytes as the stdout replay" % (len(files), rotate, records, alerts))


def by_age_once(d, rotate_seconds, captures):
    eve = os.path.join(d, "eve.json")
    decoy = os.path.join(d, "from-config.json")
    # --eve wins over output.eve; output.eve alone is never used by replay.
    cfg = write_config(d, "dns:\n  log: true\noutput:\n  eve: %s\n  rotate_seconds: %d\n  rotate_keep: 100000\n"
                          % (decoy, rotate_seconds))
    _, err = replay(["--config", cfg, "--eve", eve, *captures])
    assert not os.path.exists(decoy), "--eve must override output.eve"
    out, _ = replay(["--config", cfg, captures[0]])
    assert out and not os.path.exists(decoy), "without --eve, replay must write stdout, not output.eve"
    records, rotations = written(err, eve)
    elapsed = float(re.search(r"^elapsed: ([\d.]+) s", err, re.M).group(1))
    files = rotated_files(eve)
    got = read_records(files)
    assert len(got) == records and rotations == len(files) - 1, (len(got), records, rotations, len(files))
    spans = []
    starts = []
    for path in files:
        ts = [seconds(r["timestamp"]) for p, r in got if p == path]
        spans.append(max(ts) - min(ts))
        starts.append(ts[0])
    # A file holds less than rotate_seconds of packet time, and the next one
    # starts because the age was reached (in packet time).
    assert all(s < rotate_seconds for s in spans), spans
    assert all(b - a >= rotate_seconds for a, b in zip(starts, starts[1:])), starts
    contents = [open(p, "rb").read() for p in files]
    return records, files, spans, elapsed, contents


def by_age():
    rotate_seconds = 5
    captures = [os.path.join(lc.CAPTURES, c)
                for c in ("dns2tcp-txt.pcap", "slow-hex-exfil.pcap", "iodine-null.pcap")]
    with lc.tempdir() as d1, lc.tempdir() as d2:
        records, files, spans, elapsed, first = by_age_once(d1, rotate_seconds, captures)
        _, _, _, _, second = by_age_once(d2, rotate_seconds, captures)
        # ~51 s of capture time replayed in about a second: a wall clock would
        # not rotate at all.
        assert len(files) >= 6, (len(files), spans)
        assert elapsed < rotate_seconds, elapsed
        assert first == second, "two replays split differently"
        print("by age (packet time): %d files of < %d s of capture time each (spans %s), %d records, "
              "replay took %.2f s; a second run gives the same files" % (len(files), rotate_seconds, spans,
                                                                        records, elapsed))


def main():
    by_size()
    by_age()
    print("PASS")


if __name__ == "__main__":
    main()
