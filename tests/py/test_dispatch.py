"""dtk-dispatch on the embedded default (no broker): the same selection as
`dtk run-tagged`, the checks run in-process on --parallel threads, the
report of fleet.md, the exit codes of cli.md, and settings from flags,
environment and a --config file with flags beating the environment beating
the file."""
import json
import os
import subprocess
import tempfile
import textwrap
import unittest

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
DISPATCH = os.path.join(BINARY, "dispatcher", "dtk-dispatch")
DTK = os.path.join(BINARY, "cli", "dtk")
T = "2024-11-02T14:30:00Z"
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

METRIC = """
name: {name}
tags: {tags}
collector: {{type: synthetic, params: {{base: {base}}}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
schedule: {{interval: "{interval}"}}
"""


class Dispatch(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "configs")
        os.makedirs(self.dir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DTK_")}
        self.env["DTK_STATE_DIR"] = os.path.join(self.tmp.name, "state")
        self.env["HOME"] = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def metric(self, name, tags, base=100, interval="10 minutes"):
        with open(os.path.join(self.dir, name + ".yaml"), "w") as f:
            f.write(METRIC.format(name=name, tags=json.dumps(tags), base=base, interval=interval))

    def run_bin(self, binary, *args, env=None):
        proc = subprocess.run([binary, *args], env=env or self.env, capture_output=True,
                              text=True, timeout=120)
        self.assertNotIn("AddressSanitizer", proc.stderr)
        self.assertNotIn("runtime error:", proc.stderr)
        return proc

    def dispatch(self, *args, env=None):
        return self.run_bin(DISPATCH, "--config-dir", self.dir, *args, env=env)

    def test_runs_the_tagged_checks_in_process_with_the_fleet_report(self):
        self.metric("a", ["critical"])
        self.metric("b", ["critical", "sales"], base=5000)
        self.metric("c", ["hourly"])
        p = self.dispatch("--tags", "critical", "--execution-time", T, "--output", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertRegex(doc["dispatch_id"], UUID)
        self.assertEqual(doc["summary"], {"selected": 2, "published": 2, "results": 2, "ok": 1,
                                          "anomaly": 1, "error": 0, "expired": 0,
                                          "rejected": 0, "missing": 0,
                                          "invalid_configs": 0})
        self.assertEqual(sorted(r["metric"] for r in doc["results"]), ["a", "b"])
        for r in doc["results"]:
            self.assertEqual(r["dispatch_id"], doc["dispatch_id"])
            self.assertEqual(r["execution_time"], T)
        self.assertEqual(doc["invalid"], [])

    def test_selection_is_the_same_as_run_tagged(self):
        for name, tags in [("a", ["x"]), ("b", ["x", "y"]), ("c", ["y"]), ("d", [])]:
            self.metric(name, tags)
        for args in (["--tags", "x"], ["--tags", "x,y", "--match-all"],
                     ["--exclude-tags", "x"], ["--tags", "y", "--exclude-tags", "x"]):
            d = self.dispatch(*args, "--dry-run")
            r = self.run_bin(DTK, "run-tagged", self.dir, *args, "--dry-run")
            self.assertEqual(d.returncode, r.returncode)
            picked = lambda out: sorted(line.split()[1] for line in out.splitlines()
                                        if line.startswith("selected"))
            self.assertEqual(picked(d.stdout), picked(r.stdout), args)
            self.assertTrue(picked(d.stdout), args)

    def test_a_broken_config_is_listed_and_the_others_still_run(self):
        self.metric("good", ["t"])
        with open(os.path.join(self.dir, "broken.yaml"), "w") as f:
            f.write("name: broken\ntags: [t]\ncollector: {type: synthetic}\n"
                    "detector: {type: nosuch}\n")
        p = self.dispatch("--tags", "t", "--execution-time", T, "--output", "json")
        self.assertEqual(p.returncode, 2)
        doc = json.loads(p.stdout)
        self.assertEqual([r["metric"] for r in doc["results"]], ["good"])
        self.assertEqual(len(doc["invalid"]), 1)
        self.assertIn("nosuch", doc["invalid"][0]["error"])
        self.assertEqual(doc["summary"]["invalid_configs"], 1)

    def test_exit_codes(self):
        self.metric("spike", ["t"], base=5000)
        self.assertEqual(self.dispatch("--tags", "t", "--execution-time", T).returncode, 0)
        self.assertEqual(self.dispatch("--tags", "t", "--execution-time", T,
                                       "--fail-on-anomaly").returncode, 3)
        self.assertEqual(self.dispatch().returncode, 2)  # no selection
        self.assertEqual(self.dispatch("--tags", "t", "--bogus").returncode, 2)

    def test_metric_and_due_select(self):
        self.metric("ten", ["t"], interval="10 minutes")
        self.metric("hourly", ["t"], interval="1 hour")
        p = self.dispatch("--metric", "hourly", "--dry-run")
        self.assertIn("(hourly)", p.stdout)
        self.assertNotIn("(ten)", p.stdout)
        for name in ("hourlyy", "hourly,ten"):  # no such config: a usage error, not "nothing"
            p = self.dispatch("--metric", name, "--execution-time", T)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("--metric %s: no config under" % name, p.stderr)
        at_ten_past = self.dispatch("--due", "--execution-time", "2024-11-02T14:10:30Z",
                                    "--dry-run").stdout
        self.assertIn("(ten)", at_ten_past)
        self.assertNotIn("(hourly)", at_ten_past)
        on_the_hour = self.dispatch("--due", "--execution-time", "2024-11-02T15:00:10Z",
                                    "--dry-run").stdout
        self.assertIn("(ten)", on_the_hour)
        self.assertIn("(hourly)", on_the_hour)

    def test_flags_beat_environment_beats_file(self):
        self.metric("a", ["file"])
        self.metric("b", ["env"])
        self.metric("c", ["flag"])
        settings = os.path.join(self.tmp.name, "dispatch.yaml")
        with open(settings, "w") as f:
            f.write(textwrap.dedent("""
                config_dir: %s
                tags: [file]
                parallel: 2
                """ % self.dir))
        env = dict(self.env)
        only_file = self.run_bin(DISPATCH, "--config", settings, "--dry-run", env=env)
        self.assertIn("(a)", only_file.stdout)
        env["DTK_TAGS"] = "env"
        with_env = self.run_bin(DISPATCH, "--config", settings, "--dry-run", env=env)
        self.assertIn("(b)", with_env.stdout)
        self.assertNotIn("(a)", with_env.stdout)
        with_flag = self.run_bin(DISPATCH, "--config", settings, "--tags", "flag", "--dry-run",
                                 env=env)
        self.assertIn("(c)", with_flag.stdout)
        self.assertNotIn("(b)", with_flag.stdout)
        env["DTK_PARALLEL"] = "lots"
        bad = self.run_bin(DISPATCH, "--config", settings, "--execution-time", T, env=env)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--parallel", bad.stderr)
        self.assertIn("environment", bad.stderr)
        with open(settings, "a") as f:
            f.write("no_such_setting: 1\n")
        unknown = self.run_bin(DISPATCH, "--config", settings, "--dry-run", env=self.env)
        self.assertEqual(unknown.returncode, 2)
        self.assertIn("no_such_setting", unknown.stderr)

    def test_help_lists_every_flag_with_its_variable(self):
        out = self.run_bin(DISPATCH, "--help").stdout
        for flag, var in [("--brokers", "DTK_KAFKA_BROKERS"), ("--redis", "DTK_REDIS_URL"),
                          ("--config-dir", "DTK_CONFIG_DIR"), ("--parallel", "DTK_PARALLEL"),
                          ("--profiles", "DETECTK_PROFILES_PATH"), ("--due", "DTK_DUE")]:
            self.assertIn(flag, out)
            self.assertIn("[%s]" % var, out)

    def test_kafka_flags_without_brokers_are_usage_errors(self):
        self.metric("a", ["t"])
        p = self.dispatch("--tags", "t", "--wait")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--wait needs --brokers", p.stderr)

    def test_parallel_gives_the_same_results_as_one_thread(self):
        for i in range(12):
            self.metric("m%02d" % i, ["t"], base=100 + i * 200)
        runs = []
        for n in ("1", "6"):
            state = os.path.join(self.tmp.name, "state" + n)
            env = dict(self.env, DTK_STATE_DIR=state)
            p = self.dispatch("--tags", "t", "--execution-time", T, "--parallel", n,
                              "--output", "json", env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            doc = json.loads(p.stdout)
            runs.append(sorted((r["metric"], r["status"], r["datapoint"]["value"])
                               for r in doc["results"]))
        self.assertEqual(runs[0], runs[1])
        self.assertEqual(len(runs[0]), 12)


if __name__ == "__main__":
    unittest.main(verbosity=2)
