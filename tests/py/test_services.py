"""The local services of scripts/services.sh and the HTTP receiver (docs/services.md).

ctest-labels: integration

Services the environment names (DTK_CLICKHOUSE_URL, DTK_POSTGRES_DSN,
DTK_MYSQL_DSN, DTK_ALERTMANAGER_URL, DTK_RECEIVER_URL, as exported by
`eval "$(scripts/services.sh env)"`) are reused; the others are started by
this test in a private DTK_SERVICES_DIR and stopped at the end. The lifecycle
tests (start twice, stop, status, start again) always use a private dir, so
they never stop what other tests are using.

A service that cannot run here (its package is missing) skips its tests, with
the reason, when run by hand; under DTK_REQUIRE_SERVICES=1 (scripts/test.sh)
it fails them instead. When every test was skipped the exit status is 77,
which ctest shows as "Not Run".
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.client import HTTPException

SOURCE_DIR = os.environ.get(
    "DTK_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY_DIR = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
SERVICES = os.path.join(SOURCE_DIR, "scripts", "services.sh")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
ALL = ["receiver", "clickhouse", "postgres", "mariadb", "alertmanager", "redis", "kafka"]

# What each service needs installed, and the variable that says it runs.
NEEDS = {
    "receiver": ["python3", "curl"],
    "clickhouse": ["clickhouse-server", "curl"],
    "postgres": ["/usr/lib/postgresql/15/bin/initdb", "psql"],
    "mariadb": ["mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin"],
    "alertmanager": ["prometheus-alertmanager", "curl"],
    "redis": ["redis-server", "redis-cli"],
    "kafka": ["java", "mvn", "kcat"],
}
MARKER = {
    "receiver": "DTK_RECEIVER_URL",
    "clickhouse": "DTK_CLICKHOUSE_URL",
    "postgres": "DTK_POSTGRES_DSN",
    "mariadb": "DTK_MYSQL_DSN",
    "alertmanager": "DTK_ALERTMANAGER_URL",
    "redis": "DTK_REDIS_URL",
    "kafka": "DTK_KAFKA_BROKERS",
}


def missing_tools(name):
    return [t for t in NEEDS[name] if not (os.access(t, os.X_OK) if t.startswith("/") else shutil.which(t))]


def services_sh(args, services_dir, check=True, timeout=120):
    env = dict(os.environ, DTK_SERVICES_DIR=services_dir)
    p = subprocess.run([SERVICES] + args, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("services.sh %s -> %d\n--- stdout\n%s--- stderr\n%s"
                             % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def parse_env(text):
    """The variables of `services.sh env` output (export NAME=VALUE lines)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"export (\w+)=(.*)$", line)
        if m:
            v = m.group(2)
            if len(v) >= 2 and v[0] == v[-1] == "'":
                v = v[1:-1]
            out[m.group(1)] = v
    return out


def private_dir():
    base = os.path.join(BINARY_DIR, "test-services")
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix="s", dir=base)
    os.chmod(d, 0o755)  # the postgres user must reach its cluster inside
    return d


def pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Services:
    """The services the tests talk to: the environment's, else our own."""

    env = {}
    own_dir = None
    unavailable = {}

    @classmethod
    def setup(cls):
        cls.env = {k: v for k, v in os.environ.items() if k.startswith("DTK_")}
        wanted = []
        for name in ALL:
            if MARKER[name] in cls.env:
                continue
            if REQUIRE:
                cls.unavailable[name] = ("%s is not set although DTK_REQUIRE_SERVICES=1: scripts/test.sh "
                                         "should have started %s" % (MARKER[name], name))
                continue
            tools = missing_tools(name)
            if tools:
                cls.unavailable[name] = ("%s not installed (missing %s); run scripts/install-services.sh"
                                         % (name, ", ".join(tools)))
                continue
            wanted.append(name)
        if not wanted:
            return
        cls.own_dir = private_dir()
        p = services_sh(["start"] + wanted, cls.own_dir, check=False)
        sys.stderr.write(p.stderr)
        cls.env.update(parse_env(services_sh(["env"] + wanted, cls.own_dir, check=False).stdout))
        for name in wanted:
            if MARKER[name] not in cls.env:
                cls.unavailable[name] = "%s did not start (services.sh start -> %d)" % (name, p.returncode)

    @classmethod
    def teardown(cls):
        if cls.own_dir:
            p = services_sh(["stop"], cls.own_dir, check=False)
            sys.stderr.write(p.stderr)
            if p.returncode == 0:
                shutil.rmtree(cls.own_dir, ignore_errors=True)


