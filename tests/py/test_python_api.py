"""The Python bindings (integrations/python, import name `detectk`) over the
libdtk of this build: MetricCheck and ConfigLoader against the real `dtk`
binary, and bad input never crashing the interpreter.

Runs with the pinned test venv: nothing is pip-installed into it; the
package is imported from integrations/python/src with DTK_LIBRARY pointing at
$DTK_BINARY_DIR/core/libdtk.so. One test installs the package with pip into
a throw-away venv (offline when that venv has setuptools and wheel, else
fetching setuptools from PyPI) and skips with the reason when PyPI cannot be
reached.

Under an ASan build (libdtk.so linking libasan) the test re-runs itself with
the sanitizer runtimes in LD_PRELOAD (ctypes cannot load an ASan library
into an uninstrumented python otherwise) and ASAN_OPTIONS=detect_leaks=0
(the interpreter itself keeps memory at exit); when that is not possible it
skips with the reason.
"""

import datetime as dt
import faulthandler
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import sanitizers

SOURCE_DIR = os.environ.get(
    "DTK_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY_DIR = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
DTK = os.path.join(BINARY_DIR, "cli", "dtk")
LIBDTK = os.path.join(BINARY_DIR, "core", "libdtk.so")
PKG_DIR = os.path.join(SOURCE_DIR, "integrations", "python")
PKG_SRC = os.path.join(PKG_DIR, "src")
UTC = dt.timezone.utc

# a hang fails the test with a traceback instead of blocking ctest
faulthandler.dump_traceback_later(300, exit=True)


ASAN_RUNTIMES = sanitizers.runtimes(LIBDTK)
if ASAN_RUNTIMES and not os.environ.get("DTK_PY_ASAN_REEXEC"):
    if all(os.path.exists(p) for p in ASAN_RUNTIMES):
        env = dict(os.environ, DTK_PY_ASAN_REEXEC="1")
        sanitizers.preload_env(LIBDTK, env)
        print("libdtk is an ASan build: re-running with LD_PRELOAD=%s" % env["LD_PRELOAD"], flush=True)
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    print("SKIP: libdtk links %s, which cannot be preloaded; ctypes cannot load an ASan "
          "libdtk into python without it" % ASAN_RUNTIMES)
    sys.exit(0)

os.environ["DTK_LIBRARY"] = LIBDTK
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, PKG_SRC)

import detectk  # noqa: E402
from detectk.check import MetricCheck  # noqa: E402
from detectk.config import ConfigLoader  # noqa: E402

T = "2024-11-02T12:30:00Z"
# an anomaly window covering the slots of the runs at 12:30 (hourly interval;
# the slot starts an hour before the aligned execution time); no anomaly in
# the history loaded before 10:00
SPIKE = ("base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T11:00:00Z\", "
         "end: \"2024-11-02T14:00:00Z\", factor: 3}]")
METRIC = """\
name: py_spike
description: a synthetic metric with a spike
tags: [python, hourly]
collector:
  type: synthetic
  params: {%s}
detectors:
  - type: mad
    params: {window_size: "1 day"}
  - type: threshold
    params: {threshold: 1000}
alerter:
  type: console
  conditions: {cooldown_minutes: 0}
schedule:
  interval: "1 hour"
""" % SPIKE
TIMING_KEYS = ("started_at", "finished_at", "timings_ms")


