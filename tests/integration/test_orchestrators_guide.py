"""docs/orchestrators.md, run: every fenced block of the guide, in order, in one
scratch directory, against this build.

ctest-labels: integration;orchestrators

- yaml: a metric config; its first line `# PATH` says where it goes; written
  there and `dtk validate PATH` must exit 0.
- sh: run with `bash -e` and this build's dtk, dtk-dispatch and the cron
  wrapper integrations/cron/dtk-cron-run on PATH; a command whose line ends
  with `# exit N` must exit N, every other command 0.
- text: the output of the block before it. Without `...` it must be the
  whole stdout (blank lines aside); with it, each line (`...` standing for
  anything, a line of only `...` for lines skipped) must match a whole stdout
  line, in order.
- python: run with the detectk package (integrations/python/src,
  DTK_LIBRARY=this build's libdtk); `# exit N` on its last line sets the
  expected exit code.
- ini: a systemd unit or drop-in, first line `# /etc/systemd/system/NAME`;
  installed as NAME into a copy of integrations/systemd (binaries rewritten to
  this build) and `systemd-analyze verify` of the unit (and the instance's
  service and timer) must print nothing and exit 0; a drop-in named like a
  shipped file must be identical to it.
- cron: every entry has 5 valid fields; the command's flags (through
  dtk-cron-run) are in that binary's --help; an entry for /etc/dtk/ is one
  of integrations/cron/*.crontab's, word for word.
- Any other kind of block fails the test.

Blocks that use $DTK_KAFKA_BROKERS or $DTK_REDIS_URL run with the Kafka and
Redis of scripts/services.sh (DTK_KAFKA_BROKERS, DTK_REDIS_URL), topics of
this run (DTK_TOPIC, ...), a signing key, and two real dtk-worker processes
started here. Without those services they are skipped, the other blocks still
run, and the test then exits 77 (fails under DTK_REQUIRE_SERVICES=1).
$METRICS_API_URL is a local HTTP server here that answers {"value": 42}
after 0.3 s and records how many requests it had at once: in every block that
calls it (the in-process one, the fleet one, where the workers get
--allow-env METRICS_, and the in-process one counting in Redis) the guide's max_connections: 2 must hold: 2 at once
reached (the checks did run in parallel), never more.

Also with those services: the first line of integrations/cron/detectk-fleet.crontab
runs through dtk-cron-run (brokers and config dir pointed at this run's),
publishes the realtime group minus `experimental`, waits for the workers'
results and exits 0, with the report in its log.
"""
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "py"))
from kafka_helpers import BINARY, BROKERS, SOURCE, WORKER, KafkaHelpers  # noqa: E402
from test_orchestrator_files import (ANALYZE, BINARIES, CRON_DIR, CRONTABS, FLAG_RE,  # noqa: E402
                                     SYSTEMD_DIR, cron_run_argv, parse_crontab, staged_systemd_dir)

GUIDE = os.path.join(SOURCE, "docs", "orchestrators.md")
REDIS = os.environ.get("DTK_REDIS_URL")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
LIBDTK = os.path.join(BINARY, "core", "libdtk.so")
PY_SRC = os.path.join(SOURCE, "integrations", "python", "src")
KEY = "orchestrators-guide-signing-key"
KINDS = ("yaml", "sh", "text", "python", "ini", "cron")
MARK_RE = re.compile(r"\s+#\s*exits?\s+(\d+)\b[^'\"]*$")
SERVICE_RE = re.compile(r"\$\{?DTK_(KAFKA_BROKERS|REDIS_URL)\b")
BIN_PATH_RE = re.compile(r"(?<=[\s=])/\S*/(dtk(?:-dispatch|-worker)?)(?=\s|$)")


class GuideError(AssertionError):
    pass


def blocks(markdown):
    """[(kind, text, line)] of every fenced block; an unclosed fence fails."""
    out, cur = [], None
    for n, line in enumerate(markdown.splitlines(), 1):
        if cur is None:
            m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
            if m:
                cur = (m.group(1), m.group(2), n, [])
        elif line.strip() == cur[0]:
            out.append((cur[1], "\n".join(cur[3]) + "\n", cur[2]))
            cur = None
        else:
            cur[3].append(line)
    if cur is not None:
        raise GuideError("line %d: a fence that is never closed" % cur[2])
    return out


