"""The Prefect flows of integrations/prefect run for real, in Prefect's local
ephemeral mode (a temporary server over SQLite in a throw-away PREFECT_HOME),
against the fleet: the Kafka broker and Redis of scripts/services.sh and two
real dtk-worker processes. Asserts flow-run states and returned results:
Completed with every check's result (ok and anomaly) and the request
messages on the topic; a check that keeps failing is re-run by the recheck
task's retries and the run is Failed naming it; a check that fails twice
then succeeds ends Completed; fail_on_anomaly fails the run; no reachable
broker fails it after the dispatch task's retries. The deployments by tag
group are built (not served): their cron or interval schedules fire exactly
at DetectK's aligned times, and mixed intervals in a group are refused.

Prefect comes from the cached venv of scripts/prefect-venv.sh (pinned by
integrations/prefect/requirements.lock); the test re-runs itself with that
venv's python. Skips (exit 77) without DTK_KAFKA_BROKERS, or when the venv
cannot be made (PyPI unreachable) and none is cached, unless
DTK_REQUIRE_SERVICES=1. Under an ASan build the sanitizer runtimes are
preloaded as in test_python_api.py.

ctest-labels: integration;prefect
"""
import asyncio
import datetime as dt
import faulthandler
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import sanitizers  # noqa: E402  (tests/py/sanitizers.py)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
LIBDTK = os.path.join(BINARY, "core", "libdtk.so")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"


def skip(why):
    if REQUIRE:
        print("FAIL (DTK_REQUIRE_SERVICES=1): " + why, flush=True)
        sys.exit(1)
    print("skip: " + why, flush=True)
    sys.exit(77)


