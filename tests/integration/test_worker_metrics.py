"""dtk-worker --metrics-port against the real Kafka broker (and Redis, when
running) of scripts/services.sh: after a worker ran a handful of requests,
/metrics counts them by status, counts the poison messages by DLQ error as the
DLQ topic's headers say, and parses as strict Prometheus text (0.0.4); /healthz
answers 200; /readyz answers 200 once the group is joined and 503 with a reason
while no broker answers; a second worker on the same port exits 1 naming it.

Requests are made with tests/tools/msg_tool and written and read back with
worker/tools/worker_feed, as in test_worker.py. Without DTK_KAFKA_BROKERS the
test skips (exit 77) unless DTK_REQUIRE_SERVICES=1."""
import math
import os
import re
import socket
import subprocess
import time
import unittest

from kafka_helpers import BROKERS, SYNTHETIC, WORKER, KafkaHelpers, now_ms
import urllib.error
import urllib.request

REDIS = os.environ.get("DTK_REDIS_URL")
KEY = "worker-metrics-test-signing-key"
PARTITIONS = 3

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$" % NAME)
PAIR = re.compile(r'(%s)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)' % LABEL)
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_exposition(text):
    """Parses Prometheus text format 0.0.4 strictly: every sample belongs to
    the family of the # TYPE line above it (histogram samples by their
    _bucket/_sum/_count suffix), names and labels are valid, values numeric,
    no series twice, histogram buckets cumulative up to +Inf == _count.
    Returns {family: {"type", "help", "samples": [(name, labels, value)]}};
    raises AssertionError on anything else."""
    families, current, seen = {}, None, set()
    assert text.endswith("\n"), "the body must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        assert line.strip(), "empty line: " + where
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert re.fullmatch(NAME, name), "bad name: " + where
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                if parts[1] == "TYPE":
                    assert len(parts) == 4 and parts[3] in TYPES, "bad type: " + where
                    assert fam["type"] is None, "TYPE twice: " + where
                    assert not fam["samples"], "TYPE after samples: " + where
                    fam["type"] = parts[3]
                    current = name
                else:
                    assert fam["help"] is None, "HELP twice: " + where
                    fam["help"] = parts[3] if len(parts) == 4 else ""
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample: " + where
        name, labeltext, value = m.group(1), m.group(2), m.group(3)
        labels = {}
        if labeltext:
            pos = 0
            while pos < len(labeltext):
                p = PAIR.match(labeltext, pos)
                assert p, "bad labels: " + where
                assert p.group(1) not in labels, "label twice: " + where
                labels[p.group(1)] = p.group(2)
                pos = p.end()
        assert value in ("+Inf", "-Inf", "NaN") or re.fullmatch(
            r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value), "value not numeric: " + where
        assert current, "sample before any # TYPE: " + where
        fam = families[current]
        if fam["type"] == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), \
                "sample outside its histogram family %s: %s" % (current, where)
            if name.endswith("_bucket"):
                assert "le" in labels, "bucket without le: " + where
        elif fam["type"] == "summary":
            assert name in (current, current + "_sum", current + "_count"), where
        else:
            assert name == current, "sample outside its family %s: %s" % (current, where)
        if fam["type"] == "counter":
            assert float(value) >= 0, "negative counter: " + where
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, "series twice: " + where
        seen.add(key)
        fam["samples"].append((name, labels, float(value)))
    for name, fam in families.items():
        assert fam["type"], "%s has HELP but no TYPE" % name
        if fam["type"] != "histogram":
            continue
        series = {}
        for sname, labels, value in fam["samples"]:
            rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            series.setdefault(rest, {"buckets": [], "count": None, "sum": None})
            s = series[rest]
            if sname.endswith("_bucket"):
                s["buckets"].append((float(labels["le"]), value))
            elif sname.endswith("_count"):
                s["count"] = value
            else:
                s["sum"] = value
        for rest, s in series.items():
            les = [le for le, _ in s["buckets"]]
            assert les == sorted(les) and les and math.isinf(les[-1]), (name, rest, les)
            counts = [c for _, c in s["buckets"]]
            assert counts == sorted(counts), "buckets not cumulative: %s %s" % (name, rest)
            assert s["count"] == counts[-1] and s["sum"] is not None, (name, rest)
    return families


