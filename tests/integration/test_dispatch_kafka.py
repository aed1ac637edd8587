"""dtk-dispatch with --brokers against the real Kafka broker of
scripts/services.sh (DTK_KAFKA_BROKERS): --create-topics, one signed request
per selected valid config (read back with tests/tools/kafka_tool.c and
validated against schemas/check-request.v1.json), profiles as written and
literal secrets refused, --dry-run publishing nothing, and --wait against a
fake worker (every request answered once, plus a duplicate and a result of
another dispatch that must be ignored; one answer missing -> exit 1 with
`missing: 1` after --timeout).

Every test uses topics of its own (dtk.it.<pid>.<n>.*), so runs never see
each other's messages.

ctest-labels: integration
"""
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import uuid

import jsonschema

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
DISPATCH = os.path.join(BINARY, "dispatcher", "dtk-dispatch")
KAFKA_TOOL = os.path.join(BINARY, "tests", "kafka_tool")
REQUEST_SCHEMA = os.path.join(SOURCE, "schemas", "check-request.v1.json")
T = "2024-11-02T14:37:12Z"
KEY = "it-signing-key-0123456789"
SECRET = "s3cr3t-literal-password"

METRIC = """\
name: {name}
tags: {tags}
collector: {{type: synthetic, params: {{base: 100}}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
schedule: {{interval: "{interval}"{timeout}}}
"""


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