class Base(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        for p in (DTK, LIBDTK):
            if not os.path.exists(p):
                self.fail("%s not found (set DTK_BINARY_DIR)" % p)
        self.tmp = tempfile.mkdtemp(prefix="dtk-py-api-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        saved = {k: os.environ.get(k) for k in ("DTK_STATE_DIR", "HOME", "DETECTK_PROFILES_PATH",
                                                "XDG_STATE_HOME")}

        def restore():
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.addCleanup(restore)
        os.environ["HOME"] = self.home
        os.environ.pop("DETECTK_PROFILES_PATH", None)
        os.environ.pop("XDG_STATE_HOME", None)
        self.use_state("state")

    def use_state(self, name):
        """Points DTK_STATE_DIR (read by libdtk at each call) at tmp/name."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        os.environ["DTK_STATE_DIR"] = d
        return d

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))
        return p

    def dtk(self, *args, rc=0):
        env = dict(os.environ)
        proc = subprocess.run([DTK] + [str(a) for a in args], env=env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, rc, "dtk %s\n%s\n%s" % (args, proc.stdout, proc.stderr))
        self.assertNotIn("AddressSanitizer", proc.stderr)
        return proc

    def load_history(self, cfg):
        self.dtk("load-history", cfg, "--from", "2024-10-30T00:00:00Z", "--to",
                 "2024-11-02T10:00:00Z")


def strip_timing(doc):
    return {k: v for k, v in doc.items() if k not in TIMING_KEYS}


class MetricCheckTest(Base):
    def test_anomaly_with_history_matches_dtk_run_json(self):
        cfg = self.write("m.yaml", METRIC)
        # the same history in two state dirs: one for Python, one for the CLI
        self.use_state("cli")
        self.load_history(cfg)
        cli = json.loads(self.dtk("run", cfg, "-t", T, "--output", "json").stdout)
        self.use_state("py")
        self.load_history(cfg)
        r = MetricCheck().execute(cfg, execution_time=T)

        self.assertEqual(r.status, "anomaly")
        self.assertTrue(r.is_anomaly)
        self.assertEqual(r.metric_name, "py_spike")
        self.assertEqual(r.timestamp, dt.datetime(2024, 11, 2, 11, 0, tzinfo=UTC))
        self.assertEqual(r.timestamp.utcoffset(), dt.timedelta(0))
        self.assertEqual(r.execution_time, dt.datetime(2024, 11, 2, 12, 0, tzinfo=UTC))
        self.assertIsInstance(r.value, float)
        self.assertGreater(r.value, 250)
        self.assertEqual(len(r.detections), 2)
        mad, thr = r.detections
        self.assertEqual((mad.detector_type, mad.is_anomaly, mad.direction), ("mad", True, "up"))
        self.assertGreater(mad.score, 0)
        self.assertIsNotNone(mad.upper_bound)
        self.assertGreater(r.value, mad.upper_bound)
        self.assertRegex(mad.detector_id, r"^[0-9a-f]{8}$")
        self.assertEqual((thr.detector_type, thr.is_anomaly), ("threshold", False))
        self.assertTrue(r.alert_sent)
        self.assertIn(mad.detector_id, r.alert_reason)
        self.assertEqual(r.errors, [])
        self.assertEqual(r.tags, ["python", "hourly"])

        d = r.to_dict()
        self.assertEqual(d["schema"], "dtk.check.result/v1")
        self.assertEqual(strip_timing(d), strip_timing(cli))
        self.assertEqual(set(d), set(cli))
        # to_dict is a copy
        d["metric"] = "changed"
        self.assertEqual(r.to_dict()["metric"], "py_spike")
        self.assertEqual(json.loads(r.to_json())["metric"], "py_spike")

    def test_execution_time_forms_agree(self):
        cfg = self.write("m.yaml", METRIC)
        self.load_history(cfg)
        forms = [T, "2024-11-02T12:30:00+00:00", "2024-11-02T14:30:00+02:00",
                 dt.datetime(2024, 11, 2, 12, 30),  # naive = UTC
                 dt.datetime(2024, 11, 2, 12, 30, tzinfo=UTC),
                 int(dt.datetime(2024, 11, 2, 12, 30, tzinfo=UTC).timestamp())]
        for form in forms:
            with self.subTest(form=form):
                r = MetricCheck().execute(cfg, execution_time=form)
                self.assertEqual(r.requested_time, dt.datetime(2024, 11, 2, 12, 30, tzinfo=UTC))
                self.assertEqual(r.timestamp, dt.datetime(2024, 11, 2, 11, 0, tzinfo=UTC))
                self.assertEqual(r.status, "anomaly")

    def test_default_time_is_now(self):
        cfg = self.write("now.yaml", """\
            name: py_now
            collector: {type: synthetic, params: {base: 100}}
            detector: {type: threshold, params: {threshold: 500}}
            """)
        before = dt.datetime.now(UTC)
        r = MetricCheck().execute(cfg)
        self.assertEqual(r.status, "ok", r.errors)
        self.assertLessEqual(abs((r.requested_time - before).total_seconds()), 60)
        self.assertFalse(r.alert_sent)
        self.assertEqual(r.value, 100.0)


class ConfigLoaderTest(Base):
    def test_fields(self):
        cfg = self.write("c.yaml", """\
            name: py_cfg
            tags: [a, "b c"]
            collector:
              type: synthetic
              params: {base: 1}
            detector: {type: threshold, params: {threshold: 5}}
            schedule:
              interval: "10 minutes"
            """)
        for load in (ConfigLoader().load, ConfigLoader().load_file):
            c = load(cfg)
            self.assertEqual(c.name, "py_cfg")
            self.assertEqual(c.tags, ["a", "b c"])
            self.assertEqual(c.schedule.interval, "10 minutes")
            self.assertEqual(c.schedule.interval_seconds, 600)
            self.assertEqual(c.collector.type, "synthetic")
            self.assertEqual([d["type"] for d in c.detectors], ["threshold"])
            self.assertEqual(c.path, cfg)

    def test_unset_variable_strict_and_deferred(self):
        os.environ.pop("DTK_PY_TEST_UNSET", None)
        cfg = self.write("env.yaml", """\
            name: py_env
            tags: [t]
            collector:
              type: sqlite
              params: {path: "${DTK_PY_TEST_UNSET}", query: "SELECT 1 AS value"}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        with self.assertRaises(detectk.ConfigError) as cm:
            ConfigLoader().load(cfg)
        self.assertIn("DTK_PY_TEST_UNSET", str(cm.exception))
        c = ConfigLoader(strict=False).load(cfg)
        self.assertEqual((c.name, c.tags, c.collector.type), ("py_env", ["t"], "sqlite"))
        self.assertEqual(c.schedule.interval_seconds, 600)  # the default interval


