"""What the worker tests share: the tools' paths, the synthetic config, and a
mixin that feeds, reads and signs messages through worker/tools/worker_feed
and tests/tools/msg_tool. Not a test itself (no test_ prefix)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
WORKER = os.path.join(BINARY, "worker", "dtk-worker")
FEED = os.path.join(BINARY, "worker", "worker_feed")
MSG = os.path.join(BINARY, "tests", "msg_tool")
BROKERS = os.environ.get("DTK_KAFKA_BROKERS")
T = 1730557800  # 2024-11-02T14:30:00Z

SYNTHETIC = """\
name: {name}
collector: {{type: synthetic, params: {{base: {base}}}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{type: sqlite, params: {{path: "{db}"}}}}
schedule: {{interval: "10 minutes", timeout: "10 minutes"}}
"""


def now_ms():
    return int(time.time() * 1000)


class KafkaHelpers:
    """For a unittest.TestCase (listed after this mixin) whose setUp makes
    self.tmp (a TemporaryDirectory), self.topic and self.procs ([(Popen,
    log path)]), with a class attribute KEY (the signing key). Skips the
    class (exit 77) without a broker, or without any variable of SERVICES,
    unless DTK_REQUIRE_SERVICES=1."""

    KEY = None
    # The variables the class needs and the scripts/services.sh service that
    # sets each (None: `services.sh env` prints it whatever runs).
    SERVICES = {"DTK_KAFKA_BROKERS": "kafka"}

    @classmethod
    def setUpClass(cls):
        missing = [name for name in cls.SERVICES if not os.environ.get(name)]
        if missing:
            start = " ".join(s for s in dict.fromkeys(cls.SERVICES.values()) if s)
            why = "%s %s not set (scripts/services.sh start %s)" % (
                ", ".join(missing), "is" if len(missing) == 1 else "are", start)
            if os.environ.get("DTK_REQUIRE_SERVICES") == "1":
                raise RuntimeError(why)
            print("skip: " + why)
            sys.exit(77)

    def tearDown(self):
        for p, _ in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.tmp.cleanup()

    def fleet_setup(self, prefix, keys=None):
        """For setUp: makes self.tmp and self.procs, names self.topic,
        self.results, self.dlq and self.group after prefix (self.prefix), and
        sets self.env: this environment without its DTK_ variables, with a
        state dir and HOME in self.tmp and DTK_SIGNING_KEYS keys (default the
        class KEY)."""
        self.tmp = tempfile.TemporaryDirectory()
        self.procs = []
        self.prefix = prefix
        self.topic = prefix + ".req"
        self.results = prefix + ".res"
        self.dlq = prefix + ".dlq"
        self.group = prefix + ".group"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        self.env.update({"DTK_STATE_DIR": os.path.join(self.tmp.name, "state"),
                         "HOME": self.tmp.name, "DTK_SIGNING_KEYS": keys or self.KEY})

    def procs_output(self):
        """What the processes of self.procs wrote to their logs, in start
        order."""
        text = ""
        for _, path in self.procs:
            with open(path) as f:
                text += f.read()
        return text

    def feed(self, *args, stdin=None, check=True, timeout=120):
        p = subprocess.run([FEED, args[0], BROKERS, *args[1:]], input=stdin,
                           capture_output=True, text=True, timeout=timeout)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        return p

    def read(self, topic, at_least, timeout=60, feed_timeout=120):
        """The messages of topic (read until at_least came or timeout s
        passed); feed_timeout bounds worker_feed itself."""
        p = self.feed("read", topic, str(at_least), str(timeout), check=False,
                      timeout=feed_timeout)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def config(self, name, text):
        path = os.path.join(self.tmp.name, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def synthetic(self, name, base=100):
        return self.config(name, SYNTHETIC.format(
            name=name, base=base, db=os.path.join(self.tmp.name, "store.db")))

    def encode(self, metric, path, deadline_ms=None, dispatched_ms=None):
        dispatched_ms = dispatched_ms or now_ms()
        deadline_ms = deadline_ms or dispatched_ms + 600000
        p = subprocess.run([MSG, "encode", "--metric", metric, "--config", path,
                            "--execution-time", str(T), "--dispatched-at-ms", str(dispatched_ms),
                            "--deadline-ms", str(deadline_ms)],
                           capture_output=True, text=True, check=True)
        return p.stdout

    def synthetic_requests(self, prefix, n, anomaly_every):
        """Signed requests for n synthetic checks prefix00, prefix01, ...
        (each anomaly_every-th from the first anomalous) then one, "late",
        already past its deadline: (messages, {request_id: the status each
        must get})."""
        msgs, expect = [], {}
        for i in range(n):
            name = "%s%02d" % (prefix, i)
            anomalous = i % anomaly_every == 0
            value = self.encode(name, self.synthetic(name, base=5000 if anomalous else 100))
            msgs.append(self.message(name, value))
            expect[json.loads(value)["request_id"]] = "anomaly" if anomalous else "ok"
        past = now_ms() - 120000
        value = self.encode("late", self.synthetic("late"), dispatched_ms=past,
                            deadline_ms=past + 1000)
        msgs.append(self.message("late", value))
        expect[json.loads(value)["request_id"]] = "expired"
        return msgs, expect

    def sign(self, value, key=None):
        p = subprocess.run([MSG, "sign", key or self.KEY], input=value, capture_output=True,
                           text=True, check=True)
        return p.stdout.strip()

    def message(self, key, value, key_to_sign=""):
        """A message signed with the class KEY (key_to_sign="" default), another
        key, or unsigned (key_to_sign=None)."""
        headers = {"content-type": "application/json"}
        if key_to_sign is not None:
            headers["dtk-signature"] = self.sign(value, key_to_sign or self.KEY)
        return {"key": key, "value": value, "headers": headers}

    def publish(self, messages):
        lines = "".join(json.dumps(m) + "\n" for m in messages)
        out = self.feed("produce", self.topic, stdin=lines).stdout
        return [json.loads(line) for line in out.splitlines()]

    def spawn_worker(self, log, *extra, env=None):
        """Starts dtk-worker on self.group, self.topic, self.results and
        self.dlq with the tests' session and drain timeouts, then extra, its
        output in the file log; the process joins self.procs (tearDown
        kills it)."""
        with open(log, "w") as f:
            p = subprocess.Popen([WORKER, "--brokers", BROKERS, "--group", self.group,
                                  "--topic", self.topic, "--results-topic", self.results,
                                  "--dlq-topic", self.dlq, "--kafka-prop",
                                  "session.timeout.ms=6000", "--drain-timeout", "30", *extra],
                                 env=env or self.env, stdout=f, stderr=f)
        self.procs.append((p, log))
        return p

    def stop_worker(self, p, timeout=60):
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout=timeout)
