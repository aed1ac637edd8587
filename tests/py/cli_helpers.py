"""Helpers for the `dtk` command-line tests (tests/py/test_cli.py).

Every test gets its own temporary directory with a state dir (DTK_STATE_DIR),
a HOME and a working directory, and runs `dtk` with a scrubbed environment so
nothing leaks between tests or from the developer's machine (no
DETECTK_PROFILES_PATH, no ~/.detectk, no XDG_STATE_HOME).
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import textwrap
import unittest

SOURCE_DIR = os.environ.get(
    "DTK_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY_DIR = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
DTK = os.path.join(BINARY_DIR, "cli", "dtk")
SCHEMA_PATH = os.path.join(SOURCE_DIR, "schemas", "check-result.v1.json")

# One fixed execution time, so results never depend on the time of day.
T = "2024-11-02T14:30:00Z"

_validator = None


def result_validator():
    """A Draft 2020-12 validator of schemas/check-result.v1.json."""
    global _validator
    if _validator is None:
        import jsonschema
        with open(SCHEMA_PATH, encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return _validator


class Result:
    """What one `dtk` invocation did."""

    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "dtk %s -> rc=%d\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(self.args), self.rc, self.out, self.err)


class CliTestCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        if not os.access(DTK, os.X_OK):
            self.fail("dtk binary not found at %s (set DTK_BINARY_DIR)" % DTK)
        self.tmp = tempfile.mkdtemp(prefix="dtk-cli-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state = os.path.join(self.tmp, "state")
        self.home = os.path.join(self.tmp, "home")
        self.work = os.path.join(self.tmp, "work")
        for d in (self.state, self.home, self.work):
            os.makedirs(d)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TZ": "UTC",
            "LANG": "C.UTF-8",
            "HOME": self.home,
            "DTK_STATE_DIR": self.state,
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_LIBRARY_PATH"):
            if k in os.environ:
                self.env[k] = os.environ[k]

    # files -----------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def write(self, name, text):
        """Writes dedented text to work/name (subdirs created); returns the path."""
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))
        return p

    # running -----------------------------------------------------------------

    def dtk(self, *args, env=None, cwd=None, timeout=60):
        e = dict(self.env)
        if env:
            for k, v in env.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        args = [str(a) for a in args]
        proc = subprocess.run([DTK] + args, env=e, cwd=cwd or self.work, capture_output=True,
                              text=True, timeout=timeout)
        r = Result(args, proc)
        # a sanitizer report or a crash is never an acceptable outcome
        self.assertNotIn("ERROR: AddressSanitizer", r.err, r)
        self.assertNotIn("runtime error:", r.err, r)
        self.assertNotIn("ERROR: LeakSanitizer", r.err, r)
        self.assertGreaterEqual(r.rc, 0, "dtk died of a signal: %r" % r)
        return r

    def run_ok(self, *args, **kw):
        r = self.dtk(*args, **kw)
        self.assertEqual(r.rc, 0, r)
        return r

    def run_json(self, config, *extra, t=T, rc=None, **kw):
        """`dtk run CONFIG -t T --output json`, schema-validated; returns (dict, Result)."""
        r = self.dtk("run", config, "-t", t, "--output", "json", *extra, **kw)
        if rc is not None:
            self.assertEqual(r.rc, rc, r)
        try:
            doc = r.json
        except ValueError:
            self.fail("stdout is not one JSON document: %r" % r)
        self.assertValidResult(doc)
        return doc, r

    def assertValidResult(self, doc):
        errors = sorted(result_validator().iter_errors(doc), key=lambda e: list(e.path))
        self.assertEqual([], ["%s: %s" % (list(e.path), e.message) for e in errors],
                         json.dumps(doc, indent=1))

    def assertConfigError(self, r, *needles):
        """Exit 2 and a message on stderr containing every needle."""
        self.assertEqual(r.rc, 2, r)
        for n in needles:
            self.assertIn(n, r.err, r)

    # state -------------------------------------------------------------------

    def db_path(self):
        return os.path.join(self.state, "dtk.db")

    def datapoints(self, metric=None, db=None):
        """Rows of dtk_datapoints: [(metric, collected_at, value, is_missing)], sorted."""
        db = db or self.db_path()
        if not os.path.exists(db):
            return []
        con = sqlite3.connect(db)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "dtk_datapoints" not in tables:
                return []
            q = "SELECT metric_name, collected_at, value, is_missing FROM dtk_datapoints"
            params = ()
            if metric:
                q += " WHERE metric_name = ?"
                params = (metric,)
            return sorted(con.execute(q + " ORDER BY metric_name, collected_at", params).fetchall(),
                          key=lambda r: (r[0], str(r[1])))
        finally:
            con.close()


def synthetic_config(name, detectors, alerter=None, params="base: 100", extra="", interval="1 hour",
                     tags="[t]"):
    """A metric config text with a synthetic collector. detectors and alerter are
    YAML blocks (already indented for their key); params is the collector's
    params as a flow mapping body."""
    text = "name: %s\ntags: %s\ncollector:\n  type: synthetic\n  params: {%s}\n" % (name, tags, params)
    text += "detectors:\n" + textwrap.indent(textwrap.dedent(detectors).strip("\n"), "  ") + "\n"
    if alerter:
        text += "alerter:\n" + textwrap.indent(textwrap.dedent(alerter).strip("\n"), "  ") + "\n"
    text += "schedule:\n  interval: \"%s\"\n" % interval
    if extra:
        text += textwrap.dedent(extra).strip("\n") + "\n"
    return text
