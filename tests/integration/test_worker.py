"""dtk-worker against the real Kafka broker of scripts/services.sh
(DTK_KAFKA_BROKERS): two workers in one group run ~50 signed requests for
synthetic configs and publish exactly one result per request; poison messages
land in the DLQ with their error headers while the workers keep going; an
expired request gives `expired`, a config that does not load gives
`rejected`; SIGTERM during slow checks lets them finish and deliver, exits 0,
and a restarted worker does not redo them (their offsets were stored).

Requests are made with tests/tools/msg_tool (encode, sign) and written and
read back with worker/tools/worker_feed. Every run uses topics and a group of
its own. Without DTK_KAFKA_BROKERS the test skips (exit 77) unless
DTK_REQUIRE_SERVICES=1."""
import json
import os
import subprocess
import textwrap
import time
import unittest

from http_helpers import http_check, serve_json
from kafka_helpers import BROKERS, MSG, SOURCE, SYNTHETIC, WORKER, KafkaHelpers

KEY = "worker-test-signing-key"
PARTITIONS = 6

try:  # the pinned test virtualenv has jsonschema (tests/requirements.txt)
    import jsonschema
    with open(os.path.join(SOURCE, "schemas", "check-result.v1.json")) as _f:
        RESULT_SCHEMA = jsonschema.Draft202012Validator(json.load(_f))
except ImportError:  # run by hand with a bare python3
    RESULT_SCHEMA = None