if not os.environ.get("DTK_PREFECT_TEST_CHILD"):
    if not os.environ.get("DTK_KAFKA_BROKERS"):
        skip("DTK_KAFKA_BROKERS is not set (scripts/services.sh start kafka)")
    started = time.monotonic()
    p = subprocess.run(["bash", os.path.join(SOURCE, "scripts", "prefect-venv.sh")],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        skip("cannot make the Prefect venv (scripts/prefect-venv.sh): %s" % p.stderr[-1500:])
    print("prefect venv ready in %.1f s: %s" % (time.monotonic() - started, p.stdout.strip()),
          flush=True)
    env = dict(os.environ, DTK_PREFECT_TEST_CHILD="1")
    if sanitizers.preload_env(LIBDTK, env):
        print("libdtk is an ASan build: LD_PRELOAD=%s" % env["LD_PRELOAD"], flush=True)
    python = p.stdout.strip().splitlines()[-1]
    os.execve(python, [python] + sys.argv, env)

# ---- in the Prefect venv from here ----
faulthandler.dump_traceback_later(840, exit=True)
TMP = tempfile.TemporaryDirectory(prefix="dtk-prefect-")
os.environ.update(PREFECT_HOME=os.path.join(TMP.name, "prefect-home"),
                  PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                  PREFECT_LOGGING_LEVEL="INFO", DTK_LIBRARY=LIBDTK,
                  DTK_STATE_DIR=os.path.join(TMP.name, "state"))
for k in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILES_PATH", "DTK_FLEET_LIBRARY"):
    os.environ.pop(k, None)
sys.dont_write_bytecode = True
sys.path[:0] = [os.path.join(SOURCE, "integrations", "python", "src"),
                os.path.join(SOURCE, "integrations", "prefect")]

from prefect.server.schemas.schedules import CronSchedule, IntervalSchedule  # noqa: E402

import deployments  # noqa: E402
from detectk_flows import check_tags  # noqa: E402
from http_helpers import JsonServer, closed_port, http_check  # noqa: E402
from kafka_helpers import BROKERS, WORKER, KafkaHelpers  # noqa: E402

KEY = "prefect-test-signing-key"
TOPIC = "dtk-prefect-%d.req" % os.getpid()
RESULTS, DLQ = TOPIC[:-4] + ".res", TOPIC[:-4] + ".dlq"
T = 1730557800  # 2024-11-02T14:30:00Z

SYNTH = """\
name: {name}
tags: {tags}
collector: {{type: synthetic, params: {{base: {base}}}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{type: sqlite, params: {{path: "{db}"}}}}
schedule: {{interval: "{interval}", timeout: "5 minutes"}}
"""


class PrefectFlows(KafkaHelpers, unittest.TestCase):
    KEY = KEY
    workers = []

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctmp = tempfile.TemporaryDirectory()
        cls.http = JsonServer()
        p = subprocess.run([os.path.join(BINARY, "worker", "worker_feed"), "create", BROKERS,
                            "3", TOPIC, RESULTS, DLQ], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        env.update(HOME=cls.ctmp.name, DTK_STATE_DIR=os.path.join(cls.ctmp.name, "state"),
                   DTK_SIGNING_KEYS=KEY)
        for name in ("w1", "w2"):
            log = open(os.path.join(cls.ctmp.name, name + ".log"), "w")
            cls.workers.append((subprocess.Popen(
                [WORKER, "--brokers", BROKERS, "--group", TOPIC + ".group", "--topic", TOPIC,
                 "--results-topic", RESULTS, "--dlq-topic", DLQ, "--concurrency", "2",
                 "--kafka-prop", "session.timeout.ms=6000", "--startup-timeout", "20"],
                env=env, stdout=log, stderr=log), log.name))
            log.close()
        os.environ["DTK_SIGNING_KEY"] = KEY

    @classmethod
    def tearDownClass(cls):
        for p, _ in cls.workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        cls.http.stop()
        cls.ctmp.cleanup()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.procs = []
        self.topic = TOPIC
        self.dir = os.path.join(self.tmp.name, "configs")
        os.makedirs(self.dir)
        self.db = os.path.join(self.tmp.name, "store.db")
        self.tag = self._testMethodName[5:20]

    def write(self, name, template, **kw):
        kw.setdefault("tags", json.dumps([self.tag]))
        kw.setdefault("interval", "10 minutes")
        with open(os.path.join(self.dir, name + ".yaml"), "w") as f:
            f.write(template.format(name=name, db=self.db, **kw))

    def write_http(self, name, path):
        """A check name reading the JSON server's path (/fail/N/... fails N
        times), one 5 s try."""
        with open(os.path.join(self.dir, name + ".yaml"), "w") as f:
            f.write(http_check(name, self.http.url + path, self.db, 5, deadline="5 minutes",
                               tags=[self.tag]))

    def worker_logs(self):
        out = ""
        for _, path in self.workers:
            with open(path) as f:
                out += f.read()[-2000:]
        return out

    def run_flow(self, **params):
        params.setdefault("config_dir", self.dir)
        params.setdefault("tags", [self.tag])
        params.setdefault("brokers", BROKERS)
        params.setdefault("topic", TOPIC)
        params.setdefault("results_topic", RESULTS)
        params.setdefault("execution_time", T)
        params.setdefault("timeout", 60)
        return check_tags(**params, return_state=True)

    def requests_for(self, metrics, at_least):
        msgs = self.read(TOPIC, at_least, timeout=30)
        counts = {m: 0 for m in metrics}
        for m in msgs:
            if m["key"] in counts:
                counts[m["key"]] += 1
        return counts, msgs

    # ---- tests ----

    def test_completed_run_returns_every_result(self):
        for i in range(3):
            self.write("pf_ok%d" % i, SYNTH, base=100)
        self.write("pf_spike", SYNTH, base=5000)
        self.write("pf_elsewhere", SYNTH, base=100, tags='["elsewhere"]')
        state = self.run_flow()
        self.assertTrue(state.is_completed(), "%s\n%s" % (state.message, self.worker_logs()))
        out = state.result()
        self.assertEqual(out["summary"], {"selected": 4, "results": 4, "ok": 3, "anomaly": 1,
                                          "failed": 0, "invalid": 0})
        self.assertEqual({m: r["status"] for m, r in out["results"].items()},
                         {"pf_ok0": "ok", "pf_ok1": "ok", "pf_ok2": "ok", "pf_spike": "anomaly"})
        for m, r in out["results"].items():
            self.assertEqual(r["dispatch_id"], out["dispatch_id"])
            self.assertEqual(r["execution_time"], "2024-11-02T14:30:00Z")
        self.assertEqual(out["results"]["pf_spike"]["datapoint"]["value"], 5000)
        # one request each, published by this run's dispatch, signed
        counts, msgs = self.requests_for(list(out["results"]) + ["pf_elsewhere"], 4)
        self.assertEqual(counts, {"pf_ok0": 1, "pf_ok1": 1, "pf_ok2": 1, "pf_spike": 1,
                                  "pf_elsewhere": 0})
        ours = [json.loads(m["value"]) for m in msgs if m["key"] in out["results"]]
        self.assertEqual({r["dispatch_id"] for r in ours}, {out["dispatch_id"]})
        self.assertTrue(all("dtk-signature" in m["headers"] for m in msgs
                            if m["key"] in out["results"]))

    def test_a_failing_check_is_retried_and_fails_the_run(self):
        self.write("pf_fine", SYNTH, base=100)
        self.write_http("pf_down", "/fail/99/down")
        state = self.run_flow(recheck_timeout=30)
        self.assertTrue(state.is_failed(), state)
        self.assertIn("1 checks failed: pf_down", state.message)
        # the first run, then the recheck task's 1 + 2 retries; the good one once
        counts, _ = self.requests_for(["pf_fine", "pf_down"], 1)
        self.assertEqual(counts, {"pf_fine": 1, "pf_down": 4})
        self.assertEqual(self.http.seen().count("/fail/99/down"), 4)
        with self.assertRaises(Exception) as cm:
            state.result()
        summary = cm.exception.summary
        self.assertEqual(summary["summary"]["failed"], 1)
        self.assertEqual(summary["results"]["pf_fine"]["status"], "ok")
        self.assertEqual(summary["results"]["pf_down"]["status"], "error")

    def test_a_check_that_recovers_on_retry_completes_the_run(self):
        self.write_http("pf_flaky", "/fail/2/flaky")
        state = self.run_flow(recheck_timeout=30)
        self.assertTrue(state.is_completed(), state.message)
        out = state.result()
        self.assertEqual(out["results"]["pf_flaky"]["status"], "ok")
        self.assertEqual(out["results"]["pf_flaky"]["datapoint"]["value"], 5)
        self.assertEqual(out["summary"]["failed"], 0)
        self.assertEqual(self.http.seen().count("/fail/2/flaky"), 3)
        counts, _ = self.requests_for(["pf_flaky"], 1)
        self.assertEqual(counts, {"pf_flaky": 3})

    def test_fail_on_anomaly_fails_the_run(self):
        self.write("pf_calm", SYNTH, base=100)
        self.write("pf_high", SYNTH, base=7000)
        state = self.run_flow(fail_on_anomaly=True)
        self.assertTrue(state.is_failed(), state)
        self.assertIn("1 anomalies: pf_high", state.message)
        state = self.run_flow(fail_on_anomaly=False)
        self.assertTrue(state.is_completed(), state.message)

    def test_an_invalid_config_fails_the_run_after_the_others_ran(self):
        self.write("pf_valid", SYNTH, base=100)
        with open(os.path.join(self.dir, "broken.yaml"), "w") as f:
            f.write("name: pf_broken\ntags: [%s]\nschedule: {interval: often}\n" % self.tag)
        state = self.run_flow()
        self.assertTrue(state.is_failed(), state)
        self.assertIn("1 invalid configs", state.message)
        self.assertIn("broken.yaml", state.message)
        counts, _ = self.requests_for(["pf_valid"], 1)
        self.assertEqual(counts, {"pf_valid": 1})
        self.assertTrue(self.run_flow(fail_on_invalid=False).is_completed())

    def test_no_reachable_broker_fails_the_run_after_retries(self):
        self.write("pf_nobroker", SYNTH, base=100)
        start = time.monotonic()
        state = self.run_flow(brokers="127.0.0.1:%d" % closed_port(), request_timeout=2)
        self.assertTrue(state.is_failed(), state)
        self.assertIn("nothing was published", state.message)
        self.assertLess(time.monotonic() - start, 120)

    def test_deployments_by_tag_group_fire_on_the_detectk_grid(self):
        specs = {"g5m": ("5 minutes", "UTC"), "g7m": ("7 minutes", "UTC"),
                 "g90m": ("90 minutes", "UTC"), "g2h": ("2 hours", "UTC"),
                 "gday": ("1 day", "Europe/Berlin"), "gweek": ("1 week", "UTC")}
        for tag, (interval, tz) in specs.items():
            for i in range(2):
                with open(os.path.join(self.dir, "%s_%d.yaml" % (tag, i)), "w") as f:
                    f.write("name: %s_%d\ntags: [%s, all]\ntimezone: %s\n"
                            "collector: {type: synthetic}\n"
                            "detector: {type: threshold, params: {threshold: 1}}\n"
                            "schedule: {interval: \"%s\"}\n" % (tag, i, tag, tz, interval))
        deps = {d.name: d for d in deployments.deployments_by_tag(
            self.dir, sorted(specs), parameters={"brokers": "kafka:9092", "timeout": 300})}
        crons = {n: getattr(d.schedules[0].schedule, "cron", None) for n, d in deps.items()}
        self.assertEqual(crons, {"detectk-g5m": "*/5 * * * *", "detectk-g7m": None,
                                 "detectk-g90m": None, "detectk-g2h": "0 */2 * * *",
                                 "detectk-gday": "0 0 * * *", "detectk-gweek": "0 0 * * 1"})
        for tag, (interval, tz) in specs.items():
            d = deps["detectk-" + tag]
            self.assertEqual(d.parameters, {"config_dir": os.path.abspath(self.dir),
                                            "tags": [tag], "brokers": "kafka:9092",
                                            "timeout": 300})
            self.assertEqual(d.tags, ["detectk", tag])
            s = d.schedules[0].schedule
            self.assertEqual(s.timezone, tz)
            cron = getattr(s, "cron", None)
            server = (CronSchedule(cron=cron, timezone=s.timezone) if cron else
                      IntervalSchedule(interval=s.interval, anchor_date=s.anchor_date,
                                       timezone=s.timezone))
            fires = server.get_dates(6, start=dt.datetime(2024, 11, 2, 0, 1,
                                                          tzinfo=dt.timezone.utc))
            if asyncio.iscoroutine(fires):
                fires = asyncio.run(fires)
            self.assertEqual(len(fires), 6)
            seconds = {"g5m": 300, "g7m": 420, "g90m": 5400, "g2h": 7200, "gday": 86400,
                       "gweek": 604800}[tag]
            # config.md's grid: origin Monday 1970-01-05, in the metric's
            # timezone for a day or more (wall-clock midnight), else UTC
            for f in fires:
                w = f if seconds >= 86400 else f.astimezone(dt.timezone.utc)
                wall = dt.datetime(w.year, w.month, w.day, w.hour, w.minute, w.second)
                self.assertEqual((wall - dt.datetime(1970, 1, 5)).total_seconds() % seconds, 0,
                                 (tag, f))
            self.assertEqual([(b - a).total_seconds() for a, b in zip(fires, fires[1:])],
                             [seconds] * 5)
        with self.assertRaisesRegex(ValueError, "different schedules"):
            deployments.deployments_by_tag(self.dir, ["all"])
        with self.assertRaisesRegex(ValueError, "no valid config"):
            deployments.deployments_by_tag(self.dir, ["nothing"])
        due = deployments.due_deployment(self.dir)
        self.assertEqual(due.schedules[0].schedule.cron, "* * * * *")
        self.assertEqual(due.parameters, {"config_dir": os.path.abspath(self.dir), "due": True})
        # the flow's parameter schema accepts every deployment's parameters
        for d in list(deps.values()) + [due]:
            self.assertTrue(set(d.parameters) <= set(d._parameter_openapi_schema.properties),
                            d.name)


if __name__ == "__main__":
    started = time.monotonic()
    try:
        unittest.main()
    finally:
        print("test_prefect ran in %.1f s" % (time.monotonic() - started), flush=True)
