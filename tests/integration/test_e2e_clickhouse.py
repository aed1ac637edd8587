"""End to end against the real services: a ClickHouse source table with 30
days of 10-minute data, `dtk load-history`, then `dtk run` detects an
injected spike; the HTTP receiver gets exactly one Mattermost message in the
default format; a run inside the cooldown sends nothing; Alertmanager lists
the alert as active, and after recovery no longer lists it. Also: an
interrupted load-history resumes to the same rows as an uninterrupted one,
and no output ever shows a secret.

ctest-labels: integration
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
DTK = os.path.join(BINARY, "cli", "dtk")
REQUIRED = ("DTK_CLICKHOUSE_URL", "DTK_RECEIVER_URL", "DTK_ALERTMANAGER_URL")
MM_SECRET = "e2e-mattermost-path-secret"
CH_SECRET = os.environ.get("DTK_CLICKHOUSE_PASSWORD", "dtkpass")


def http(method, url, body=None, headers=None, timeout=30):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def ch(sql):
    url = os.environ["DTK_CLICKHOUSE_URL"] + "/"
    status, text = http("POST", url, sql, {
        "X-ClickHouse-User": os.environ.get("DTK_CLICKHOUSE_USER", "dtk"),
        "X-ClickHouse-Key": CH_SECRET})
    return text


def receiver(path, **params):
    q = urllib.parse.urlencode(dict(path=path, **params))
    return json.loads(http("GET", os.environ["DTK_RECEIVER_URL"] + "/_dtk/requests?" + q)[1])[
        "requests"]


def am_active(metric):
    url = os.environ["DTK_ALERTMANAGER_URL"] + "/api/v2/alerts?active=true&silenced=false"
    alerts = json.loads(http("GET", url)[1])
    return [a for a in alerts if a.get("labels", {}).get("metric") == metric]


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [v for v in REQUIRED if not os.environ.get(v)]
        if missing:
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                raise AssertionError("services not configured: " + ", ".join(missing))
            raise unittest.SkipTest("services not configured (%s); start them with "
                                    "scripts/services.sh" % ", ".join(missing))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.db = "dtk_e2e_%d_%d" % (os.getpid(), int(time.time()))
        cls.metric = "orders_e2e_%d" % os.getpid()
        now = int(time.time())
        cls.T = now - now % 600  # the current slot's boundary: runs "at the current time"
        ch("CREATE DATABASE %s" % cls.db)
        ch("CREATE TABLE %s.orders (ts DateTime, amount Float64) ENGINE = MergeTree "
           "ORDER BY ts" % cls.db)
        rows = []
        start = cls.T - 30 * 86400
        for i in range(30 * 144):
            t = start + i * 600
            v = 100 + 10 * ((i * 7919) % 13) / 13.0  # bounded, deterministic wiggle
            if t in (cls.T - 1200, cls.T - 600):
                v = 1000.0  # the injected spike: two slots before T
            rows.append("%d\t%r" % (t + 60, v))
        rows.append("%d\t%r" % (cls.T + 60, 104.0))  # a normal slot after T (recovery)
        ch("INSERT INTO %s.orders FORMAT TabSeparated\n%s\n" % (cls.db, "\n".join(rows)))

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "db"):
            ch("DROP DATABASE IF EXISTS %s" % cls.db)
            cls.tmp.cleanup()

    def config(self, name, extra=""):
        url = urllib.parse.urlparse(os.environ["DTK_CLICKHOUSE_URL"])
        text = """
name: {metric}
tags: [e2e]
collector:
  type: clickhouse
  params:
    host: {host}
    port: {port}
    database: {db}
    user: dtk
    password: "${{E2E_CH_PASSWORD}}"
    query: |
      SELECT toDateTime(intDiv(toUInt32(ts), 600) * 600) AS period_time, sum(amount) AS value
      FROM {db}.orders
      WHERE ts >= toDateTime('{{{{ period_start }}}}') AND ts < toDateTime('{{{{ period_finish }}}}')
      GROUP BY period_time ORDER BY period_time
detector:
  type: mad
  params: {{window_size: "7 days", n_sigma: 4}}
alerters:
  - type: mattermost
    params:
      webhook_url: "${{E2E_MM_URL}}"
      cooldown_minutes: 60
  - type: alertmanager
    params:
      url: "{am}"
      labels: {{severity: critical}}
