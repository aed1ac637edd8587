"""dtk-worker started with bad input (issue 6, "Bad input"): a wrong broker
address, a wrong Redis URL, a --metrics-port already in use. Each exits with
a status an orchestrator can act on and says why in one line:

- exit 2 at once, one `dtk-worker: ...` line on stderr: a setting that can
  never work (a malformed --brokers entry, a malformed --redis URL, a
  --metrics-port out of range, no --brokers, a librdkafka property that
  librdkafka refuses or that the worker sets itself, named with where it
  came from: --kafka-prop, DTK_KAFKA_PROP_<NAME> or the settings file);
- exit 1 at once: --metrics-port in use (checked before anything waits);
- exit 1 after --startup-timeout: no broker answers (nothing listens, the
  host does not resolve, the server is not Kafka), or Redis does not (nothing
  listens, a wrong password, a database that does not exist, not Redis),
  with one JSON log line at level error that names the address and the cause
  (librdkafka's last error, Redis's answer) and never a password. While it
  waits, /healthz and /readyz tell a probe (degraded: not ready).

Runs against the real Kafka broker and Redis of scripts/services.sh for the
cases that need the other service to work; the others need neither. Short
--startup-timeout values keep it quick. Without DTK_KAFKA_BROKERS /
DTK_REDIS_URL those cases skip (fail under DTK_REQUIRE_SERVICES=1).
"""
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from kafka_helpers import BROKERS, WORKER
from test_worker_metrics import free_port, get

REDIS = os.environ.get("DTK_REDIS_URL")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
STARTUP = 3  # --startup-timeout for the cases that wait
PASSWORD = "s3cret-pw-4711"


def need(value, what):
    if not value:
        msg = "%s is not set (scripts/services.sh start kafka redis)" % what
        if REQUIRE:
            raise AssertionError(msg)
        raise unittest.SkipTest(msg)


class Server:
    """A TCP server on 127.0.0.1 that answers every connection with `answer`
    (after reading what the client sends first, when `read_first`) and
    closes: an address that points at the wrong service."""

    def __init__(self, answer, read_first=False):
        self.answer, self.read_first = answer, read_first
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(2)
                while self.read_first:
                    data = c.recv(4096)
                    if not data:
                        break
                    c.sendall(self.answer)
                if not self.read_first:
                    c.sendall(self.answer)
            except OSError:
                pass
            c.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