class Worker(KafkaHelpers, unittest.TestCase):
    KEY = KEY
    def setUp(self):
        self.fleet_setup("dtk-wt-%d-%s" % (os.getpid(), self._testMethodName[-12:]),
                         keys="old-key, " + KEY)
        self.feed("create", str(PARTITIONS), self.topic, self.results, self.dlq)

    # ---- helpers ----

    def start_worker(self, name, *extra, env=None):
        log = open(os.path.join(self.tmp.name, name + ".log"), "w")
        args = [WORKER, "--brokers", BROKERS, "--group", self.group, "--topic", self.topic,
                "--results-topic", self.results, "--dlq-topic", self.dlq,
                "--kafka-prop", "session.timeout.ms=6000", "--drain-timeout", "30",
                "--startup-timeout", "20", *extra]
        p = subprocess.Popen(args, env=env or self.env, stdout=log, stderr=log)
        self.procs.append((p, log.name))
        return p

    def logs(self):
        return self.procs_output()

    def log_records(self, path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.startswith("{")]

    def results_by_id(self, msgs):
        by_id = {}
        for m in msgs:
            r = json.loads(m["value"])
            by_id.setdefault(r["request_id"], []).append((m, r))
        return by_id

    # ---- tests ----

    def test_two_workers_one_result_per_request_and_poison_to_the_dlq(self):
        # the last one past its deadline: not run
        reqs, expect = self.synthetic_requests("m", 50, anomaly_every=10)
        # a config that does not load on the worker
        bad = self.config("broken", SYNTHETIC.replace("threshold, params", "no_such_detector, "
                                                      "params").format(name="broken", base=1,
                                                                      db="/tmp/x.db"))
        value = self.encode("broken", bad)
        reqs.append(self.message("broken", value))
        expect[json.loads(value)["request_id"]] = "rejected"
        # default storage without --storage
        nostore = self.config("nostore", "name: nostore\ncollector: {type: synthetic}\n"
                              "detector: {type: threshold, params: {threshold: 1000}}\n")
        value = self.encode("nostore", nostore)
        reqs.append(self.message("nostore", value))
        nostore_id = json.loads(value)["request_id"]
        expect[nostore_id] = "rejected"

        good = json.loads(self.encode("p", self.synthetic("p")))
        v2 = dict(good, schema="dtk.check.request/v2")
        nometric = {k: v for k, v in good.items() if k != "metric"}
        nometric["request_id"] = "11111111-2222-4333-8444-555555555555"
        forged = json.loads(self.encode("forged", self.synthetic("forged")))
        poison = [
            ("p-notjson", "not json {", KEY, None),
            ("p-array", "[1, 2, 3]", KEY, None),
            ("p-empty", "{}", KEY, None),
            ("p-v2", json.dumps(v2), KEY, v2["request_id"]),
            ("p-nometric", json.dumps(nometric), KEY, nometric["request_id"]),
            ("forged", json.dumps(forged), "not-the-key", forged["request_id"]),
            ("p-huge", "x" * (2 << 20), KEY, None),
        ]
        for key, value, k, rid in poison:
            if rid:
                expect[rid] = "rejected"
        # poison first, between and after the good ones: the workers keep going
        msgs = ([self.message(k, v, s) for k, v, s, _ in poison[:3]] + reqs[:30] +
                [self.message(k, v, s) for k, v, s, _ in poison[3:]] + reqs[30:])
        placed = self.publish(msgs)
        self.assertEqual(len(placed), len(msgs))
        poison_at = {(placed[i]["partition"], placed[i]["offset"]): msgs[i]
                     for i in range(len(msgs)) if msgs[i]["key"] in {p[0] for p in poison}}

        w1 = self.start_worker("w1", "--concurrency", "3")
        w2 = self.start_worker("w2", "--concurrency", "2")
        results = self.read(self.results, len(expect), timeout=90)
        dlq = self.read(self.dlq, len(poison), timeout=30)
        self.assertIsNone(w1.poll(), self.logs()[-3000:])
        self.assertIsNone(w2.poll(), self.logs()[-3000:])
        self.assertEqual(self.stop_worker(w1), 0, self.logs()[-3000:])
        self.assertEqual(self.stop_worker(w2), 0, self.logs()[-3000:])

        by_id = self.results_by_id(results)
        self.assertEqual(set(by_id), set(expect), self.logs()[-3000:])
        for rid, status in expect.items():
            self.assertEqual(len(by_id[rid]), 1, "request %s got %d results" % (rid, len(by_id[rid])))
            m, r = by_id[rid][0]
            self.assertEqual(r["status"], status, r)
            self.assertEqual(m["key"], r["metric"])
            self.assertEqual(m["headers"]["ce_type"], "dtk.check.result.v1")
            self.assertEqual(m["headers"]["ce_id"], rid)
            self.assertEqual(m["headers"]["content-type"], "application/json")
            # every result taken from the topic is a valid check result v1
            if RESULT_SCHEMA is not None or os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                RESULT_SCHEMA.validate(r)
            if status in ("ok", "anomaly"):
                self.assertEqual(r["execution_time"], "2024-11-02T14:30:00Z")
                self.assertEqual(r["worker"]["version"], "0.1.0")
                self.assertIsNotNone(r["datapoint"])
        self.assertIn("start the worker with --storage",
                      json.dumps(by_id[nostore_id][0][1]["errors"]))

        self.assertEqual(len(dlq), len(poison), [d["key"] for d in dlq])
        for d in dlq:
            h = d["headers"]
            origin = (int(h["dtk-origin-partition"]), int(h["dtk-origin-offset"]))
            self.assertIn(origin, poison_at)
            sent = poison_at[origin]
            self.assertEqual(h["dtk-origin-topic"], self.topic)
            self.assertEqual(d["key"], sent["key"])
            self.assertEqual(d["value"], sent["value"][:65536])
            # the worker's verdict is the codec's (msg_tool decode)
            p = subprocess.run([MSG, "decode", "--keys", KEY, "--signature",
                                sent["headers"]["dtk-signature"]],
                               input=sent["value"], capture_output=True, text=True)
            verdict = json.loads(p.stdout)
            self.assertEqual(h["dtk-error"], verdict["code"], d["key"])
            self.assertEqual(h["dtk-error-stage"], verdict["stage"], d["key"])
        errors = {d["key"]: d["headers"]["dtk-error"] for d in dlq}
        self.assertEqual(errors["p-huge"], "oversize")
        self.assertEqual(errors["p-notjson"], "not_json")
        self.assertEqual(errors["p-array"], "not_object")
        self.assertEqual(errors["p-v2"], "unknown_schema")
        self.assertEqual(errors["forged"], "bad_signature")
        self.assertEqual(len(self.read(self.dlq, 0, timeout=5)), len(poison))
        # the log is JSON lines and names no config value
        for _, path in self.procs:
            recs = self.log_records(path)
            self.assertTrue(recs)
            for rec in recs:
                self.assertIn("ts", rec)
                self.assertIn(rec["level"], ("debug", "info", "warn", "error"))
        self.assertNotIn(KEY, self.logs())

    def test_sigterm_finishes_running_checks_and_a_restart_does_not_redo_them(self):
        server = serve_json(self, value=7, delay=3)
        ids, msgs = [], []
        for i in range(8):
            name = "s%d" % i
            path = self.config(name, http_check(name, "%s/slow/%s" % (server.url, name),
                                                os.path.join(self.tmp.name, "slow.db"), 30))
            value = self.encode(name, path)
            ids.append(json.loads(value)["request_id"])
            msgs.append(self.message(name, value))
        self.publish(msgs)
        w = self.start_worker("drain1", "--concurrency", "3")
        deadline = time.time() + 60
        while time.time() < deadline:
            if len(server.seen()) >= 3:
                break
            time.sleep(0.05)
        started = len(server.seen())
        self.assertGreaterEqual(started, 3, self.logs()[-3000:])
        self.assertEqual(self.stop_worker(w), 0, self.logs()[-3000:])
        started_before_stop = server.seen()
        first = self.results_by_id(self.read(self.results, len(started_before_stop), 20))
        # every check that had started finished and was delivered
        self.assertGreaterEqual(len(first), len(started_before_stop), self.logs()[-3000:])
        for rid, rs in first.items():
            self.assertEqual(rs[0][1]["status"], "ok", rs[0][1])
        committed = json.loads(self.feed("committed", self.group, self.topic).stdout)
        self.assertEqual(sum(max(o, 0) for o in committed.values()), len(first), committed)

        w = self.start_worker("drain2", "--concurrency", "4")
        results = self.read(self.results, len(ids), 90)
        self.assertEqual(self.stop_worker(w), 0, self.logs()[-3000:])
        by_id = self.results_by_id(results)
        self.assertEqual(set(by_id), set(ids))
        for rid in ids:
            self.assertEqual(len(by_id[rid]), 1, rid)
        seen = server.seen()
        self.assertEqual(sorted(seen), sorted(set(seen)))  # no check ran twice
        self.assertEqual(len(seen), len(ids))

    def test_limiting_six_workers_never_exceed_max_connections(self):
        receiver = os.environ.get("DTK_RECEIVER_URL")
        redis = os.environ.get("DTK_REDIS_URL")
        if not receiver or not redis:
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                self.fail("DTK_RECEIVER_URL and DTK_REDIS_URL are needed")
            self.skipTest("needs the receiver and Redis (scripts/services.sh)")
        import urllib.request
        path = "/limit-%s" % self.prefix
        body = json.dumps({"path": path, "responses": [
            {"status": 200, "json": {"value": 5}, "delay": 0.3}]}).encode()
        urllib.request.urlopen(urllib.request.Request(
            receiver + "/_dtk/script", data=body, method="POST",
            headers={"Content-Type": "application/json"}), timeout=10).read()
        reqs = []
        for i in range(24):
            name = "lim%02d" % i
            cfg = self.config(name, textwrap.dedent("""\
                name: {name}
                collector:
                  type: http
                  params:
                    url: "{url}{path}/{name}"
                    value_path: value
                    retry_count: 1
                    timeout: 30
                    max_connections: 3
                detector: {{type: threshold, params: {{threshold: 1000}}}}
                storage: {{type: sqlite, params: {{path: "{db}"}}}}
                schedule: {{interval: "10 minutes", timeout: "10 minutes"}}
                """).format(name=name, url=receiver, path=path,
                            db=os.path.join(self.tmp.name, "lim.db")))
            value = self.encode(name, cfg)
            reqs.append(json.loads(value)["request_id"])
            self.publish([self.message(name, value)])
        env = dict(self.env, DTK_SIGNING_KEYS=KEY, DTK_REDIS_URL=redis)
        workers = [self.start_worker("lim%d" % i, "--concurrency", "4", env=env)
                   for i in range(6)]
        got = self.results_by_id(self.read(self.results, 24, timeout=120))
        for w in workers:
            self.assertEqual(self.stop_worker(w), 0)
        self.assertEqual(sorted(got), sorted(reqs))
        statuses = [r["status"] for lst in got.values() for _, r in lst]
        self.assertEqual(statuses.count("ok"), len(statuses), statuses)
        with urllib.request.urlopen(receiver + "/_dtk/concurrency?path=" + path,
                                    timeout=10) as resp:
            conc = json.loads(resp.read())
        self.assertEqual(conc["requests"], 24)
        self.assertLessEqual(conc["max_in_flight"], 3, conc)
        self.assertGreaterEqual(conc["max_in_flight"], 2, conc)  # the workers did overlap

    def test_bad_flags_exit_2_and_no_broker_exits_1(self):
        p = subprocess.run([WORKER], env=self.env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--brokers", p.stderr)
        p = subprocess.run([WORKER, "--brokers", BROKERS, "--concurrency", "0"],
                           env=self.env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([WORKER, "--brokers", BROKERS, "--allow-env", "DTK"],
                           env=self.env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([WORKER, "--brokers", BROKERS, "--kafka-prop",
                            "enable.auto.offset.store=true"],
                           env=self.env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([WORKER, "--brokers", "127.0.0.1:1", "--startup-timeout", "2"],
                           env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr[-2000:])
        self.assertIn("no Kafka broker reachable", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