def setUpModule():
    Services.setup()


def tearDownModule():
    Services.teardown()


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers, body text) of one request; HTTP errors are answers too."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8")


class ServiceTestCase(unittest.TestCase):
    service = None

    def setUp(self):
        why = Services.unavailable.get(self.service)
        if why:
            if REQUIRE:
                self.fail(why)
            self.skipTest(why)
        self.env = Services.env


class ClickHouseTest(ServiceTestCase):
    service = "clickhouse"

    def query(self, sql, **params):
        q = urllib.parse.urlencode(dict(params, query=sql))
        return http("GET", "%s/?%s" % (self.env["DTK_CLICKHOUSE_URL"], q))

    def test_ping_and_ports_match_the_url(self):
        port = int(self.env["DTK_CLICKHOUSE_HTTP_PORT"])
        self.assertEqual(self.env["DTK_CLICKHOUSE_URL"], "http://127.0.0.1:%d" % port)
        self.assertEqual(http("GET", self.env["DTK_CLICKHOUSE_URL"] + "/ping")[2], "Ok.\n")
        socket.create_connection(("127.0.0.1", int(self.env["DTK_CLICKHOUSE_TCP_PORT"])), 5).close()

    def test_select_1_as_default_without_password(self):
        self.assertEqual(self.query("SELECT 1")[:3:2], (200, "1\n"))

    def test_select_1_as_dtk_with_password(self):
        self.assertEqual(self.query("SELECT 1", user="dtk", password="dtkpass")[:3:2], (200, "1\n"))
        self.assertEqual(self.env.get("DTK_CLICKHOUSE_USER"), "dtk")
        self.assertEqual(self.env.get("DTK_CLICKHOUSE_PASSWORD"), "dtkpass")

    def test_wrong_password_is_refused(self):
        status, _, body = self.query("SELECT 1", user="dtk", password="nope")
        self.assertNotEqual(status, 200)
        self.assertIn("password", body.lower())

    def test_server_timezone_is_utc(self):
        status, _, body = self.query("SELECT timezone(), toString(toDateTime(1730557800))")
        self.assertEqual(status, 200, body)
        tz, epoch = body.rstrip("\n").split("\t")
        self.assertIn(tz, ("UTC", "Etc/UTC"))
        self.assertEqual(epoch, "2024-11-02 14:30:00")

    def test_bucketing_query_of_the_tests_works_on_18_16(self):
        status, _, body = self.query("SELECT toDateTime(intDiv(toUInt32(toDateTime('2024-11-02 14:37:00')), 600) * 600)")
        self.assertEqual((status, body), (200, "2024-11-02 14:30:00\n"))


class PostgresTest(ServiceTestCase):
    service = "postgres"

    def psql(self, sql):
        return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.env["DTK_POSTGRES_DSN"],
                               "-c", sql], capture_output=True, text=True, timeout=30)

    def test_dsn_names_dtk_on_the_port(self):
        self.assertEqual(self.env["DTK_POSTGRES_DSN"],
                         "postgresql://dtk:dtkpass@127.0.0.1:%s/dtk" % self.env["DTK_POSTGRES_PORT"])

    def test_psql_as_dtk_in_database_dtk_in_utc(self):
        p = self.psql("SELECT current_user, current_database(), current_setting('TimeZone'), "
                      "(SELECT datdba::regrole FROM pg_database WHERE datname = 'dtk')")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "dtk|dtk|UTC|dtk")

    def test_dtk_can_create_and_drop_a_table(self):
        t = "t_" + uuid.uuid4().hex[:12]
        p = self.psql("CREATE TABLE %s (ts timestamptz, v double precision); "
                      "INSERT INTO %s VALUES ('2024-11-02 14:30:00+00', 1.5); "
                      "SELECT v FROM %s; DROP TABLE %s" % (t, t, t, t))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "1.5")

    def test_wrong_password_is_refused(self):
        dsn = self.env["DTK_POSTGRES_DSN"].replace("dtkpass", "nope")
        p = subprocess.run(["psql", "-X", "-At", dsn, "-c", "SELECT 1"], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("password authentication failed", p.stderr)


class MariaDBTest(ServiceTestCase):
    service = "mariadb"

    def mariadb(self, sql, password="dtkpass"):
        u = urllib.parse.urlsplit(self.env["DTK_MYSQL_DSN"])
        return subprocess.run(["mariadb", "--no-defaults", "--protocol=tcp", "-h", u.hostname, "-P", str(u.port),
                               "-u", u.username, "-p" + password, "-N", "-B", u.path.lstrip("/"), "-e", sql],
                              capture_output=True, text=True, timeout=30)

    def test_dsn_names_dtk_on_the_port(self):
        self.assertEqual(self.env["DTK_MYSQL_DSN"],
                         "mysql://dtk:dtkpass@127.0.0.1:%s/dtk" % self.env["DTK_MARIADB_PORT"])

    def test_client_as_dtk_in_database_dtk_in_utc(self):
        p = self.mariadb("SELECT current_user(), database(), @@time_zone, "
                         "UNIX_TIMESTAMP('2024-11-02 14:30:00')")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip().split("\t"), ["dtk@127.0.0.1", "dtk", "+00:00", "1730557800"])

    def test_dtk_can_create_and_drop_a_table(self):
        t = "t_" + uuid.uuid4().hex[:12]
        p = self.mariadb("CREATE TABLE %s (ts DATETIME, v DOUBLE); INSERT INTO %s VALUES "
                         "('2024-11-02 14:30:00', 1.5); SELECT v FROM %s; DROP TABLE %s" % (t, t, t, t))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "1.5")

    def test_wrong_password_is_refused(self):
        p = self.mariadb("SELECT 1", password="nope")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Access denied", p.stderr)


