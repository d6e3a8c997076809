"""alertmanager_delivery (issue #6): a real Alertmanager receives the tunnel
alert of a mirrored capture with its labels; then, with Alertmanager
stopped, alerts of a second capture are queued and retried, and once it is
back every one is delivered (sent == alerts written, none dropped)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import delivery_common as dc
import live_common as lc


def am_alerts(port):
    try:
        return json.loads(dc.http_get("http://127.0.0.1:%d/api/v2/alerts" % port))
    except OSError:
        return []


def eve_alert_count(path):
    n = 0
    with open(path) as f:
        for line in f:
            n += json.loads(line).get("event_type") == "alert"
    return n


def gauge(mport, name):
    return sum(dc.metric_values(dc.scrape(mport), name).values())


def main():
    dc.need("prometheus-alertmanager")
    with lc.tempdir() as d:
        am, amport = dc.start_alertmanager(d)
        port, mport = lc.free_port(), lc.free_port()
        cfg = lc.write_config(d, port, "sensor_name: sensor-t\nmetrics:\n  address: 127.0.0.1:%d\n"
                              "alertmanager:\n  url: http://127.0.0.1:%d\n  batch_size: 4\n"
                              "  queue_size: 1000\n  timeout_ms: 2000\n  retry_max_ms: 500\n" % (mport, amport))
        eve = os.path.join(d, "eve.json")
        sensor = lc.Sensor(cfg, eve)
        try:
            lc.mirror(port, [os.path.join(lc.CAPTURES, "iodine-null.pcap")])

            # The tunnel's one alert (one per pair per interval: iodine's
            # login rule fires first, the scorer's verdict is held back).
            def tunnel():
                for a in am_alerts(amport):
                    if a["labels"].get("alertname", "").startswith("EXFILWATCH iodine"):
                        return a
                return None
            a = dc.wait_until(tunnel, 60, "tunnel alert in Alertmanager")
            labels = a["labels"]
            for key in ("alertname", "severity", "category", "client", "domain", "sensor"):
                assert labels.get(key), (key, labels)
            assert labels["severity"] == "critical" and labels["sensor"] == "sensor-t", labels
            assert a["annotations"]["reasons"] and a["annotations"]["sample_names"], a["annotations"]
            # The pivot into the EVE file: the same alert there has this
            # flow_id, and the labels are its fields.
            with open(eve) as f:
                eve_alerts = {json.loads(l)["flow_id"]: json.loads(l) for l in f if '"event_type":"alert"' in l}
            rec = eve_alerts.get(int(a["annotations"]["flow_id"]))
            assert rec, (a["annotations"], list(eve_alerts))
            assert labels["alertname"] == rec["alert"]["signature"], (labels, rec["alert"])
            assert labels["category"] == rec["alert"]["category"], (labels, rec["alert"])
            assert labels["client"] == rec["src_ip"], (labels, rec)
            assert labels["domain"] == rec["exfilwatch"]["registered_domain"], (labels, rec)
            print("alertmanager: %s" % json.dumps(labels, sort_keys=True))

            # Alertmanager down: alerts queue and are retried.
            dc.wait_until(lambda: gauge(mport, "exfilwatch_alertmanager_alerts_sent_total") == eve_alert_count(eve),
                          60, "first alerts sent")
            sent_before = gauge(mport, "exfilwatch_alertmanager_alerts_sent_total")
            am.stop()
            # Another pair (client, example-c2.com): the tunnel-lab.net pair
            # alerted already and stays quiet for the suppression interval.
            lc.mirror(port, [os.path.join(lc.CAPTURES, "slow-hex-exfil.pcap")])
            dc.wait_until(lambda: eve_alert_count(eve) > sent_before, 60, "new alerts in EVE")
            dc.wait_until(lambda: gauge(mport, "exfilwatch_alertmanager_post_failures_total") >= 2,
                          60, "retries while Alertmanager is down")
            queued = gauge(mport, "exfilwatch_alertmanager_queue_alerts")
            assert queued > 0, queued
            print("alertmanager down: %d alerts queued, retrying" % queued)
            am, _ = dc.start_alertmanager(d, amport)
            total = eve_alert_count(eve)
            dc.wait_until(lambda: gauge(mport, "exfilwatch_alertmanager_alerts_sent_total") == total,
                          60, "queued alerts delivered")
            assert gauge(mport, "exfilwatch_alertmanager_alerts_dropped_total") == 0
            assert gauge(mport, "exfilwatch_alertmanager_queue_alerts") == 0
            got = dc.wait_until(lambda: [x for x in am_alerts(amport)
                                         if x["labels"].get("domain") == "example-c2.com"],
                                30, "the queued example-c2.com alert after restart")
            print("alertmanager back: %d alerts sent in all (%d written), %d shown" % (total, total, len(got)))
        finally:
            rc, _ = sensor.stop()
            am.stop()
        assert rc == 0, rc
    print("PASS")


if __name__ == "__main__":
    main()