class StartErrors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        self.env.update({"DTK_STATE_DIR": os.path.join(self.tmp.name, "state"),
                         "HOME": self.tmp.name, "DTK_SIGNING_KEYS": "start-errors-key"})
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.tmp.cleanup()

    def run_worker(self, *args, env=None, timeout=STARTUP + 30):
        """(exit status, stderr, seconds) of dtk-worker ARGS (JSON logs)."""
        e = dict(self.env)
        e.update(env or {})
        start = time.monotonic()
        p = subprocess.run([WORKER, "--startup-timeout", str(STARTUP), "--group", "dtk-start-errors",
                            "--topic", "dtk-start-errors.req", *args],
                           capture_output=True, text=True, env=e, timeout=timeout)
        return p.returncode, p.stderr, time.monotonic() - start

    def assert_usage_error(self, args, expect, env=None):
        """Exit 2 at once with one `dtk-worker: ...` line containing expect."""
        rc, err, took = self.run_worker(*args, env=env)
        self.assertEqual(rc, 2, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("dtk-worker: "), err)
        self.assertIn(expect, lines[0])
        self.assertLess(took, 2, "a setting error must not wait for --startup-timeout")
        return lines[0]

    def assert_startup_failure(self, args, expect, env=None):
        """Exit 1 after about --startup-timeout, every stderr line one JSON
        object, exactly one error line saying `expect` (a regex)."""
        rc, err, took = self.run_worker(*args, env=env)
        self.assertEqual(rc, 1, err[-3000:])
        self.assertGreaterEqual(took, STARTUP - 0.5)
        self.assertLess(took, STARTUP + 20, "exited long after --startup-timeout")
        records = []
        for line in err.splitlines():
            rec = json.loads(line)  # one object per line, nothing else
            self.assertIsInstance(rec, dict, line)
            records.append(rec)
        final = [r for r in records if r["level"] == "error" and "within --startup-timeout" in r["msg"]]
        self.assertEqual(len(final), 1, err[-3000:])
        self.assertNotIn("\n", final[0]["msg"])
        self.assertRegex(final[0]["msg"], expect)
        self.assertNotIn(PASSWORD, err)
        return final[0]["msg"]

    # ---- the broker ----

    def test_broker_address_malformed_exits_2_at_once(self):
        for brokers, expect in (
                ("foo:bar:baz", "'foo:bar:baz' is not HOST:PORT (an IPv6 address goes in brackets"),
                ("kafka:99999", "port '99999' is not a number from 1 to 65535"),
                ("kafka:9092,kafka 2:9092", "' ' cannot be in a host name"),
                ("http://kafka:9092/", "port '9092/' is not a number"),
                (" , ", "names no broker")):
            with self.subTest(brokers=brokers):
                self.assert_usage_error(["--brokers", brokers], expect)
        # the same from the environment
        self.assert_usage_error([], "'kafka:0': port '0'", env={"DTK_KAFKA_BROKERS": "kafka:0"})
        self.assert_usage_error([], "--brokers is required")

    def test_broker_not_listening_exits_1(self):
        port = free_port()
        msg = self.assert_startup_failure(["--brokers", "127.0.0.1:%d" % port],
                                          r"^no Kafka broker reachable at 127\.0\.0\.1:%d within "
                                          r"--startup-timeout \(%d s\): " % (port, STARTUP))
        self.assertIn("Connection refused", msg)

    def test_broker_host_unknown_exits_1(self):
        msg = self.assert_startup_failure(["--brokers", "no-such-host.invalid:9092"],
                                          r"^no Kafka broker reachable at no-such-host\.invalid:9092 ")
        self.assertRegex(msg, r"resolve|Name or service not known|Temporary failure")

    def test_broker_is_not_kafka_exits_1(self):
        srv = Server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        try:
            self.assert_startup_failure(["--brokers", "127.0.0.1:%d" % srv.port],
                                        r"^no Kafka broker reachable at 127\.0\.0\.1:%d " % srv.port)
        finally:
            srv.close()

    def test_waiting_for_the_broker_is_visible_to_probes(self):
        """Degraded while it waits: healthy at first, never ready; then exit 1."""
        port, mport = free_port(), free_port()
        e = dict(self.env)
        p = subprocess.Popen([WORKER, "--brokers", "127.0.0.1:%d" % port, "--startup-timeout", "12",
                              "--metrics-port", str(mport)], env=e, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        deadline = time.time() + 10
        got = None
        while time.time() < deadline and not got:
            got = get(mport, "/readyz")
            time.sleep(0.1)
        self.assertEqual(got[0], 503, got)
        self.assertIn("not joined", got[1])
        self.assertEqual(get(mport, "/healthz")[0], 200)
        # after 10 s without a poll /healthz turns 503 too (the liveness and
        # startup probes of deploy/k8s allow for it)
        time.sleep(10.5)
        status, body = get(mport, "/healthz")
        self.assertEqual(status, 503, body)
        self.assertIn("has not polled Kafka", body)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, err[-2000:])
        self.assertIn("no Kafka broker reachable", err)

    # ---- librdkafka properties ----

    def settings_file(self, *props):
        path = os.path.join(self.tmp.name, "worker.yaml")
        with open(path, "w") as f:
            f.write("kafka_prop:\n" + "".join("  - %s\n" % p for p in props))
        return path

    def test_kafka_property_refused_names_where_it_came_from(self):
        """Exit 2 at once, before connecting, naming the property and its
        origin; a value that may be a secret is not echoed."""
        brokers = ["--brokers", "127.0.0.1:%d" % free_port()]
        self.assert_usage_error(brokers + ["--kafka-prop", "no.such.prop=1"],
                                "Kafka property 'no.such.prop' (--kafka-prop): No such "
                                "configuration property")
        self.assert_usage_error(brokers, "Kafka property 'no.such.prop' (from "
                                "DTK_KAFKA_PROP_NO_SUCH_PROP): No such configuration property",
                                env={"DTK_KAFKA_PROP_NO_SUCH_PROP": "1"})
        path = self.settings_file("client.rack=a", "linger.ms=soon")
        self.assert_usage_error(brokers + ["--config", path],
                                "Kafka property 'linger.ms' (kafka_prop in %s): Invalid value"
                                % path)
        self.assert_usage_error(brokers + ["--kafka-prop", "linger.ms"],
                                "--kafka-prop 'linger.ms': expected NAME=VALUE")
        path = self.settings_file("sasl.password:" + PASSWORD)
        line = self.assert_usage_error(brokers + ["--config", path],
                                       "kafka_prop in %s: an entry is not NAME=VALUE" % path)
        self.assertNotIn(PASSWORD, line)
        line = self.assert_usage_error(brokers, "environment variable DTK_KAFKA_PROP_: not a "
                                       "property", env={"DTK_KAFKA_PROP_": PASSWORD})
        self.assertNotIn(PASSWORD, line)

    def test_kafka_property_the_worker_sets_is_refused_from_every_origin(self):
        brokers = ["--brokers", "127.0.0.1:%d" % free_port()]
        self.assert_usage_error(brokers + ["--kafka-prop", "bootstrap.servers=elsewhere:9092"],
                                "--kafka-prop bootstrap.servers is set by the worker itself "
                                "(use --brokers / --group)")
        self.assert_usage_error(brokers, "--kafka-prop group.id is set by the worker itself",
                                env={"DTK_KAFKA_PROP_GROUP_ID": "dtk-start-errors"})
        path = self.settings_file("enable.auto.offset.store=true")
        self.assert_usage_error(brokers + ["--config", path],
                                "--kafka-prop enable.auto.offset.store is set by the worker "
                                "itself (offsets are stored only after a result was delivered)")

    # ---- Redis ----

    def redis_parts(self):
        need(BROKERS, "DTK_KAFKA_BROKERS")
        need(REDIS, "DTK_REDIS_URL")
        m = re.match(r"redis://(?:[^@]*@)?([^:/]+):(\d+)", REDIS)
        return m.group(1), int(m.group(2))

    def test_redis_url_malformed_exits_2_at_once(self):
        for url, expect in (("http://redis:6379/0", "must start with redis://"),
                            ("redis://redis:0/0", "the port must be a number 1..65535"),
                            ("redis://redis:6379/first", "the path must be a database number"),
                            ("redis://:%s@redis:99999/0" % PASSWORD, "port")):
            with self.subTest(url=url):
                line = self.assert_usage_error(["--brokers", "127.0.0.1:9092", "--redis", url], expect)
                self.assertTrue(line.startswith("dtk-worker: --redis: "), line)
                self.assertNotIn(PASSWORD, line)
        self.assert_usage_error(["--brokers", "127.0.0.1:9092"], "must start with redis://",
                                env={"DTK_REDIS_URL": "localhost:6379"})

    def test_redis_not_listening_exits_1(self):
        need(BROKERS, "DTK_KAFKA_BROKERS")
        port = free_port()
        msg = self.assert_startup_failure(["--brokers", BROKERS, "--redis", "redis://127.0.0.1:%d/0" % port],
                                          r"^Redis not reachable within --startup-timeout: Redis "
                                          r"redis://127\.0\.0\.1:%d/0: " % port)
        self.assertIn("Connection refused", msg)

    def test_redis_wrong_password_exits_1(self):
        host, port = self.redis_parts()
        msg = self.assert_startup_failure(
            ["--brokers", BROKERS, "--redis", "redis://:%s@%s:%d/0" % (PASSWORD, host, port)],
            r"^Redis not reachable within --startup-timeout: Redis redis://\*\*\*@")
        self.assertIn("AUTH failed", msg)

    def test_redis_database_missing_exits_1(self):
        host, port = self.redis_parts()
        msg = self.assert_startup_failure(["--brokers", BROKERS, "--redis", "redis://%s:%d/4242" % (host, port)],
                                          r"^Redis not reachable within --startup-timeout: ")
        self.assertIn("SELECT failed", msg)

    def test_redis_wants_a_password_exits_1(self):
        """A server that takes the connection but refuses PING (a Redis with
        requirepass and a URL without the password) is not usable Redis."""
        need(BROKERS, "DTK_KAFKA_BROKERS")
        srv = Server(b"-NOAUTH Authentication required.\r\n", read_first=True)
        try:
            msg = self.assert_startup_failure(
                ["--brokers", BROKERS, "--redis", "redis://127.0.0.1:%d/0" % srv.port],
                r"^Redis not reachable within --startup-timeout: Redis redis://127\.0\.0\.1:%d/0: "
                r"PING: NOAUTH Authentication required\.$" % srv.port)
        finally:
            srv.close()
        self.assertNotIn("connected to Redis", msg)

    def test_redis_url_points_at_kafka_exits_1(self):
        need(BROKERS, "DTK_KAFKA_BROKERS")
        host, _, port = BROKERS.split(",")[0].rpartition(":")
        self.assert_startup_failure(["--brokers", BROKERS, "--redis", "redis://%s:%s/0" % (host, port)],
                                    r"^Redis not reachable within --startup-timeout: ")

    # ---- the metrics port ----

    def test_metrics_port_in_use_exits_1_at_once(self):
        holder = socket.socket()
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        try:
            # a broker that does not answer: the port is checked before any wait
            rc, err, took = self.run_worker("--brokers", "127.0.0.1:%d" % free_port(),
                                            "--metrics-port", str(port))
        finally:
            holder.close()
        self.assertEqual(rc, 1, err)
        self.assertLess(took, 2, "the port must be checked before waiting for the broker")
        errors = [json.loads(line) for line in err.splitlines()]
        errors = [r for r in errors if r["level"] == "error"]
        self.assertEqual(len(errors), 1, err)
        self.assertEqual(errors[0]["msg"], "metrics port %d: Address already in use (another process "
                                           "listens there: pick another --metrics-port)" % port)

    def test_metrics_port_out_of_range_exits_2(self):
        for port in ("0", "65536", "http"):
            with self.subTest(port=port):
                self.assert_usage_error(["--brokers", "127.0.0.1:9092", "--metrics-port", port],
                                        "metrics-port")


if __name__ == "__main__":
    unittest.main(verbosity=2)
