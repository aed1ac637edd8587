"""The cron and systemd files of integrations/ (docs/orchestrators.md).

ctest-labels: unit

- systemd: every unit, template instance and drop-in under
  integrations/systemd passes `systemd-analyze verify` with no diagnostic at
  all (it exits 0 on unknown keys, so any output fails). verify refuses an
  ExecStart binary that does not exist, and /usr/local/bin/dtk-* does not
  here: the units are verified as copies whose /usr/local/bin/ is rewritten to
  this build's binaries, nothing else changed. The settings the docs promise
  are asserted (worker: Restart=on-failure, SIGTERM, TimeoutStopSec above its
  --drain-timeout, a dedicated user, an EnvironmentFile, the hardening
  options; dispatch: oneshot, no retry of exit 2 and 3), and the calendars
  parse with `systemd-analyze calendar`.
- The units' command lines run: dtk-dispatch@demo's ExecStart with the
  unit's Environment= (DTK_TAGS=%i) selects and runs the demo configs
  in-process; dtk-worker's ExecStart with worker.env.example starts and exits
  1 for want of a broker (its settings parse: 2 would be a settings error).
- cron: every entry of the crontabs has 5 valid fields and runs dtk-cron-run
  with a command whose flags are in that binary's --help; dtk-cron-run is run
  for real: the env file is exported literally, output and start/end lines go
  to the log, the exit code comes back (with a line on stderr), a second run
  while the first holds the lock is skipped, bad env files exit 2, and a
  crontab line's dtk-dispatch runs the demo configs in-process.
- Every flag and DTK_* variable these files use is in the binaries' --help
  (the helpers of test_deploy_files), and no file holds a literal secret.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from test_deploy_files import (BINARY_DIR, DISPATCH, FLAG_RE, SOURCE_DIR, VAR_RE, WORKER,  # noqa: E402
                               help_names, literal_secrets, var_known)

SYSTEMD_DIR = os.path.join(SOURCE_DIR, "integrations", "systemd")
CRON_DIR = os.path.join(SOURCE_DIR, "integrations", "cron")
CRON_RUN = os.path.join(CRON_DIR, "dtk-cron-run")
CRONTABS = [os.path.join(CRON_DIR, n) for n in ("detectk.crontab", "detectk-fleet.crontab")]
ANALYZE = shutil.which("systemd-analyze")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
BINARIES = {"dtk-dispatch": DISPATCH, "dtk-worker": WORKER,
            "dtk": os.path.join(BINARY_DIR, "cli", "dtk")}
INSTALLED_BIN = "/usr/local/bin/"

DEMO_CONFIG = """\
name: {name}
tags: [{tags}]
collector: {{type: synthetic, params: {{base: {base}, noise: 0.1, seed: 1}}}}
detector: {{type: threshold, params: {{operator: greater_than, threshold: 1000}}}}
alerter: {{type: console}}
schedule: {{interval: "1 hour"}}
"""


def demo_configs(parent, checks):
    """A new directory parent/configs holding a DEMO_CONFIG for each (name,
    tags, base) of checks; its path."""
    configs = os.path.join(parent, "configs")
    os.makedirs(configs)
    for name, tags, base in checks:
        with open(os.path.join(configs, name + ".yaml"), "w") as f:
            f.write(DEMO_CONFIG.format(name=name, tags=tags, base=base))
    return configs


# ---- systemd ----------------------------------------------------------------

def unit_entries(text):
    """[(section, key, value)] of a unit file, continuation lines joined."""
    out, section, cur = [], None, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        line, cur = cur + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(text, section, key):
    return [v for s, k, v in unit_entries(text) if s == section and k == key]


def unit_value(text, section, key):
    vals = unit_values(text, section, key)
    return vals[-1] if vals else None


def seconds(span):
    """A systemd time span ("90", "90s", "1min 30s", "4min") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "ms": 0.001}
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span):
        total += float(num) * units[unit]
    return total


def rewrite_binaries(text):
    """The unit with /usr/local/bin/dtk-* pointing at this build."""
    def repl(m):
        return BINARIES[m.group(1)]
    return re.sub(re.escape(INSTALLED_BIN) + r"(dtk(?:-dispatch|-worker)?)\b", repl, text)


