"""DetectK's own example configs give exactly the `dtk validate` outcome that
../shared/corpus/detectk-examples/README.md lists, each file validated on its
own, with the environment variables that README names set to dummy values.

The corpus is not part of this repository: when the folder is absent (a
user's clone) the test says so and passes without checking anything.
"""
import os
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("DTK_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE, "build"))
CORPUS = os.path.normpath(os.path.join(SOURCE, "..", "shared", "corpus", "detectk-examples"))
DTK = os.path.join(BINARY, "cli", "dtk")

DUMMY_ENV = {
    "CLICKHOUSE_HOST": "ch.example.internal",
    "CLICKHOUSE_USER": "analyst",
    "CLICKHOUSE_PASSWORD": "corpus-ch-secret",
    "MATTERMOST_WEBHOOK": "https://mattermost.example.com/hooks/corpus-mm-secret",
    "SLACK_WEBHOOK": "https://hooks.slack.com/services/T0/B0/corpus-slack-secret",
    "SLACK_ONCALL_WEBHOOK": "https://hooks.slack.com/services/T0/B1/corpus-oncall-secret",
    "SLACK_DATA_ENG_WEBHOOK": "https://hooks.slack.com/services/T0/B2/corpus-de-secret",
    "POSTGRES_URL": "postgresql://app:corpus-pg-secret@pg.example.internal:5432/app",
    "MYSQL_URL": "mysql://shop:corpus-my-secret@my.example.internal:3306/shop",
    "ANALYTICS_DB_URL": "mysql://an:corpus-an-secret@an.example.internal:3306/analytics",
    "METRICS_DB_URL": "sqlite:///metrics.db",
    "MY_API_KEY": "corpus-api-key-secret",
    "GRAFANA_API_KEY": "corpus-grafana-secret",
    "DATABASE_URL": "postgresql://db:corpus-db-secret@db.example.internal/db",
    "POSTGRES_HOST": "pg.example.internal",
    "POSTGRES_USER": "app",
    "POSTGRES_PASSWORD": "corpus-pg-password",
}

# README.md of the corpus: file -> (exit code, text the output must contain)
EXPECTED_ERRORS = {
    "quickstart/quickstart.yaml": (2, "period_start"),
    "backtest/sessions_backtest.yaml": (2, "period_start"),
    "profiles/profiles_example.yaml": (2, "profiles file, not a metric"),
    "profiles/metric_with_profile.yaml": (2, "clickhouse_analytics"),
}


def corpus_files():
    for root, _, files in os.walk(CORPUS):
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")):
                path = os.path.join(root, name)
                yield os.path.relpath(path, CORPUS)


class CorpusValidate(unittest.TestCase):
    def setUp(self):
        if not os.path.isdir(CORPUS):
            self.skipTest("corpus folder %s is absent (not part of this repository)" % CORPUS)
        self.home = tempfile.TemporaryDirectory()
        self.env = dict(os.environ)
        self.env.update(DUMMY_ENV)
        # no profiles file from the developer's machine may leak in
        self.env["HOME"] = self.home.name
        self.env["DTK_STATE_DIR"] = self.home.name
        self.env.pop("DETECTK_PROFILES_PATH", None)

    def tearDown(self):
        self.home.cleanup()

    def validate(self, rel, *extra):
        proc = subprocess.run([DTK, "validate", rel, *extra], cwd=CORPUS, env=self.env,
                              capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stdout + proc.stderr

    def test_corpus_has_the_37_examples_and_the_profiles_template(self):
        self.assertEqual(len(list(corpus_files())), 37)

    def test_every_example_gives_its_documented_validate_outcome(self):
        failures = []
        for rel in corpus_files():
            code, out = self.validate(rel)
            want_code, want_text = EXPECTED_ERRORS.get(rel, (0, "OK"))
            if code != want_code or want_text not in out:
                failures.append("%s: exit %d (want %d, text %r)\n%s" %
                                (rel, code, want_code, want_text, out))
        self.assertEqual(failures, [], "\n".join(failures))

    def test_metric_with_profile_is_valid_with_the_profiles_file(self):
        code, out = self.validate("profiles/metric_with_profile.yaml", "--profiles",
                                  "profiles/profiles_example.yaml")
        self.assertEqual(code, 0, out)

    def test_validate_output_never_shows_a_secret(self):
        secrets = [v for v in DUMMY_ENV.values() if "secret" in v or "password" in v]
        leaks = []
        for rel in corpus_files():
            _, out = self.validate(rel)
            for s in secrets:
                if s in out:
                    leaks.append("%s shows %s" % (rel, s))
        self.assertEqual(leaks, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