def check_kinds(found):
    for kind, _, line in found:
        if kind not in KINDS:
            raise GuideError("line %d: a block of kind %r, which this test cannot run or check "
                             "(known: %s)" % (line, kind or "(none)", ", ".join(KINDS)))
        if kind == "text" and line == found[0][2]:
            raise GuideError("line %d: a text block with no block before it" % line)


def instrument(script):
    """The sh block with `cmd  # exit N` lines checked for exit N."""
    out, pending = [], []
    for n, line in enumerate(script.splitlines(), 1):
        pending.append(line)
        if line.endswith("\\"):
            continue
        m = MARK_RE.search(line)
        if m:
            want = int(m.group(1))
            pending[-1] = line[:m.start()]
            cmd = "\n".join(pending)
            out.append("__rc=0\n%s || __rc=$?\nif [ \"$__rc\" -ne %d ]; then echo \"guide line +%d: exit "
                       "$__rc, the guide says %d\" >&2; exit 99; fi" % (cmd, want, n, want))
        else:
            out.extend(pending)
        pending = []
    out.extend(pending)
    return "set -e\n" + "\n".join(out) + "\n"


def match_text(expected, actual):
    """None when the output matches, else the first expected line that did
    not (or a description). Without `...` the output must be exactly the
    expected lines; with it, each expected line must match a whole output
    line, in order."""
    lines = [ln.rstrip() for ln in actual.splitlines()]
    if "..." not in expected:
        want = [ln.rstrip() for ln in expected.strip("\n").splitlines()]
        got = [ln for ln in lines if ln]
        if want != got:
            return "exactly %r (got %r)" % (want, got)
        return None
    i = 0
    for want in expected.splitlines():
        want = want.rstrip()
        if not want or want == "...":
            continue
        rx = re.compile(".*".join(re.escape(p) for p in want.split("...")))
        while i < len(lines) and not rx.fullmatch(lines[i]):
            i += 1
        if i == len(lines):
            return want
        i += 1
    return None


def sanitizer_preload():
    """LD_PRELOAD for python blocks when libdtk is an ASan build."""
    out = subprocess.run(["ldd", LIBDTK], capture_output=True, text=True).stdout
    libs = re.findall(r"\s(lib(?:asan|ubsan)\.so\S*)\s+=>\s+(\S+)", out)
    return ":".join(p for _, p in libs)