class BadInput(Base):
    def test_missing_file(self):
        p = os.path.join(self.tmp, "nope.yaml")
        for call in (lambda: ConfigLoader().load(p), lambda: MetricCheck().execute(p)):
            with self.assertRaises(FileNotFoundError) as cm:
                call()
            e = cm.exception
            self.assertIsInstance(e, detectk.ConfigError)
            self.assertIsInstance(e, detectk.ConfigFileNotFoundError)
            self.assertIn("nope.yaml", str(e))
            self.assertEqual(e.path, p)

    def test_bad_configs_carry_file_line_col(self):
        cases = {
            "unknown_detector.yaml": ("name: b\ncollector: {type: synthetic}\n"
                                      "detector: {type: no_such_detector}\n",
                                      r"unknown_detector\.yaml:3:\d+: .*no_such_detector"),
            "bad_yaml.yaml": ("name: [\n", r"bad_yaml\.yaml:\d+:\d+: "),
            "no_name.yaml": ("collector: {type: synthetic}\ndetector: {type: threshold}\n",
                             r"no_name\.yaml:\d+:\d+: "),
            "bad_interval.yaml": ("name: b\ncollector: {type: synthetic}\n"
                                  "detector: {type: threshold, params: {threshold: 1}}\n"
                                  "schedule: {interval: \"often\"}\n",
                                  r"bad_interval\.yaml:4:\d+: .*interval"),
        }
        for name, (text, pattern) in cases.items():
            p = self.write(name, text)
            for call in (ConfigLoader().load, MetricCheck().execute):
                with self.subTest(name=name, call=call):
                    with self.assertRaises(detectk.ConfigError) as cm:
                        call(p)
                    self.assertNotIsInstance(cm.exception, FileNotFoundError)
                    self.assertRegex(str(cm.exception), pattern)
                    self.assertEqual(cm.exception.message, str(cm.exception))
        # a directory and an empty file are config errors too, not crashes
        empty = self.write("empty.yaml", "")
        for p in (self.tmp, empty):
            with self.subTest(path=p), self.assertRaises(detectk.ConfigError):
                ConfigLoader().load(p)

    def test_failing_source_is_an_error_result_with_the_engine_message(self):
        cfg = self.write("fail.yaml", """\
            name: py_fail
            collector:
              type: sqlite
              params: {path: missing.db, query: "SELECT 1 AS value -- {{ period_start }} {{ period_finish }}"}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        r = MetricCheck().execute(cfg, "2024-11-02T14:30:00Z")
        self.assertEqual(r.status, "error")
        self.assertFalse(r.ok)
        self.assertIsNone(r.timestamp)
        self.assertIsNone(r.value)
        self.assertEqual(r.errors[0]["stage"], "collect")
        self.assertIn("missing.db", r.errors[0]["message"])
        cli = json.loads(self.dtk("run", cfg, "-t", "2024-11-02T14:30:00Z", "--output", "json",
                                  rc=1).stdout)
        self.assertEqual(strip_timing(r.to_dict()), strip_timing(cli))

    def test_bad_arguments(self):
        cfg = self.write("m.yaml", METRIC)
        for bad, exc in (("yesterday-ish", ValueError), (float("nan"), ValueError),
                         ([2024], TypeError), (True, TypeError)):
            with self.subTest(bad=bad), self.assertRaises(exc):
                MetricCheck().execute(cfg, execution_time=bad)
        with self.assertRaises(ValueError):
            ConfigLoader().load("a\0b.yaml")
        with self.assertRaises(TypeError):
            ConfigLoader().load(None)


class LibraryLookup(unittest.TestCase):
    def run_py(self, code, env_extra, cwd=None):
        env = {k: v for k, v in os.environ.items() if k != "DTK_LIBRARY"}
        env.update(env_extra)
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120, cwd=cwd)

    def test_dtk_library_is_used(self):
        p = self.run_py("import sys; sys.path.insert(0, %r); import detectk; "
                        "print(detectk.library_path())" % PKG_SRC, {"DTK_LIBRARY": LIBDTK})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), LIBDTK)

    def test_missing_library_is_a_clear_import_error(self):
        bogus = os.path.join(tempfile.gettempdir(), "no-such-dir-dtk", "libdtk.so")
        code = ("import sys; sys.path.insert(0, %r)\n"
                "import detectk\n"
                "try:\n"
                "    from detectk.check import MetricCheck; MetricCheck()\n"
                "except ImportError as e:\n"
                "    print('IMPORTERROR', e)\n" % PKG_SRC)
        # an empty library path so the system lookup cannot find a libdtk either
        p = self.run_py(code, {"DTK_LIBRARY": bogus, "LD_LIBRARY_PATH": ""})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("IMPORTERROR", p.stdout)
        self.assertIn("DTK_LIBRARY=" + bogus, p.stdout)
        self.assertIn("bundled copy", p.stdout)
        self.assertIn("libdtk.so.0", p.stdout)


class PipInstall(unittest.TestCase):
    """pip install ./integrations/python into a throw-away venv."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dtk-py-pip-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # the venv from the interpreter behind the test venv, with pip and setuptools
        base = getattr(sys, "_base_executable", None) or sys.executable
        venv = os.path.join(self.tmp, "venv")
        try:
            p = subprocess.run([base, "-m", "venv", venv], capture_output=True, text=True,
                               timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.skipTest("cannot create a venv: %s" % e)
        self.py = os.path.join(venv, "bin", "python")
        if p.returncode != 0 or not os.path.exists(self.py):
            self.skipTest("cannot create a venv (%s)" % (p.stderr.strip()[-300:],))
        # a copy of the source, so the build leaves nothing in the tree
        self.src = os.path.join(self.tmp, "python")
        shutil.copytree(PKG_DIR, self.src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))

    NETWORK_HINTS = ("Could not find a version", "No matching distribution", "connection",
                     "Connection", "timed out", "Temporary failure in name resolution",
                     "Network is unreachable", "ProxyError", "SSLError")

    def pip_install(self, env_extra=None):
        """Offline (--no-index --no-build-isolation) when the venv has setuptools
        and wheel; else a normal install that fetches setuptools from PyPI,
        skipping with the reason when PyPI cannot be reached."""
        env = dict(os.environ)
        env.pop("DTK_LIBRARY", None)
        env.update(env_extra or {})
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        offline = subprocess.run([self.py, "-c", "import setuptools, wheel"],
                                 capture_output=True).returncode == 0
        args = [self.py, "-m", "pip", "install", "--quiet"]
        if offline:
            args += ["--no-index", "--no-build-isolation"]
        else:
            env.setdefault("PIP_DEFAULT_TIMEOUT", "20")
            args += ["--retries", "1"]
        try:
            p = subprocess.run(args + [self.src], capture_output=True, text=True, timeout=240,
                               env=env, cwd=self.tmp)
        except subprocess.TimeoutExpired:
            self.skipTest("pip install timed out fetching the build backend from PyPI")
        out = p.stdout + p.stderr
        if p.returncode != 0 and not offline and any(h in out for h in self.NETWORK_HINTS):
            print("SKIP pip install check: setuptools from PyPI unreachable:\n" + out[-600:])
            self.skipTest("setuptools from PyPI unreachable")
        self.assertEqual(p.returncode, 0, out)

    def run_in_venv(self, code, env_extra):
        env = {k: v for k, v in os.environ.items() if k not in ("DTK_LIBRARY", "PYTHONPATH")}
        env.update(env_extra)
        return subprocess.run([self.py, "-c", code], capture_output=True, text=True,
                              timeout=120, env=env, cwd=self.tmp)

    def test_install_then_import_with_dtk_library(self):
        self.pip_install()
        cfg = os.path.join(self.tmp, "c.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("name: pip_cfg\ntags: [x]\ncollector: {type: synthetic}\n"
                    "detector: {type: threshold, params: {threshold: 5}}\n")
        code = ("import detectk, json\n"
                "from detectk.config import ConfigLoader\n"
                "from detectk.check import MetricCheck\n"
                "c = ConfigLoader().load(%r)\n"
                "r = MetricCheck().execute(%r, '2024-11-02T14:30:00Z')\n"
                "print(json.dumps([detectk.__file__, detectk.library_path(), c.name, r.status]))\n"
                % (cfg, cfg))
        p = self.run_in_venv(code, {"DTK_LIBRARY": LIBDTK,
                                    "DTK_STATE_DIR": os.path.join(self.tmp, "state")})
        self.assertEqual(p.returncode, 0, p.stderr)
        where, lib, name, status = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertTrue(where.startswith(os.path.join(self.tmp, "venv")), where)
        self.assertEqual((lib, name, status), (LIBDTK, "pip_cfg", "anomaly"))

    def test_bundled_library_is_found_without_dtk_library(self):
        self.pip_install({"DTK_BUNDLE_LIBRARY": LIBDTK})
        p = self.run_in_venv("import detectk; print(detectk.library_path())", {})
        self.assertEqual(p.returncode, 0, p.stderr)
        lib = p.stdout.strip()
        self.assertIn(os.path.join("detectk", "_libs"), lib)
        self.assertTrue(lib.startswith(os.path.join(self.tmp, "venv")), lib)


if __name__ == "__main__":
    unittest.main(verbosity=2)