def staged_systemd_dir(tmp, src=SYSTEMD_DIR):
    """A copy of integrations/systemd with the binaries rewritten."""
    dst = os.path.join(tmp, "units")
    shutil.copytree(src, dst)
    for root, _, files in os.walk(dst):
        for name in files:
            path = os.path.join(root, name)
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(rewrite_binaries(text))
    return dst


def analyze_verify(paths, cwd):
    """(returncode, every diagnostic line) of systemd-analyze verify."""
    out = subprocess.run([ANALYZE, "verify", *paths], capture_output=True, text=True, cwd=cwd,
                         timeout=120, env=dict(os.environ, SYSTEMD_LOG_COLOR="0"))
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return out.returncode, lines


def need_analyze(case):
    if ANALYZE is None:
        msg = "systemd-analyze is not installed (Debian package systemd)"
        if REQUIRE:
            case.fail(msg)
        case.skipTest(msg)


def read(path):
    with open(path) as f:
        return f.read()


def env_file_vars(path):
    """KEY=value lines as systemd's EnvironmentFile= reads them unquoted."""
    env = {}
    for line in read(path).splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def exec_argv(unit_text, instance="", state_dir="/var/lib"):
    """ExecStart= of a unit as argv, with %i and %S expanded (the simple
    forms these units use; no quoting)."""
    cmd = unit_value(unit_text, "Service", "ExecStart")
    return [w.replace("%i", instance).replace("%S", state_dir) for w in cmd.split()]


def unit_environment(unit_text, instance="", state_dir="/var/lib"):
    env = {}
    for value in unit_values(unit_text, "Service", "Environment"):
        key, _, val = value.partition("=")
        env[key] = val.replace("%i", instance).replace("%S", state_dir)
    return env


def units():
    found = []
    for root, _, files in os.walk(SYSTEMD_DIR):
        for name in files:
            if name.endswith((".service", ".timer")):
                found.append(os.path.relpath(os.path.join(root, name), SYSTEMD_DIR))
    return sorted(found)


def dropin_instances():
    """dtk-dispatch@GROUP.timer for every dtk-dispatch@GROUP.timer.d/."""
    return sorted(d[:-2] for d in os.listdir(SYSTEMD_DIR)
                  if d.endswith(".timer.d") and os.path.isdir(os.path.join(SYSTEMD_DIR, d)))


