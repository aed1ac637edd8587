"""Bad input against the real services, as a user meets it through `dtk run`:
source unreachable, wrong password, a query syntax error reported by the
server, HTTP 500 then 200 (the retry succeeds), HTTP 500 forever, a
non-numeric value, a JSON path that does not exist, a webhook that times out,
an Alertmanager that is down. Each gives a clear error in the result and on
stderr and exit code 1 (or 0 where the retry succeeds); what was collected
is still stored; no known secret value appears in any output.

ctest-labels: integration
"""
import json
import os
import sqlite3
import subprocess
import tempfile
import textwrap
import unittest
import urllib.parse
import urllib.request

from http_helpers import closed_port

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
DTK = os.path.join(BINARY, "cli", "dtk")
REQUIRED = ("DTK_CLICKHOUSE_URL", "DTK_RECEIVER_URL", "DTK_ALERTMANAGER_URL")
T = "2024-11-02T14:30:00Z"

SECRETS = {
    "BAD_CH_PASSWORD": "wrong-ch-password-4711",
    "BAD_HOOK_PATH": "hook-path-secret-0815",
    "BAD_HMAC": "hmac-secret-value-2342",
    "BAD_API_TOKEN": "api-token-secret-9001",
}


def receiver_post(path, doc):
    req = urllib.request.Request(os.environ["DTK_RECEIVER_URL"] + path,
                                 data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def receiver_requests(path):
    q = urllib.parse.urlencode({"path": path})
    with urllib.request.urlopen(os.environ["DTK_RECEIVER_URL"] + "/_dtk/requests?" + q,
                                timeout=10) as resp:
        return json.loads(resp.read())["requests"]


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [v for v in REQUIRED if not os.environ.get(v)]
        if missing:
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                raise AssertionError("services not configured: " + ", ".join(missing))
            raise unittest.SkipTest("services not configured (%s)" % ", ".join(missing))
        ch = urllib.parse.urlparse(os.environ["DTK_CLICKHOUSE_URL"])
        cls.ch_host, cls.ch_port = ch.hostname, ch.port
        cls.prefix = "/bad%d" % os.getpid()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.env = dict(os.environ)
        self.env.update(SECRETS)
        self.env["DTK_STATE_DIR"] = self.tmp.name
        self.env["HOOK_URL"] = "%s%s/hooks/%s" % (os.environ["DTK_RECEIVER_URL"], self.prefix,
                                                 SECRETS["BAD_HOOK_PATH"])

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def run_dtk(self, cfg, want_rc):
        proc = subprocess.run([DTK, "run", cfg, "-t", T, "--output", "json"], env=self.env,
                              capture_output=True, text=True, timeout=120)
        for name, secret in SECRETS.items():
            self.assertNotIn(secret, proc.stdout, "%s leaked to stdout" % name)
            self.assertNotIn(secret, proc.stderr, "%s leaked to stderr" % name)
        self.assertEqual(proc.returncode, want_rc, proc.stdout + proc.stderr)
        self.assertNotIn("AddressSanitizer", proc.stderr)
        return json.loads(proc.stdout), proc.stderr

    def ch_config(self, port=None, password="dtkpass", query=None):
        query = query or ("SELECT toDateTime('{{ period_start }}') AS period_time, 1 AS value "
                          "WHERE toDateTime('{{ period_finish }}') > now() - 10")
        return self.write("ch.yaml", """
            name: ch_bad
            collector:
              type: clickhouse
              params:
                host: %s
                port: %d
                user: dtk
                password: "%s"
                timeout: 5
                query: "%s"
            detector: {type: threshold, params: {threshold: 100}}
            storage: {enabled: false}
            """ % (self.ch_host, port or self.ch_port, password, query))

    def assert_collect_error(self, result, stderr, *needles):
        self.assertEqual(result["status"], "error")
        self.assertEqual(result["errors"][0]["stage"], "collect", result)
        msg = result["errors"][0]["message"]
        for n in needles:
            self.assertIn(n.lower(), msg.lower(), msg)
        self.assertIn("ch_bad: collect error:" if "ch_bad" == result["metric"] else
                      "collect error:", stderr)

    def test_source_unreachable(self):
        result, err = self.run_dtk(self.ch_config(port=closed_port()), 1)
        self.assert_collect_error(result, err, "connect")

    def test_wrong_password_is_reported_without_the_password(self):
        result, err = self.run_dtk(self.ch_config(password="${BAD_CH_PASSWORD}"), 1)
        self.assert_collect_error(result, err, "password")

    def test_query_syntax_error_reported_by_the_server(self):
        cfg = self.ch_config(query="SELEC toDateTime('{{ period_start }}') AS period_time, "
                                   "1 AS value, '{{ period_finish }}' AS f")
        result, err = self.run_dtk(cfg, 1)
        self.assert_collect_error(result, err, "Syntax error")

    def http_config(self, name, path, value_path="value", retries=3):
        return self.write(name + ".yaml", """
            name: %s
            collector:
              type: http
              params:
                url: "%s%s/data?from={{ period_start }}&to={{ period_finish }}"
                headers: {Authorization: "Bearer ${BAD_API_TOKEN}"}
                value_path: "%s"
                retry_count: %d
                retry_delay: 0.1
                timeout: 5
            detector: {type: threshold, params: {threshold: 1000}}
            storage: {type: sqlite, params: {path: "%s/%s.db"}}
            """ % (name, os.environ["DTK_RECEIVER_URL"], path, value_path, retries,
                   self.tmp.name, name))

    def stored_rows(self, name):
        db = os.path.join(self.tmp.name, name + ".db")
        if not os.path.exists(db):
            return []
        with sqlite3.connect(db) as c:
            return c.execute("SELECT value, is_missing FROM dtk_datapoints").fetchall()

    def script(self, path, responses):
        receiver_post("/_dtk/script", {"path": path, "responses": responses})

    def test_http_500_then_200_retries_and_succeeds(self):
        path = self.prefix + "/retry"
        self.script(path, [{"status": 500, "body": "boom"}, {"status": 200, "json": {"value": 7}}])
        result, _ = self.run_dtk(self.http_config("retry_ok", path), 0)
        self.assertEqual(result["status"], "ok", result)
        self.assertEqual(result["datapoint"]["value"], 7)
        self.assertEqual(self.stored_rows("retry_ok"), [(7.0, 0)])

    def test_http_500_forever_fails_after_the_attempts(self):
        path = self.prefix + "/down"
        self.script(path, [{"status": 500, "body": "still broken"}])
        result, err = self.run_dtk(self.http_config("always_500", path, retries=3), 1)
        self.assertEqual(result["errors"][0]["stage"], "collect")
        self.assertIn("500", result["errors"][0]["message"])
        self.assertIn("collect error:", err)
        self.assertEqual(len(receiver_requests(path)), 3)
        self.assertEqual(self.stored_rows("always_500"), [])

    def test_non_numeric_value_names_the_path_and_value(self):
        path = self.prefix + "/text"
        self.script(path, [{"status": 200, "json": {"value": "lots"}}])
        result, _ = self.run_dtk(self.http_config("non_numeric", path), 1)
        msg = result["errors"][0]["message"]
        self.assertIn("value", msg)
        self.assertIn("lots", msg)

    def test_json_path_that_does_not_exist_is_named(self):
        path = self.prefix + "/shape"
        self.script(path, [{"status": 200, "json": {"data": {"count": 3}}}])
        result, _ = self.run_dtk(self.http_config("no_path", path, value_path="data.total"), 1)
        self.assertIn("data.total", result["errors"][0]["message"])

    def alert_config(self, name, alerters):
        return self.write(name + ".yaml", """
            name: %s
            collector: {type: synthetic, params: {base: 500}}
            detector: {type: threshold, params: {threshold: 100}}
            alerters:
            %s
            storage: {type: sqlite, params: {path: "%s/%s.db"}}
            schedule: {interval: "10 minutes", timeout: "2 minutes"}
            """ % (name, textwrap.indent(textwrap.dedent(alerters), "            ").strip(),
                   self.tmp.name, name))

    def test_webhook_that_times_out_is_an_alert_error_and_the_point_is_kept(self):
        path = self.prefix + "/slow"
        self.script(path, [{"status": 200, "delay": 3}])
        cfg = self.alert_config("slow_hook", """
            - type: webhook
              params:
                url: "%s%s/${BAD_HOOK_PATH}"
                hmac_secret: "${BAD_HMAC}"
                timeout: 1
            """ % (os.environ["DTK_RECEIVER_URL"], path))
        result, err = self.run_dtk(cfg, 1)
        self.assertEqual(result["status"], "error")
        hook = result["alerts"][0]
        self.assertFalse(hook["sent"])
        self.assertIn("tim", hook["error"].lower())
        self.assertEqual([e["stage"] for e in result["errors"]], ["alert"])
        self.assertIn("alert error:", err)
        self.assertEqual(self.stored_rows("slow_hook"), [(500.0, 0)])

    def test_alertmanager_down_does_not_stop_mattermost(self):
        cfg = self.alert_config("am_down", """
            - type: alertmanager
              params: {url: "http://127.0.0.1:%d", timeout: 2}
            - type: mattermost
              params: {webhook_url: "${HOOK_URL}"}
            """ % closed_port())
        result, err = self.run_dtk(cfg, 1)
        by_type = {a["type"]: a for a in result["alerts"]}
        self.assertFalse(by_type["alertmanager"]["sent"])
        self.assertIn("connect", by_type["alertmanager"]["error"].lower())
        self.assertTrue(by_type["mattermost"]["sent"], result)
        got = receiver_requests(self.prefix + "/hooks/")
        self.assertEqual(len(got), 1)
        self.assertIn("ANOMALY DETECTED: am_down", got[0]["json"]["text"])
        self.assertEqual(self.stored_rows("am_down"), [(500.0, 0)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
