"""eve_rotation (issue #6): the EVE file rotates many times under load
(output.rotate_bytes small, every DNS message logged) and is reopened on
SIGHUP after being moved away (logrotate); records in = records out (the
final eve_lines count equals the lines across every file), every line is
valid JSON (no torn record)."""
import glob
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import delivery_common as dc
import live_common as lc


def _move(a, b):
    try:
        os.rename(a, b)
        return True
    except FileNotFoundError:
        return False


def main():
    with lc.tempdir() as d:
        port = lc.free_port()
        cfg = lc.write_config(d, port, "metrics:\n  address: ''\ndns:\n  log: true\ndetect:\n  suppress_seconds: 0\n"
                              "output:\n  rotate_bytes: 65536\n  rotate_keep: 100000\n")
        eve = os.path.join(d, "eve.json")
        sensor = lc.Sensor(cfg, eve)
        sent = [0]

        def feed():
            sent[0] += lc.mirror(port, [os.path.join(lc.CAPTURES, "benign-dns.pcap"),
                                        os.path.join(lc.CAPTURES, "iodine-null.pcap")], "--loop", "3")
        t = threading.Thread(target=feed)
        t.start()
        # logrotate's way, under load: move the file, then SIGHUP.
        dc.wait_until(lambda: len(glob.glob(eve + ".*")) >= 3, 60, "rotations")
        # (the sensor may be between its own rename and reopen: retry)
        dc.wait_until(lambda: _move(eve, os.path.join(d, "moved.json")), 30, "move the EVE file")
        sensor.signal(signal.SIGHUP)
        t.join()
        rc, stats = sensor.stop()
        assert rc == 0, rc
        files = [eve, os.path.join(d, "moved.json")] + glob.glob(eve + ".*")
        files = [f for f in files if os.path.exists(f) and not f.endswith(".stderr")]
        lines = 0
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            assert not data or data.endswith(b"\n"), "torn last record in " + path
            for line in data.splitlines():
                json.loads(line)
                lines += 1
        # Every record the engines produced was written or counted as dropped
        # (a full queue under this flood is by design); every written one is here.
        assert stats["eve_lines"] + stats["eve_drops"] == stats["dns_messages"] + stats["alerts"], stats
        assert lines == stats["eve_lines"], (lines, stats["eve_lines"])
        assert len(files) > 10, len(files)
        print("eve_rotation: %d files, %d lines = eve_lines %d (queue drops %d), datagrams sent %d, all valid JSON"
              % (len(files), lines, stats["eve_lines"], stats["eve_drops"], sent[0]))
    print("PASS")


if __name__ == "__main__":
    main()
