"""The Airflow example DAGs of integrations/airflow/dags (docs/airflow.md)
with a real, pinned apache-airflow (the cached virtualenv of
scripts/airflow-venv.sh, SQLite metadata in a temp AIRFLOW_HOME, no example
DAGs) against the real fleet: the Kafka and Redis of scripts/services.sh and
two dtk-worker processes started here.

- The DAG files import without errors in a DagBag, with the DAG ids,
  schedules, timezones and tasks the configs ask for.
- schedule.interval -> Airflow schedule, for several hundred intervals in
  every spelling config.md allows: each cron expression fires exactly on
  DetectK's interval grid (croniter), each timedelta is an interval for which
  the obvious cron (*/7, 0 */5, 0 0 */2) would not, and dtk-dispatch --due
  selects exactly the configs whose schedule fires in sampled minutes.
- `airflow dags test` of each example DAG at fixed logical dates (every
  config has an explicit schedule.timeout; nothing depends on the clock),
  asserting task states in the metadata DB, the dtk-dispatch exit code of
  each task, XCom contents and the results the workers published:
  (a) dispatch by tags: a task whose checks succeed succeeds (an anomaly
      without --fail-on-anomaly included), the --fail-on-anomaly one fails
      with exit 3 on an anomaly;
  (b) MetricCheck: the check result objects in XCom, a failing check and a
      critical anomaly fail their tasks, the summary task sums them up;
  (c) generated DAGs: a check whose source errors fails its task (exit 1),
      its neighbour succeeds;
  (d) --due: only the configs due in the run's minute are dispatched.

Skips (exit 77) without DTK_KAFKA_BROKERS / DTK_REDIS_URL, or when PyPI is
unreachable and no Airflow venv is cached, unless DTK_REQUIRE_SERVICES=1.

ctest-labels: integration;airflow
"""
import datetime
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from kafka_helpers import BINARY, BROKERS, FEED, SOURCE, WORKER, KafkaHelpers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import sanitizers  # noqa: E402  (tests/py/sanitizers.py)

REDIS = os.environ.get("DTK_REDIS_URL")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
DAGS = os.path.join(SOURCE, "integrations", "airflow", "dags")
DISPATCH = os.path.join(BINARY, "dispatcher", "dtk-dispatch")
LIBDTK = os.path.join(BINARY, "core", "libdtk.so")
KEY = "airflow-test-signing-key"

METRIC = """\
name: {name}
tags: [{tags}]
{extra}collector: {collector}
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{type: sqlite, params: {{path: "{db}"}}}}
schedule: {{interval: "{interval}", timeout: "2 minutes"}}
"""
NORMAL = "{type: synthetic, params: {base: 100}}"
SPIKE = "{type: synthetic, params: {base: 5000}}"  # above the threshold: an anomaly
# a source that errors: SQLite sources never create a missing database
BROKEN = ('{type: sql, params: {connection_string: "sqlite:////nonexistent/dtk-airflow.db", '
          'query: "select 1 as value where \'{{ period_start }}\' < \'{{ period_finish }}\'"}}')

# (logical date of each `airflow dags test`; the DAG's data interval ends there)
T_TAGS = "2024-11-02T14:30:00+00:00"
T_CHECK = "2024-11-02T14:20:00+00:00"
T_GENERATED = "2024-11-02T14:20:00+00:00"
T_DUE = "2024-11-02T14:10:00+00:00"  # a 10-minute slot starts, an hourly one does not

