"""dtk-worker's main loop under valgrind (memcheck) against the real Kafka
broker and Redis of scripts/services.sh (alert state, limiter, /metrics
served and scraped): signed requests (ok and anomaly), an expired
one, a poison message (to the DLQ) and slow HTTP checks that are still
running when SIGTERM comes, so the drain path runs too. Asserts that the
worker answers every request it took, exits 0 after the drain, and that
valgrind reports no error and no definitely lost block.

ctest-labels: valgrind
Not in the integration tier: CI runs that tier again on an ASan build, which
valgrind cannot run; this test runs in the plain build's full ctest run."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
import urllib.request

from http_helpers import http_check, serve_json
from kafka_helpers import BROKERS, WORKER, KafkaHelpers

KEY = "valgrind-test-signing-key"
VALGRIND = shutil.which("valgrind")


class WorkerValgrind(KafkaHelpers, unittest.TestCase):
    KEY = KEY
    SERVICES = {"DTK_KAFKA_BROKERS": "kafka", "DTK_REDIS_URL": "redis"}

    def setUp(self):
        if not VALGRIND:
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                self.fail("valgrind is not installed (scripts/install-deps.sh installs it)")
            self.skipTest("valgrind is not installed")
        self.fleet_setup("dtk-vg-%d" % os.getpid())
        self.feed("create", "3", self.topic, self.results, self.dlq)

    def test_main_loop_and_drain_are_clean(self):
        msgs, quick = self.synthetic_requests("vg", 12, anomaly_every=4)
        msgs.append(self.message("poison", "not json {"))  # signed, not JSON
        self.publish(msgs)

        with socket.socket() as sock:  # a free port for /metrics
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        vglog = os.path.join(self.tmp.name, "valgrind.log")
        log = os.path.join(self.tmp.name, "worker.log")
        with open(log, "w") as f:
            w = subprocess.Popen(
                [VALGRIND, "--error-exitcode=99", "--leak-check=full",
                 "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                 "--num-callers=30", "--log-file=" + vglog,
                 WORKER, "--brokers", BROKERS, "--group", self.group, "--topic", self.topic,
                 "--results-topic", self.results, "--dlq-topic", self.dlq,
                 "--kafka-prop", "session.timeout.ms=30000", "--concurrency", "3",
                 "--redis", os.environ["DTK_REDIS_URL"], "--metrics-port", str(port),
                 "--drain-timeout", "120", "--startup-timeout", "120"],
                env=self.env, stdout=f, stderr=f)
        self.procs.append((w, log))

        def tail():
            with open(log) as f1, open(vglog) as f2:
                return f1.read()[-3000:] + "\n--- valgrind ---\n" + f2.read()[-6000:]

        got = {}
        for m in self.read(self.results, len(quick), timeout=240):
            r = json.loads(m["value"])
            got.setdefault(r["request_id"], []).append(r["status"])
        self.assertEqual({rid: s[0] for rid, s in got.items()}, quick, tail())
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
            self.assertIn("dtk_worker_checks_total", r.read().decode())
        dlq = self.read(self.dlq, 1, timeout=60)
        self.assertEqual(dlq[0]["headers"].get("dtk-error"), "not_json", dlq[0])

        # slow checks next: SIGTERM while they run, so the drain waits for them
        server = serve_json(self, value=7, delay=2)
        slow = []
        for i in range(4):
            name = "vgslow%d" % i
            path = self.config(name, http_check(name, "%s/slow/%s" % (server.url, name),
                                                os.path.join(self.tmp.name, "slow.db"), 60))
            value = self.encode(name, path)
            slow.append(self.message(name, value))
        self.publish(slow)
        deadline = time.time() + 180
        while time.time() < deadline and w.poll() is None:
            if server.seen():
                break
            time.sleep(0.05)
        self.assertTrue(server.seen(), "no slow check started\n" + tail())
        rc = self.stop_worker(w, timeout=300)
        started = len(server.seen())
        self.assertEqual(rc, 0, "exit %d (99: valgrind found errors)\n%s" % (rc, tail()))
        drained = {json.loads(m["value"])["request_id"]
                   for m in self.read(self.results, len(quick) + started, timeout=60)}
        self.assertGreaterEqual(len(drained), len(quick) + started, tail())

        with open(vglog) as f:
            report = f.read()
        self.assertIn("Memcheck", report)  # it did run under valgrind
        self.assertIn("Command: " + WORKER, report)
        with open(log) as f:
            drains = [json.loads(line) for line in f
                      if line.startswith("{") and '"draining' in line]
        self.assertTrue(drains and drains[0].get("running", 0) >= 1,
                        "SIGTERM did not find a check running\n" + tail())
        summary = re.findall(r"ERROR SUMMARY: (\d+) errors", report)
        self.assertTrue(summary, report[-3000:])
        self.assertEqual(summary[-1], "0", report[-6000:])
        lost = re.findall(r"definitely lost: ([\d,]+) bytes", report)
        self.assertTrue(all(x == "0" for x in lost), report[-6000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
