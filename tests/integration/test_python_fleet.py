"""detectk.fleet (integrations/python over libdtk-fleet's core/fleet/capi.h)
against the real Kafka broker of scripts/services.sh and real dtk-worker
processes: dispatch() publishes the same request messages as
`dtk-dispatch --brokers` for the same configs (every field but the ids and
times, the headers, a verifiable signature, config_sha256, the invalid
configs reported and the others still published); select() equals
--dry-run; wait_results() returns each request's result once, ignoring
another dispatch's results and a duplicate, and iter_results() yields the
same, each as it arrives (a fast check's result before a slow one ends); a
timeout raises ResultsTimeout naming the missing requests; no
reachable broker, a missing topic and a missing config directory raise the
engine's message in bounded time.

The package is imported from integrations/python/src with DTK_LIBRARY
pointing at this build's libdtk.so (libdtk-fleet.so is found in its fleet/
subdirectory). Under an ASan build the test re-runs itself with the
sanitizer runtimes in LD_PRELOAD, as tests/py/test_python_api.py does.
Without DTK_KAFKA_BROKERS it skips (exit 77) unless DTK_REQUIRE_SERVICES=1.
"""
import faulthandler
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import unittest.mock

from http_helpers import closed_port, http_check, serve_json
from kafka_helpers import BINARY, BROKERS, SOURCE, WORKER, KafkaHelpers

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import sanitizers  # noqa: E402  (tests/py/sanitizers.py)

DISPATCH = os.path.join(BINARY, "dispatcher", "dtk-dispatch")
LIBDTK = os.path.join(BINARY, "core", "libdtk.so")
KEY = "py-fleet-signing-key"
T = "2024-11-02T14:37:12Z"
T_ALIGNED = "2024-11-02T14:30:00Z"

faulthandler.dump_traceback_later(800, exit=True)


if not os.environ.get("DTK_PY_ASAN_REEXEC"):
    env = dict(os.environ, DTK_PY_ASAN_REEXEC="1")
    if sanitizers.preload_env(LIBDTK, env):
        print("libdtk is an ASan build: re-running with LD_PRELOAD=%s" % env["LD_PRELOAD"],
              flush=True)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

os.environ["DTK_LIBRARY"] = LIBDTK
os.environ.pop("DTK_FLEET_LIBRARY", None)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(SOURCE, "integrations", "python", "src"))

import detectk  # noqa: E402
from detectk.fleet import dispatch, iter_results, select, wait_results  # noqa: E402

METRIC = """\
name: {name}
tags: {tags}
collector: {{type: synthetic, params: {{base: {base}}}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{type: sqlite, params: {{path: "{db}"}}}}
schedule: {{interval: "{interval}", timeout: "{timeout}"}}
"""


SLOW_SECONDS = 6


