"""The fleet under faults, against the real services of scripts/services.sh
(DTK_KAFKA_BROKERS, DTK_REDIS_URL, DTK_RECEIVER_URL): dtk-dispatch publishes,
dtk-worker processes with --redis (alert claims shared by the workers), and
alerts go to the receiver as webhooks (one path per metric, rate limit off),
so "every alert delivered, none twice" is read from the receiver's recorded
requests. The guarantees under test are those of the fleet specification:
at-least-once execution, every request gets at least one result, alerts once
per (metric, alerter, execution_time) through the claim protocol.

  test_300_configs     300 configs, `dtk-dispatch --tags critical --wait
                       --fail-on-anomaly` with 3 workers: every selected
                       request reported once, nothing for the others, exit 3
  test_outage_order    three slots of one metric queued behind a Redis outage
                       (the first waits in the connection limiter) run in
                       order, one at a time; consecutive_anomalies: 3 fires once
  test_kill9           kill -9 of one of 3 workers in the middle of 2,000
                       requests: every request gets a result, a second one
                       only when it was not committed at the kill; every alert
                       delivered, twice only for a claim the dead worker held
  test_redis_outage    Redis stopped for 10 s while requests keep coming:
                       nothing lost, checks after its return run cleanly
  test_broker_restart  Kafka stopped and restarted mid-run: nothing lost

Services are stopped and started with scripts/services.sh and the run's
DTK_SERVICES_DIR, and always restarted in a finally block. Every test uses
topics, a group, metric names and a receiver prefix of its own, and a fixed
execution time with an explicit schedule.timeout, so nothing depends on the
time of day. tests/integration.cmake registers each test as its own ctest test
(labels integration;python;fleet;fleet_<name>, RUN_SERIAL: they stop shared
services). Kafka's helpers (worker_feed, starting workers, the skip rule,
teardown) are kafka_helpers.py's: without the services the tests skip (exit
77) unless DTK_REQUIRE_SERVICES=1."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid

from kafka_helpers import BINARY, BROKERS, SOURCE, KafkaHelpers

DISPATCH = os.path.join(BINARY, "dispatcher", "dtk-dispatch")
SERVICES = os.path.join(SOURCE, "scripts", "services.sh")
KEY = "fleet-faults-signing-key"
T = 1730557800  # 2024-11-02T14:30:00Z, on the 10-minute grid
PARTITIONS = 6

METRIC = """\
name: {name}
tags: {tags}
collector: {{type: synthetic, params: {{base: {base}}}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{enabled: false}}
alerter:
  type: webhook
  params: {{url: "{hook}", rate_per_second: 0, timeout: 10}}
schedule: {{interval: "10 minutes", timeout: "10 minutes"}}
"""


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class FleetFaults(KafkaHelpers, unittest.TestCase):
    KEY = KEY
    SERVICES = {"DTK_KAFKA_BROKERS": "kafka", "DTK_REDIS_URL": "redis",
                "DTK_RECEIVER_URL": "receiver", "DTK_SERVICES_DIR": None}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = os.environ["DTK_REDIS_URL"]
        cls.receiver = os.environ["DTK_RECEIVER_URL"]
        cls.services_dir = os.environ["DTK_SERVICES_DIR"]

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.run_id = uuid.uuid4().hex[:8]
        base = "dtk-ff-%s-%s" % (self._testMethodName[5:], self.run_id)
        self.topic, self.results, self.dlq = base + ".req", base + ".res", base + ".dlq"
        self.group = base + ".group"
        self.hook_prefix = "/t-%s" % uuid.uuid4()
        self.configs = os.path.join(self.tmp.name, "configs")
        os.makedirs(self.configs)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        self.env.update(HOME=self.tmp.name, DTK_STATE_DIR=os.path.join(self.tmp.name, "state"))
        self.procs = []  # (Popen, log path), killed by tearDown
        self.workers = []  # [name, Popen, log path]
        self.exits = []  # (name, exit status, log tail) of workers that exited by themselves
        self.feed("create", str(PARTITIONS), self.topic, self.results, self.dlq)
        self.started = time.monotonic()

    def tearDown(self):
        print("%s: %.1f s" % (self._testMethodName, time.monotonic() - self.started),
              file=sys.stderr)
        super().tearDown()

    # ---- services, Kafka, Redis, receiver ----

    def services(self, action, name):
        env = dict(os.environ, DTK_SERVICES_DIR=self.services_dir)
        p = subprocess.run([SERVICES, action, name], env=env, capture_output=True, text=True,
                           timeout=180)
        self.assertEqual(p.returncode, 0, "services.sh %s %s: %s" % (action, name, p.stderr))

    def results_by_id(self, want_ids, timeout):
        """Reads the results topic until every id of want_ids has a result
        or timeout passes; returns {request_id: [(message, result), ...]}."""
        deadline = time.monotonic() + timeout
        at_least = len(want_ids)
        while True:
            left = max(5, int(deadline - time.monotonic()))
            by_id = {}
            for m in self.read(self.results, at_least, timeout=left, feed_timeout=left + 120):
                r = json.loads(m["value"])
                by_id.setdefault(r["request_id"], []).append((m, r))
            if set(want_ids) <= set(by_id) or time.monotonic() >= deadline:
                return by_id
            at_least = sum(len(v) for v in by_id.values()) + 1
            self.supervise()

    def redis_cli(self, *args):
        p = subprocess.run(["redis-cli", "-u", self.redis, *args],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.splitlines()

    def alert_keys(self, metric_prefix):
        """{key: value} of the alert claims of this run's metrics."""
        keys = [k for k in self.redis_cli("--scan", "--pattern",
                                          "dtk:state:alert:%s*" % metric_prefix) if k]
        if not keys:
            return {}
        return dict(zip(keys, self.redis_cli("MGET", *keys)))

    def receiver_get(self, path):
        with urllib.request.urlopen(self.receiver + path, timeout=60) as resp:
            return json.loads(resp.read())

    def receiver_post(self, path, doc):
        req = urllib.request.Request(self.receiver + path, data=json.dumps(doc).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def hooks(self, sub="/hook/"):
        """The webhook requests of this test, as [(metric, body)]."""
        reqs = self.receiver_get("/_dtk/requests?path=" +
                                 urllib.parse.quote(self.hook_prefix + sub))["requests"]
        return [(r["path"].rsplit("/", 1)[1], r.get("json")) for r in reqs]

    # ---- configs, dispatcher, workers ----

    def metric(self, name, tags, anomalous, extra=""):
        hook = "%s%s/hook/%s" % (self.receiver, self.hook_prefix, name)
        text = METRIC.format(name=name, tags=json.dumps(tags), base=5000 if anomalous else 100,
                             hook=hook) + extra
        with open(os.path.join(self.configs, name + ".yaml"), "w") as f:
            f.write(text)

    def dispatch_start(self, *args, at=T):
        """dtk-dispatch running in the background (stdout and stderr piped)."""
        env = dict(self.env, DTK_KAFKA_BROKERS=BROKERS, DTK_SIGNING_KEY=KEY)
        return subprocess.Popen([DISPATCH, "--config-dir", self.configs, "--topic", self.topic,
                                 "--results-topic", self.results, "--dlq-topic", self.dlq,
                                 "--execution-time", iso(at), "--output", "json", *args],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def dispatch_end(self, p, timeout=600, check_rc=0):
        out, err = p.communicate(timeout=timeout)
        if check_rc is not None:
            self.assertEqual(p.returncode, check_rc, err[-3000:])
        doc = json.loads(out) if out.strip() else None
        return subprocess.CompletedProcess(p.args, p.returncode, out, err), doc

    def dispatch(self, *args, timeout=600, check_rc=0, at=T):
        return self.dispatch_end(self.dispatch_start(*args, at=at), timeout, check_rc)

    def start_worker(self, name, concurrency=4):
        log = os.path.join(self.tmp.name, "%s.%d.log" % (name, len(self.workers)))
        p = self.spawn_worker(log, "--redis", self.redis, "--concurrency", str(concurrency),
                              "--startup-timeout", "60", env=dict(self.env, DTK_SIGNING_KEYS=KEY))
        self.workers.append([name, p, log])
        return p

    def supervise(self):
        """The orchestrator: a worker that exited (a fatal error exits 1 by
        design) is recorded and started again."""
        for w in list(self.workers):
            name, p, log = w
            if p.poll() is not None and not name.startswith("dead:"):
                self.exits.append((name, p.returncode, self.tail(log)))
                w[0] = "dead:" + name
                self.start_worker(name)

    def records(self, log):
        out = []
        with open(log) as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        return out

    def finished(self, log):
        return sum(1 for r in self.records(log) if r.get("msg") == "check finished")

    def wait_assigned(self, timeout=60):
        """Until every worker has logged an assignment and the group is quiet."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(any(r.get("msg") == "partitions assigned" for r in self.records(log))
                   for _, _, log in self.workers):
                time.sleep(2)
                return
            time.sleep(0.2)
        self.fail("workers got no partitions: " + self.all_logs())

    def stop_workers(self):
        codes = {}
        for name, p, _ in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p, _ in self.workers:
            codes[name] = p.wait(timeout=90)
        return codes

    def tail(self, log, n=4000):
        with open(log) as f:
            return f.read()[-n:]

    def all_logs(self, n=2500):
        return "\n".join("== %s\n%s" % (name, self.tail(log, n)) for name, _, log in self.workers)

    def names(self, prefix, n):
        return ["%s_%s_%04d" % (prefix, self.run_id, i) for i in range(n)]

    def check_alerts(self, anomalous, may_repeat=(), by_metric=None):
        """Every anomalous metric alerted at least once, at most once unless
        in may_repeat, nothing else alerted; the bodies are this slot's."""
        got = {}
        for metric, body in self.hooks():
            got.setdefault(metric, []).append(body)
            self.assertEqual(body["execution_time"], iso(T), body)
            self.assertEqual(body["metric"], metric)
        lost = sorted(set(anomalous) - set(got))
        self.assertEqual(sorted(set(got)), sorted(anomalous),
                         "alerted but not anomalous: %s; anomalous, no alert: %s; "
                         "the first one's result says: %s" %
                         (sorted(set(got) - set(anomalous)), lost,
                          json.dumps({k: by_metric[lost[0]].get(k) for k in
                                      ("status", "alert", "alerts", "errors", "warnings",
                                       "worker", "started_at")})
                          if lost and by_metric else None))
        twice = sorted(m for m, bodies in got.items() if len(bodies) > 1)
        self.assertEqual([m for m in twice if m not in may_repeat], [],
                         "alerted more than once: %s" % {m: len(got[m]) for m in twice})
        return got

    # ---- 1: 300 configs, --tags critical --wait with 3 workers ----

    def test_300_configs(self):
        names = self.names("c", 300)
        selected, anomalous = [], []
        for i, name in enumerate(names):
            tags = [["critical"], ["critical", "sales"], ["sales"], ["noncritical"]][i % 4]
            bad = i % 10 == 0
            self.metric(name, tags, bad)
            if "critical" in tags:
                selected.append(name)
                if bad:
                    anomalous.append(name)
        self.assertEqual((len(selected), len(anomalous)), (150, 15))
        for i in range(3):
            self.start_worker("w%d" % i, concurrency=2)
        self.wait_assigned()
        p, doc = self.dispatch("--tags", "critical", "--wait", "--timeout", "180",
                               "--fail-on-anomaly", "--create-topics", check_rc=None)
        # all in, all ok or anomaly, anomalies present with --fail-on-anomaly: 3
        self.assertEqual(p.returncode, 3, p.stderr[-3000:] + self.all_logs())
        s = doc["summary"]
        self.assertEqual({k: s[k] for k in ("selected", "published", "results", "ok", "anomaly",
                                            "error", "expired", "rejected", "missing",
                                            "invalid_configs")},
                         {"selected": 150, "published": 150, "results": 150, "ok": 135,
                          "anomaly": 15, "error": 0, "expired": 0, "rejected": 0, "missing": 0,
                          "invalid_configs": 0}, s)
        reported = [r["metric"] for r in doc["results"]]
        self.assertEqual(sorted(reported), sorted(selected))  # each selected one, once
        ids = {r["request_id"] for r in doc["requests"]}
        self.assertEqual(len(ids), 150)
        self.assertEqual({r["request_id"] for r in doc["results"]}, ids)
        for r in doc["results"]:
            self.assertEqual(r["dispatch_id"], doc["dispatch_id"])
            self.assertEqual(r["status"], "anomaly" if r["metric"] in anomalous else "ok", r)
            self.assertEqual(r["execution_time"], iso(T))
        # the topics: nothing published or answered for the unselected configs
        reqs = self.read(self.topic, 151, timeout=5)
        self.assertEqual(sorted(m["key"] for m in reqs), sorted(selected))
        by_id = self.results_by_id(ids, timeout=30)
        self.assertEqual(set(by_id), ids)
        codes = self.stop_workers()
        self.assertEqual(set(codes.values()), {0}, codes)
        self.check_alerts(anomalous)

    # ---- 2: three slots of one metric queued behind an outage ----

    def test_outage_order(self):
        name = "o_%s" % self.run_id
        src = "%s/src/%s" % (self.hook_prefix, name)
        # each collection takes a second: overlapping checks would show
        self.receiver_post("/_dtk/script", {"path": src, "responses": [
            {"json": {"value": 5000}, "delay": 1.0}]})
        with open(os.path.join(self.configs, name + ".yaml"), "w") as f:
            f.write("""\
name: {name}
collector:
  type: http
  params:
    url: "{receiver}{src}?t={{{{ period_finish }}}}"
    value_path: value
    retry_count: 1
    timeout: 30
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{enabled: false}}
alerter:
  type: webhook
  params: {{url: "{receiver}{hooks}/hook/{name}", rate_per_second: 0}}
  conditions: {{consecutive_anomalies: 3}}
schedule: {{interval: "10 minutes", timeout: "10 minutes"}}
""".format(name=name, receiver=self.receiver, src=src, hooks=self.hook_prefix))
        for i in range(2):
            self.start_worker("w%d" % i, concurrency=4)
        self.wait_assigned()
        slots = [T, T + 600, T + 1200]
        ids = []
        try:
            self.services("stop", "redis")
            for t in slots:
                _, doc = self.dispatch("--metric", name, at=t)
                ids.append(doc["requests"][0]["request_id"])
            time.sleep(6)  # the first waits for Redis (limiter), the others queue behind it
            early = self.read(self.results, 1, timeout=2)
        finally:
            self.services("start", "redis")
        by_id = self.results_by_id(ids, timeout=180)
        codes = self.stop_workers()
        self.assertEqual(set(codes.values()), {0}, codes)
        self.assertEqual(early, [], "results during the outage")
        self.assertEqual(sorted(by_id), sorted(ids), self.all_logs())
        results = []
        for rid, t in zip(ids, slots):
            self.assertEqual(len(by_id[rid]), 1, by_id[rid])
            r = by_id[rid][0][1]
            self.assertEqual(r["status"], "anomaly", r)
            self.assertEqual(r["execution_time"], iso(t))
            results.append(r)
        # in slot order, one at a time
        fetched = self.receiver_get("/_dtk/requests?path=" + urllib.parse.quote(src))["requests"]
        self.assertEqual([urllib.parse.parse_qs(r["query"])["t"][0] for r in fetched],
                         [iso(t)[:-1] for t in slots], fetched)  # period_finish: no "Z"
        conc = self.receiver_get("/_dtk/concurrency?path=" + urllib.parse.quote(src))
        self.assertEqual((conc["requests"], conc["max_in_flight"]), (3, 1), conc)
        for a, b in zip(results, results[1:]):
            self.assertLessEqual(a["finished_at"], b["started_at"], (a, b))
        # consecutive_anomalies: 3 -> the third slot alerts, exactly once
        self.assertEqual([r["alerts"][0]["suppressed_by"] for r in results],
                         ["consecutive", "consecutive", None], results)
        self.assertEqual([r["alerts"][0]["sent"] for r in results], [False, False, True])
        got = self.hooks()
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0][1]["execution_time"], iso(slots[2]))

    # ---- 3: kill -9 of one worker in the middle of 2,000 requests ----

    def test_kill9(self):
        names = self.names("k", 2000)
        anomalous = [n for i, n in enumerate(names) if i % 10 == 3]
        for i, name in enumerate(names):
            self.metric(name, ["k9"], i % 10 == 3)
        # The group settles first: a worker alone in it would run the whole
        # backlog (2,000 trivial checks take it about a second) before the others join.
        victim = self.start_worker("victim", concurrency=4)
        self.start_worker("w1", concurrency=4)
        self.start_worker("w2", concurrency=4)
        self.wait_assigned()
        dispatching = self.dispatch_start("--tags", "k9")
        logs = [log for _, _, log in self.workers]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [self.finished(log) for log in logs]
            if done[0] >= 100 and sum(done) >= 700:
                break
            time.sleep(0.05)
        else:
            self.fail("no progress: " + self.all_logs())
        self.assertLess(sum(done), 2000 - 300, "the kill came too late")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        _, doc = self.dispatch_end(dispatching)
        self.assertEqual(doc["summary"]["published"], 2000)
        where = {r["request_id"]: (r["partition"], r["offset"]) for r in doc["requests"]}
        metric_of = {r["request_id"]: r["metric"] for r in doc["requests"]}
        # what the dead worker left: its committed offsets and its claims
        committed = json.loads(self.feed("committed", self.group, self.topic).stdout)
        claims = self.alert_keys("k_%s_" % self.run_id)
        owner = "-%d:" % victim.pid
        held = {k.split(":")[3] for k, v in claims.items() if owner in v}
        victim_done = {r["request_id"] for r in self.records(logs[0])
                       if r.get("msg") == "check finished"}
        print("kill -9 after %s checks finished; victim held %d claims unmarked"
              % (done, len(held)), file=sys.stderr)

        by_id = self.results_by_id(list(where), timeout=240)
        codes = self.stop_workers()
        self.assertEqual(codes["w1"], 0)
        self.assertEqual(codes["w2"], 0)
        lost = set(where) - set(by_id)
        self.assertEqual(lost, set(), "%d requests without a result; %s" %
                         (len(lost), self.all_logs()))
        redone = {rid for rid, rs in by_id.items() if len(rs) > 1}
        for rid in redone:
            p, o = where[rid]
            self.assertGreaterEqual(o, committed[str(p)],
                                    "request %s (partition %d offset %d) was redone although "
                                    "committed at the kill (%s)" % (rid, p, o, committed))
        print("%d requests redone (%d of them finished by the victim before the kill)"
              % (len(redone), len(redone & victim_done)), file=sys.stderr)
        for rid, rs in by_id.items():
            want = "anomaly" if metric_of[rid] in anomalous else "ok"
            self.assertEqual(sorted({r["status"] for _, r in rs}), [want], rs[0][1])
        self.check_alerts(anomalous, may_repeat=held)

    # ---- 5: Redis stopped for 10 s mid-run ----

    # A check that runs while Redis is down must still alert: the alert
    # state it cannot read counts as met (core/alert/alert.c), so nothing
    # is lost; a repeat is the accepted cost.
    def test_redis_outage(self):
        batches = 12
        names = self.names("r", 50 * batches)
        anomalous = [n for i, n in enumerate(names) if i % 10 == 7]
        for i, name in enumerate(names):
            self.metric(name, ["b%d" % (i // 50)], i % 10 == 7)
        for i in range(3):
            self.start_worker("w%d" % i, concurrency=4)
        self.wait_assigned()
        docs, phase = [], {}
        outage = {"down": None, "up": None}
        errors = []

        def publish():
            try:
                for b in range(batches):
                    started = time.monotonic()
                    _, doc = self.dispatch("--tags", "b%d" % b, check_rc=None)
                    docs.append(doc)
                    phase[b] = (started, time.monotonic())
                    time.sleep(1.5)
            except Exception as e:  # reported below
                errors.append(e)

        pub = threading.Thread(target=publish)
        pub.start()
        try:
            time.sleep(4)
            outage["down"] = time.monotonic()
            self.services("stop", "redis")
            time.sleep(10)
        finally:
            self.services("start", "redis")
            outage["up"] = time.monotonic()
        pub.join(timeout=300)
        self.assertEqual(errors, [])
        self.assertEqual(len(docs), batches)
        for doc in docs:
            self.assertEqual(doc["summary"]["published"], 50, doc["summary"])
        ids = {r["request_id"]: (r["metric"], b) for b, doc in enumerate(docs)
               for r in doc["requests"]}
        by_id = self.results_by_id(list(ids), timeout=240)
        codes = self.stop_workers()
        self.assertEqual(set(codes.values()), {0}, codes)
        self.assertEqual(set(ids) - set(by_id), set(), self.all_logs())
        during = [b for b, (start, _) in phase.items() if outage["down"] < start < outage["up"]]
        self.assertTrue(during, "no batch was published during the outage")
        after = [b for b, (start, _) in phase.items() if start > outage["up"]]
        self.assertTrue(after, "no batch was published after Redis returned")
        statuses = {}
        for rid, rs in by_id.items():
            metric, b = ids[rid]
            want = "anomaly" if metric in anomalous else "ok"
            for _, r in rs:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
                if r["status"] == "error":
                    # only a check that met the outage may fail, naming Redis
                    self.assertNotIn(b, after, r)
                    self.assertIn("redis", json.dumps(r["errors"]).lower(), r)
                else:
                    self.assertEqual(r["status"], want, r)
                if b in after:
                    self.assertEqual(r["errors"], [], r)
        print("statuses: %s" % statuses, file=sys.stderr)
        once = {ids[rid][0] for rid, rs in by_id.items() if len(rs) > 1}
        self.check_alerts(anomalous, may_repeat=once,
                          by_metric={ids[rid][0]: rs[0][1] for rid, rs in by_id.items()})

    # ---- 6: the broker stopped and restarted mid-run ----

    def test_broker_restart(self):
        names = self.names("b", 1000)
        anomalous = [n for i, n in enumerate(names) if i % 10 == 5]
        for i, name in enumerate(names):
            self.metric(name, ["br"], i % 10 == 5)
        _, doc = self.dispatch("--tags", "br")
        self.assertEqual(doc["summary"]["published"], 1000)
        ids = {r["request_id"]: r["metric"] for r in doc["requests"]}
        for i in range(3):
            self.start_worker("w%d" % i, concurrency=4)
        logs = [log for _, _, log in self.workers]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(self.finished(log) for log in logs)
            if done >= 300:
                break
            time.sleep(0.05)
        else:
            self.fail("no progress: " + self.all_logs())
        self.assertLess(done, 1000 - 300, "the broker stopped too late")
        try:
            self.services("stop", "kafka")
            stopped = time.monotonic()
            while time.monotonic() - stopped < 10:
                time.sleep(0.5)
                self.supervise()
        finally:
            self.services("start", "kafka")
        by_id = self.results_by_id(list(ids), timeout=300)
        codes = self.stop_workers()
        print("worker exits during the run: %s" % [(n, c) for n, c, _ in self.exits],
              file=sys.stderr)
        self.assertEqual(set(ids) - set(by_id), set(), self.all_logs())
        for rid, rs in by_id.items():
            want = "anomaly" if ids[rid] in anomalous else "ok"
            self.assertEqual(sorted({r["status"] for _, r in rs}), [want], rs[0][1])
        self.assertEqual({n: c for n, c in codes.items() if not n.startswith("dead:")},
                         {"w0": 0, "w1": 0, "w2": 0}, codes)
        # a worker that died (fatal error) may have held a claim unmarked
        may = set()
        if self.exits:
            may = set(anomalous)
        self.check_alerts(anomalous, may_repeat=may)


if __name__ == "__main__":
    unittest.main(verbosity=2)  # kafka_helpers' setUpClass exits 77 without the services