class AlertmanagerTest(ServiceTestCase):
    service = "alertmanager"

    def test_status_api_answers_with_clustering_off(self):
        status, _, body = http("GET", self.env["DTK_ALERTMANAGER_URL"] + "/api/v2/status")
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["cluster"]["status"], "disabled")
        self.assertIn("route:", doc["config"]["original"])

    def test_ready_and_accepts_an_alert(self):
        self.assertEqual(http("GET", self.env["DTK_ALERTMANAGER_URL"] + "/-/ready")[0], 200)
        name = "dtk_test_" + uuid.uuid4().hex[:8]
        alert = [{"labels": {"alertname": name, "metric": "m"}, "annotations": {"summary": "s"}}]
        status, _, body = http("POST", self.env["DTK_ALERTMANAGER_URL"] + "/api/v2/alerts",
                               json.dumps(alert), {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        status, _, body = http("GET", self.env["DTK_ALERTMANAGER_URL"] + "/api/v2/alerts?filter=alertname%3D" + name)
        self.assertEqual(status, 200, body)
        self.assertEqual([a["labels"]["alertname"] for a in json.loads(body)], [name])


class ReceiverTest(ServiceTestCase):
    """Each test owns a path prefix, so tests sharing the receiver never meet."""

    service = "receiver"

    def setUp(self):
        super().setUp()
        self.url = self.env["DTK_RECEIVER_URL"]
        self.prefix = "/t-%s" % uuid.uuid4().hex[:12]

    def tearDown(self):
        if hasattr(self, "prefix"):
            http("POST", "%s/_dtk/reset?path=%s" % (self.url, self.prefix))

    def script(self, responses, path=None, method=None):
        spec = {"path": path or self.prefix, "responses": responses}
        if method:
            spec["method"] = method
        status, _, body = http("POST", self.url + "/_dtk/script", json.dumps(spec))
        self.assertEqual(status, 200, body)

    def requests(self, path=None, **q):
        q["path"] = path or self.prefix
        status, _, body = http("GET", "%s/_dtk/requests?%s" % (self.url, urllib.parse.urlencode(q)), timeout=30)
        self.assertEqual(status, 200, body)
        return json.loads(body)["requests"]

    def call(self, method="GET", sub="/x", body=None, headers=None, timeout=10):
        return http(method, self.url + self.prefix + sub, body, headers, timeout)

    def test_unscripted_requests_get_200_ok_true(self):
        status, headers, body = self.call()
        self.assertEqual((status, json.loads(body)), (200, {"ok": True}))
        self.assertTrue(headers["Content-Type"].startswith("application/json"))

    def test_records_method_path_query_headers_and_json_body(self):
        before = time.time()
        self.call("POST", "/hooks/abc?channel=ops&x=1&x=2", json.dumps({"text": "spike ✓"}),
                  {"Content-Type": "application/json", "X-Dtk-Test": "yes"})
        [r] = self.requests()
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["path"], self.prefix + "/hooks/abc")
        self.assertEqual(r["query"], "channel=ops&x=1&x=2")
        self.assertEqual(r["query_params"], {"channel": ["ops"], "x": ["1", "2"]})
        self.assertEqual(r["headers"]["X-Dtk-Test"], "yes")
        self.assertEqual(r["json"], {"text": "spike ✓"})
        self.assertEqual(json.loads(r["body"]), {"text": "spike ✓"})
        self.assertGreaterEqual(r["time"], before - 1)
        self.assertRegex(r["time_iso"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

    def test_non_json_body_is_kept_as_text(self):
        self.call("PUT", "/csv", "a,b\n1,2\n", {"Content-Type": "text/csv"})
        [r] = self.requests()
        self.assertEqual((r["method"], r["body"], r["json"]), ("PUT", "a,b\n1,2\n", None))

    def test_requests_are_appended_to_the_jsonl_log(self):
        log = self.env.get("DTK_RECEIVER_LOG")
        if not log:
            self.skipTest("DTK_RECEIVER_LOG not set")
        self.call("POST", "/logged", "hello")
        with open(log, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if self.prefix in line]
        self.assertEqual([(r["path"], r["body"]) for r in lines], [(self.prefix + "/logged", "hello")])

    def test_500_then_200_then_the_last_repeats(self):
        self.script([{"status": 500, "body": "boom"}, {"status": 200, "json": {"done": 1}}])
        got = [self.call()[::2] for _ in range(3)]
        self.assertEqual(got, [(500, "boom"), (200, '{"done": 1}'), (200, '{"done": 1}')])
        self.assertEqual([r["response"]["status"] for r in self.requests()], [500, 200, 200])

    def test_500_forever(self):
        self.script([{"status": 500}])
        self.assertEqual([self.call()[0] for _ in range(4)], [500] * 4)

    def test_429_with_retry_after(self):
        self.script([{"status": 429, "headers": {"Retry-After": "1"}}, {"status": 200}])
        status, headers, _ = self.call()
        self.assertEqual((status, headers["Retry-After"]), (429, "1"))
        self.assertEqual(self.call()[0], 200)

    def test_longest_prefix_and_method_pick_the_script(self):
        self.script([{"status": 201}])
        self.script([{"status": 202}], path=self.prefix + "/deep")
        self.script([{"status": 203}], path=self.prefix + "/deep", method="POST")
        self.assertEqual(self.call("GET", "/other")[0], 201)
        self.assertEqual(self.call("GET", "/deep/x")[0], 202)
        self.assertEqual(self.call("POST", "/deep/x", "{}")[0], 203)

    def test_text_csv_and_prometheus_shaped_bodies(self):
        matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "api"}, "values": [[1730557800, "1.5"], [1730558400, "2"]]}]}}
        self.script([{"json": matrix}], path=self.prefix + "/api/v1/query_range")
        self.script([{"body": "ts,value\n2024-11-02 14:30:00,1.5\n", "content_type": "text/csv"}],
                    path=self.prefix + "/data.csv")
        self.script([{"body": "plain"}], path=self.prefix + "/plain")
        status, headers, body = self.call("GET", "/api/v1/query_range?query=up&start=1&end=2&step=60")
        self.assertEqual((status, headers["Content-Type"], json.loads(body)), (200, "application/json", matrix))
        status, headers, body = self.call("GET", "/data.csv")
        self.assertEqual((headers["Content-Type"], body), ("text/csv", "ts,value\n2024-11-02 14:30:00,1.5\n"))
        status, headers, body = self.call("GET", "/plain")
        self.assertEqual((headers["Content-Type"], body), ("text/plain; charset=utf-8", "plain"))
        [r] = self.requests(self.prefix + "/api/v1/query_range")
        self.assertEqual(r["query_params"]["query"], ["up"])

    def test_delay_and_timeout(self):
        self.script([{"delay": 0.5, "status": 200}])
        t0 = time.monotonic()
        self.assertEqual(self.call()[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.script([{"delay": 3}], path=self.prefix + "/slow")
        with self.assertRaises((socket.timeout, TimeoutError, urllib.error.URLError)):
            self.call("GET", "/slow", timeout=0.5)

    def test_drop_closes_without_an_answer(self):
        self.script([{"drop": True}])
        with self.assertRaises((ConnectionError, urllib.error.URLError, HTTPException)):
            self.call()

    def test_concurrency_counts_overlapping_requests_per_prefix(self):
        self.script([{"delay": 0.6}])
        threads = [threading.Thread(target=self.call, args=("GET", "/c%d" % i)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(2):
            self.call("GET", "/seq")
        status, _, body = http("GET", "%s/_dtk/concurrency?path=%s" % (self.url, self.prefix))
        c = json.loads(body)
        self.assertEqual((c["max_in_flight"], c["in_flight"], c["requests"]), (4, 0, 6))
        body = http("GET", "%s/_dtk/concurrency?path=%s/c1" % (self.url, self.prefix))[2]
        self.assertEqual(json.loads(body)["max_in_flight"], 1)

    def test_wait_for_requests_that_arrive_later(self):
        threading.Timer(0.3, self.call, args=("POST", "/late", "x")).start()
        t0 = time.monotonic()
        rs = self.requests(min=1, timeout=5)
        self.assertEqual(len(rs), 1)
        self.assertLess(time.monotonic() - t0, 4)

    def test_reset_forgets_only_its_prefix(self):
        other = "/t-%s" % uuid.uuid4().hex[:12]
        self.script([{"status": 500}])
        self.call()
        http("GET", self.url + other)
        http("POST", "%s/_dtk/reset?path=%s" % (self.url, self.prefix))
        self.assertEqual(self.requests(), [])
        self.assertEqual(self.call()[0], 200)
        self.assertEqual(len(self.requests(other)), 1)
        http("POST", "%s/_dtk/reset?path=%s" % (self.url, other))

    def test_bad_input_is_refused_and_the_receiver_lives_on(self):
        for spec in ["not json", "[]", '{"path": "/x"}', '{"path": "x", "responses": [{}]}',
                     '{"path": "/x", "responses": [{"status": 99}]}',
                     '{"path": "/x", "responses": [{"delay": -1}]}',
                     '{"path": "/x", "responses": [{"headers": {"A": "b\\r\\nc"}}]}',
                     '{"path": "/x", "responses": [{"bogus": 1}]}', "\xff"]:
            status, _, body = http("POST", self.url + "/_dtk/script", spec.encode("latin-1"))
            self.assertEqual(status, 400, spec)
            self.assertIn("error", json.loads(body))
        self.assertEqual(http("GET", self.url + "/_dtk/nope")[0], 404)
        # a body over 16 MiB is refused, a malformed request line gets 400
        status, _, _ = self.call("POST", "/big", b"x" * (16 * 1024 * 1024 + 1))
        self.assertEqual(status, 413)
        u = urllib.parse.urlsplit(self.url)
        with socket.create_connection((u.hostname, u.port), 5) as s:
            s.sendall(b"GET / NOT-HTTP\r\n\r\n")
            self.assertIn(b"400", s.recv(100))
        with socket.create_connection((u.hostname, u.port), 5) as s:
            s.sendall(("POST %s/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\nzz\r\n\r\n" % self.prefix).encode())
            self.assertIn(b"400", s.recv(100))
        self.assertEqual(http("GET", self.url + "/_dtk/health")[0], 200)

    def test_chunked_bodies_are_read(self):
        u = urllib.parse.urlsplit(self.url)
        with socket.create_connection((u.hostname, u.port), 5) as s:
            s.sendall(("POST %s/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" % self.prefix).encode())
            self.assertIn(b"200", s.recv(100))
        [r] = self.requests()
        self.assertEqual(r["body"], "hello world")


class LifecycleTest(unittest.TestCase):
    """start, start again, status, env, use, stop, status, start again, in a private dir."""

    @classmethod
    def setUpClass(cls):
        cls.names = [n for n in ALL if not missing_tools(n)]
        cls.dir = private_dir()

    @classmethod
    def tearDownClass(cls):
        p = services_sh(["stop"], cls.dir, check=False)
        if p.returncode == 0:
            shutil.rmtree(cls.dir, ignore_errors=True)
        else:
            sys.stderr.write(p.stderr)

    def setUp(self):
        missing = [n for n in ALL if n not in self.names]
        if missing:
            why = "not installed: %s; run scripts/install-services.sh" % ", ".join(missing)
            if REQUIRE:
                self.fail(why)
            self.skipTest(why)

    def pids(self):
        out = {}
        for n in self.names:
            with open(os.path.join(self.dir, n, "pid")) as f:
                out[n] = int(f.read())
        return out

    def status(self):
        p = services_sh(["status"], self.dir, check=False)
        rows = {}
        for line in p.stdout.splitlines():
            f = line.split()
            rows[f[0]] = (f[1], f[2], f[3])
        return p.returncode, rows

    def test_lifecycle(self):
        t0 = time.monotonic()
        services_sh(["start"], self.dir)
        first = time.monotonic() - t0
        self.assertLess(first, 60)
        pids = self.pids()

        p = services_sh(["start"], self.dir)
        self.assertEqual(self.pids(), pids)
        for n in self.names:
            self.assertIn("%s already running" % n, p.stderr)

        rc, rows = self.status()
        self.assertEqual(rc, 0)
        for n in self.names:
            self.assertEqual(rows[n], ("pid=%d" % pids[n], rows[n][1], "up"))

        env = parse_env(services_sh(["env"], self.dir).stdout)
        for var in ["DTK_CLICKHOUSE_HTTP_PORT", "DTK_CLICKHOUSE_TCP_PORT", "DTK_POSTGRES_PORT", "DTK_POSTGRES_DSN",
                    "DTK_MARIADB_PORT", "DTK_MYSQL_DSN", "DTK_ALERTMANAGER_URL", "DTK_RECEIVER_URL",
                    "DTK_REDIS_URL", "DTK_KAFKA_BROKERS"]:
            self.assertIn(var, env)
        self.assertEqual(env["DTK_SERVICES_DIR"], self.dir)

        # use them: data that must survive a restart, and an alert that
        # Alertmanager routes to the receiver's /alertmanager webhook
        psql = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", env["DTK_POSTGRES_DSN"], "-c"]
        subprocess.run(psql + ["CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"], check=True,
                       capture_output=True, timeout=30)
        alert = [{"labels": {"alertname": "dtk_lifecycle"}, "annotations": {"summary": "x"}}]
        self.assertEqual(http("POST", env["DTK_ALERTMANAGER_URL"] + "/api/v2/alerts", json.dumps(alert),
                              {"Content-Type": "application/json"})[0], 200)
        body = http("GET", env["DTK_RECEIVER_URL"] + "/_dtk/requests?path=/alertmanager&min=1&timeout=20",
                    timeout=30)[2]
        [hook] = json.loads(body)["requests"]
        self.assertEqual(hook["json"]["alerts"][0]["labels"]["alertname"], "dtk_lifecycle")

        services_sh(["stop"], self.dir)
        rc, rows = self.status()
        self.assertEqual(rc, 3)
        for n in self.names:
            self.assertEqual((rows[n][0], rows[n][2]), ("pid=-", "down"))
            self.assertFalse(pid_running(pids[n]), "%s pid %d still running after stop" % (n, pids[n]))
            self.assertFalse(os.path.exists(os.path.join(self.dir, n, "pid")))
        self.assertEqual(parse_env(services_sh(["env"], self.dir).stdout), {"DTK_SERVICES_DIR": self.dir})

        services_sh(["start"], self.dir)
        again = self.pids()
        self.assertEqual(self.status()[0], 0)
        env2 = parse_env(services_sh(["env"], self.dir).stdout)
        p = subprocess.run(psql[:-1] + [env2["DTK_POSTGRES_DSN"], "-c", "SELECT v FROM kept"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "42", p.stderr)
        for n in self.names:
            self.assertNotEqual(again[n], pids[n])
        services_sh(["stop"], self.dir)

    def test_stop_never_signals_a_process_it_did_not_start(self):
        root = private_dir()
        d = os.path.join(root, "receiver")
        os.makedirs(d)
        bystander = subprocess.Popen(["sleep", "60"])
        try:
            with open(os.path.join(d, "pid"), "w") as f:
                f.write("%d\n" % bystander.pid)
            p = services_sh(["stop", "receiver"], root)
            self.assertIn("not running", p.stderr)
            self.assertIsNone(bystander.poll())
            self.assertFalse(os.path.exists(os.path.join(d, "pid")))
            self.assertIn("down", services_sh(["status", "receiver"], root, check=False).stdout)
        finally:
            bystander.kill()
            bystander.wait()
            shutil.rmtree(root, ignore_errors=True)

    def test_unknown_service_and_command_are_usage_errors(self):
        self.assertEqual(services_sh(["start", "nosuch"], self.dir, check=False).returncode, 2)
        self.assertEqual(services_sh(["restart"], self.dir, check=False).returncode, 2)


if __name__ == "__main__":
    prog = unittest.main(exit=False)
    r = prog.result
    if r.wasSuccessful() and r.testsRun and len(r.skipped) == r.testsRun:
        sys.exit(77)
    sys.exit(0 if r.wasSuccessful() else 1)