class SystemdVerify(unittest.TestCase):
    def setUp(self):
        need_analyze(self)
        self.tmp = tempfile.mkdtemp(prefix="dtk-units-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_files_present(self):
        self.assertEqual(units(), ["dtk-dispatch@.service", "dtk-dispatch@.timer", "dtk-worker.service"])
        self.assertEqual(dropin_instances(), ["dtk-dispatch@daily.timer", "dtk-dispatch@realtime.timer"])

    def test_verify_units_instances_and_dropins(self):
        d = staged_systemd_dir(self.tmp)
        # The instances systemd would run: every drop-in's group and a plain one.
        groups = [i.split("@")[1].split(".")[0] for i in dropin_instances()] + ["hourly"]
        paths = ["./dtk-worker.service"]
        for g in groups:
            paths += ["./dtk-dispatch@%s.service" % g, "./dtk-dispatch@%s.timer" % g]
        rc, lines = analyze_verify(paths, d)
        self.assertEqual((rc, lines), (0, []))

    def test_verify_catches_what_it_should(self):
        # The same check on broken copies fails: an unknown key (exit 0, one
        # warning), a drop-in with a bad key, and the installed binary path
        # that does not exist here.
        d = staged_systemd_dir(self.tmp)
        path = os.path.join(d, "dtk-worker.service")
        with open(path, "a") as f:
            f.write("\n[Service]\nKilSignal=SIGTERM\n")
        rc, lines = analyze_verify(["./dtk-worker.service"], d)
        self.assertTrue(lines, "an unknown key went unnoticed")
        self.assertIn("KilSignal", "\n".join(lines))
        with open(os.path.join(d, "dtk-dispatch@realtime.timer.d", "schedule.conf"), "a") as f:
            f.write("OnCalender=hourly\n")
        rc, lines = analyze_verify(["./dtk-dispatch@realtime.timer"], d)
        self.assertIn("OnCalender", "\n".join(lines))
        raw = os.path.join(self.tmp, "raw")
        shutil.copytree(SYSTEMD_DIR, raw)
        if not os.path.exists("/usr/local/bin/dtk-worker"):
            rc, lines = analyze_verify(["./dtk-worker.service"], raw)
            self.assertNotEqual(rc, 0)
            self.assertIn("/usr/local/bin/dtk-worker", "\n".join(lines))

    def test_calendars(self):
        specs = unit_values(read(os.path.join(SYSTEMD_DIR, "dtk-dispatch@.timer")), "Timer", "OnCalendar")
        for inst in dropin_instances():
            text = read(os.path.join(SYSTEMD_DIR, inst + ".d", "schedule.conf"))
            vals = unit_values(text, "Timer", "OnCalendar")
            # an empty assignment first, so the template's hourly is replaced
            self.assertEqual(vals[0], "", inst)
            self.assertEqual(len(vals), 2, inst)
            specs.append(vals[1])
        self.assertEqual(specs, ["hourly", "*-*-* 00:10:00 UTC", "*:0/5"])
        for spec in specs:
            out = subprocess.run([ANALYZE, "calendar", spec], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
        out = subprocess.run([ANALYZE, "calendar", "*:0/5", "--iterations", "3",
                              "--base-time", "2024-11-02 14:31:00 UTC"],
                             capture_output=True, text=True, timeout=30, env=dict(os.environ, TZ="UTC"))
        if out.returncode == 0:  # --base-time: systemd >= 250
            self.assertRegex(out.stdout, r"14:35:00[\s\S]*14:40:00[\s\S]*14:45:00")
        bad = subprocess.run([ANALYZE, "calendar", "every 5 minutes"], capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0)


class UnitSettings(unittest.TestCase):
    HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                 "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
                 "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
                 "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "CapabilityBoundingSet": "",
                 "SystemCallArchitectures": "native", "RestrictNamespaces": "yes"}

    def common(self, text):
        user = unit_value(text, "Service", "User")
        self.assertIsNotNone(user)
        self.assertNotIn(user, ("root", "0", ""))
        self.assertIsNone(unit_value(text, "Service", "DynamicUser"))
        files = unit_values(text, "Service", "EnvironmentFile")
        self.assertTrue(files)
        self.assertTrue(all(f.lstrip("-").startswith("/etc/dtk/") for f in files), files)
        for key, value in self.HARDENING.items():
            self.assertEqual(unit_value(text, "Service", key), value, key)
        self.assertIn("@system-service", unit_values(text, "Service", "SystemCallFilter"))
        self.assertEqual(unit_value(text, "Service", "StateDirectory"), "dtk")

    def test_worker(self):
        text = read(os.path.join(SYSTEMD_DIR, "dtk-worker.service"))
        self.common(text)
        self.assertEqual(unit_value(text, "Service", "Restart"), "on-failure")
        self.assertIn("2", unit_value(text, "Service", "RestartPreventExitStatus").split())
        self.assertEqual(unit_value(text, "Service", "KillSignal"), "SIGTERM")
        argv = exec_argv(text)
        self.assertEqual(os.path.basename(argv[0]), "dtk-worker")
        drain = 30.0  # dtk-worker's default
        if "--drain-timeout" in argv:
            drain = float(argv[argv.index("--drain-timeout") + 1])
        stop = seconds(unit_value(text, "Service", "TimeoutStopSec"))
        # above the drain, with room for the flush and the offset commit
        self.assertGreaterEqual(stop, drain + 15, (stop, drain))
        self.assertEqual(unit_value(text, "Install", "WantedBy"), "multi-user.target")

    def test_dispatch(self):
        text = read(os.path.join(SYSTEMD_DIR, "dtk-dispatch@.service"))
        self.common(text)
        self.assertEqual(unit_value(text, "Service", "Type"), "oneshot")
        self.assertEqual(unit_value(text, "Service", "Restart"), "on-failure")
        self.assertEqual(set(unit_value(text, "Service", "RestartPreventExitStatus").split()), {"2", "3"})
        self.assertEqual(unit_environment(text, "critical")["DTK_TAGS"], "critical")
        # retries fit in a 5-minute period: burst starts within the interval,
        # spaced RestartSec apart, and the interval shorter than the period
        interval = seconds(unit_value(text, "Unit", "StartLimitIntervalSec"))
        burst = int(unit_value(text, "Unit", "StartLimitBurst"))
        gap = seconds(unit_value(text, "Service", "RestartSec"))
        self.assertLess(interval, 300)
        self.assertGreaterEqual(burst, 2)
        self.assertLessEqual((burst - 1) * gap, interval)
        timer = read(os.path.join(SYSTEMD_DIR, "dtk-dispatch@.timer"))
        self.assertEqual(unit_value(timer, "Install", "WantedBy"), "timers.target")


class UnitCommands(unittest.TestCase):
    """The units' command lines, run with their environment."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dtk-unitrun-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def base_env(self):
        return {"PATH": "/usr/bin:/bin", "HOME": self.tmp, "TZ": "UTC", "LANG": "C.UTF-8"}

    def test_dispatch_instance_runs_its_tag_group(self):
        text = read(os.path.join(SYSTEMD_DIR, "dtk-dispatch@.service"))
        configs = demo_configs(self.tmp, (("demo_a", "demo", 100), ("demo_b", "demo, sales", 5000),
                                          ("other_c", "ops", 100)))
        env = self.base_env()
        env.update(unit_environment(text, "demo", state_dir=self.tmp))
        self.assertEqual(env["DTK_STATE_DIR"], os.path.join(self.tmp, "dtk"))
        self.assertEqual(env.pop("DTK_CONFIG_DIR"), "/etc/dtk/configs")
        env["DTK_CONFIG_DIR"] = configs
        # the example env file as installed: in-process mode, nothing set but
        # an empty signing key
        env.update(env_file_vars(os.path.join(SYSTEMD_DIR, "dispatch.env.example")))
        argv = [rewrite_binaries(w) for w in exec_argv(text, "demo", state_dir=self.tmp)]
        self.assertEqual(argv, [DISPATCH])
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("demo_a: ok", out.stdout)
        self.assertIn("demo_b: anomaly", out.stdout)
        self.assertNotIn("other_c", out.stdout)
        self.assertRegex(out.stdout, r"\(in-process\): selected 2, published 2, ok 1, anomaly 1, error 0")
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "dtk", "dtk.db")))

    def test_worker_command_and_env_file_parse(self):
        text = read(os.path.join(SYSTEMD_DIR, "dtk-worker.service"))
        env = self.base_env()
        env.update(unit_environment(text, state_dir=self.tmp))
        env.update(env_file_vars(os.path.join(SYSTEMD_DIR, "worker.env.example")))
        # what the example leaves to the site: a broker (none listens on
        # port 1), a storage path, a free metrics port
        env.update({"DTK_KAFKA_BROKERS": "127.0.0.1:1", "DTK_STARTUP_TIMEOUT": "2",
                    "DTK_STORAGE_URL": "sqlite:///" + os.path.join(self.tmp, "m.db")})
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            env["DTK_METRICS_PORT"] = str(s.getsockname()[1])
        argv = [rewrite_binaries(w) for w in exec_argv(text, state_dir=self.tmp)]
        self.assertEqual(argv[0], WORKER)
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr[-3000:])
        self.assertIn("no Kafka broker reachable at 127.0.0.1:1", out.stderr)
        # a settings error is 2, which the unit does not restart
        env["DTK_CONCURRENCY"] = "zero"
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(out.returncode, 2, out.stderr[-3000:])


# ---- cron -------------------------------------------------------------------

CRON_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
               ("month", 1, 12, {m: i + 1 for i, m in enumerate(
                   "jan feb mar apr may jun jul aug sep oct nov dec".split())}),
               ("day of week", 0, 7, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}))
CRON_SPECIALS = {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                 "@hourly"}
CRON_ENV_RE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def cron_field_ok(text, lo, hi, names):
    """One crontab(5) time field: lists of *, N, N-M, with /STEP; names for
    month and day of week (single values only, as Vixie cron allows)."""
    for item in text.split(","):
        rng, _, step = item.partition("/")
        if step and not (step.isdigit() and 0 < int(step) <= hi - lo + 1):
            return False
        if rng == "*":
            continue
        if rng.lower() in names and not step:
            continue
        a, dash, b = rng.partition("-")
        if not a.isdigit() or (dash and not b.isdigit()):
            return False
        a = int(a)
        b = int(b) if dash else a
        if not (lo <= a <= hi and lo <= b <= hi and a <= b):
            return False
        if step and not dash:
            return False  # N/STEP is not crontab(5)
    return True


def parse_crontab(text):
    """[(line number, [5 fields] or [special], command)] of a crontab in the
    user format (no user column); raises ValueError naming the line."""
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if CRON_ENV_RE.match(s):
            continue
        words = s.split()
        if words[0].startswith("@"):
            if words[0] not in CRON_SPECIALS or len(words) < 2:
                raise ValueError("line %d: bad special schedule: %s" % (n, s))
            entries.append((n, [words[0]], s.split(None, 1)[1]))
            continue
        if len(words) < 6:
            raise ValueError("line %d: fewer than 5 fields and a command: %s" % (n, s))
        for word, (what, lo, hi, names) in zip(words[:5], CRON_FIELDS):
            if not cron_field_ok(word, lo, hi, names):
                raise ValueError("line %d: bad %s field %r" % (n, what, word))
        command = s.split(None, 5)[5]
        if "%" in command:
            raise ValueError("line %d: an unescaped %% ends the command in cron" % n)
        entries.append((n, words[:5], command))
    return entries


def cron_run_argv(command):
    """dtk-cron-run's argv split: (options dict, NAME, [COMMAND...])."""
    words = command.split()
    if words[0] != "dtk-cron-run":
        raise ValueError("not a dtk-cron-run line: " + command)
    opts, i = {}, 1
    while words[i] in ("-e", "-l", "-k"):
        opts[words[i]] = words[i + 1]
        i += 2
    return opts, words[i], words[i + 1:]


class CrontabSyntax(unittest.TestCase):
    def test_parser_catches_bad_lines(self):
        good = "SHELL=/bin/sh\n*/5 * * * * a\n0 0 1-15/2 jan mon b\n@hourly c\n"
        self.assertEqual([e[0] for e in parse_crontab(good)], [2, 3, 4])
        for bad in ("60 * * * * a", "* 24 * * * a", "* * 0 * * a", "* * * 13 * a", "* * * * 8 a",
                    "*/5 * * * a", "*/0 * * * * a", "5-1 * * * * a", "@every5m a", "a b c d e f",
                    "* * * * * date +%s", "5/10 * * * * a"):
            with self.assertRaises(ValueError, msg=bad):
                parse_crontab(bad + "\n")

    def test_crontabs(self):
        d_flags, d_vars, d_prefixes = help_names(DISPATCH)
        for path in CRONTABS:
            text = read(path)
            entries = parse_crontab(text)
            self.assertGreaterEqual(len(entries), 3, path)
            names = set()
            for n, fields, command in entries:
                opts, name, cmd = cron_run_argv(command)
                names.add(name)
                self.assertEqual(cmd[0], "dtk-dispatch", (path, n))
                for flag in FLAG_RE.findall(" ".join(cmd)):
                    self.assertIn(flag, d_flags, "%s:%d: %s is not in dtk-dispatch --help" % (path, n, flag))
                self.assertIn("--config-dir", cmd)
                self.assertTrue({"--tags", "--due", "--metric"} & set(cmd), (path, n))
                if path.endswith("fleet.crontab"):
                    self.assertIn("--brokers", cmd)
                    timeout = int(cmd[cmd.index("--timeout") + 1])
                    self.assertIn("--wait", cmd)
                    self.assertLess(timeout, period_seconds(fields), (path, n))
                else:
                    self.assertNotIn("--brokers", cmd)
            # one lock (and log) per group
            self.assertEqual(len(names), len(entries), path)
            # the commented-out alternatives use known flags too
            for flag in FLAG_RE.findall(text):
                self.assertTrue(flag in d_flags or flag in ("--due",), flag)
            self.assertRegex(text, r"(?m)^PATH=.*/usr/local/bin")
            self.assertRegex(text, r"(?m)^MAILTO=")


def period_seconds(fields):
    """The period of the simple schedules the crontabs use (*/N minutes, a
    fixed minute every hour, a fixed time every day)."""
    minute, hour = fields[0], fields[1]
    if minute.startswith("*/") and hour == "*":
        return int(minute[2:]) * 60
    if minute.isdigit() and hour == "*":
        return 3600
    if minute.isdigit() and hour.isdigit():
        return 86400
    raise ValueError("no simple period: %s" % fields)


class CronRun(unittest.TestCase):
    """dtk-cron-run, for real."""

    def setUp(self):
        if shutil.which("flock") is None:
            self.fail("flock (util-linux) is not installed")
        self.tmp = tempfile.mkdtemp(prefix="dtk-cronrun-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.logs = os.path.join(self.tmp, "log")
        self.locks = os.path.join(self.tmp, "lock")
        self.envf = os.path.join(self.tmp, "dispatch.env")
        with open(self.envf, "w") as f:
            f.write("# a comment\n\nDTK_GREETING=hello $HOME `id` world\nEMPTY=\nWITH_EQ=a=b\n")

    def run_cron(self, name, *cmd, env_file=None, env=None):
        argv = [CRON_RUN, "-e", self.envf if env_file is None else env_file, "-l", self.logs,
                "-k", self.locks, name, *cmd]
        base = {"PATH": os.path.dirname(DISPATCH) + ":/usr/bin:/bin", "HOME": self.tmp, "TZ": "UTC"}
        base.update(env or {})
        return subprocess.run(argv, capture_output=True, text=True, env=base, timeout=120)

    def log(self, name):
        return read(os.path.join(self.logs, name + ".log"))

    def test_env_log_and_exit_code(self):
        out = self.run_cron("g1", "sh", "-c", 'printf "%s|%s|%s\\n" "$DTK_GREETING" "$EMPTY" "$WITH_EQ"; '
                            'echo oops >&2; exit 3')
        self.assertEqual(out.returncode, 3)
        self.assertEqual(out.stdout, "")
        self.assertRegex(out.stderr, r"^dtk-cron-run: g1: sh exited 3; see .*/g1\.log\n$")
        log = self.log("g1")
        # taken literally: no expansion, no command substitution
        self.assertIn("hello $HOME `id` world||a=b\n", log)
        self.assertIn("oops\n", log)
        self.assertRegex(log, r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ g1: start: sh -c ")
        self.assertRegex(log, r"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ g1: end: exit 3 after \d+s$")
        out = self.run_cron("g1", "true")
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        self.assertRegex(self.log("g1"), r"g1: end: exit 0 after \d+s\n$")

    def test_overlapping_run_is_skipped(self):
        marker = os.path.join(self.tmp, "second-ran")
        first = subprocess.Popen([CRON_RUN, "-e", self.envf, "-l", self.logs, "-k", self.locks, "grp",
                                  "sleep", "30"], env={"PATH": "/usr/bin:/bin"},
                                 start_new_session=True)
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                if os.path.exists(os.path.join(self.logs, "grp.log")) and "start" in self.log("grp"):
                    break
                time.sleep(0.1)
            out = self.run_cron("grp", "touch", marker)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertFalse(os.path.exists(marker), "the overlapping run ran")
            self.assertRegex(self.log("grp"), r"grp: skipped: the previous run still holds .*grp\.lock")
            # another group is not blocked
            out = self.run_cron("other", "touch", marker)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertTrue(os.path.exists(marker))
        finally:
            os.killpg(first.pid, signal.SIGTERM)
            first.wait(timeout=30)
        # the lock is free again once the first run is gone: the whole process
        # group, since the command (sleep) holds the lock's descriptor too and
        # may outlive the wrapper by a moment on a loaded machine
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.killpg(first.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        os.remove(marker)
        out = self.run_cron("grp", "touch", marker)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(os.path.exists(marker))

    def test_bad_input_exits_2(self):
        for text, what in (("export A=1\n", "bad name 'export A'"), ("JUSTAWORD\n", "not NAME=value"),
                           ("1A=x\n", "bad name '1A'")):
            with open(self.envf, "w") as f:
                f.write(text)
            out = self.run_cron("g", "true")
            self.assertEqual(out.returncode, 2, text)
            self.assertIn(what, out.stderr)
        out = self.run_cron("g", "true", env_file=os.path.join(self.tmp, "missing.env"))
        self.assertEqual(out.returncode, 2)
        self.assertIn("cannot read", out.stderr)
        out = self.run_cron("../g", "true", env_file="")
        self.assertEqual(out.returncode, 2)
        out = subprocess.run([CRON_RUN, "only-a-name"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)
        self.assertIn("usage:", out.stderr)

    def test_crontab_line_runs_dispatch_in_process(self):
        configs = demo_configs(self.tmp, (("rt_a", "realtime", 100),
                                          ("rt_b", "realtime, experimental", 100),
                                          ("hr_c", "hourly", 5000)))
        entries = parse_crontab(read(CRONTABS[0]))
        _, _, command = entries[0]
        opts, name, cmd = cron_run_argv(command.replace("/etc/dtk/configs", configs))
        self.assertEqual(name, "realtime")
        with open(self.envf, "w") as f:
            f.write("DTK_STATE_DIR=%s\n" % os.path.join(self.tmp, "state"))
        out = self.run_cron(name, *cmd)
        self.assertEqual(out.returncode, 0, out.stderr + self.log(name))
        log = self.log(name)
        self.assertIn("rt_a: ok", log)
        self.assertNotIn("rt_b", log)  # --exclude-tags experimental
        self.assertNotIn("hr_c", log)
        self.assertIn("(in-process): selected 1, published 1, ok 1", log)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "state", "dtk.db")))


# ---- names and secrets --------------------------------------------------------

class FlagsVariablesSecrets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # DTK_STATE_DIR is libdtk's (storage and alert state), read by all
        # three binaries but listed only by `dtk --help`
        lib = help_names(BINARIES["dtk"])[1]
        cls.worker = tuple(s | lib if i == 1 else s for i, s in enumerate(help_names(WORKER)))
        cls.dispatch = tuple(s | lib if i == 1 else s for i, s in enumerate(help_names(DISPATCH)))

    def files(self):
        out = []
        for d in (SYSTEMD_DIR, CRON_DIR):
            for root, _, files in os.walk(d):
                out += [os.path.join(root, f) for f in files]
        return sorted(out)

    def test_flags_and_variables_in_help(self):
        union = (self.worker[0] | self.dispatch[0], self.worker[1] | self.dispatch[1],
                 self.worker[2] | self.dispatch[2])
        for path in self.files():
            text = read(path)
            name = os.path.basename(path)
            names = (self.worker if "worker" in name else
                     self.dispatch if "dispatch" in name or name.endswith(".crontab") else union)
            for var in set(VAR_RE.findall(text)):
                self.assertTrue(var_known(var, names[1], names[2]), "%s: %s is not in --help" % (path, var))
            if name.endswith(".service"):
                argv = exec_argv(text)
                binary = self.worker if argv[0].endswith("dtk-worker") else self.dispatch
                for flag in FLAG_RE.findall(" ".join(argv)):
                    self.assertIn(flag, binary[0], "%s: %s" % (path, flag))
        # the env files' keys are each a variable of their binary (or a source secret)
        for example, names in (("dispatch.env.example", self.dispatch), ("worker.env.example", self.worker)):
            text = read(os.path.join(SYSTEMD_DIR, example))
            keys = re.findall(r"(?m)^#?([A-Z][A-Z0-9_]*)=", text)
            self.assertTrue(keys)
            for key in keys:
                if key.startswith(("DTK_", "DETECTK_")):
                    self.assertTrue(var_known(key, names[1], names[2]), "%s: %s" % (example, key))
                else:
                    self.assertRegex(key, r"^(CLICKHOUSE|POSTGRES|PG|MYSQL|MATTERMOST|SLACK|WEBHOOK|"
                                          r"ALERTMANAGER)")

    def test_no_literal_secrets(self):
        for path in self.files():
            self.assertEqual(literal_secrets(read(path)), [], path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