def value_of(families, family, name=None, **labels):
    for sname, slabels, value in families[family]["samples"]:
        if sname == (name or family) and all(slabels.get(k) == v for k, v in labels.items()):
            return value
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path, timeout=5):
    """(status, body) of GET http://127.0.0.1:port/path; None while nothing
    listens."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None



class WorkerMetrics(KafkaHelpers, unittest.TestCase):
    KEY = KEY
    def setUp(self):
        self.fleet_setup("dtk-wm-%d-%s" % (os.getpid(), self._testMethodName[-12:]))

    # ---- helpers (as in test_worker.py) ----

    def start_worker(self, name, *extra, brokers=None):
        with open(os.path.join(self.tmp.name, name + ".log"), "w") as log:
            return self._spawn(log, name, brokers, extra)

    def _spawn(self, log, name, brokers, extra):
        args = [WORKER, "--brokers", brokers or BROKERS, "--group", self.group,
                "--topic", self.topic, "--results-topic", self.results, "--dlq-topic", self.dlq,
                "--kafka-prop", "session.timeout.ms=6000", "--drain-timeout", "30",
                "--startup-timeout", "30", *extra]
        p = subprocess.Popen(args, env=self.env, stdout=log, stderr=log)
        self.procs.append((p, log.name))
        return p

    def logs(self):
        return self.procs_output()[-3000:]

    def wait_for(self, port, path, status, timeout=60):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = get(port, path)
            if got and got[0] == status:
                return got
            time.sleep(0.2)
        self.fail("%s never answered %d (last: %r)\n%s" % (path, status, got, self.logs()))

    # ---- tests ----

    def test_metrics_count_what_happened_and_probes_answer(self):
        self.feed("create", str(PARTITIONS), self.topic, self.results, self.dlq)
        expect = {"ok": 3, "anomaly": 2, "expired": 1, "rejected": 1, "error": 0}
        msgs = []
        for i in range(3):
            msgs.append(self.message("ok%d" % i, self.encode("ok%d" % i,
                                                             self.synthetic("ok%d" % i))))
        for i in range(2):
            msgs.append(self.message("an%d" % i, self.encode(
                "an%d" % i, self.synthetic("an%d" % i, base=5000))))
        past = now_ms() - 120000
        msgs.append(self.message("late", self.encode("late", self.synthetic("late"),
                                                     dispatched_ms=past,
                                                     deadline_ms=past + 1000)))
        broken = self.config("broken", SYNTHETIC.replace("threshold, params",
                                                         "no_such_detector, params").format(
            name="broken", base=1, db="/tmp/x.db"))
        msgs.append(self.message("broken", self.encode("broken", broken)))
        # poison without a request id: DLQ only, no result
        msgs.append(self.message("p-notjson", "not json {"))
        msgs.append(self.message("p-array", "[1, 2, 3]"))
        self.assertEqual(len(self.publish(msgs)), len(msgs))

        port = free_port()
        extra = ["--metrics-port", str(port), "--concurrency", "2"]
        if REDIS:
            extra += ["--redis", REDIS]
        w = self.start_worker("w1", *extra)
        self.wait_for(port, "/healthz", 200, timeout=20)
        self.wait_for(port, "/readyz", 200)

        results = self.read(self.results, sum(expect.values()), timeout=90)
        dlq = self.read(self.dlq, 2, timeout=30)
        self.assertEqual(len(results), sum(expect.values()), self.logs())
        self.assertEqual(len(dlq), 2, self.logs())
        dlq_errors = {}
        for d in dlq:
            e = d["headers"]["dtk-error"]
            dlq_errors[e] = dlq_errors.get(e, 0) + 1

        # consumer lag comes with librdkafka's statistics every 5 s
        deadline = time.time() + 30
        while True:
            status, body = get(port, "/metrics")
            self.assertEqual(status, 200)
            fams = parse_exposition(body)
            lags = [s for s in fams["dtk_worker_consumer_lag"]["samples"]]
            if (lags and value_of(fams, "dtk_worker_consumer_lag_overall") == 0 and
                    value_of(fams, "dtk_worker_in_flight") == 0) or time.time() > deadline:
                break
            time.sleep(0.5)

        for status, n in expect.items():
            self.assertEqual(value_of(fams, "dtk_worker_checks_total", status=status), n,
                             (status, body))
        for error, n in dlq_errors.items():
            self.assertEqual(value_of(fams, "dtk_worker_dlq_total", error=error), n, body)
        self.assertEqual(sum(v for _, _, v in fams["dtk_worker_dlq_total"]["samples"]), 2)
        ran = expect["ok"] + expect["anomaly"] + expect["error"]
        for stage in ("collect", "store", "detect", "alert", "total"):
            self.assertEqual(value_of(fams, "dtk_worker_check_duration_seconds",
                                      "dtk_worker_check_duration_seconds_count", stage=stage),
                             ran, stage)
        self.assertEqual(value_of(fams, "dtk_worker_limiter_wait_seconds",
                                  "dtk_worker_limiter_wait_seconds_count"), ran)
        self.assertIsNotNone(value_of(fams, "dtk_worker_limiter_wait_seconds_total"))
        self.assertEqual(value_of(fams, "dtk_worker_results_undelivered_total"), 0)
        self.assertEqual(value_of(fams, "dtk_worker_up"), 1)
        self.assertEqual(value_of(fams, "dtk_worker_build_info", version="0.1.0"), 1)
        self.assertEqual(fams["dtk_worker_alerts_total"]["type"], "counter")
        self.assertTrue(lags, "no consumer lag from librdkafka statistics:\n" + body)
        self.assertEqual(sorted(int(l["partition"]) for _, l, _ in lags),
                         list(range(PARTITIONS)))
        self.assertEqual(value_of(fams, "dtk_worker_consumer_lag_overall"), 0, body)
        self.assertEqual(value_of(fams, "dtk_worker_in_flight"), 0)
        self.assertEqual(value_of(fams, "dtk_worker_assigned_partitions"), PARTITIONS)
        for _, _, v in fams["dtk_worker_check_duration_seconds"]["samples"]:
            self.assertGreaterEqual(v, 0)

        self.assertEqual(get(port, "/healthz"), (200, "ok\n"))
        self.assertEqual(get(port, "/readyz"), (200, "ok\n"))
        self.assertEqual(get(port, "/nothing-here")[0], 404)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port, data=b"x",
                                     method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 405)
        # an oversized request head is refused, and the server keeps serving
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            self.assertIn(b" 431 ", s.recv(200))
        self.assertEqual(get(port, "/healthz")[0], 200)

        # the port is taken: a second worker exits 1 and names it
        second = subprocess.run([WORKER, "--brokers", BROKERS, "--group", self.group,
                                 "--topic", self.topic, "--metrics-port", str(port)],
                                env=self.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(second.returncode, 1, second.stderr)
        self.assertIn("metrics port %d" % port, second.stderr)
        self.assertIn("in use", second.stderr)

        w.terminate()
        self.assertEqual(w.wait(timeout=60), 0, self.logs())

    def test_not_ready_while_no_broker_answers(self):
        closed = free_port()  # nothing listens there
        port = free_port()
        w = self.start_worker("w-nobroker", "--metrics-port", str(port),
                              brokers="127.0.0.1:%d" % closed)
        self.assertEqual(self.wait_for(port, "/healthz", 200, timeout=20), (200, "ok\n"))
        status, body = get(port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("not joined", body)
        fams = parse_exposition(get(port, "/metrics")[1])
        self.assertEqual(value_of(fams, "dtk_worker_assigned_partitions"), 0)
        self.assertEqual(fams["dtk_worker_consumer_lag"]["samples"], [])
        w.terminate()
        self.assertEqual(w.wait(timeout=30), 0, self.logs())


if __name__ == "__main__":
    unittest.main()