class DispatchKafka(unittest.TestCase):
    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.brokers = os.environ.get("DTK_KAFKA_BROKERS")
        if not cls.brokers:
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                raise AssertionError("DTK_KAFKA_BROKERS is not set")
            raise unittest.SkipTest("Kafka is not running (scripts/services.sh start kafka)")
        with open(REQUEST_SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        cls.validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

    def setUp(self):
        DispatchKafka.counter += 1
        base = "dtk.it.%d.%d" % (os.getpid(), DispatchKafka.counter)
        self.topic, self.results, self.dlq = base + ".requests", base + ".results", base + ".dlq"
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "configs")
        os.makedirs(self.dir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        self.env.update(HOME=self.tmp.name, DTK_STATE_DIR=os.path.join(self.tmp.name, "state"),
                        DTK_KAFKA_BROKERS=self.brokers, DTK_SIGNING_KEY=KEY)

    def tearDown(self):
        self.tmp.cleanup()

    def metric(self, name, tags, interval="10 minutes", timeout=None, extra=""):
        text = METRIC.format(name=name, tags=json.dumps(tags), interval=interval,
                             timeout=', timeout: "%s"' % timeout if timeout else "") + extra
        path = os.path.join(self.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return text

    def dispatch(self, *args, env=None, timeout=120):
        proc = subprocess.run(
            [DISPATCH, "--config-dir", self.dir, "--topic", self.topic, "--results-topic",
             self.results, "--dlq-topic", self.dlq, *args],
            env=env or self.env, capture_output=True, text=True, timeout=timeout)
        self.assertNotIn("AddressSanitizer", proc.stderr)
        self.assertNotIn("runtime error:", proc.stderr)
        return proc

    def consume(self, topic, n, timeout_s):
        proc = subprocess.run([KAFKA_TOOL, "consume", self.brokers, topic, str(n),
                               str(timeout_s)], capture_output=True, text=True,
                              timeout=timeout_s + 60)
        return [json.loads(line) for line in proc.stdout.splitlines()]

    def produce(self, topic, messages):
        data = "".join("%s\t%s\n" % (k, json.dumps(v)) for k, v in messages)
        proc = subprocess.run([KAFKA_TOOL, "produce", self.brokers, topic], input=data,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def check_request(self, msg, texts, dispatch_id=None):
        """Validates one message read back from the request topic."""
        value = msg["value"]
        req = json.loads(value)
        self.validator.validate(req)
        headers = dict(msg["headers"])
        self.assertEqual(msg["key"], req["metric"])
        self.assertEqual(headers["ce_specversion"], "1.0")
        self.assertEqual(headers["ce_type"], "dtk.check.request.v1")
        self.assertEqual(headers["ce_id"], req["request_id"])
        self.assertEqual(headers["ce_time"], req["dispatched_at"])
        self.assertEqual(headers["content-type"], "application/json")
        self.assertTrue(headers["ce_source"])
        sig = hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()
        self.assertEqual(headers["dtk-signature"], "sha256=" + sig)
        self.assertEqual(req["config_yaml"], texts[req["metric"]])
        self.assertEqual(req["config_sha256"],
                         hashlib.sha256(req["config_yaml"].encode()).hexdigest())
        if dispatch_id:
            self.assertEqual(req["dispatch_id"], dispatch_id)
        self.assertEqual(req["attempt"], 0)
        self.assertEqual(req["options"]["store"], True)
        self.assertEqual(req["options"]["alerts"], True)
        self.assertEqual(req["options"]["reply_to"], self.results)
        return req

    def test_publishes_one_signed_valid_request_per_selected_config(self):
        texts = {}
        for i in range(5):
            texts["m%d" % i] = self.metric("m%d" % i, ["t"])
        texts["slow"] = self.metric("slow", ["t", "x"], interval="1 hour", timeout="2 minutes")
        self.metric("other1", ["other"])
        self.metric("other2", [])
        p = self.dispatch("--tags", "t", "--create-topics", "--partitions", "4",
                          "--execution-time", T, "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["summary"]["selected"], 6)
        self.assertEqual(doc["summary"]["published"], 6)
        self.assertEqual(doc["summary"]["undelivered"], 0)
        self.assertEqual(sorted(r["metric"] for r in doc["requests"]), sorted(texts))
        # one more than expected: proves nothing else was published
        msgs = self.consume(self.topic, 7, 5)
        self.assertEqual(len(msgs), 6, msgs)
        self.assertEqual(sorted(m["key"] for m in msgs), sorted(texts))
        ids = set()
        for m in msgs:
            req = self.check_request(m, texts, doc["dispatch_id"])
            ids.add(req["request_id"])
            timeout = 120 if req["metric"] == "slow" else 600
            self.assertEqual(parse_time(req["deadline"]) - parse_time(req["dispatched_at"]),
                             datetime.timedelta(seconds=timeout))
            self.assertEqual(req["execution_time"], "2024-11-02T14:00:00Z"
                             if req["metric"] == "slow" else "2024-11-02T14:30:00Z")
            self.assertEqual(req["profiles"], {})
            self.assertEqual(req["tags"], ["t", "x"] if req["metric"] == "slow" else ["t"])
        self.assertEqual(len(ids), 6)
        self.assertEqual({r["request_id"] for r in doc["requests"]}, ids)
        # one metric, one partition
        parts = {}
        for m in msgs:
            parts.setdefault(m["key"], set()).add(m["partition"])
        self.assertTrue(all(len(v) == 1 for v in parts.values()))
        for topic, size in ((self.topic, "16777216"), (self.dlq, "16777216")):
            out = subprocess.run([KAFKA_TOOL, "topic-config", self.brokers, topic,
                                  "max.message.bytes"], capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(out.stdout.split(), ["4", size], out.stderr)
        # again: topics that exist are fine; --no-align keeps the time as given
        p = self.dispatch("--metric", "m1", "--create-topics", "--no-align", "--no-store",
                          "--execution-time", T)
        self.assertEqual(p.returncode, 0, p.stderr)
        msgs = self.consume(self.topic, 8, 5)
        self.assertEqual(len(msgs), 7)
        last = [json.loads(m["value"]) for m in msgs if m["key"] == "m1"]
        last = [r for r in last if r["dispatch_id"] != doc["dispatch_id"]]
        self.assertEqual(len(last), 1)
        self.assertEqual(last[0]["execution_time"], T)
        self.assertEqual(last[0]["options"]["store"], False)

    def test_profiles_travel_as_written_and_literal_secrets_are_refused(self):
        with open(os.path.join(self.tmp.name, "profiles.yaml"), "w") as f:
            f.write(textwrap.dedent("""\
                profiles:
                  ch: {type: clickhouse, host: ch1, user: dtk, password: "${CH_PASSWORD}",
                       limit_key: "clickhouse://ch1:8123"}
                  hook: {webhook_url: "http://hooks/x", token: "%s"}
                """ % SECRET))
        texts = {"good": self.metric("good", ["p"], extra="storage: {profile: ch}\n")}
        self.metric("leaky", ["p"], extra=textwrap.dedent("""\
            alerters:
              - {type: webhook, profile: hook}
            """))
        env = dict(self.env, CH_PASSWORD="never-sent-password",
                   DETECTK_PROFILES_PATH=os.path.join(self.tmp.name, "profiles.yaml"))
        p = self.dispatch("--tags", "p", "--create-topics", "--output", "json", env=env)
        self.assertEqual(p.returncode, 2, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["summary"]["invalid_configs"], 1)
        self.assertEqual(doc["summary"]["published"], 1)
        self.assertIn("token", doc["invalid"][0]["error"])
        self.assertIn("leaky.yaml", doc["invalid"][0]["path"])
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        msgs = self.consume(self.topic, 2, 5)
        self.assertEqual([m["key"] for m in msgs], ["good"])
        req = self.check_request(msgs[0], texts)
        self.assertEqual(req["profiles"], {"ch": {
            "type": "clickhouse", "host": "ch1", "user": "dtk", "password": "${CH_PASSWORD}",
            "limit_key": "clickhouse://ch1:8123"}})
        self.assertNotIn("never-sent-password", msgs[0]["value"])

    def test_dry_run_lists_the_selection_and_publishes_nothing(self):
        self.metric("a", ["t"])
        self.metric("b", ["u"])
        p = self.dispatch("--tags", "t", "--dry-run", "--wait")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("(a)", p.stdout)
        self.assertNotIn("(b)", p.stdout)
        p = self.dispatch("--metric", "b", "--create-topics")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([m["key"] for m in self.consume(self.topic, 2, 5)], ["b"])

    def setup_topics(self, metric, *args):
        """Creates the topics with a first dispatch of one config; returns its id."""
        p = self.dispatch("--metric", metric, "--create-topics", "--output", "json", *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["dispatch_id"]

    def requests_of(self, n, setup_id):
        """The n requests of the waiting dispatch (the topic also holds the
        setup dispatch's one), in topic order per partition."""
        msgs = self.consume(self.topic, n + 1, 60)
        reqs = [json.loads(m["value"]) for m in msgs]
        reqs = [r for r in reqs if r["dispatch_id"] != setup_id]
        self.assertEqual(len(reqs), n, msgs)
        return sorted(reqs, key=lambda r: r["metric"])

    def fake_worker(self, reqs, skip=0):
        """Answers reqs[skip:] once each, plus a duplicate, a result of
        another dispatch and a message that is not a result."""
        out = [(r["metric"], self.result(r, "anomaly" if i == 0 else "ok"))
               for i, r in enumerate(reqs[skip:])]
        first = reqs[skip]
        out.append((first["metric"], self.result(first, "error")))  # a duplicate
        stranger = dict(reqs[-1], dispatch_id=str(uuid.uuid4()))
        out.append((stranger["metric"], self.result(stranger, "error")))
        out.append(("junk", "not a result"))
        self.produce(self.results, out)

    @staticmethod
    def result(req, status):
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        return {
            "schema": "dtk.check.result/v1", "request_id": req["request_id"],
            "dispatch_id": req["dispatch_id"], "metric": req["metric"], "status": status,
            "execution_time": req["execution_time"], "requested_time": req["execution_time"],
            "started_at": now, "finished_at": now,
            "datapoint": {"timestamp": req["execution_time"], "value": 100.0,
                          "is_missing": False, "context": {}},
            "detections": [], "alert": {"sent": False, "reason": None, "suppressed_by": None},
            "alerts": [],
            "errors": [{"stage": "collect", "message": "fake failure"}]
            if status == "error" else [],
            "warnings": [], "tags": req["tags"], "metadata": {},
            "worker": {"id": "fake", "host": "test", "version": "0"},
            "timings_ms": {"queued": 1, "limiter_wait": 0, "collect": 1, "store": 0,
                           "detect": 0, "alert": 0, "total": 2},
        }

    def start_wait(self, *args):
        proc = subprocess.Popen(
            [DISPATCH, "--config-dir", self.dir, "--topic", self.topic, "--results-topic",
             self.results, "--dlq-topic", self.dlq, "--wait", "--output", "json", *args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc

    def test_wait_reports_every_result_once(self):
        for i in range(4):
            self.metric("w%d" % i, ["w"])
        self.metric("unselected", ["nope"])
        # the topics exist before the dispatcher records the result offsets
        setup_id = self.setup_topics("unselected", "--partitions", "3")
        started = time.monotonic()
        proc = self.start_wait("--tags", "w", "--timeout", "60")
        reqs = self.requests_of(4, setup_id)
        self.fake_worker(reqs)
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        self.assertLess(time.monotonic() - started, 50)
        doc = json.loads(out)
        s = doc["summary"]
        self.assertEqual((s["selected"], s["published"], s["results"], s["missing"]),
                         (4, 4, 4, 0), s)
        self.assertEqual((s["ok"], s["anomaly"], s["error"]), (3, 1, 0), s)
        self.assertEqual(sorted(r["metric"] for r in doc["results"]),
                         ["w0", "w1", "w2", "w3"])
        self.assertEqual({r["request_id"] for r in doc["results"]},
                         {r["request_id"] for r in reqs})
        self.assertTrue(all(r["dispatch_id"] == doc["dispatch_id"] for r in doc["results"]))
        self.assertEqual([r["status"] for r in doc["results"] if r["metric"] == "w0"],
                         ["anomaly"])  # the first result, not the duplicate

    def test_wait_with_a_missing_result_exits_1_after_the_timeout(self):
        for i in range(3):
            self.metric("v%d" % i, ["v"])
        setup_id = self.setup_topics("v0")
        started = time.monotonic()
        proc = self.start_wait("--tags", "v", "--timeout", "8")
        reqs = self.requests_of(3, setup_id)
        self.fake_worker(reqs, skip=1)
        out, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - started
        self.assertEqual(proc.returncode, 1, err)
        self.assertGreaterEqual(elapsed, 8)
        doc = json.loads(out)
        self.assertEqual(doc["summary"]["missing"], 1, doc["summary"])
        self.assertEqual(doc["summary"]["results"], 2)
        self.assertIn("v0: no result within 8s", err)

    def test_text_report_and_fail_on_anomaly(self):
        self.metric("x0", ["x"])
        setup_id = self.setup_topics("x0")
        proc = subprocess.Popen(
            [DISPATCH, "--config-dir", self.dir, "--topic", self.topic, "--results-topic",
             self.results, "--wait", "--timeout", "60", "--tags", "x", "--fail-on-anomaly"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        req = self.requests_of(1, setup_id)[0]
        self.produce(self.results, [(req["metric"], self.result(req, "anomaly"))])
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 3, err)
        self.assertIn("x0: anomaly", out)
        self.assertIn("anomaly 1", out)
        self.assertNotIn("\r", err)  # no progress line when not on a terminal

    def test_missing_topic_and_unreachable_brokers_fail_before_publishing(self):
        self.metric("a", ["t"])
        p = self.dispatch("--tags", "t")
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not exist (create it with --create-topics)", p.stderr)
        env = dict(self.env, DTK_KAFKA_BROKERS="127.0.0.1:1")
        started = time.monotonic()
        p = self.dispatch("--tags", "t", "--kafka-prop", "reconnect.backoff.max.ms=500",
                          env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing was published", p.stderr)
        self.assertLess(time.monotonic() - started, 30)

    def test_kafka_properties_from_flags_and_environment(self):
        self.metric("a", ["t"])
        p = self.dispatch("--tags", "t", "--kafka-prop", "enable.idempotence=false")
        self.assertEqual(p.returncode, 2)
        self.assertIn("enable.idempotence", p.stderr)
        p = self.dispatch("--tags", "t", "--kafka-prop", "no.such.property=1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no.such.property", p.stderr)
        env = dict(self.env, DTK_KAFKA_PROP_NO_SUCH_THING="1")
        p = self.dispatch("--tags", "t", env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("DTK_KAFKA_PROP_NO_SUCH_THING", p.stderr)
        env = dict(self.env, DTK_KAFKA_PROP_CLIENT_ID="it-client")
        p = self.dispatch("--tags", "t", "--create-topics", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # list options split at commas; a property value keeps its commas
        p = self.dispatch("--tags", "t", "--kafka-prop", "client.rack=rack-a,rack-b",
                          "--kafka-prop", "linger.ms=5")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_settings_file_props_lose_to_the_environment_and_flags(self):
        # a 3 KB request: message.max.bytes=1000 makes its delivery fail (exit
        # 1), 1000000 lets it through, so the exit code shows which value won
        self.metric("a", ["t"], extra='description: "%s"\n' % ("x" * 3000))
        settings = os.path.join(self.tmp.name, "dispatch.yaml")
        with open(settings, "w") as f:
            f.write("kafka_prop: [message.max.bytes=1000000]\n")
        p = self.dispatch("--config", settings, "--tags", "t", "--create-topics")
        self.assertEqual(p.returncode, 0, p.stderr)
        small = dict(self.env, DTK_KAFKA_PROP_MESSAGE_MAX_BYTES="1000")
        p = self.dispatch("--config", settings, "--tags", "t", env=small)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("undelivered 1", p.stdout + p.stderr)
        p = self.dispatch("--config", settings, "--tags", "t", "--kafka-prop",
                          "message.max.bytes=1000000", env=small)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    # everything skipped (a skip in setUpClass runs no test): ctest's "Not Run"
    if r.wasSuccessful() and r.skipped and r.testsRun <= len(r.skipped):
        sys.exit(77)
    sys.exit(0 if r.wasSuccessful() else 1)