class PythonFleet(KafkaHelpers, unittest.TestCase):
    KEY = KEY
    counter = 0

    def setUp(self):
        PythonFleet.counter += 1
        self.tmp = tempfile.TemporaryDirectory()
        self.procs = []
        base = "dtk-pyfleet-%d-%d" % (os.getpid(), PythonFleet.counter)
        self.topic, self.results, self.dlq = base + ".req", base + ".res", base + ".dlq"
        self.dir = os.path.join(self.tmp.name, "configs")
        os.makedirs(self.dir)
        self.db = os.path.join(self.tmp.name, "store.db")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("DTK_") or k == "DTK_PY_ASAN_REEXEC"}
        self.env.update(HOME=self.tmp.name, DTK_STATE_DIR=os.path.join(self.tmp.name, "state"),
                        DTK_SIGNING_KEY=KEY, DTK_SIGNING_KEYS=KEY)
        os.environ["DTK_STATE_DIR"] = self.env["DTK_STATE_DIR"]

    def metric(self, name, tags, base=100, interval="10 minutes", timeout="10 minutes",
               sub=""):
        text = METRIC.format(name=name, tags=json.dumps(tags), base=base, db=self.db,
                             interval=interval, timeout=timeout)
        d = os.path.join(self.dir, sub)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".yaml"), "w") as f:
            f.write(text)
        return text

    def kwargs(self, **extra):
        kw = dict(brokers=BROKERS, topic=self.topic, results_topic=self.results,
                  dlq_topic=self.dlq, signing_key=KEY)
        kw.update(extra)
        return kw

    def start_worker(self, name):
        log = open(os.path.join(self.tmp.name, name + ".log"), "w")
        p = subprocess.Popen([WORKER, "--brokers", BROKERS, "--group", self.topic + ".group",
                              "--topic", self.topic, "--results-topic", self.results,
                              "--dlq-topic", self.dlq, "--kafka-prop", "session.timeout.ms=6000",
                              "--startup-timeout", "20", "--concurrency", "2"],
                             env=self.env, stdout=log, stderr=log)
        log.close()
        self.procs.append((p, log.name))
        return p

    def logs(self):
        return self.procs_output()[-4000:]

    def assert_signed(self, msg):
        want = "sha256=" + hmac.new(KEY.encode(), msg["value"].encode(),
                                    hashlib.sha256).hexdigest()
        self.assertEqual(msg["headers"]["dtk-signature"], want)

    # ---- tests ----

    def test_requests_equal_what_dtk_dispatch_publishes(self):
        texts = {}
        for i in range(4):
            texts["m%d" % i] = self.metric("m%d" % i, ["py", "t%d" % i], sub="sub" if i else "")
        texts["hourly"] = self.metric("hourly", ["py"], interval="1 hour", timeout="2 minutes")
        self.metric("other", ["elsewhere"])
        with open(os.path.join(self.dir, "broken.yaml"), "w") as f:
            f.write("name: broken\ntags: [py]\ncollector: {type: synthetic}\n"
                    "schedule: {interval: \"often\"}\n")
        # dtk-dispatch first, into a topic of its own (same results topic: reply_to)
        cli_topic = self.topic + ".cli"
        self.feed("create", "3", self.topic, cli_topic, self.results, self.dlq)
        p = subprocess.run([DISPATCH, "--brokers", BROKERS, "--config-dir", self.dir, "--tags",
                            "py", "--execution-time", T, "--topic", cli_topic,
                            "--results-topic", self.results, "--dlq-topic", self.dlq,
                            "--output", "json"],
                           env=self.env, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 2, p.stderr)  # a config error; the others published
        cli_report = json.loads(p.stdout)

        # select() is dtk-dispatch --dry-run's selection
        p = subprocess.run([DISPATCH, "--config-dir", self.dir, "--tags", "py", "--dry-run"],
                           env=self.env, capture_output=True, text=True, timeout=60)
        dry = re.findall(r"^selected (\S+) \((\w+)\)$", p.stdout, re.M)
        sel = select(self.dir, ["py"])
        self.assertEqual([(s["path"], s["metric"]) for s in sel["selected"]], dry)
        self.assertEqual(len(dry), 5)
        self.assertEqual(sel["invalid"], cli_report["invalid"])
        hourly = next(s for s in sel["selected"] if s["metric"] == "hourly")
        self.assertEqual((hourly["interval"], hourly["interval_seconds"], hourly["timeout"],
                          hourly["tags"]), ("1 hour", 3600, 120, ["py"]))

        with dispatch(self.dir, ["py"], execution_time=T, **self.kwargs()) as d:
            self.assertEqual(d.published, 5)
            self.assertEqual(sorted(r["metric"] for r in d.requests), sorted(texts))
            self.assertEqual(d.undelivered, [])
            self.assertTrue(d.signed)
            # the invalid config is reported exactly as dtk-dispatch reports it
            self.assertEqual(d.invalid, cli_report["invalid"])
            self.assertEqual(len(d.invalid), 1)
            self.assertIn("broken.yaml", d.invalid[0]["path"])
            by_metric = {r["metric"]: r for r in d.requests}

        ours = self.read(self.topic, 5, timeout=60)
        theirs = self.read(cli_topic, 5, timeout=60)
        self.assertEqual(len(ours), 5)
        self.assertEqual(len(theirs), 5)
        cli_msgs = {m["key"]: m for m in theirs}
        for m in ours:
            req, cli = json.loads(m["value"]), json.loads(cli_msgs[m["key"]]["value"])
            self.assertEqual(m["key"], req["metric"])
            self.assert_signed(m)
            self.assert_signed(cli_msgs[m["key"]])
            self.assertEqual(req["config_yaml"], texts[req["metric"]])
            self.assertEqual(req["config_sha256"],
                             hashlib.sha256(req["config_yaml"].encode()).hexdigest())
            self.assertEqual(req["dispatch_id"], d.dispatch_id)
            self.assertEqual(req["request_id"], by_metric[req["metric"]]["request_id"])
            self.assertEqual((m["partition"], m["offset"]),
                             (by_metric[req["metric"]]["partition"],
                              by_metric[req["metric"]]["offset"]))
            self.assertEqual(req["execution_time"], by_metric[req["metric"]]["execution_time"])
            # aligned per config: 10 minutes, or the hour for "hourly"
            self.assertEqual(req["execution_time"],
                             "2024-11-02T14:00:00Z" if req["metric"] == "hourly" else T_ALIGNED)
            # every field the same but the ids and the times of publishing
            varying = ("request_id", "dispatch_id", "dispatched_at", "deadline")
            self.assertEqual({k: v for k, v in req.items() if k not in varying},
                             {k: v for k, v in cli.items() if k not in varying})
            self.assertEqual(list(req), list(cli))  # same field order
            span = lambda r: (detectk.check._parse_time(r["deadline"]) -  # noqa: E731
                              detectk.check._parse_time(r["dispatched_at"]))
            self.assertEqual(span(req), span(cli))
            h, ch = m["headers"], cli_msgs[m["key"]]["headers"]
            self.assertEqual(h["ce_id"], req["request_id"])
            self.assertEqual(h["ce_time"], req["dispatched_at"])
            self.assertEqual(sorted(h), sorted(ch))
            for k in h:
                if k not in ("ce_id", "ce_time", "dtk-signature"):
                    self.assertEqual(h[k], ch[k], k)

    def test_workers_answer_each_request_once_and_other_dispatches_are_ignored(self):
        self.feed("create", "4", self.topic, self.results, self.dlq)
        expect = {}
        for i in range(8):
            name = "w%d" % i
            self.metric(name, ["fleet"], base=5000 if i == 3 else 100)
            expect[name] = "anomaly" if i == 3 else "ok"
        self.metric("noise", ["noise"])
        self.start_worker("w1")
        self.start_worker("w2")
        d = dispatch(self.dir, "fleet", execution_time=T, **self.kwargs())
        other = dispatch(self.dir, ["noise", "fleet"], execution_time=T, **self.kwargs())
        self.addCleanup(d.close)
        self.addCleanup(other.close)
        self.assertEqual(d.published, 8)
        self.assertEqual(other.published, 9)
        # a duplicate result of one of ours, as a redelivery would publish it
        first = self.read(self.results, 17, timeout=120)
        self.assertEqual(len(first), 17, self.logs())
        dup = next(m for m in first if json.loads(m["value"])["dispatch_id"] == d.dispatch_id)
        self.publish_to(self.results, [{"key": dup["key"], "value": dup["value"],
                                        "headers": dup["headers"]}])

        results = wait_results(d, timeout=60)
        self.assertEqual(len(results), 8)
        self.assertEqual([r["request_id"] for r in results],
                         [r["request_id"] for r in d.delivered])
        self.assertEqual({r["metric"]: r["status"] for r in results}, expect)
        for r in results:
            self.assertEqual(r["dispatch_id"], d.dispatch_id)
            self.assertEqual(r["schema"], "dtk.check.result/v1")
            self.assertEqual(r["execution_time"], T_ALIGNED)
            self.assertTrue(r["worker"]["id"])
        # iterating gives the same results, each once despite the duplicate
        streamed = list(iter_results(d, timeout=60))
        self.assertEqual(sorted(r["request_id"] for r in streamed),
                         sorted(r["request_id"] for r in results))
        self.assertEqual({r["dispatch_id"] for r in streamed}, {d.dispatch_id})
        theirs = wait_results(other, timeout=60)
        self.assertEqual(len(theirs), 9)
        self.assertEqual({r["dispatch_id"] for r in theirs}, {other.dispatch_id})
        self.assertEqual(len({r["request_id"] for r in theirs}), 9)
        for p, _ in self.procs:
            self.assertIsNone(p.poll(), self.logs())
            self.assertEqual(self.stop_worker(p), 0, self.logs())

    def test_iter_results_yields_each_result_as_it_arrives(self):
        self.feed("create", "2", self.topic, self.results, self.dlq)
        server = serve_json(self, value=5, delay=SLOW_SECONDS)
        self.metric("fast", ["stream"])
        with open(os.path.join(self.dir, "slow.yaml"), "w") as f:
            f.write(http_check("slow", server.url + "/slow", self.db, 30, tags=["stream"]))
        self.start_worker("w1")
        with dispatch(self.dir, ["stream"], execution_time=T, **self.kwargs()) as d:
            self.assertEqual(d.published, 2)
            start = time.monotonic()
            arrivals = [(r["metric"], time.monotonic() - start)
                        for r in iter_results(d, timeout=90)]
        self.assertEqual([m for m, _ in arrivals], ["fast", "slow"], self.logs())
        # the fast result was handed over while the slow check was still running
        self.assertLess(arrivals[0][1] + 2, arrivals[1][1], arrivals)

    def test_a_timeout_names_the_missing_requests(self):
        self.feed("create", "2", self.topic, self.results, self.dlq)
        for name in ("late_a", "late_b"):
            self.metric(name, ["late"])
        d = dispatch(self.dir, ["late"], **self.kwargs())  # no worker runs
        self.addCleanup(d.close)
        self.assertEqual(d.published, 2)
        self.assertEqual(d.default_timeout, 600 + 30)
        start = time.monotonic()
        with self.assertRaises(detectk.ResultsTimeout) as cm:
            wait_results(d, timeout=3)
        self.assertLess(time.monotonic() - start, 30)
        e = cm.exception
        self.assertIsInstance(e, TimeoutError)
        self.assertEqual(sorted(m["metric"] for m in e.missing), ["late_a", "late_b"])
        self.assertEqual(e.results, [])
        for r in d.requests:
            self.assertIn(r["request_id"], str(e))
            self.assertIn(r["metric"], str(e))
        self.assertEqual(wait_results(d, timeout=1, raise_on_timeout=False), [None, None])
        start = time.monotonic()
        with self.assertRaises(detectk.ResultsTimeout) as cm:
            for _ in iter_results(d, timeout=2, poll_interval=0.5):
                self.fail("no worker runs: nothing to yield")
        self.assertLess(time.monotonic() - start, 20)
        self.assertEqual(sorted(m["metric"] for m in cm.exception.missing), ["late_a", "late_b"])
        self.assertEqual(list(iter_results(d, timeout=1, raise_on_timeout=False)), [])
        d.close()
        with self.assertRaisesRegex(detectk.DetectKError, "closed"):
            wait_results(d, timeout=1)
        with self.assertRaisesRegex(detectk.DetectKError, "closed"):
            next(iter_results(d, timeout=1))

    def test_without_track_results_waiting_is_refused(self):
        self.feed("create", "1", self.topic, self.results, self.dlq)
        self.metric("solo", ["solo"])
        with dispatch(self.dir, ["solo"], track_results=False, **self.kwargs()) as d:
            self.assertEqual(d.published, 1)
            with self.assertRaisesRegex(detectk.DetectKError, "track_results"):
                wait_results(d, timeout=1)
            with self.assertRaisesRegex(detectk.DetectKError, "track_results"):
                next(iter_results(d, timeout=1))

    def test_no_reachable_broker_raises_the_engine_message_in_bounded_time(self):
        self.metric("nb", ["nb"])
        with open(os.path.join(self.dir, "bad.yaml"), "w") as f:
            f.write("name: [unclosed\n")
        start = time.monotonic()
        with self.assertRaises(detectk.DispatchError) as cm:
            dispatch(self.dir, ["nb"], **self.kwargs(brokers="127.0.0.1:%d" % closed_port(),
                                                      request_timeout=3))
        self.assertLess(time.monotonic() - start, 30)
        self.assertIn("nothing was published", str(cm.exception))
        self.assertIn("no metadata within 3000 ms", str(cm.exception))
        self.assertEqual([os.path.basename(i["path"]) for i in cm.exception.invalid], ["bad.yaml"])

    def test_a_missing_topic_is_an_error_and_create_topics_makes_it(self):
        self.metric("mt", ["mt"])
        with self.assertRaisesRegex(detectk.DispatchError, self.topic):
            dispatch(self.dir, ["mt"], track_results=False, **self.kwargs(request_timeout=5))
        with dispatch(self.dir, ["mt"], create_topics=True, partitions=2,
                      **self.kwargs()) as d:
            self.assertEqual(d.published, 1)
        self.assertEqual(len(self.read(self.topic, 1, timeout=30)), 1)

    def test_bad_arguments(self):
        with self.assertRaises(FileNotFoundError) as cm:
            dispatch(os.path.join(self.tmp.name, "nope"), ["x"], **self.kwargs())
        self.assertIsInstance(cm.exception, detectk.ConfigError)
        self.assertIn("nope", str(cm.exception))
        with self.assertRaisesRegex(ValueError, "select configs"):
            dispatch(self.dir, **self.kwargs())
        with unittest.mock.patch.dict(os.environ):
            os.environ.pop("DTK_KAFKA_BROKERS", None)
            with self.assertRaisesRegex(ValueError, "brokers"):
                dispatch(self.dir, ["x"], **self.kwargs(brokers=None))
        with self.assertRaises(TypeError):
            dispatch(self.dir, [1], **self.kwargs())
        with self.assertRaisesRegex(detectk.DispatchError, "kafka_props|property|no.such"):
            dispatch(self.dir, ["x"], **self.kwargs(kafka_props={"no.such.prop": "1"}))
        with self.assertRaises(TypeError):
            wait_results("not a dispatch")

    # ---- helpers ----

    def publish_to(self, topic, messages):
        saved, self.topic = self.topic, topic
        try:
            return self.publish(messages)
        finally:
            self.topic = saved


if __name__ == "__main__":
    unittest.main()