schedule: {{interval: "10 minutes", timeout: "5 minutes"}}
{extra}
""".format(metric=self.metric, host=url.hostname, port=url.port, db=self.db,
           am=os.environ["DTK_ALERTMANAGER_URL"], extra=extra)
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def env(self):
        e = dict(os.environ)
        e["DTK_STATE_DIR"] = os.path.join(self.tmp.name, "state")
        e["E2E_CH_PASSWORD"] = CH_SECRET
        e["E2E_MM_URL"] = os.environ["DTK_RECEIVER_URL"] + "/hooks/" + MM_SECRET
        return e

    def dtk(self, *args, check=None):
        proc = subprocess.run([DTK, *args], env=self.env(), capture_output=True, text=True,
                              timeout=120)
        out = proc.stdout + proc.stderr
        for secret in (MM_SECRET, CH_SECRET):
            self.assertNotIn(secret, out, "a secret leaked into the output of %s" % (args,))
        if check is not None:
            self.assertEqual(proc.returncode, check, out)
        return proc

    def test_1_load_history_then_spike_alerts_once_and_alertmanager_follows(self):
        cfg = self.config("orders.yaml")
        http("POST", os.environ["DTK_RECEIVER_URL"] + "/_dtk/reset?path=/hooks/" + MM_SECRET)
        self.dtk("load-history", cfg, "--from", iso(self.T - 30 * 86400), "--to",
                 iso(self.T - 1200), check=0)
        # the first spike slot: [T-20m, T-10m), run at T-10m
        first = json.loads(self.dtk("run", cfg, "-t", iso(self.T - 600), "--output", "json",
                                    check=0).stdout)
        self.assertEqual(first["status"], "anomaly", first)
        self.assertTrue(first["alert"]["sent"], first)
        # inside the cooldown: the second spike slot, run at T (the current time)
        second = json.loads(self.dtk("run", cfg, "-t", iso(self.T), "--output", "json",
                                     check=0).stdout)
        self.assertEqual(second["status"], "anomaly")
        by_type = {a["type"]: a for a in second["alerts"]}
        self.assertFalse(by_type["mattermost"]["sent"])
        self.assertEqual(by_type["mattermost"]["suppressed_by"], "cooldown")
        self.assertTrue(by_type["alertmanager"]["sent"], second)
        msgs = receiver("/hooks/" + MM_SECRET)
        self.assertEqual(len(msgs), 1, msgs)
        text = msgs[0]["json"]["text"]
        self.assertRegex(text, r"^\*\*ANOMALY DETECTED: %s\*\*\n\n" % self.metric)
        self.assertIn("Value: 1000.00\n", text)
        self.assertRegex(text, r"\nExpected range: -?\d+\.\d\d - \d+\.\d\d\n")
        self.assertRegex(text, r"\nAnomaly score: (\d+\.\d\d sigma|infinite \(extreme outlier\))\n")
        self.assertIn("\nDirection: up\n", text)
        self.assertIn("\nTime: %s\n" % time.strftime("%Y-%m-%d %H:%M:%S",
                                                     time.gmtime(self.T - 1200)), text)
        self.assertIn("\nDetector: type=mad, window=7 days, threshold=4 sigma", text)
        self.assertEqual(msgs[0]["json"]["username"], "DetectK")
        active = am_active(self.metric)
        self.assertEqual(len(active), 1, active)
        self.assertEqual(active[0]["labels"]["severity"], "critical")
        # recovery: the slot after T is normal
        third = json.loads(self.dtk("run", cfg, "-t", iso(self.T + 600), "--output", "json",
                                    check=0).stdout)
        self.assertEqual(third["status"], "ok", third)
        deadline = time.time() + 10
        while am_active(self.metric) and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(am_active(self.metric), [])
        self.assertEqual(len(receiver("/hooks/" + MM_SECRET)), 1)

    def test_2_interrupted_load_history_resumes_to_identical_rows(self):
        results = {}
        for mode in ("uninterrupted", "interrupted"):
            name = "%s_%s" % (self.metric, mode)
            cfg = self.config(mode + ".yaml")
            with open(cfg) as f:
                text = f.read().replace("name: %s" % self.metric, "name: %s" % name)
            text = text.replace("schedule: {", "schedule: {batch_load_days: 1, ")
            with open(cfg, "w") as f:
                f.write(text)
            args = [DTK, "load-history", cfg, "--from", iso(self.T - 20 * 86400), "--to",
                    iso(self.T - 1200)]
            if mode == "interrupted":
                proc = subprocess.Popen(args, env=self.env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
                # kill it once a few batches are committed
                deadline = time.time() + 30
                while time.time() < deadline and proc.poll() is None:
                    n = ch("SELECT count() FROM %s.dtk_datapoints FINAL WHERE metric_name = '%s'"
                           % (self.db, name)).strip() or "0"
                    if int(n) >= 3 * 144:
                        break
                    time.sleep(0.05)
                killed = proc.poll() is None
                if killed:
                    proc.send_signal(signal.SIGKILL)
                proc.communicate()
                if not killed:
                    self.skipTest("load-history finished before it could be interrupted")
            self.dtk(*args[1:], check=0)
            results[mode] = ch(
                "SELECT toUInt32(collected_at), value, is_missing FROM %s.dtk_datapoints FINAL "
                "WHERE metric_name = '%s' ORDER BY collected_at FORMAT TabSeparated"
                % (self.db, name))
        self.assertGreater(len(results["uninterrupted"].splitlines()), 20 * 144 - 10)
        self.assertEqual(results["interrupted"], results["uninterrupted"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
