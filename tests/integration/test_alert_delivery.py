"""Alert delivery against the HTTP receiver: at most `rate_per_second`
messages a second per webhook URL (the limit is shared through the alert
state, so parallel checks and separate processes respect it), every channel
of an `alerters:` list gets its message, a 429 with Retry-After is retried.

ctest-labels: integration
"""
import json
import os
import subprocess
import tempfile
import textwrap
import unittest
import urllib.parse
import urllib.request

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
DTK = os.path.join(BINARY, "cli", "dtk")
T = "2024-11-02T14:30:00Z"


def receiver(method, path, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(os.environ["DTK_RECEIVER_URL"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


class Delivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.environ.get("DTK_RECEIVER_URL"):
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                raise AssertionError("DTK_RECEIVER_URL is not set")
            raise unittest.SkipTest("the receiver is not running (scripts/services.sh)")
        cls.prefix = "/delivery%d" % os.getpid()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.env = dict(os.environ, DTK_STATE_DIR=self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def config(self, name, alerters):
        path = os.path.join(self.tmp.name, "configs", name + ".yaml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent("""
                name: %s
                tags: [delivery]
                collector: {type: synthetic, params: {base: 500}}
                detector: {type: threshold, params: {threshold: 100}}
                alerters:
                """) % name + textwrap.indent(textwrap.dedent(alerters), "  "))
        return path

    def hook(self, name):
        return "%s%s/%s" % (os.environ["DTK_RECEIVER_URL"], self.prefix, name)

    def arrivals(self, path, n):
        q = urllib.parse.urlencode({"path": self.prefix + path, "min": n, "timeout": 20})
        return receiver("GET", "/_dtk/requests?" + q)["requests"]

    def test_one_message_per_second_per_url_across_parallel_checks(self):
        for i in range(3):
            self.config("rate_%d" % i, """
                - type: mattermost
                  params: {webhook_url: "%s"}
                """ % self.hook("shared"))
        proc = subprocess.run([DTK, "run-tagged", os.path.join(self.tmp.name, "configs"),
                               "--tags", "delivery", "--parallel", "3"], env=self.env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        got = self.arrivals("/shared", 3)
        self.assertEqual(len(got), 3)
        times = sorted(r["time"] for r in got)
        # three messages to one URL at 1/s take three one-second slots, so the
        # first and the third take theirs more than 1 s apart; they arrive
        # after a send time that varies by milliseconds (the first one may
        # load libcurl), so the arrivals are held to 0.9 s: without the
        # limit all three come within milliseconds
        self.assertGreaterEqual(times[2] - times[0], 0.9, times)

    def test_every_alerter_of_the_list_gets_its_message(self):
        cfg = self.config("fanout", """
            - type: mattermost
              params: {webhook_url: "%s"}
            - type: slack
              params: {webhook_url: "%s"}
            - type: webhook
              params: {url: "%s"}
            """ % (self.hook("mm"), self.hook("slack"), self.hook("webhook")))
        proc = subprocess.run([DTK, "run", cfg, "-t", T, "--output", "json"], env=self.env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        result = json.loads(proc.stdout)
        self.assertEqual([a["sent"] for a in result["alerts"]], [True, True, True])
        self.assertIn("**ANOMALY DETECTED: fanout**", self.arrivals("/mm", 1)[0]["json"]["text"])
        self.assertIn("*ANOMALY DETECTED: fanout*", self.arrivals("/slack", 1)[0]["json"]["text"])
        body = self.arrivals("/webhook", 1)[0]["json"]
        self.assertEqual(body["metric"], "fanout")
        self.assertEqual(body["status"], "anomaly")
        self.assertIn("ANOMALY DETECTED", body["message"])

    def test_429_with_retry_after_is_retried_and_delivered(self):
        receiver("POST", "/_dtk/script", {"path": self.prefix + "/busy", "responses": [
            {"status": 429, "headers": {"Retry-After": "1"}}, {"status": 200}]})
        cfg = self.config("busy", """
            - type: mattermost
              params: {webhook_url: "%s"}
            """ % self.hook("busy"))
        proc = subprocess.run([DTK, "run", cfg, "-t", T, "--output", "json"], env=self.env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(json.loads(proc.stdout)["alerts"][0]["sent"])
        got = self.arrivals("/busy", 2)
        self.assertEqual([r["response"]["status"] for r in got], [429, 200])
        self.assertGreaterEqual(got[1]["time"] - got[0]["time"], 0.9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