UNIT_SECONDS = {"s": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
                "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400,
                "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


def skip_or_fail(reason):
    if REQUIRE:
        raise RuntimeError(reason)
    print("skip: " + reason, flush=True)
    sys.exit(77)


def sanitizer_env(env):
    """libdtk built with ASan loads into the uninstrumented Airflow python
    only with the sanitizer runtimes preloaded (tests/py/sanitizers.py)."""
    sanitizers.preload_env(LIBDTK, env)


# Runs in the Airflow venv: the schedule of every interval and, for each,
# whether it reproduces DetectK's grid over a window, plus the configs firing
# at each sampled minute. Input and output are JSON.
MAPPING = r"""
import datetime, json, sys, zoneinfo
from croniter import croniter
from detectk.config import ConfigLoader
from detectk_airflow import interval_schedule, schedule_timezone

UTC = datetime.timezone.utc
ORIGIN = datetime.datetime(1970, 1, 5)  # naive: UTC below a day, local wall time above

def grid(seconds, tz, start, end):
    # DetectK's slot starts in [start, end): ORIGIN + k*seconds, in local
    # wall time from one day up (core/config/config.c dtk_config_align)
    zone = zoneinfo.ZoneInfo(tz)
    local = start.astimezone(zone).replace(tzinfo=None) - datetime.timedelta(days=1)
    k = (local - ORIGIN) // datetime.timedelta(seconds=seconds)
    out = []
    while True:
        t = (ORIGIN + k * datetime.timedelta(seconds=seconds)).replace(tzinfo=zone)
        t = t.astimezone(UTC)
        if t >= end:
            return out
        if t >= start:
            out.append(int(t.timestamp()))
        k += 1

def fires(expr, tz, start, end):
    it = croniter(expr, start.astimezone(zoneinfo.ZoneInfo(tz)) - datetime.timedelta(seconds=1))
    out = []
    while True:
        t = it.get_next(datetime.datetime).astimezone(UTC)
        if t >= end:
            return out
        out.append(int(t.timestamp()))

def naive_crons(seconds):
    # what a hand-written table would say (wrong unless the step divides)
    out = []
    if seconds % 60 == 0 and seconds < 3600:
        out.append("*/%d * * * *" % (seconds // 60))
    if seconds % 3600 == 0 and seconds < 86400:
        out.append("0 */%d * * *" % (seconds // 3600))
    if seconds % 86400 == 0:
        out.append("0 0 */%d * *" % (seconds // 86400))
        out.append("0 0 * * %d" % (seconds // 86400 % 7))
    return out

req = json.load(sys.stdin)
loader = ConfigLoader()
start = datetime.datetime(2024, 3, 1, tzinfo=UTC)  # spans the March DST change
out = {"configs": [], "firing": {}}
for path in req["paths"]:
    cfg = loader.load(path)
    s = cfg.schedule.interval_seconds
    tz = schedule_timezone(s, cfg.timezone)
    end = start + max(datetime.timedelta(seconds=60 * s), datetime.timedelta(days=3))
    expected = grid(s, tz, start, end)
    sched = interval_schedule(s)
    item = {"path": path, "name": cfg.name, "interval": cfg.schedule.interval, "seconds": s,
            "tz": tz, "slots": len(expected)}
    if isinstance(sched, str):
        item["cron"] = sched
        item["cron_is_grid"] = fires(sched, tz, start, end) == expected
    else:
        item["timedelta"] = sched.total_seconds()
        item["naive_crons_on_grid"] = [c for c in naive_crons(s)
                                       if fires(c, tz, start, end) == expected]
    out["configs"].append(item)
    for t in req["minutes"]:
        m = datetime.datetime.fromtimestamp(t, UTC)
        # --due at a whole minute: a slot starts exactly then
        nxt = m + datetime.timedelta(seconds=1)
        hit = fires(sched, tz, m, nxt) if isinstance(sched, str) else grid(s, tz, m, nxt)
        if hit:
            out["firing"].setdefault(str(t), []).append(cfg.name)
print(json.dumps(out))
"""

DAGBAG = r"""
import json, os, pathlib
from airflow.dag_processing.dagbag import BundleDagBag

def schedule(d):
    return d.schedule if isinstance(d.schedule, str) else d.schedule.total_seconds()

def bag():
    # as the dag processor parses the dags-folder bundle (its path on sys.path)
    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    b = BundleDagBag(dag_folder=folder, bundle_path=pathlib.Path(folder))
    return {"errors": {k: str(v) for k, v in b.import_errors.items()},
            "dags": {d.dag_id: {"schedule": schedule(d),
                                "timetable": type(d.timetable).__name__,
                                "timezone": str(getattr(d.timetable, "timezone", d.timezone)),
                                "catchup": d.catchup, "tags": sorted(d.tags),
                                "tasks": {t.task_id: getattr(t, "bash_command", None)
                                          for t in d.tasks}}
                     for d in b.dags.values()}}

out = {"all": bag()}
os.environ["DTK_AIRFLOW_TAGS"] = "ops,team"
out["filtered"] = bag()
print(json.dumps(out))
"""


class Airflow(KafkaHelpers, unittest.TestCase):
    KEY = KEY

    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # the broker skip rule of kafka_helpers
        if not REDIS:
            skip_or_fail("DTK_REDIS_URL is not set (scripts/services.sh start redis)")
        venv = subprocess.run(["bash", os.path.join(SOURCE, "scripts", "airflow-venv.sh")],
                              capture_output=True, text=True, timeout=1800)
        if venv.returncode == 3:
            skip_or_fail(venv.stderr.strip().splitlines()[-1])
        if venv.returncode != 0:
            raise RuntimeError("scripts/airflow-venv.sh failed:\n" + venv.stderr[-3000:])
        cls.python = venv.stdout.strip()
        cls.airflow = os.path.join(os.path.dirname(cls.python), "airflow")
        cls.tmpdir = tempfile.TemporaryDirectory()
        cls.dir = cls.tmpdir.name
        cls.workers = []
        try:
            cls.start_fleet()
            cls.write_configs()
            cls.run_airflow()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p, _ in cls.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        cls.workers = []
        cls.tmpdir.cleanup()

    # the workers and the runs belong to the class: nothing per test (the
    # mixin's setUp/tearDown would make and remove a fleet per test)
    def setUp(self):
        pass

    def tearDown(self):
        pass

    # ---- the fleet and the runs, once for the class ----

    @classmethod
    def start_fleet(cls):
        prefix = "dtk-af-%d" % os.getpid()
        cls.topic, cls.results, dlq = prefix + ".req", prefix + ".res", prefix + ".dlq"
        subprocess.run([FEED, "create", BROKERS, "3", cls.topic, cls.results, dlq], check=True,
                       capture_output=True, timeout=120)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        env.update(HOME=cls.dir, DTK_STATE_DIR=os.path.join(cls.dir, "worker-state"),
                   DTK_SIGNING_KEYS=KEY)
        for i in range(2):
            log = os.path.join(cls.dir, "worker%d.log" % i)
            with open(log, "w") as f:
                p = subprocess.Popen([WORKER, "--brokers", BROKERS, "--group", prefix + ".group",
                                      "--topic", cls.topic, "--results-topic", cls.results,
                                      "--dlq-topic", dlq, "--redis", REDIS, "--concurrency", "2",
                                      "--kafka-prop", "session.timeout.ms=6000",
                                      "--startup-timeout", "30"],
                                     env=env, stdout=f, stderr=f)
            cls.workers.append((p, log))

    @classmethod
    def config(cls, sub, name, tags="", collector=NORMAL, interval="10 minutes", extra=""):
        d = os.path.join(cls.dir, sub)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name + ".yaml")
        with open(path, "w") as f:
            f.write(METRIC.format(name=name, tags=tags, collector=collector, interval=interval,
                                  extra=extra, db=os.path.join(cls.dir, sub + ".db")))
        return path

    @classmethod
    def write_configs(cls):
        # (a) dispatch by tags
        cls.config("tags", "crit_ok", "critical")
        cls.config("tags", "crit_spike", "critical", SPIKE)
        cls.config("tags", "web_ok", "web")
        cls.config("tags", "web_spike", "web", SPIKE)
        # (b) MetricCheck, in process
        cls.check_paths = [cls.config("check", "chk_ok", "web"),
                           cls.config("check", "chk_spike", "web", SPIKE),
                           cls.config("check", "chk_crit_spike", "critical", SPIKE),
                           cls.config("check", "chk_broken", "web", BROKEN)]
        # (c) generated DAGs
        cls.config("generated", "gen_ok", "team", interval="10min")
        cls.config("generated", "gen_broken", "team", BROKEN)
        cls.config("generated", "gen_daily", "team, critical", interval="1d",
                   extra="timezone: Europe/Berlin\n")
        cls.config("generated", "gen_ops", "ops, team", interval="90 minutes")
        cls.config("generated", "gen_plain", "", interval="1 hour")
        # (d) --due
        cls.config("due", "due_10min", "x", interval="10m")
        cls.config("due", "due_hourly", "x", interval="1h")

    @classmethod
    def airflow_env(cls, **extra):
        home = os.path.join(cls.dir, "airflow")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DTK_", "AIRFLOW"))}
        env.update({
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": DAGS,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///" + os.path.join(home, "airflow.db"),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
            "PATH": os.path.dirname(DISPATCH) + os.pathsep + env.get("PATH", ""),
            "HOME": cls.dir,
            "DTK_LIBRARY": LIBDTK,
            "DTK_STATE_DIR": os.path.join(cls.dir, "state"),
            "DTK_KAFKA_BROKERS": BROKERS,
            "DTK_REDIS_URL": REDIS,
            "DTK_TOPIC": cls.topic,
            "DTK_RESULTS_TOPIC": cls.results,
            "DTK_SIGNING_KEY": KEY,
            "DTK_CONFIG_DIR": os.path.join(cls.dir, "generated"),
            "DTK_AIRFLOW_CHECK_CONFIGS": os.pathsep.join(cls.check_paths),
        })
        env.update(extra)
        sanitizer_env(env)
        return env

    @classmethod
    def cmd(cls, args, env, timeout=600):
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)

    @classmethod
    def dags_test(cls, dag_file, dag_id, when, **env):
        started = time.monotonic()
        p = cls.cmd([cls.airflow, "dags", "test", "-f", os.path.join(DAGS, dag_file), dag_id,
                     when], cls.airflow_env(**env))
        print("airflow dags test %s: %.1fs" % (dag_id, time.monotonic() - started), flush=True)
        return p

    @classmethod
    def run_airflow(cls):
        started = time.monotonic()
        p = cls.cmd([cls.airflow, "db", "migrate"], cls.airflow_env())
        if p.returncode != 0:
            raise RuntimeError("airflow db migrate failed:\n" + (p.stdout + p.stderr)[-3000:])
        cls.out = {
            "tags": cls.dags_test("detectk_dispatch_tags.py", "detectk_dispatch_tags", T_TAGS,
                                  DTK_CONFIG_DIR=os.path.join(cls.dir, "tags")),
            "check": cls.dags_test("detectk_metric_check.py", "detectk_metric_check", T_CHECK),
            "generated": cls.dags_test("detectk_generated.py", "detectk_team_10min",
                                       T_GENERATED),
            "due": cls.dags_test("detectk_due.py", "detectk_due", T_DUE,
                                 DTK_CONFIG_DIR=os.path.join(cls.dir, "due")),
        }
        print("airflow: db migrate and 4 dags test runs in %.0fs" % (time.monotonic() - started),
              flush=True)

    # ---- reading what the runs left ----

    def query(self, sql, *args):
        with sqlite3.connect(os.path.join(self.dir, "airflow", "airflow.db")) as c:
            return c.execute(sql, args).fetchall()

    def run_id(self, dag_id, when):
        """The run `airflow dags test` made of dag_id (each is tested once),
        checked to be at the logical date `when`."""
        rows = self.query("select run_id, logical_date, data_interval_end from dag_run "
                          "where dag_id = ?", dag_id)
        self.assertEqual(len(rows), 1, rows)
        stamp = datetime.datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M:%S")
        self.assertTrue(rows[0][1].startswith(stamp), rows)
        self.assertTrue(rows[0][2].startswith(stamp), rows)
        return rows[0][0]

    def states(self, dag_id, when):
        return dict(self.query("select task_id, state from task_instance where dag_id = ? and "
                               "run_id = ?", dag_id, self.run_id(dag_id, when)))

    def xcom(self, dag_id, when, task_id, key="return_value"):
        rows = self.query("select value from xcom where dag_id = ? and run_id = ? and "
                          "task_id = ? and key = ?", dag_id, self.run_id(dag_id, when),
                          task_id, key)
        return json.loads(rows[0][0]) if rows else None

    def task_output(self, run, task_id):
        """The log lines `airflow dags test` printed while running task_id
        (tasks run one after another)."""
        text = run.stdout + run.stderr
        m = re.search(r"\[DAG TEST\] starting task_id=%s .*?(?=\[DAG TEST\] starting task_id=|\Z)"
                      % re.escape(task_id), text, re.S)
        self.assertIsNotNone(m, "no output of task %s:\n%s" % (task_id, text[-3000:]))
        return m.group(0)

    def exit_code(self, run, task_id):
        out = self.task_output(run, task_id)
        m = (re.search(r"Command exited with return code (\d+)", out)
             or re.search(r"returned a non-zero exit code (\d+)", out))
        self.assertIsNotNone(m, out[-3000:])
        return int(m.group(1))

    def worker_results(self):
        msgs = self.read(self.results, 1, timeout=20)
        return [json.loads(m["value"]) for m in msgs]

    # ---- tests ----

    def test_dag_files_import_without_errors_in_a_dagbag(self):
        p = self.cmd([self.python, "-c", DAGBAG], self.airflow_env())
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        out = json.loads(p.stdout.strip().splitlines()[-1])
        for bag in out.values():
            self.assertEqual(bag["errors"], {})
        dags = out["all"]["dags"]
        self.assertEqual(set(dags), {
            "detectk_dispatch_tags", "detectk_metric_check", "detectk_due",
            "detectk_team_10min", "detectk_critical_1d_Europe_Berlin", "detectk_ops_90min",
            "detectk_untagged_1h"})
        self.assertEqual(dags["detectk_team_10min"]["schedule"], "*/10 * * * *")
        self.assertEqual(set(dags["detectk_team_10min"]["tasks"]), {"gen_ok", "gen_broken"})
        self.assertEqual(dags["detectk_critical_1d_Europe_Berlin"]["schedule"], "0 0 * * *")
        self.assertEqual(dags["detectk_critical_1d_Europe_Berlin"]["timezone"], "Europe/Berlin")
        self.assertEqual(dags["detectk_critical_1d_Europe_Berlin"]["timetable"],
                         "CronTriggerTimetable")
        self.assertEqual(dags["detectk_ops_90min"]["schedule"], 5400)  # a timedelta
        self.assertEqual(dags["detectk_ops_90min"]["timetable"], "DeltaTriggerTimetable")
        self.assertEqual(dags["detectk_untagged_1h"]["schedule"], "0 * * * *")
        self.assertEqual(dags["detectk_due"]["schedule"], "* * * * *")
        for d in dags.values():
            self.assertFalse(d["catchup"])
            self.assertIn("detectk", d["tags"])
        # the critical metric's task fails on an anomaly, the others do not
        self.assertIn("--fail-on-anomaly",
                      dags["detectk_critical_1d_Europe_Berlin"]["tasks"]["gen_daily"])
        self.assertNotIn("--fail-on-anomaly", dags["detectk_team_10min"]["tasks"]["gen_ok"])
        self.assertEqual(set(dags["detectk_metric_check"]["tasks"]),
                         {"check_chk_ok", "check_chk_spike", "check_chk_crit_spike",
                          "check_chk_broken", "summary"})
        # DTK_AIRFLOW_TAGS=ops,team: only those tags, each config once, under
        # the first listed tag it carries (gen_ops has both)
        dags = out["filtered"]["dags"]
        self.assertEqual({k for k in dags if k.startswith(("detectk_team", "detectk_ops",
                                                           "detectk_crit", "detectk_untag"))},
                         {"detectk_team_10min", "detectk_team_1d_Europe_Berlin",
                          "detectk_ops_90min"})
        self.assertEqual(set(dags["detectk_ops_90min"]["tasks"]), {"gen_ops"})

    def test_interval_mapping_fires_exactly_on_the_engine_grid(self):
        d = os.path.join(self.dir, "intervals")
        os.makedirs(d)
        counts = {
            "s": [1, 30, 45, 60, 90, 120, 600, 5400, 7200, 86400, 172800, 604800],
            "min": list(range(1, 61)) + [90, 100, 120, 180, 240, 360, 420, 480, 720, 1440, 2880,
                                         10080],
            "h": list(range(1, 25)) + [36, 48, 72, 168, 336],
            "d": list(range(1, 15)),
            "w": [1, 2, 3, 4]}
        spellings = {"s": ["s", "second", "seconds"], "min": ["m", "min", "minute", "minutes"],
                     "h": ["h", "hour", "hours"], "d": ["d", "day", "days"],
                     "w": ["w", "week", "weeks"]}
        texts = []
        for unit, ns in counts.items():
            for i, n in enumerate(ns):
                word = spellings[unit][i % len(spellings[unit])]
                form = ("%d %s", "%d%s", " %d  %s ", "%d\t%s")[i % 4]
                text = form % (n, word.upper() if i % 5 == 4 else word)
                texts.append((text, n * UNIT_SECONDS[word]))
        paths = {}
        for i, (text, seconds) in enumerate(texts):
            for tz in (None, "Europe/Berlin") if seconds >= 86400 else (None,):
                name = "iv%03d%s" % (i, "_tz" if tz else "")
                path = os.path.join(d, name + ".yaml")
                with open(path, "w") as f:
                    f.write("name: %s\n%scollector: {type: synthetic}\n"
                            "detector: {type: threshold, params: {threshold: 1}}\n"
                            "schedule: {interval: %s}\n"
                            % (name, "timezone: %s\n" % tz if tz else "", json.dumps(text)))
                paths[name] = (path, text, seconds)
        # sampled minutes: around hour, day and week starts (UTC and Berlin,
        # both sides of the DST change) and arbitrary ones
        base = int(datetime.datetime(2024, 3, 1, tzinfo=datetime.timezone.utc).timestamp())
        minutes = sorted({base + k * 60 for k in (0, 1, 7, 10, 30, 42, 60, 90, 120, 300, 1380,
                                                  1440, 1441, 2880, 4320, 5400, 6000, 7200,
                                                  10080, 11340, 20160, 43140, 43200)}
                         | {1711839600 + k * 60 for k in (-60, 0, 60, 1380, 1440)}  # 31 Mar 2024
                         | {1709506800, 1709593200, 1710111600, 1711922400}  # Berlin midnights
                         | {1709510400})  # a UTC Monday
        p = subprocess.run([self.python, "-c", MAPPING], env=self.airflow_env(PYTHONPATH=DAGS),
                           input=json.dumps({"paths": [v[0] for v in paths.values()],
                                             "minutes": minutes}),
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        out = json.loads(p.stdout)
        self.assertEqual(len(out["configs"]), len(paths))
        crons = timedeltas = 0
        for item in out["configs"]:
            path, text, seconds = paths[item["name"]]
            self.assertEqual(item["seconds"], seconds, "the engine parses %r" % text)
            self.assertGreaterEqual(item["slots"], 3, item)
            if "cron" in item:
                crons += 1
                self.assertTrue(item["cron_is_grid"], "%r -> %s fires off the grid (%s)"
                                % (text, item["cron"], item["tz"]))
            else:
                timedeltas += 1
                self.assertEqual(item["timedelta"], seconds)
                self.assertEqual(item["naive_crons_on_grid"], [],
                                 "%r has an exact cron but got a timedelta" % text)
        self.assertGreater(crons, 40)  # 47 exact, 114 not, on 161 configs
        self.assertGreater(timedeltas, 100)
        # the engine agrees: dtk-dispatch --due selects, minute by minute,
        # exactly the configs whose schedule fires then
        for t in minutes:
            when = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            r = subprocess.run([DISPATCH, "--config-dir", d, "--due", "--dry-run",
                                "--execution-time", when],
                               capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("DTK_")})
            self.assertEqual(r.returncode, 0, r.stderr)
            due = set(re.findall(r"^selected \S+ \((\S+)\)$", r.stdout, re.M))
            self.assertEqual(due, set(out["firing"].get(str(t), [])), when)

    def test_dispatch_tags_fails_on_a_critical_anomaly_and_succeeds_otherwise(self):
        run = self.out["tags"]
        self.assertEqual(self.states("detectk_dispatch_tags", T_TAGS),
                         {"dispatch_critical": "failed", "dispatch_others": "success"},
                         run.stdout[-3000:])
        self.assertEqual(self.exit_code(run, "dispatch_critical"), 3)
        self.assertEqual(self.exit_code(run, "dispatch_others"), 0)
        crit = self.task_output(run, "dispatch_critical")
        others = self.task_output(run, "dispatch_others")
        # through the fleet: published to the test's topic, answered by the workers
        self.assertIn("(Kafka, %s): selected 2, published 2, ok 1, anomaly 1, error 0" % self.topic,
                      crit)
        self.assertIn("(Kafka, %s): selected 2, published 2, ok 1, anomaly 1, error 0" % self.topic,
                      others)
        self.assertIn("--fail-on-anomaly", crit)
        self.assertNotIn("--fail-on-anomaly", others)
        res = {r["metric"]: r for r in self.worker_results()
               if r["metric"] in ("crit_ok", "crit_spike", "web_ok", "web_spike")}
        self.assertEqual({m: r["status"] for m, r in res.items()},
                         {"crit_ok": "ok", "crit_spike": "anomaly", "web_ok": "ok",
                          "web_spike": "anomaly"})
        for r in res.values():
            self.assertEqual(r["execution_time"], "2024-11-02T14:30:00Z")
            self.assertEqual(r["datapoint"]["timestamp"], "2024-11-02T14:20:00Z")
            self.assertIsNotNone(r["worker"])

    def test_metric_check_pushes_results_to_xcom_and_fails_on_errors(self):
        dag = "detectk_metric_check"
        self.assertEqual(self.states(dag, T_CHECK),
                         {"check_chk_ok": "success", "check_chk_spike": "success",
                          "check_chk_crit_spike": "failed", "check_chk_broken": "failed",
                          "summary": "success"}, self.out["check"].stdout[-3000:])
        ok = self.xcom(dag, T_CHECK, "check_chk_ok")
        self.assertEqual((ok["metric"], ok["status"]), ("chk_ok", "ok"))
        self.assertEqual(ok["execution_time"], "2024-11-02T14:20:00Z")
        self.assertEqual(ok["datapoint"]["timestamp"], "2024-11-02T14:10:00Z")
        self.assertEqual(ok["datapoint"]["value"], 100)
        self.assertEqual(len(ok["detections"]), 1)
        det = ok["detections"][0]
        self.assertEqual((det["detector_type"], det["is_anomaly"]), ("threshold", False))
        for key in ("detector_id", "score", "direction", "lower_bound", "upper_bound"):
            self.assertIn(key, det)
        self.assertEqual(ok["errors"], [])
        spike = self.xcom(dag, T_CHECK, "check_chk_spike")
        self.assertEqual(spike["status"], "anomaly")
        self.assertTrue(spike["detections"][0]["is_anomaly"])
        self.assertEqual(self.xcom(dag, T_CHECK, "check_chk_crit_spike")["status"], "anomaly")
        broken = self.xcom(dag, T_CHECK, "check_chk_broken")
        self.assertEqual(broken["status"], "error")
        self.assertEqual(broken["errors"][0]["stage"], "collect")
        self.assertIn("does not exist", broken["errors"][0]["message"])
        self.assertIn("chk_broken: check failed: collect: sqlite database",
                      self.task_output(self.out["check"], "check_chk_broken"))
        self.assertEqual(self.xcom(dag, T_CHECK, "summary"),
                         {"ok": 1, "anomaly": 2, "error": 1, "missing": [],
                          "anomalies": ["chk_spike", "chk_crit_spike"]})

    def test_generated_dag_fails_the_task_of_a_failing_check(self):
        run = self.out["generated"]
        self.assertEqual(self.states("detectk_team_10min", T_GENERATED),
                         {"gen_ok": "success", "gen_broken": "failed"}, run.stdout[-3000:])
        self.assertEqual(self.exit_code(run, "gen_broken"), 1)
        self.assertEqual(self.exit_code(run, "gen_ok"), 0)
        self.assertIn("(Kafka, %s): selected 1, published 1, ok 0, anomaly 0, error 1"
                      % self.topic, self.task_output(run, "gen_broken"))
        res = [r for r in self.worker_results() if r["metric"] == "gen_broken"]
        self.assertEqual([r["status"] for r in res], ["error"])

    def test_due_dag_dispatches_only_the_configs_due_in_its_minute(self):
        run = self.out["due"]
        self.assertEqual(self.states("detectk_due", T_DUE), {"dispatch_due": "success"},
                         run.stdout[-3000:])
        out = self.task_output(run, "dispatch_due")
        self.assertIn("--due", out)
        self.assertIn("(Kafka, %s): selected 1, published 1, ok 1" % self.topic, out)
        res = [r for r in self.worker_results() if r["metric"].startswith("due_")]
        self.assertEqual([(r["metric"], r["execution_time"], r["status"]) for r in res],
                         [("due_10min", "2024-11-02T14:10:00Z", "ok")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
