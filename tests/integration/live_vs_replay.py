#!/usr/bin/env python3
"""live_vs_replay: `exfilwatch run` on loopback, fed by `exfilwatch mirror`,
raises the same alerts as `replay` on the same captures; SIGTERM then exits
0 with every alert flushed.

Making the comparison meaningful, not trivially true:
- each capture gets its own sensor run: live timestamps are receive times,
  so two captures mirrored into one run share time windows that replay
  keeps apart (the scorer's per-pair windows would then differ);
- mirror --realtime keeps each capture's own inter-packet timing, since
  the scorer's windowed features (queries per minute...) depend on it;
- the keys are (signature_id, src_ip, dest_ip, registered_domain) sets with
  the default suppression, plus a run with suppression off comparing counts
  (every tunnel query alerts: one lost, duplicated or misrouted datagram
  changes the count);
- the iodine capture must raise alerts at all (tunnel-lab.net), the
  datagram count must equal what mirror sent, and the EVE file must hold
  exactly the alerts the sensor's final statistics report, each valid
  against Suricata 8's EVE schema (eve_schema.py), its `tunnel` naming
  the outer datagram's addresses and ports as replay's does.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import eve_schema  # noqa: E402
import live_common as lc  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run_one(capture, extra, workers, compare_counts, steering=True):
    with lc.tempdir() as d:
        port = lc.free_port()
        if not steering:  # listen: is the block write_config ends with
            extra = "  kernel_steering: false\n" + extra
        config = lc.write_config(d, port, extra=extra, workers=workers)
        pcap = os.path.join(lc.CAPTURES, capture)
        eve = os.path.join(d, "eve.json")
        sensor = lc.Sensor(config, eve)
        sent = lc.mirror(port, [pcap], "--realtime", "--speed", "4" if compare_counts else "1")
        rc, stats = sensor.stop()
        live = lc.alert_keys(eve)
        replay = lc.replay_alerts([pcap], config, d)
        tag = "%s workers=%d%s%s" % (capture, workers, " suppress=0" if compare_counts else "",
                                     "" if steering else " kernel_steering=false")
        check(rc == 0, "%s: exit 0 after SIGTERM (got %s)" % (tag, rc))
        check(stats.get("datagrams") == sent and stats.get("processed") == sent,
              "%s: received and processed every datagram sent (%d sent, stats %s/%s)"
              % (tag, sent, stats.get("datagrams"), stats.get("processed")))
        check(stats.get("kernel_drops") == 0 and stats.get("handoff_drops") == 0,
              "%s: no drops" % tag)
        check(stats.get("eve_lines") == sum(live.values()) == stats.get("alerts"),
              "%s: every alert flushed (%s reported, %s written, %d in file)"
              % (tag, stats.get("alerts"), stats.get("eve_lines"), sum(live.values())))
        invalid = eve_schema.invalid_records(eve)
        check(not invalid, "%s: every record `run` wrote validates against Suricata 8's schema + "
              "exfilwatch (%d invalid: %s)" % (tag, len(invalid), invalid[:2]))
        # `tunnel` as replay writes it: the outer datagram the kernel took
        # apart (mirror's loopback sender to the sensor's port), on every
        # record, also those handed to another worker.
        outers = lc.tunnels(eve)
        wrong = [t for t in outers
                 if not (t.get("src_ip") == "127.0.0.1" and t.get("dest_ip") == "127.0.0.1"
                         and t.get("dest_port") == port and 0 < t.get("src_port", 0) < 65536
                         and t.get("proto") == "UDP" and t.get("depth") == 1)]
        check(len(outers) == sum(live.values()) and not wrong,
              "%s: every live record's tunnel has the outer addresses (127.0.0.1:* -> "
              "127.0.0.1:%d UDP, depth 1; %d records, %d wrong: %s)"
              % (tag, port, len(outers), len(wrong), wrong[:2]))
        if workers > 1 and steering:
            # The kernel's reuseport program delivered every datagram (IPv4
            # VXLAN) to its owner's socket: nothing to hand off.
            check("kernel steers vxlan to owners" in sensor.log(), "%s: kernel steering attached" % tag)
            check(stats.get("handoff", -1) == 0,
                  "%s: kernel steering: no datagram handed off (handoff=%s)" % (tag, stats.get("handoff")))
        elif workers > 1:
            check(stats.get("handoff", 0) > 0, "%s: hand-off between workers exercised" % tag)
        if compare_counts:
            check(live == replay, "%s: alert counts equal replay\n  live:   %s\n  replay: %s" % (tag, dict(live), dict(replay)))
        else:
            check(set(live) == set(replay), "%s: alert set equals replay\n  live:   %s\n  replay: %s" % (tag, set(live), set(replay)))
        return live


tunnel = run_one("iodine-null.pcap", "", 2, False)
check(any(k[3] == "tunnel-lab.net" for k in tunnel), "iodine-null: the tunnel is alerted")
run_one("iodine-null.pcap", "detect:\n  suppress_seconds: 0\n", 2, True)
# The same without kernel steering: half the datagrams reach the other
# worker's socket and are handed to their owner; nothing may change.
run_one("iodine-null.pcap", "detect:\n  suppress_seconds: 0\n", 2, True, steering=False)
# benign-dns on two workers: five clients spread over both, sharing
# antivirus and CDN look-up names; the scorer's set of names already seen is
# one per sensor, so the alerts must equal replay's (none).
run_one("benign-dns.pcap", "", 2, False)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