class Source(http.server.BaseHTTPRequestHandler):
    lock = threading.Lock()
    now = peak = total = 0

    def do_GET(self):
        if not self.path.startswith("/orders?shard="):
            self.send_response(404)
            self.end_headers()
            return
        cls = type(self)
        with cls.lock:
            cls.now += 1
            cls.total += 1
            cls.peak = max(cls.peak, cls.now)
        try:
            time.sleep(0.3)
            body = json.dumps({"value": 42}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with cls.lock:
                cls.now -= 1

    def log_message(self, *a):
        pass


class Guide(KafkaHelpers, unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        pass  # no skip here: the blocks that need no service run anyway

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="dtk-guide-")
        self.procs = []
        self.work = os.path.join(self.tmp.name, "work")
        os.makedirs(os.path.join(self.tmp.name, "home"))
        os.makedirs(self.work)
        self.units = staged_systemd_dir(self.tmp.name)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Source)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.env = {
            "PATH": ":".join([os.path.join(BINARY, "cli"), os.path.join(BINARY, "dispatcher"), CRON_DIR,
                              os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
            "HOME": os.path.join(self.tmp.name, "home"), "TZ": "UTC", "LANG": "C.UTF-8",
            "DTK_STATE_DIR": os.path.join(self.work, "state"),
            "METRICS_API_URL": "http://127.0.0.1:%d" % self.server.server_address[1],
            "PYTHONPATH": PY_SRC, "DTK_LIBRARY": LIBDTK, "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.services = None
        self.helps = {}

    # ---- services ----

    def start_services(self):
        if self.services is not None:
            return self.services
        if not (BROKERS and REDIS):
            self.services = False
            return False
        prefix = "dtk-guide-%d" % os.getpid()
        topics = {"DTK_TOPIC": prefix + ".req", "DTK_RESULTS_TOPIC": prefix + ".res",
                  "DTK_DLQ_TOPIC": prefix + ".dlq"}
        self.feed("create", "3", *topics.values())
        wenv = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        wenv.update(topics)
        wenv.update({"DTK_SIGNING_KEYS": KEY, "DTK_STATE_DIR": os.path.join(self.tmp.name, "wstate"),
                     "HOME": self.env["HOME"], "METRICS_API_URL": self.env["METRICS_API_URL"]})
        for i in range(2):
            with open(os.path.join(self.tmp.name, "worker%d.log" % i), "w") as log:
                p = subprocess.Popen(
                    [WORKER, "--brokers", BROKERS, "--group", prefix + ".group", "--redis", REDIS,
                     "--storage", "sqlite:///" + os.path.join(self.tmp.name, "fleet.db"),
                     "--kafka-prop", "session.timeout.ms=6000", "--drain-timeout", "10",
                     "--startup-timeout", "30", "--log-format", "text", "--allow-env", "METRICS_"],
                    env=wenv, stdout=log, stderr=log)
            self.procs.append((p, log.name))
        self.services = dict(topics, DTK_KAFKA_BROKERS=BROKERS, DTK_REDIS_URL=REDIS, DTK_SIGNING_KEY=KEY)
        return self.services

    def worker_logs(self):
        text = ""
        for _, path in self.procs:
            with open(path) as f:
                text += f.read()[-3000:]
        return text

    # ---- block runners ----

    def help_flags(self, words):
        binary = words[0]
        if binary == "dtk" and len(words) > 1:
            key = ("dtk", words[1])
            argv = [BINARIES["dtk"], words[1], "--help"]
        else:
            key = (binary,)
            argv = [BINARIES[binary], "--help"]
        if key not in self.helps:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            self.helps[key] = set(FLAG_RE.findall(out.stdout + out.stderr))
        return self.helps[key]

    def run_yaml(self, text, line):
        first = text.splitlines()[0]
        m = re.match(r"^# (configs/\S+\.ya?ml)$", first)
        self.assertIsNotNone(m, "line %d: a yaml block must start with '# configs/PATH.yaml'" % line)
        path = os.path.join(self.work, m.group(1))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        out = subprocess.run([BINARIES["dtk"], "validate", m.group(1)], capture_output=True, text=True,
                             cwd=self.work, env=self.env, timeout=60)
        self.assertEqual(out.returncode, 0, "line %d: %s%s" % (line, out.stdout, out.stderr))
        self.assertIn("OK ", out.stdout)

    def run_sh(self, text, line, env):
        script = os.path.join(self.tmp.name, "block%d.sh" % line)
        with open(script, "w") as f:
            f.write(instrument(text))
        out = subprocess.run(["bash", script], capture_output=True, text=True, cwd=self.work, env=env,
                             timeout=600)
        extra = "\n--- workers\n" + self.worker_logs() if env is not self.env else ""
        self.assertEqual(out.returncode, 0, "sh block at line %d:\n%s\n--- stdout\n%s--- stderr\n%s%s"
                         % (line, text, out.stdout, out.stderr[-5000:], extra))
        return out.stdout

    def run_python(self, text, line):
        script = os.path.join(self.tmp.name, "block%d.py" % line)
        with open(script, "w") as f:
            f.write(text)
        last = text.rstrip().splitlines()[-1]
        m = MARK_RE.search(last)
        want = int(m.group(1)) if m else 0
        env = dict(self.env)
        preload = sanitizer_preload()
        if preload:
            env.update(LD_PRELOAD=preload, ASAN_OPTIONS="detect_leaks=0")
        out = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=self.work,
                             env=env, timeout=300)
        self.assertEqual(out.returncode, want, "python block at line %d:\n--- stdout\n%s--- stderr\n%s"
                         % (line, out.stdout, out.stderr[-5000:]))
        return out.stdout

    def run_ini(self, text, line):
        need = ANALYZE is not None
        if not need:
            if REQUIRE:
                self.fail("systemd-analyze is not installed")
            return "skipped"
        first = text.splitlines()[0]
        m = re.match(r"^# /etc/systemd/system/(\S+)$", first)
        self.assertIsNotNone(m, "line %d: an ini block must start with '# /etc/systemd/system/NAME'" % line)
        name = m.group(1)
        shipped = os.path.join(SYSTEMD_DIR, name)
        if os.path.exists(shipped):
            with open(shipped) as f:
                body = [ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith("#")]
            self.assertEqual([ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")],
                             body, "line %d: the guide's %s differs from the shipped file" % (line, name))
        path = os.path.join(self.units, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(BIN_PATH_RE.sub(lambda mm: BINARIES[mm.group(1)], text))
        unit = name.split(".d/")[0] if ".d/" in name else name
        base, kind = unit.rsplit(".", 1)
        targets = ["./" + unit]
        other = base + (".service" if kind == "timer" else ".timer")
        template = re.sub(r"@[^.]+$", "@", base) + other[len(base):]
        if os.path.exists(os.path.join(self.units, other)) or os.path.exists(os.path.join(self.units, template)):
            targets.append("./" + other)
        if kind == "timer":
            self.assertGreater(len(targets), 1, "line %d: %s has no service beside it" % (line, unit))
        out = subprocess.run([ANALYZE, "verify", *targets], capture_output=True, text=True, cwd=self.units,
                             timeout=120)
        self.assertEqual((out.returncode, out.stdout + out.stderr), (0, ""),
                         "ini block at line %d (%s)" % (line, " ".join(targets)))
        return "verified"

    def run_cron(self, text, line):
        entries = parse_crontab(text)
        self.assertTrue(entries, "line %d: a cron block without entries" % line)
        shipped = set()
        for path in CRONTABS:
            with open(path) as f:
                shipped |= {" ".join(fields + command.split()) for _, fields, command in parse_crontab(f.read())}
        for n, fields, command in entries:
            if command.startswith("dtk-cron-run") and "/etc/dtk/" in command:
                # an excerpt of integrations/cron/*.crontab, not a variant of it
                self.assertIn(" ".join(fields + command.split()), shipped, "line %d" % (line + n))
            words = command.split()
            if words[0] == "dtk-cron-run":
                _, _, words = cron_run_argv(command)
            self.assertIn(words[0], BINARIES, "line %d: %s" % (line + n, command))
            known = self.help_flags(words)
            for flag in FLAG_RE.findall(" ".join(words)):
                self.assertIn(flag, known, "line %d: %s is not in %s --help" % (line + n, flag, words[0]))
        return "parsed"

    # ---- the tests ----

    def test_unknown_or_unclosed_blocks_fail(self):
        check_kinds(blocks("a\n```sh\nls\n```\n```text\nx\n```\n"))
        for md in ("```bash\nls\n```\n", "```\nplain\n```\n", "```sh\nls\n", "```text\nx\n```\n"):
            with self.assertRaises(GuideError, msg=md):
                check_kinds(blocks(md))
        self.assertEqual(match_text("a\n...\nc ... e\n", "a\nb\nc d e\n"), None)
        self.assertEqual(match_text("...\nc\na\n", "a\nb\nc\n"), "a")
        self.assertEqual(match_text("...\na b\n", "a b c\n"), "a b")
        self.assertEqual(match_text("a\nb\n", "a\n\nb\n"), None)
        self.assertIsNotNone(match_text("a\n", "a\nb\n"))  # no `...`: nothing extra
        self.assertIsNotNone(match_text("a b\n", "a b c\n"))
        out = subprocess.run(["bash", "-c", instrument("false  # exit 1\ntrue  # exit 3\n")],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 99)
        self.assertIn("exit 0, the guide says 3", out.stderr)
        out = subprocess.run(["bash", "-c", instrument("false\necho after\n")], capture_output=True,
                             text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertNotIn("after", out.stdout)

    def test_fleet_crontab_line(self):
        # The first line of integrations/cron/detectk-fleet.crontab, run as cron
        # would (through dtk-cron-run), with its brokers and config dir pointed
        # at this run's: it publishes, waits for the workers, and exits 0.
        services = self.start_services()
        if not services:
            msg = "no Kafka/Redis (scripts/services.sh start kafka redis)"
            if REQUIRE:
                self.fail(msg)
            self.skipTest(msg)
        configs = os.path.join(self.work, "etc-configs")
        os.makedirs(configs)
        for name, tags in (("rt_one", "realtime"), ("rt_two", "realtime, api"), ("rt_new", "realtime, experimental")):
            with open(os.path.join(configs, name + ".yaml"), "w") as f:
                f.write("name: %s\ntags: [%s]\ncollector: {type: synthetic, params: {base: 10, seed: 2}}\n"
                        "detector: {type: threshold, params: {threshold: 100}}\n"
                        "schedule: {interval: \"5 minutes\"}\n" % (name, tags))
        with open(CRONTABS[1]) as f:
            _, fields, command = parse_crontab(f.read())[0]
        self.assertEqual(fields[0], "*/5")
        opts, name, cmd = cron_run_argv(command)
        cmd = [configs if w == "/etc/dtk/configs" else BROKERS if w == "kafka1:9092,kafka2:9092" else w
               for w in cmd]
        self.assertIn(BROKERS, cmd)
        env_file = os.path.join(self.tmp.name, "dispatch.env")
        with open(env_file, "w") as f:
            for k in ("DTK_SIGNING_KEY", "DTK_TOPIC", "DTK_RESULTS_TOPIC", "DTK_DLQ_TOPIC"):
                f.write("%s=%s\n" % (k, services[k]))
        logs = os.path.join(self.tmp.name, "cronlog")
        out = subprocess.run(["dtk-cron-run", "-e", env_file, "-l", logs, "-k", os.path.join(self.tmp.name, "lock"),
                              name, *cmd], capture_output=True, text=True, env=self.env, timeout=300)
        with open(os.path.join(logs, name + ".log")) as f:
            log = f.read()
        self.assertEqual(out.returncode, 0, out.stderr + log + self.worker_logs())
        self.assertRegex(log, r"\(Kafka, [^)]*\): selected 2, published 2, ok 2, anomaly 0, error 0, "
                              r"expired 0, rejected 0, missing 0")
        self.assertNotIn("rt_new", log)
        self.assertRegex(log, r"realtime: end: exit 0 after \d+s")

    def test_guide(self):
        with open(GUIDE) as f:
            markdown = f.read()
        found = blocks(markdown)
        check_kinds(found)
        for link in ("(airflow.md)", "(prefect.md)", "(fleet.md)"):
            self.assertIn(link, markdown)
        counts, skipped, limited, last = {}, [], [], None
        for kind, text, line in found:
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "text":
                if last is None:
                    skipped.append(line)
                    continue
                self.assertIsInstance(last, str, "line %d: the block before a text block printed nothing"
                                      % line)
                missing = match_text(text, last)
                self.assertIsNone(missing, "text block at line %d: %r not in the output:\n%s"
                                  % (line, missing, last))
                continue
            last = None
            if kind == "yaml":
                self.run_yaml(text, line)
            elif kind == "sh":
                env = self.env
                uses = set(SERVICE_RE.findall(text))
                if uses:
                    services = self.start_services()
                    if not services:
                        skipped.append(line)
                        continue
                    # only what the block names: DTK_KAFKA_BROKERS in the
                    # environment would turn every dtk-dispatch into a publisher
                    env = dict(self.env)
                    if "REDIS_URL" in uses:
                        env["DTK_REDIS_URL"] = services["DTK_REDIS_URL"]
                    if "KAFKA_BROKERS" in uses:
                        env.update({k: v for k, v in services.items() if k != "DTK_REDIS_URL"})
                with Source.lock:
                    Source.peak = Source.total = 0
                last = self.run_sh(text, line, env)
                if Source.total:
                    # max_connections: 2 held in this block, and its checks overlapped
                    print("sh block at line %d: %d requests to the source, at most %d at once"
                          % (line, Source.total, Source.peak), file=sys.stderr)
                    self.assertEqual(Source.peak, 2, "line %d: the source saw %d requests at once"
                                     % (line, Source.peak))
                    limited.append(line)
            elif kind == "python":
                last = self.run_python(text, line)
            elif kind == "ini":
                self.run_ini(text, line)
                last = ""
            elif kind == "cron":
                self.run_cron(text, line)
                last = ""
        # every kind the guide promises is there
        for kind in KINDS:
            self.assertGreater(counts.get(kind, 0), 0, kind)
        # the limit was seen in-process and, with the services, in the fleet
        # and in-process with its count in Redis
        self.assertEqual(len(limited), 1 if skipped else 3, limited)
        if skipped:
            msg = "no Kafka/Redis (scripts/services.sh start kafka redis): blocks at lines %s not run" % skipped
            if REQUIRE:
                self.fail(msg)
            self.skipTest(msg)


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.skipped else 0)
