"""The `dtk` command as a user runs it (cli.md, config.md, detection.md).

Each test runs the real binary ($DTK_BINARY_DIR/cli/dtk) in its own temp dir
with its own DTK_STATE_DIR, HOME and working directory, at fixed execution
times. Result objects are validated against schemas/check-result.v1.json with
jsonschema's Draft202012Validator.
"""

import json
import os
import re
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cli_helpers import SOURCE_DIR, T, CliTestCase, synthetic_config  # noqa: E402

# detector blocks (list items) -------------------------------------------------
THRESHOLD_LOW = "- type: threshold\n  params: {threshold: 50}\n"    # base 100 flags
THRESHOLD_HIGH = "- type: threshold\n  params: {threshold: 500}\n"  # base 100 is normal
MAD_DAY = "- type: mad\n  params: {window_size: \"1 day\"}\n"
CONSOLE = "type: console\n"

# an anomaly window covering the slots of the runs at 12:30, 13:30 and 14:30
# (hourly interval: execution times 12:00, 13:00, 14:00; slots start an hour
# earlier), and none of the history loaded before 10:00
SPIKE = ("base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T11:00:00Z\", "
         "end: \"2024-11-02T14:00:00Z\", factor: 3}]")


def alert_line(out):
    """The alert outcome of the console alerter in `dtk run` text output."""
    m = re.search(r"^\s+alert\s+console: (.*)$", out, re.M)
    return m.group(1).strip() if m else None


class RunExitCodes(CliTestCase):
    def test_ok_check_exits_0(self):
        cfg = self.write("m.yaml", synthetic_config("m_ok", THRESHOLD_HIGH))
        doc, _ = self.run_json(cfg, rc=0)
        self.assertEqual(doc["status"], "ok")

    def test_anomaly_exits_0_without_fail_on_anomaly(self):
        cfg = self.write("m.yaml", synthetic_config("m_anom", THRESHOLD_LOW))
        doc, _ = self.run_json(cfg, rc=0)
        self.assertEqual(doc["status"], "anomaly")

    def test_anomaly_with_fail_on_anomaly_exits_3(self):
        cfg = self.write("m.yaml", synthetic_config("m_anom", THRESHOLD_LOW))
        self.assertEqual(self.dtk("run", cfg, "-t", T, "--fail-on-anomaly").rc, 3)

    def test_ok_with_fail_on_anomaly_exits_0(self):
        cfg = self.write("m.yaml", synthetic_config("m_ok", THRESHOLD_HIGH))
        self.assertEqual(self.dtk("run", cfg, "-t", T, "--fail-on-anomaly").rc, 0)

    def test_missing_sqlite_source_via_sql_exits_1_and_is_not_created(self):
        src = self.path("nowhere", "source.db")
        cfg = self.write("m.yaml", """
            name: from_missing_db
            collector:
              type: sql
              params:
                connection_string: "sqlite:///%s"
                query: "SELECT count(*) AS value FROM t WHERE ts >= '{{ period_start }}' AND ts < '{{ period_finish }}'"
            detector: {type: threshold, params: {threshold: 5}}
            """ % src)
        os.makedirs(os.path.dirname(src))
        doc, r = self.run_json(cfg, rc=1, )
        self.assertEqual(doc["status"], "error")
        self.assertIsNone(doc["datapoint"])
        self.assertEqual([e["stage"] for e in doc["errors"]], ["collect"])
        self.assertIn("does not exist", doc["errors"][0]["message"])
        self.assertFalse(os.path.exists(src), "a missing SQLite source must not be created")
        # and a second run reports the same error, not an empty database
        doc, _ = self.run_json(cfg, rc=1)
        self.assertIn("does not exist", doc["errors"][0]["message"])
        self.assertFalse(os.path.exists(src))

    def test_missing_sqlite_source_via_sqlite_type_exits_1_and_is_not_created(self):
        src = self.path("absent.db")
        cfg = self.write("m.yaml", """
            name: from_missing_file
            collector:
              type: sqlite
              params:
                path: absent.db
                query: "SELECT 1 AS value WHERE '{{ period_start }}' < '{{ period_finish }}'"
            detector: {type: threshold, params: {threshold: 5}}
            """)
        r = self.dtk("run", cfg, "-t", T)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("dtk: from_missing_file: collect error: sqlite database", r.err)
        self.assertFalse(os.path.exists(src), "a missing SQLite source must not be created")

    def test_config_error_exits_2_with_nothing_on_stdout(self):
        cfg = self.write("m.yaml", "name: broken\ncollector: {type: synthetic}\n")
        r = self.dtk("run", cfg, "-t", T, "--output", "json")
        self.assertConfigError(r, "m.yaml", "detector")
        self.assertEqual(r.out, "")

    def test_usage_errors_exit_2(self):
        cfg = self.write("m.yaml", synthetic_config("m_ok", THRESHOLD_HIGH))
        for args in (["run"], ["run", cfg, cfg], ["run", cfg, "--bogus"],
                     ["run", cfg, "-t", "yesterday-ish"], ["run", cfg, "--output", "xml"],
                     ["no-such-command"], []):
            with self.subTest(args=args):
                r = self.dtk(*args)
                self.assertEqual(r.rc, 2, r)
                self.assertNotEqual(r.err, "", r)

    def test_help_and_version_exit_0(self):
        self.assertIn("usage: dtk run", self.run_ok("run", "--help").out)
        self.assertRegex(self.run_ok("--version").out, r"^dtk \d")
        for cmd in ("run-tagged", "validate", "list-metrics", "init", "init-project",
                    "load-history", "list-collectors", "list-detectors", "list-alerters"):
            with self.subTest(cmd=cmd):
                self.assertIn("usage", self.run_ok(cmd, "--help").out)

    def test_run_tagged_exit_precedence_is_2_then_1_then_3_then_0(self):
        self.write("cfg/ok.yaml", synthetic_config("p_ok", THRESHOLD_HIGH, tags="[all, ok]"))
        self.write("cfg/anom.yaml", synthetic_config("p_anom", THRESHOLD_LOW, tags="[all, anom]"))
        self.write("cfg/fail.yaml", """
            name: p_fail
            tags: [all, fail]
            collector:
              type: sqlite
              params: {path: missing.db, query: "SELECT 1 AS value -- {{ period_start }} {{ period_finish }}"}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        self.write("cfg/broken.yaml", """
            name: p_broken
            tags: [all, broken]
            collector: {type: synthetic}
            detector: {type: no_such_detector}
            """)
        d = self.path("cfg")
        cases = [("all", 2), ("ok,anom,fail", 1), ("ok,anom", 3), ("ok", 0), ("broken,ok", 2),
                 ("fail,anom", 1)]
        for tags, want in cases:
            with self.subTest(tags=tags):
                r = self.dtk("run-tagged", d, "--tags", tags, "--fail-on-anomaly")
                self.assertEqual(r.rc, want, r)
        self.assertEqual(self.dtk("run-tagged", d, "--tags", "ok,anom").rc, 0)


class JsonResults(CliTestCase):
    def load(self, cfg, frm="2024-10-26T00:00:00Z", to="2024-11-02T10:00:00Z"):
        r = self.dtk("load-history", cfg, "--from", frm, "--to", to)
        self.assertEqual(r.rc, 0, r)
        return r

    def test_ok_result_validates_and_aligns_execution_time_keeping_requested(self):
        cfg = self.write("m.yaml", synthetic_config(
            "json_ok", MAD_DAY + THRESHOLD_HIGH, CONSOLE, params="base: 100, noise: 2, seed: 3",
            extra="metadata: {owner: team-a}", tags="[x, y]"))
        self.load(cfg)
        doc, _ = self.run_json(cfg, rc=0)
        self.assertEqual(doc["schema"], "dtk.check.result/v1")
        self.assertEqual(doc["metric"], "json_ok")
        self.assertEqual(doc["status"], "ok")
        self.assertIsNone(doc["request_id"])
        self.assertIsNone(doc["dispatch_id"])
        # 14:30 aligned down to the hourly grid; the requested time is kept
        self.assertEqual(doc["execution_time"], "2024-11-02T14:00:00Z")
        self.assertEqual(doc["requested_time"], "2024-11-02T14:30:00Z")
        # the synthetic row of the period [13:00, 14:00) sits at its start
        self.assertEqual(doc["datapoint"]["timestamp"], "2024-11-02T13:00:00Z")
        self.assertFalse(doc["datapoint"]["is_missing"])
        self.assertIsInstance(doc["datapoint"]["value"], float)
        ids = [d["detector_id"] for d in doc["detections"]]
        self.assertEqual(len(ids), 2)
        self.assertEqual([d["detector_type"] for d in doc["detections"]], ["mad", "threshold"])
        self.assertTrue(all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids), ids)
        self.assertFalse(any(d["is_anomaly"] for d in doc["detections"]))
        self.assertIsNone(doc["detections"][0]["skipped"])
        self.assertFalse(doc["alert"]["sent"])
        self.assertEqual(doc["alerts"], [{"alerter": 0, "type": "console", "sent": False,
                                          "reason": None, "suppressed_by": None, "error": None}])
        self.assertEqual(doc["errors"], [])
        self.assertEqual(doc["tags"], ["x", "y"])
        self.assertEqual(doc["metadata"], {"owner": "team-a"})
        self.assertIsNone(doc["worker"])
        # the ids are the ones validate prints
        out = self.run_ok("validate", cfg).out
        for i in ids:
            self.assertIn(i, out)

    def test_no_align_uses_the_requested_time(self):
        cfg = self.write("m.yaml", synthetic_config("json_noalign", THRESHOLD_HIGH))
        doc, _ = self.run_json(cfg, "--no-align", rc=0)
        self.assertEqual(doc["execution_time"], "2024-11-02T14:30:00Z")
        self.assertEqual(doc["requested_time"], "2024-11-02T14:30:00Z")

    def test_execution_time_with_an_offset_is_converted_to_utc(self):
        cfg = self.write("m.yaml", synthetic_config("json_offset", THRESHOLD_HIGH))
        doc, _ = self.run_json(cfg, t="2024-11-02T16:30:00+02:00", rc=0)
        self.assertEqual(doc["requested_time"], "2024-11-02T14:30:00Z")
        self.assertEqual(doc["execution_time"], "2024-11-02T14:00:00Z")

    def test_daily_and_weekly_intervals_align_in_the_metric_timezone(self):
        # Berlin is UTC+1 on 2024-11-02 (DST ended on 27 Oct); the grid's
        # origin is Monday 1970-01-05 00:00 local time
        for interval, want in (("1 day", "2024-11-01T23:00:00Z"), ("1 week", "2024-10-27T23:00:00Z"),
                               ("10 minutes", "2024-11-02T14:30:00Z")):
            with self.subTest(interval=interval):
                cfg = self.write("m.yaml", synthetic_config(
                    "json_tz", THRESHOLD_HIGH, interval=interval, extra="timezone: Europe/Berlin"))
                doc, _ = self.run_json(cfg, "--dry-run", t="2024-11-02T14:35:00Z", rc=0)
                self.assertEqual(doc["execution_time"], want)

    def test_text_output_shows_both_times_when_they_differ(self):
        cfg = self.write("m.yaml", synthetic_config("text_times", THRESHOLD_HIGH))
        out = self.run_ok("run", cfg, "-t", T).out
        self.assertIn("2024-11-02T14:00:00Z", out)
        self.assertIn("2024-11-02T14:30:00Z", out)
        self.assertIn("text_times", out)

    def test_anomaly_with_infinite_score_over_a_constant_history(self):
        # constant history (noise 0), then the checked slot doubled: zero
        # spread, so the score is infinite and serialised as "inf"
        cfg = self.write("m.yaml", synthetic_config(
            "json_inf", "- type: mad\n  params: {window_size: \"1 day\"}\n"
                        "- type: zscore\n  params: {window_size: \"1 day\"}\n", CONSOLE,
            params="base: 100, noise: 0, anomalies: [{start: \"2024-11-02T13:00:00Z\", "
                   "end: \"2024-11-02T14:00:00Z\", factor: 2}]"))
        self.load(cfg, to="2024-11-02T13:00:00Z")
        doc, r = self.run_json(cfg, rc=0)
        self.assertEqual(doc["status"], "anomaly")
        self.assertEqual(doc["datapoint"]["value"], 200.0)
        for d in doc["detections"]:
            with self.subTest(detector=d["detector_type"]):
                self.assertTrue(d["is_anomaly"])
                self.assertEqual(d["score"], "inf")
                self.assertEqual(d["direction"], "up")
                # zscore's weighted mean of a constant carries summation residue
                self.assertAlmostEqual(d["lower_bound"], 100.0, places=9)
                self.assertAlmostEqual(d["upper_bound"], 100.0, places=9)
                self.assertAlmostEqual(d["percent_deviation"], 100.0, places=9)
        self.assertTrue(doc["alert"]["sent"])
        ids = [d["detector_id"] for d in doc["detections"]]
        self.assertEqual(doc["alert"]["reason"],
                         "Anomalies detected by 2 detectors (%s): primary_score=inf" % ", ".join(ids))
        self.assertEqual(doc["alerts"][0]["sent"], True)
        self.assertIsNone(doc["alerts"][0]["suppressed_by"])
        self.assertEqual(doc["alerts"][0]["reason"], doc["alert"]["reason"])

    def test_json_stdout_is_exactly_the_result_even_when_the_console_alerter_fires(self):
        # cli.md: `dtk run --output json` prints exactly the object; the
        # console alerter's text must not corrupt it (it goes to stderr)
        cfg = self.write("m.yaml", synthetic_config("json_console", THRESHOLD_LOW, CONSOLE))
        doc, r = self.run_json(cfg, rc=0)
        self.assertTrue(doc["alert"]["sent"])
        self.assertIn("ANOMALY DETECTED: json_console", r.err)
        self.assertEqual(r.out.count("\n"), 1, r)

    def test_single_detector_reason_names_it_with_its_score(self):
        cfg = self.write("m.yaml", synthetic_config("json_reason", THRESHOLD_LOW, CONSOLE))
        doc, _ = self.run_json(cfg)
        d = doc["detections"][0]
        self.assertEqual(d["score"], 50.0)
        self.assertEqual(doc["alert"]["reason"],
                         "Anomaly detected by detector %s: score=50.00" % d["detector_id"])

    def test_error_result_validates(self):
        cfg = self.write("m.yaml", """
            name: json_error
            collector:
              type: sqlite
              params: {path: gone.db, query: "SELECT 1 AS value -- {{ period_start }} {{ period_finish }}"}
            detector: {type: threshold, params: {threshold: 5}}
            alerter: {type: console}
            """)
        doc, r = self.run_json(cfg, rc=1)
        self.assertEqual(doc["status"], "error")
        self.assertIsNone(doc["datapoint"])
        self.assertEqual(doc["errors"][0]["stage"], "collect")
        self.assertFalse(doc["alert"]["sent"])
        self.assertNotIn("[ALERT]", r.out + r.err)

    def test_skipped_detectors_do_not_change_status(self):
        cfg = self.write("m.yaml", synthetic_config(
            "json_skipped", MAD_DAY + "- type: zscore\n  params: {window_size: 48}\n" + THRESHOLD_HIGH))
        doc, _ = self.run_json(cfg, rc=0)
        self.assertEqual(doc["status"], "ok")
        mad, zs, th = doc["detections"]
        for d in (mad, zs):
            self.assertFalse(d["is_anomaly"])
            self.assertIsInstance(d["skipped"], str)
            self.assertIsNone(d["score"])
        self.assertIn("No historical data", mad["skipped"])
        self.assertIsNone(th["skipped"])

    def test_insufficient_history_is_skipped_with_the_counts(self):
        cfg = self.write("m.yaml", synthetic_config("json_few", MAD_DAY))
        self.load(cfg, frm="2024-11-02T11:00:00Z", to="2024-11-02T13:00:00Z")
        doc, _ = self.run_json(cfg, rc=0)
        skipped = doc["detections"][0]["skipped"]
        self.assertIn("Insufficient data", skipped)
        self.assertIn("2 points", skipped)
        self.assertIn("minimum 3", skipped)

    def test_missing_point_is_null_and_skips_statistical_detectors(self):
        cfg = self.write("m.yaml", synthetic_config(
            "json_missing", MAD_DAY + "- type: missing_data\n  params: {consecutive_missing: 1}\n",
            params="base: 100, missing: [{start: \"2024-11-02T13:00:00Z\", "
                   "end: \"2024-11-02T14:00:00Z\"}]"))
        self.load(cfg, to="2024-11-02T13:00:00Z")
        doc, _ = self.run_json(cfg)
        self.assertTrue(doc["datapoint"]["is_missing"])
        self.assertIsNone(doc["datapoint"]["value"])
        mad, md = doc["detections"]
        self.assertIsNotNone(mad["skipped"])
        self.assertTrue(md["is_anomaly"])
        self.assertEqual(md["direction"], "missing")
        self.assertEqual(doc["status"], "anomaly")
        # stored with is_missing = 1
        rows = self.datapoints("json_missing")
        self.assertIn(("json_missing", 1730552400, None, 1), rows)

    def test_no_store_writes_no_datapoint(self):
        cfg = self.write("m.yaml", synthetic_config("json_nostore", THRESHOLD_HIGH))
        self.run_json(cfg, "--no-store", rc=0)
        self.assertEqual(self.datapoints(), [])
        self.run_json(cfg, rc=0)
        self.assertEqual(len(self.datapoints("json_nostore")), 1)

    def test_state_defaults_to_xdg_state_home_then_home(self):
        cfg = self.write("m.yaml", synthetic_config("json_xdg", THRESHOLD_HIGH))
        xdg = os.path.join(self.tmp, "xdg")
        self.run_json(cfg, rc=0, env={"DTK_STATE_DIR": None, "XDG_STATE_HOME": xdg})
        self.assertEqual(len(self.datapoints(db=os.path.join(xdg, "dtk", "dtk.db"))), 1)
        self.run_json(cfg, rc=0, env={"DTK_STATE_DIR": None})
        home_db = os.path.join(self.home, ".local", "state", "dtk", "dtk.db")
        self.assertEqual(len(self.datapoints(db=home_db)), 1)
        self.assertEqual(self.datapoints(), [])

    def test_missing_or_unreadable_config_file_exits_2_naming_it(self):
        r = self.dtk("run", self.path("nope.yaml"), "-t", T)
        self.assertConfigError(r, "nope.yaml")
        r = self.dtk("run", self.work, "-t", T)
        self.assertConfigError(r, self.work)

    def test_dry_run_writes_nothing(self):
        cfg = self.write("m.yaml", synthetic_config("json_dry", THRESHOLD_LOW, CONSOLE))
        doc, r = self.run_json(cfg, "--dry-run", rc=0)
        self.assertEqual(doc["status"], "anomaly")
        self.assertFalse(doc["alert"]["sent"])
        self.assertNotIn("[ALERT]", r.out + r.err)
        self.assertEqual(self.datapoints(), [])


class BadInput(CliTestCase):
    """Config errors: exit 2, a message naming the file and the key, nothing stored."""

    BODY = ("collector:\n  type: synthetic\n"
            "detector:\n  type: threshold\n  params: {threshold: 50}\n")

    def check_error(self, text, *needles, name="bad.yaml", position=None):
        cfg = self.write(name, text)
        r = self.dtk("run", cfg, "-t", T)
        self.assertConfigError(r, name, *needles)
        if position:
            self.assertIn("%s:%s:" % (name, position), r.err)
        self.assertEqual(r.out, "")
        self.assertEqual(self.datapoints(), [], "a config error must not store anything")
        # validate agrees
        v = self.dtk("validate", cfg)
        self.assertEqual(v.rc, 2, v)
        self.assertIn("INVALID", v.out)
        return r

    def test_malformed_yaml_names_line_and_column(self):
        self.check_error("name: x\ntags: [a, b\n" + self.BODY, position="3")

    def test_tags_as_a_scalar(self):
        self.check_error("name: x\ntags: critical\n" + self.BODY, "tags", "list", position="2:7")

    def test_non_string_tag(self):
        self.check_error("name: x\ntags: [a, 3]\n" + self.BODY, "tags[1]", position="2:11")

    def test_n_sigma_as_a_string(self):
        self.check_error("name: x\ncollector: {type: synthetic}\n"
                         "detector:\n  type: zscore\n  params:\n    n_sigma: three\n",
                         "detector.params.n_sigma", position="6:14")

    def test_unknown_detector_type_lists_known_ones(self):
        r = self.check_error("name: x\ncollector: {type: synthetic}\ndetector: {type: prophet}\n",
                             "prophet", position="3:18")
        for known in ("threshold", "zscore", "mad", "iqr", "missing_data"):
            self.assertIn(known, r.err)

    def test_unknown_collector_type_lists_known_ones(self):
        r = self.check_error("name: x\ncollector: {type: oracle}\n"
                             "detector: {type: threshold, params: {threshold: 1}}\n",
                             "collector.type", "oracle", "synthetic", "sqlite")

    def test_threshold_without_threshold(self):
        self.check_error("name: x\ncollector: {type: synthetic}\n"
                         "detector: {type: threshold, params: {operator: less_than}}\n",
                         "detector.params.threshold", "required")

    def test_unset_env_var_names_variable_and_key_path(self):
        r = self.check_error("name: x\ncollector:\n  type: synthetic\n  params:\n"
                             "    base: ${DTK_TEST_UNSET_BASE}\n"
                             "detector: {type: threshold, params: {threshold: 5}}\n",
                             "DTK_TEST_UNSET_BASE", "collector.params.base", position="5:11")
        self.assertIn("not set", r.err)

    def test_bad_interval_is_quoted(self):
        self.check_error("name: x\nschedule: {interval: 10 minuts}\n" + self.BODY,
                         '"10 minuts"', "schedule", "interval")

    def test_bad_window_size_is_quoted(self):
        self.check_error("name: x\ncollector: {type: synthetic}\n"
                         "detector: {type: mad, params: {window_size: \"30 dayz\"}}\n",
                         "30 dayz", "window_size")

    def test_bad_operator(self):
        self.check_error("name: x\ncollector: {type: synthetic}\n"
                         "detector: {type: threshold, params: {threshold: 5, operator: bigger}}\n",
                         "Invalid operator", "bigger", "detector.params.operator")

    def test_sql_query_without_period_variables(self):
        db = self.path("src.db")
        sqlite3.connect(db).close()
        self.check_error("name: x\ncollector:\n  type: sql\n  params:\n"
                         "    connection_string: \"sqlite:///%s\"\n"
                         "    query: SELECT count(*) AS value FROM events\n"
                         "detector: {type: threshold, params: {threshold: 5}}\n" % db,
                         "collector.params.query", "period_start", "period_finish")

    def test_sql_query_with_only_period_start(self):
        db = self.path("src.db")
        sqlite3.connect(db).close()
        self.check_error("name: x\ncollector:\n  type: sqlite\n  params:\n"
                         "    path: src.db\n"
                         "    query: \"SELECT 1 AS value WHERE '{{ period_start }}' > ''\"\n"
                         "detector: {type: threshold, params: {threshold: 5}}\n",
                         "collector.params.query", "period_finish")

    def test_message_template_syntax_error_names_its_line(self):
        r = self.check_error("name: x\ncollector: {type: synthetic}\n"
                             "detector: {type: threshold, params: {threshold: 5}}\n"
                             "alerter:\n  type: console\n  params:\n    message_template: |\n"
                             "      first line is fine\n"
                             "      second {{ value + }} is not\n",
                             "alerter.params.message_template")
        self.assertIn("line 2", r.err)

    def test_profiles_file_given_as_a_metric(self):
        self.check_error("profiles:\n  ch:\n    type: clickhouse\n    host: localhost\n",
                         "profiles file, not a metric", name="detectk_profiles.yaml")

    def test_unknown_conditions_key_is_an_error_with_a_suggestion(self):
        self.check_error("name: x\ncollector: {type: synthetic}\n"
                         "detector: {type: threshold, params: {threshold: 5}}\n"
                         "alerter:\n  type: console\n  conditions:\n    cooldown_minute: 5\n",
                         "alerter.conditions", "cooldown_minute", "did you mean 'cooldown_minutes'",
                         position="7:5")

    def test_unknown_top_level_key_is_a_warning_with_a_suggestion(self):
        cfg = self.write("warn.yaml", "name: x\ndescriptoin: typo\n" + self.BODY)
        v = self.dtk("validate", cfg)
        self.assertEqual(v.rc, 0, v)
        self.assertIn("OK", v.out)
        self.assertRegex(v.out, r"warning: .*warn\.yaml:2:1: .*descriptoin.*did you mean 'description'")
        r = self.dtk("run", cfg, "-t", T, "--output", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(any("descriptoin" in w for w in r.json["warnings"]), r.json["warnings"])

    def test_unknown_storage_param_is_a_warning_with_its_path(self):
        cfg = self.write("warn.yaml", "name: x\n" + self.BODY +
                         "storage:\n  params:\n    save_detection: true\n")
        v = self.dtk("validate", cfg)
        self.assertEqual(v.rc, 0, v)
        self.assertRegex(v.out, r"storage\.params\.save_detection.*did you mean 'save_detections'")

    def test_unknown_detector_param_is_a_warning_with_its_path_and_a_suggestion(self):
        cfg = self.write("warn.yaml", "name: x\ncollector: {type: synthetic}\n"
                         "detector: {type: mad, params: {window_size: \"1 day\", n_sigmaa: 3}}\n")
        v = self.dtk("validate", cfg)
        self.assertEqual(v.rc, 0, v)
        self.assertRegex(v.out, r"detector\.params\.n_sigmaa.*did you mean 'n_sigma'")

    def test_query_failing_in_sqlite_is_a_collect_error_with_sqlites_message(self):
        db = self.path("src.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE events (ts TEXT)")
        con.commit()
        con.close()
        cfg = self.write("q.yaml", """
            name: failing_query
            collector:
              type: sqlite
              params:
                path: src.db
                query: "SELECT count(*) AS value FROM evnts WHERE ts >= '{{ period_start }}' AND ts < '{{ period_finish }}'"
            detector: {type: threshold, params: {threshold: 5}}
            """)
        doc, r = self.run_json(cfg, rc=1)
        self.assertEqual(doc["status"], "error")
        self.assertEqual(doc["errors"][0]["stage"], "collect")
        self.assertIn("no such table: evnts", doc["errors"][0]["message"])

    def test_duplicate_key_keeps_the_last_value_and_validate_warns(self):
        cfg = self.write("dup.yaml", "name: first\nname: dup_last\n" + self.BODY)
        v = self.dtk("validate", cfg)
        self.assertEqual(v.rc, 0, v)
        self.assertIn("metric dup_last", v.out)
        self.assertIn("warning", v.out)
        self.assertIn("name", v.out.split("warning", 1)[1])


class RunTagged(CliTestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.path("metrics")
        self.write("metrics/a.yaml", synthetic_config("m_a", THRESHOLD_HIGH, tags="[x]"))
        self.write("metrics/b.yaml", synthetic_config("m_b", THRESHOLD_LOW, tags="[y]"))
        self.write("metrics/sub/c.yaml", synthetic_config("m_c", THRESHOLD_HIGH, tags="[x, y]"))
        self.write("metrics/d.yml", synthetic_config("m_d", THRESHOLD_HIGH, tags="[z]"))

    def selected(self, *args):
        r = self.dtk("run-tagged", self.dir, "--dry-run", *args)
        self.assertEqual(r.rc, 0, r)
        return sorted(os.path.basename(line.split()[1]) for line in r.out.splitlines()
                      if line.startswith("selected"))

    def ran(self, *args, rc=0):
        r = self.dtk("run-tagged", self.dir, "--output", "json", *args)
        self.assertEqual(r.rc, rc, r)
        doc = r.json
        for res in doc["results"]:
            self.assertValidResult(res)
        return doc, r

    def test_any_tag_by_default(self):
        self.assertEqual(self.selected("--tags", "x"), ["a.yaml", "c.yaml"])

    def test_repeated_and_comma_separated_tags_are_the_same(self):
        self.assertEqual(self.selected("--tags", "x", "--tags", "y"), ["a.yaml", "b.yaml", "c.yaml"])
        self.assertEqual(self.selected("--tags", "x,y"), ["a.yaml", "b.yaml", "c.yaml"])
        self.assertEqual(self.selected("-t", "x, y"), ["a.yaml", "b.yaml", "c.yaml"])

    def test_match_all_requires_every_tag(self):
        self.assertEqual(self.selected("--tags", "x,y", "--match-all"), ["c.yaml"])

    def test_exclusions_apply_first(self):
        self.assertEqual(self.selected("--tags", "x", "--exclude-tags", "y"), ["a.yaml"])
        self.assertEqual(self.selected("-t", "x,y", "-e", "x"), ["b.yaml"])

    def test_exclude_only_selects_the_rest(self):
        self.assertEqual(self.selected("-e", "x"), ["b.yaml", "d.yml"])
        self.assertEqual(self.selected("-e", "x", "-e", "z"), ["b.yaml"])

    def test_neither_tags_nor_exclusions_is_a_usage_error(self):
        r = self.dtk("run-tagged", self.dir)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--tags", r.err)
        self.assertEqual(self.datapoints(), [])

    def test_parallel_needs_a_number(self):
        for bad in (["--parallel"], ["--parallel", "0"], ["-p", "many"]):
            with self.subTest(args=bad):
                self.assertEqual(self.dtk("run-tagged", self.dir, "-t", "x", *bad).rc, 2)

    def test_dry_run_lists_without_running(self):
        r = self.dtk("run-tagged", self.dir, "--tags", "x", "--dry-run")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("a.yaml", r.out)
        self.assertNotIn("b.yaml", r.out)
        self.assertFalse(os.path.exists(self.db_path()), os.listdir(self.state))
        self.assertEqual(os.listdir(self.state), [])

    def test_dry_run_does_not_need_secrets(self):
        # deferred env mode: an unset secret does not hide or break a config
        self.write("metrics/e.yaml", """
            name: m_e
            tags: [secret]
            collector:
              type: synthetic
              params: {base: "${DTK_TEST_UNSET_SECRET}"}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        self.assertEqual(self.selected("-t", "secret"), ["e.yaml"])
        # running it (strict mode) is a config error naming the variable
        doc, r = self.ran("-t", "secret", rc=2)
        self.assertEqual(doc["results"], [])
        self.assertIn("DTK_TEST_UNSET_SECRET", doc["invalid"][0]["error"])

    def test_json_shape_and_summary(self):
        doc, _ = self.ran("-t", "x,y")
        self.assertEqual(set(doc), {"summary", "results", "invalid"})
        self.assertEqual(doc["summary"], {"selected": 3, "results": 3, "ok": 2, "anomaly": 1,
                                          "error": 0, "invalid_configs": 0})
        self.assertEqual(sorted(r["metric"] for r in doc["results"]), ["m_a", "m_b", "m_c"])
        self.assertEqual(doc["invalid"], [])

    def test_text_summary(self):
        r = self.dtk("run-tagged", self.dir, "-t", "x,y")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Total: 3, success: 3 (anomalies: 1), errors: 0, invalid configs: 0", r.out)

    def test_one_broken_config_still_runs_the_others_and_exits_2(self):
        self.write("metrics/broken.yaml", "name: m_broken\ntags: [x]\ncollector: {type: synthetic}\n"
                   "detector: {type: threshold}\n")
        doc, _ = self.ran("-t", "x", rc=2)
        self.assertEqual(sorted(r["metric"] for r in doc["results"]), ["m_a", "m_c"])
        self.assertEqual(doc["summary"]["invalid_configs"], 1)
        self.assertEqual(len(doc["invalid"]), 1)
        self.assertTrue(doc["invalid"][0]["path"].endswith("broken.yaml"))
        self.assertIn("detector.params.threshold", doc["invalid"][0]["error"])
        self.assertEqual(len(self.datapoints("m_a")), 1)
        r = self.dtk("run-tagged", self.dir, "-t", "x")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("broken.yaml", r.err)
        self.assertIn("invalid configs: 1", r.out)

    def test_malformed_yaml_in_the_directory_is_reported_not_fatal(self):
        self.write("metrics/zz.yaml", "name: m_zz\ntags: [x\n")
        doc, _ = self.ran("-t", "x", rc=2)
        self.assertEqual(sorted(r["metric"] for r in doc["results"]), ["m_a", "m_c"])
        self.assertTrue(doc["invalid"][0]["path"].endswith("zz.yaml"))

    def test_profiles_file_in_the_directory_is_not_a_config(self):
        # init-project puts detectk_profiles.yaml in the project root, and
        # run-tagged scans "." by default: the profiles file is skipped, not
        # reported as an invalid metric (it is one only when given as a metric)
        self.write("metrics/detectk_profiles.yaml", "profiles:\n  gen: {type: synthetic}\n")
        doc, _ = self.ran("-t", "x", rc=0)
        self.assertEqual(doc["invalid"], [])
        self.assertEqual(self.selected("-e", "nothing"), ["a.yaml", "b.yaml", "c.yaml", "d.yml"])

    def test_duplicate_metric_names_are_both_config_errors(self):
        self.write("metrics/a2.yaml", synthetic_config("m_a", THRESHOLD_HIGH, tags="[x]"))
        doc, _ = self.ran("-t", "x", rc=2)
        self.assertEqual([r["metric"] for r in doc["results"]], ["m_c"])
        paths = sorted(os.path.basename(i["path"]) for i in doc["invalid"])
        self.assertEqual(paths, ["a.yaml", "a2.yaml"])
        for i in doc["invalid"]:
            self.assertIn("m_a", i["error"])
        self.assertEqual(self.datapoints("m_a"), [])

    def test_dry_run_reports_duplicate_names(self):
        # ambiguity: --dry-run only lists, but a listing that calls a
        # selection fine when the real run would refuse it misleads
        self.write("metrics/a2.yaml", synthetic_config("m_a", THRESHOLD_HIGH, tags="[x]"))
        r = self.dtk("run-tagged", self.dir, "--dry-run", "-t", "x")
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.out, r"invalid +\S*a\.yaml: duplicate metric name 'm_a'")
        self.assertRegex(r.out, r"invalid +\S*a2\.yaml: duplicate metric name 'm_a'")
        self.assertRegex(r.out, r"selected \S*c\.yaml")

    def test_a_name_shared_with_an_invalid_file_is_still_a_duplicate(self):
        self.write("metrics/a2.yaml", "name: m_a\ntags: [x]\ncollector: {type: synthetic}\n"
                   "detector: {type: threshold}\n")
        doc, _ = self.ran("-t", "x", rc=2)
        self.assertEqual([r["metric"] for r in doc["results"]], ["m_c"])
        errors = {os.path.basename(i["path"]): i["error"] for i in doc["invalid"]}
        self.assertIn("duplicate metric name", errors["a.yaml"])
        self.assertIn("threshold", errors["a2.yaml"])

    def test_three_files_with_one_name_are_all_config_errors(self):
        self.write("metrics/a2.yaml", synthetic_config("m_a", THRESHOLD_HIGH, tags="[x]"))
        self.write("metrics/a3.yaml", synthetic_config("m_a", THRESHOLD_HIGH, tags="[x]"))
        doc, _ = self.ran("-t", "x", rc=2)
        self.assertEqual([r["metric"] for r in doc["results"]], ["m_c"])
        self.assertEqual(sorted(os.path.basename(i["path"]) for i in doc["invalid"]),
                         ["a.yaml", "a2.yaml", "a3.yaml"])

    def test_duplicate_name_outside_the_selection_is_not_an_error(self):
        self.write("metrics/a2.yaml", synthetic_config("m_a", THRESHOLD_HIGH, tags="[other]"))
        doc, _ = self.ran("-t", "x", rc=0)
        self.assertEqual(sorted(r["metric"] for r in doc["results"]), ["m_a", "m_c"])

    def test_parallel_4_gives_the_same_results_as_1(self):
        for i in range(8):
            self.write("metrics/p%d.yaml" % i, synthetic_config(
                "par_%d" % i, THRESHOLD_LOW if i % 3 == 0 else THRESHOLD_HIGH, CONSOLE,
                params="base: %d" % (90 + i), tags="[x]"))

        def strip(doc):
            out = []
            for r in doc["results"]:
                out.append((r["metric"], r["status"], r["datapoint"]["value"],
                            json.dumps(r["detections"], sort_keys=True), r["alert"]["sent"]))
            return sorted(out)

        s1 = os.path.join(self.tmp, "s1")
        s4 = os.path.join(self.tmp, "s4")
        r1 = self.dtk("run-tagged", self.dir, "-t", "x", "--output", "json", "-p", "1",
                      env={"DTK_STATE_DIR": s1})
        r4 = self.dtk("run-tagged", self.dir, "-t", "x", "--output", "json", "--parallel", "4",
                      env={"DTK_STATE_DIR": s4})
        self.assertEqual(r1.rc, 0, r1)
        self.assertEqual(r4.rc, 0, r4)
        self.assertEqual(r1.json["summary"], r4.json["summary"])
        self.assertEqual(r1.json["summary"]["selected"], 10)
        self.assertEqual(strip(r1.json), strip(r4.json))
        # console alert lines are whole lines (one write each), never interleaved
        for r in (r1, r4):
            self.assertEqual(r.err.count("[ALERT] **ANOMALY DETECTED:"), 3, r)

    def test_profiles_flag_applies_to_every_selected_config(self):
        prof = os.path.join(self.tmp, "p.yaml")
        with open(prof, "w", encoding="utf-8") as f:
            f.write("profiles:\n  gen: {type: synthetic, base: 77}\n")
        self.write("metrics/prof.yaml", "name: m_prof\ntags: [prof]\ncollector: {profile: gen}\n"
                   "detector: {type: threshold, params: {threshold: 5000}}\n")
        doc, _ = self.ran("-t", "prof", "--profiles", prof)
        self.assertEqual(doc["results"][0]["datapoint"]["value"], 77.0)
        doc, _ = self.ran("-t", "prof", rc=2)
        self.assertIn("gen", doc["invalid"][0]["error"])

    def test_missing_directory_is_a_usage_error(self):
        r = self.dtk("run-tagged", self.path("nope"), "-t", "x")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("nope", r.err)


class AlertConditions(CliTestCase):
    """Alert state persists across separate `dtk run` invocations."""

    def make(self, name, alerter, detectors=MAD_DAY, params=SPIKE):
        cfg = self.write("%s.yaml" % name, synthetic_config(name, detectors, alerter, params=params))
        r = self.dtk("load-history", cfg, "--from", "2024-10-30T00:00:00Z", "--to",
                     "2024-11-02T10:00:00Z")
        self.assertEqual(r.rc, 0, r)
        return cfg

    def check(self, cfg, t):
        """Runs at t in text mode; returns (status line, alert outcome, stdout)."""
        r = self.dtk("run", cfg, "-t", t)
        self.assertEqual(r.rc, 0, r)
        outcome = alert_line(r.out)
        # the console alerter prints exactly when the alert is sent
        self.assertEqual("[ALERT]" in r.out, outcome == "sent", r)
        name = os.path.basename(cfg)[:-len(".yaml")]
        status = [line for line in r.out.splitlines() if line.startswith(name + ": ")]
        self.assertEqual(len(status), 1, r)
        return status[0], outcome, r.out

    def test_consecutive_anomalies_2_fires_only_on_the_second_anomalous_slot(self):
        cfg = self.make("consec", "type: console\nconditions: {consecutive_anomalies: 2, "
                                  "cooldown_minutes: 0}\n")
        status, outcome, _ = self.check(cfg, "2024-11-02T10:30:00Z")
        self.assertEqual((status, outcome), ("consec: ok", "not needed"))
        status, outcome, _ = self.check(cfg, "2024-11-02T12:30:00Z")
        self.assertEqual((status, outcome), ("consec: anomaly", "suppressed by consecutive"))
        status, outcome, out = self.check(cfg, "2024-11-02T13:30:00Z")
        self.assertEqual((status, outcome), ("consec: anomaly", "sent"))
        self.assertIn("ANOMALY DETECTED: consec", out)

    def test_consecutive_counts_aligned_slots_not_runs(self):
        # an anomalous slot, a gap of one slot never run, then another
        # anomalous slot: the two runs are not consecutive slots
        cfg = self.make("gap", "type: console\nconditions: {consecutive_anomalies: 2}\n",
                        params="base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T10:00:00Z\", "
                               "end: \"2024-11-02T14:00:00Z\", factor: 3}]")
        self.assertEqual(self.check(cfg, "2024-11-02T11:30:00Z")[1], "suppressed by consecutive")
        self.assertEqual(self.check(cfg, "2024-11-02T13:30:00Z")[1], "suppressed by consecutive")

    def test_cooldown_suppresses_within_the_window_and_sends_after(self):
        cfg = self.make("cool", "type: console\nconditions: {cooldown_minutes: 90}\n",
                        params="base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T10:00:00Z\", "
                               "end: \"2024-11-02T15:00:00Z\", factor: 3}]")
        self.assertEqual(self.check(cfg, "2024-11-02T11:30:00Z")[1], "sent")
        doc, r = self.run_json(cfg, t="2024-11-02T12:30:00Z")
        self.assertEqual(doc["status"], "anomaly")
        self.assertFalse(doc["alert"]["sent"])
        self.assertEqual(doc["alert"]["suppressed_by"], "cooldown")
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "cooldown")
        self.assertNotIn("[ALERT]", r.out + r.err)
        # 13:00 is 120 minutes after the 11:00 send: past the cooldown
        self.assertEqual(self.check(cfg, "2024-11-02T13:30:00Z")[1], "sent")

    def test_cooldown_from_params_when_conditions_do_not_set_it(self):
        cfg = self.make("coolp", "type: console\nparams: {cooldown_minutes: 30}\n",
                        params="base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T10:00:00Z\", "
                               "end: \"2024-11-02T15:00:00Z\", factor: 3}]")
        self.assertEqual(self.check(cfg, "2024-11-02T11:30:00Z")[1], "sent")
        # default would be 60 minutes; params say 30, so the next hour sends
        self.assertEqual(self.check(cfg, "2024-11-02T12:30:00Z")[1], "sent")

    def test_default_cooldown_is_60_minutes(self):
        cfg2 = self.write("cooldef10.yaml", synthetic_config("cooldef10", THRESHOLD_LOW, CONSOLE,
                                                             interval="10 minutes"))
        self.assertEqual(self.check(cfg2, "2024-11-02T13:00:00Z")[1], "sent")
        self.assertEqual(self.check(cfg2, "2024-11-02T13:50:00Z")[1], "suppressed by cooldown")
        self.assertEqual(self.check(cfg2, "2024-11-02T14:00:00Z")[1], "sent")

    def test_rerunning_the_same_execution_time_does_not_alert_twice(self):
        cfg = self.make("dup", "type: console\nconditions: {cooldown_minutes: 0}\n")
        self.assertEqual(self.check(cfg, "2024-11-02T12:30:00Z")[1], "sent")
        doc, r = self.run_json(cfg, t="2024-11-02T12:05:00Z")  # same aligned slot
        self.assertFalse(doc["alert"]["sent"])
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "duplicate")
        self.assertNotIn("[ALERT]", r.out + r.err)

    def test_disabled_alerter_is_suppressed_by_disabled(self):
        cfg = self.make("disabled_alerter", "type: console\nenabled: false\n")
        doc, r = self.run_json(cfg, t="2024-11-02T12:30:00Z")
        self.assertEqual(doc["status"], "anomaly")
        self.assertFalse(doc["alert"]["sent"])
        self.assertEqual(doc["alert"]["suppressed_by"], "disabled")
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "disabled")
        self.assertNotIn("[ALERT]", r.out + r.err)
        self.assertIn("disabled", self.run_ok("validate", cfg).out)

    def test_direction_down_suppresses_an_upward_anomaly(self):
        cfg = self.make("down", "type: console\nconditions: {direction: down}\n")
        doc, r = self.run_json(cfg, t="2024-11-02T12:30:00Z")
        self.assertEqual(doc["detections"][0]["direction"], "up")
        self.assertFalse(doc["alert"]["sent"])
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "direction")
        self.assertNotIn("[ALERT]", r.out + r.err)

    def test_direction_up_sends_an_upward_anomaly(self):
        cfg = self.make("up", "type: console\nconditions: {direction: up}\n")
        self.assertEqual(self.check(cfg, "2024-11-02T12:30:00Z")[1], "sent")

    def test_min_deviation_percent_gates_on_the_primary_detection(self):
        cfg = self.make("mindev", "type: console\nconditions: {min_deviation_percent: 500}\n")
        doc, _ = self.run_json(cfg, t="2024-11-02T12:30:00Z")
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "min_deviation")

    def test_require_all_needs_every_detector_that_ran(self):
        cfg = self.make("reqall", "type: console\nconditions: {require: all}\n",
                        detectors=MAD_DAY + THRESHOLD_HIGH)
        doc, _ = self.run_json(cfg, t="2024-11-02T12:30:00Z")
        self.assertEqual([d["is_anomaly"] for d in doc["detections"]], [True, False])
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "require")

    def test_notify_recovery_sends_one_recovered_message(self):
        cfg = self.make("rec", "type: console\nconditions: {notify_recovery: true}\n",
                        params="base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T11:00:00Z\", "
                               "end: \"2024-11-02T12:00:00Z\", factor: 3}]")
        status, outcome, out = self.check(cfg, "2024-11-02T12:30:00Z")
        self.assertEqual((status, outcome), ("rec: anomaly", "sent"))
        self.assertNotIn("RECOVERED", out)
        status, outcome, out = self.check(cfg, "2024-11-02T13:30:00Z")
        self.assertEqual((status, outcome), ("rec: ok", "sent"))
        self.assertEqual(out.count("RECOVERED: rec"), 1, out)
        doc, r = self.run_json(cfg, t="2024-11-02T14:30:00Z")
        self.assertEqual(doc["status"], "ok")
        self.assertFalse(doc["alert"]["sent"])
        self.assertNotIn("RECOVERED", r.out + r.err)

    def test_no_recovery_message_without_notify_recovery(self):
        cfg = self.make("norec", CONSOLE,
                        params="base: 100, noise: 2, seed: 5, anomalies: [{start: \"2024-11-02T11:00:00Z\", "
                               "end: \"2024-11-02T12:00:00Z\", factor: 3}]")
        self.assertEqual(self.check(cfg, "2024-11-02T12:30:00Z")[1], "sent")
        self.assertEqual(self.check(cfg, "2024-11-02T13:30:00Z")[1], "not needed")

    def test_consecutive_missing_counts_across_runs_and_alerts_missing_data(self):
        cfg = self.write("md.yaml", synthetic_config(
            "md", "- type: missing_data\n  params: {consecutive_missing: 2}\n",
            "type: console\nconditions: {cooldown_minutes: 0}\n",
            params="base: 100, missing: [{start: \"2024-11-02T11:00:00Z\", "
                   "end: \"2024-11-02T14:00:00Z\"}]"))
        doc, _ = self.run_json(cfg, t="2024-11-02T12:30:00Z")
        d = doc["detections"][0]
        self.assertEqual((d["is_anomaly"], d["score"], d["metadata"]["consecutive_missing"]),
                         (False, 0.5, 1))
        self.assertEqual(doc["status"], "ok")
        status, outcome, out = self.check(cfg, "2024-11-02T13:30:00Z")
        self.assertEqual((status, outcome), ("md: anomaly", "sent"))
        self.assertIn("**MISSING DATA: md**", out)
        self.assertIn("No data for 2 consecutive intervals (threshold 2)", out)
        # a re-run of the same slot does not count it twice
        doc, _ = self.run_json(cfg, t="2024-11-02T13:30:00Z")
        self.assertEqual(doc["detections"][0]["metadata"]["consecutive_missing"], 2)
        self.assertEqual(doc["alerts"][0]["suppressed_by"], "duplicate")
        doc, _ = self.run_json(cfg, t="2024-11-02T14:30:00Z")
        self.assertEqual(doc["detections"][0]["metadata"]["consecutive_missing"], 3)
        # data resets the count
        doc, _ = self.run_json(cfg, t="2024-11-02T15:30:00Z")
        self.assertEqual(doc["detections"][0]["metadata"]["consecutive_missing"], 0)
        self.assertEqual(doc["status"], "ok")

    def test_notify_on_error_after_consecutive_errors(self):
        cfg = self.write("err.yaml", """
            name: err
            collector:
              type: sqlite
              params: {path: nothere.db, query: "SELECT 1 AS value -- {{ period_start }} {{ period_finish }}"}
            detector: {type: threshold, params: {threshold: 5}}
            alerter:
              type: console
              conditions: {notify_on_error: true, consecutive_errors: 2}
            schedule: {interval: 1 hour}
            """)
        r = self.dtk("run", cfg, "-t", "2024-11-02T12:30:00Z")
        self.assertEqual(r.rc, 1, r)
        self.assertNotIn("[ALERT]", r.out)
        r = self.dtk("run", cfg, "-t", "2024-11-02T13:30:00Z")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(alert_line(r.out), "sent")
        self.assertIn("**CHECK FAILED: err**", r.out)
        self.assertIn("Stage: collect", r.out)
        self.assertIn("does not exist", r.out)

    def test_no_alerts_flag_decides_nothing(self):
        cfg = self.make("noal", CONSOLE)
        r = self.dtk("run", cfg, "-t", "2024-11-02T12:30:00Z", "--no-alerts")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("[ALERT]", r.out + r.err)
        # the datapoint was still stored, and a later normal run sends nothing
        self.assertEqual(len(self.datapoints("noal")), 82 + 1)

    def test_console_stream_stderr_and_json_format(self):
        cfg = self.write("js.yaml", synthetic_config(
            "consolejs", THRESHOLD_LOW, "type: console\nparams: {stream: stderr, format: json}\n"))
        r = self.dtk("run", cfg, "-t", T)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("ANOMALY DETECTED", r.out)
        lines = [json.loads(line) for line in r.err.splitlines() if line.startswith("{")]
        self.assertEqual(len(lines), 1, r)
        self.assertEqual(lines[0]["metric"], "consolejs")
        self.assertEqual(lines[0]["kind"], "anomaly")
        self.assertIn("ANOMALY DETECTED: consolejs", lines[0]["message"])

    def test_default_message_for_a_threshold_detector(self):
        cfg = self.write("th.yaml", synthetic_config("thmsg", THRESHOLD_LOW, CONSOLE))
        out = self.run_ok("run", cfg, "-t", T).out
        self.assertIn("**ANOMALY DETECTED: thmsg**", out)
        self.assertIn("Value: 100.00", out)
        self.assertIn("Threshold: greater_than 50.00", out)
        self.assertIn("Distance from threshold: 50.00", out)
        self.assertIn("Time: 2024-11-02 13:00:00", out)
        self.assertNotIn("Detector:", out)

    def test_message_template_renders_at_alert_time(self):
        cfg = self.write("tpl.yaml", synthetic_config(
            "tplmsg", THRESHOLD_LOW,
            "type: console\nparams:\n  message_template: \"{{ metric_name }} is {{ value }} "
            "at {{ timestamp.strftime('%H:%M') }} (${{ value|int }})\"\n"))
        out = self.run_ok("run", cfg, "-t", T).out
        self.assertIn("[ALERT] tplmsg is 100.0 at 13:00 ($100)", out)


class Profiles(CliTestCase):
    """Lookup order: --profiles, $DETECTK_PROFILES_PATH, ./detectk_profiles.yaml,
    ~/.detectk/profiles.yaml; the first file that defines the name wins."""

    CFG = ("name: prof\ncollector: {profile: gen}\n"
           "detector: {type: threshold, params: {threshold: 5000}}\nschedule: {interval: 1 hour}\n")

    def profiles_file(self, path, base, name="gen"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("profiles:\n  %s:\n    type: synthetic\n    base: %s\n" % (name, base))
        return path

    def value(self, cfg, *extra, env=None, cwd=None):
        r = self.dtk("run", cfg, "-t", T, "--output", "json", *extra, env=env, cwd=cwd)
        self.assertEqual(r.rc, 0, r)
        return r.json["datapoint"]["value"]

    def test_lookup_order(self):
        cfg = self.write("m.yaml", self.CFG)
        explicit = self.profiles_file(os.path.join(self.tmp, "explicit.yaml"), 1)
        envp = self.profiles_file(os.path.join(self.tmp, "env.yaml"), 2)
        self.profiles_file(self.path("detectk_profiles.yaml"), 3)
        self.profiles_file(os.path.join(self.home, ".detectk", "profiles.yaml"), 4)
        env = {"DETECTK_PROFILES_PATH": envp}
        self.assertEqual(self.value(cfg, "--profiles", explicit, env=env), 1.0)
        self.assertEqual(self.value(cfg, env=env), 2.0)
        self.assertEqual(self.value(cfg), 3.0)
        # ./detectk_profiles.yaml means the working directory, not the config's
        other = os.path.join(self.tmp, "elsewhere")
        os.makedirs(other)
        self.assertEqual(self.value(cfg, cwd=other), 4.0)

    def test_first_file_that_defines_the_name_wins(self):
        cfg = self.write("m.yaml", self.CFG)
        explicit = self.profiles_file(os.path.join(self.tmp, "explicit.yaml"), 1, name="other")
        self.profiles_file(os.path.join(self.home, ".detectk", "profiles.yaml"), 4)
        self.assertEqual(self.value(cfg, "--profiles", explicit), 4.0)

    def test_missing_profile_names_the_profile(self):
        cfg = self.write("m.yaml", self.CFG.replace("gen", "nosuchprofile"))
        self.profiles_file(self.path("detectk_profiles.yaml"), 3)
        r = self.dtk("run", cfg, "-t", T)
        self.assertConfigError(r, "m.yaml", "collector", "nosuchprofile")
        self.assertEqual(self.datapoints(), [])

    def test_missing_explicit_profiles_file_is_a_config_error(self):
        cfg = self.write("m.yaml", self.CFG)
        r = self.dtk("run", cfg, "-t", T, "--profiles", self.path("none.yaml"))
        self.assertConfigError(r, "none.yaml")

    def test_explicit_params_override_profile_values(self):
        cfg = self.write("m.yaml", "name: prof\ncollector:\n  profile: gen\n  params: {base: 222}\n"
                                   "detector: {type: threshold, params: {threshold: 5000}}\n")
        self.profiles_file(self.path("detectk_profiles.yaml"), 111)
        self.assertEqual(self.value(cfg), 222.0)

    def test_sqlite_collector_path_from_an_env_expanded_profile(self):
        srcdir = os.path.join(self.tmp, "data")
        os.makedirs(srcdir)
        con = sqlite3.connect(os.path.join(srcdir, "events.db"))
        con.execute("CREATE TABLE events (ts TEXT, amount REAL)")
        con.executemany("INSERT INTO events VALUES (?, ?)",
                        [("2024-11-02T13:05:00", 5.0), ("2024-11-02T13:55:00", 7.0),
                         ("2024-11-02T14:05:00", 100.0)])
        con.commit()
        con.close()
        self.write("detectk_profiles.yaml", """
            profiles:
              events_db:
                type: sql
                connection_string: "sqlite:///${DTK_TEST_DATA}/events.db"
            """)
        cfg = self.write("m.yaml", """
            name: from_profile
            collector:
              profile: events_db
              params:
                query: "SELECT sum(amount) AS value FROM events WHERE ts >= '{{ period_start }}' AND ts < '{{ period_finish }}'"
            detector: {type: threshold, params: {threshold: 5000}}
            storage: {type: sqlite, params: {path: "${DTK_STATE_DIR}/metrics.db"}}
            schedule: {interval: 1 hour}
            """)
        doc, r = self.run_json(cfg, rc=0, env={"DTK_TEST_DATA": srcdir})
        self.assertEqual(doc["datapoint"]["value"], 12.0)
        # an unset variable in the profile is an error naming it
        r = self.dtk("run", cfg, "-t", T)
        self.assertConfigError(r, "DTK_TEST_DATA")

    def test_storage_profile(self):
        dbdir = os.path.join(self.tmp, "dbdir")
        os.makedirs(dbdir)
        self.write("detectk_profiles.yaml", """
            profiles:
              local_store:
                type: sqlite
                path: "${DTK_TEST_DB_DIR}/metrics.db"
            """)
        cfg = self.write("m.yaml", synthetic_config("stprof", THRESHOLD_HIGH,
                                                    extra="storage: {profile: local_store}"))
        self.run_json(cfg, rc=0, env={"DTK_TEST_DB_DIR": dbdir})
        self.assertEqual(len(self.datapoints("stprof", db=os.path.join(dbdir, "metrics.db"))), 1)
        self.assertEqual(self.datapoints("stprof"), [])

    def test_alerter_profile_with_stream_and_override(self):
        self.write("detectk_profiles.yaml", """
            profiles:
              quiet_console:
                type: console
                stream: stderr
            """)
        cfg = self.write("m.yaml", synthetic_config("alprof", THRESHOLD_LOW, "profile: quiet_console\n"))
        r = self.run_ok("run", cfg, "-t", T)
        self.assertIn("ANOMALY DETECTED: alprof", r.err)
        self.assertNotIn("ANOMALY DETECTED", r.out)
        self.assertIn("console: sent", r.out)
        cfg = self.write("m2.yaml", synthetic_config(
            "alprof2", THRESHOLD_LOW, "profile: quiet_console\nparams: {stream: stdout}\n"))
        r = self.run_ok("run", cfg, "-t", T)
        self.assertIn("ANOMALY DETECTED: alprof2", r.out)
        self.assertNotIn("ANOMALY DETECTED", r.err)


# block style: a ${VAR} plain scalar inside a YAML flow mapping would end it at "}"
ENV_CONFIG = """name: %s
collector:
  type: synthetic
  params:
    %s
detector:
  type: threshold
  params:
    threshold: %s
schedule:
  interval: 1 hour
"""


class EnvRules(CliTestCase):
    def value(self, cfg, env=None, rc=0):
        doc, r = self.run_json(cfg, rc=rc, env=env)
        return doc["datapoint"]["value"]

    def test_default_used_when_unset_or_empty(self):
        cfg = self.write("m.yaml", ENV_CONFIG % ("envdef", "base: ${DTK_TEST_BASE:-123}", 500))
        self.assertEqual(self.value(cfg), 123.0)
        self.assertEqual(self.value(cfg, env={"DTK_TEST_BASE": ""}), 123.0)
        self.assertEqual(self.value(cfg, env={"DTK_TEST_BASE": "7"}), 7.0)

    def test_substituted_plain_scalar_is_retyped_as_yaml_would(self):
        cfg = self.write("m.yaml", ENV_CONFIG % ("envseed", "noise: 5\n    seed: ${DTK_TEST_SEED}", 500))
        lit = self.write("lit.yaml", synthetic_config("envseed", THRESHOLD_HIGH,
                                                      params="base: 100, noise: 5, seed: 42"))
        other = self.write("other.yaml", synthetic_config("envseed", THRESHOLD_HIGH,
                                                          params="base: 100, noise: 5, seed: 43"))
        v = self.value(cfg, env={"DTK_TEST_SEED": "42"})
        self.assertEqual(v, self.value(lit, env={"DTK_STATE_DIR": os.path.join(self.tmp, "s2")}))
        self.assertNotEqual(v, self.value(other, env={"DTK_STATE_DIR": os.path.join(self.tmp, "s3")}))

    def test_quoted_substitution_stays_a_string_and_a_numeric_param_rejects_it(self):
        cfg = self.write("m.yaml", """
            name: envquoted
            collector:
              type: synthetic
              params:
                seed: "${DTK_TEST_SEED}"
            detector: {type: threshold, params: {threshold: 5}}
            """)
        r = self.dtk("run", cfg, "-t", T, env={"DTK_TEST_SEED": "42"})
        self.assertConfigError(r, "m.yaml", "collector.params.seed", "integer", "str")

    def test_numeric_detector_param_from_env(self):
        cfg = self.write("m.yaml", ENV_CONFIG % ("envnum", "base: 100", "${DTK_TEST_LIMIT}"))
        doc, _ = self.run_json(cfg, env={"DTK_TEST_LIMIT": "150"})
        self.assertEqual(doc["detections"][0]["metadata"]["threshold"], 150)
        self.assertEqual(doc["status"], "ok")
        doc, _ = self.run_json(cfg, env={"DTK_TEST_LIMIT": "50.5"})
        self.assertEqual(doc["detections"][0]["metadata"]["threshold"], 50.5)
        self.assertEqual(doc["status"], "anomaly")

    def test_dollar_double_brace_is_template_text_not_a_variable(self):
        cfg = self.write("m.yaml", """
            name: envtpl
            description: "costs ${{ price }} per unit"
            collector: {type: synthetic}
            detector: {type: threshold, params: {threshold: 500}}
            """)
        self.run_json(cfg, rc=0)
        out = self.run_ok("list-metrics", "--details").out
        self.assertIn("costs ${{ price }} per unit", out)

    def test_variable_in_a_yaml_comment_is_ignored(self):
        cfg = self.write("m.yaml", """
            # needs ${DTK_TEST_NEVER_SET} one day
            name: envcomment  # ${DTK_TEST_NEVER_SET_EITHER}
            collector: {type: synthetic}
            detector: {type: threshold, params: {threshold: 500}}
            """)
        self.run_json(cfg, rc=0)

    def test_value_with_colon_and_hash_cannot_break_the_yaml(self):
        cfg = self.write("m.yaml", """
            name: envyaml
            description: ${DTK_TEST_DESC}
            collector: {type: synthetic}
            detector: {type: threshold, params: {threshold: 500}}
            """)
        r = self.dtk("list-metrics", "--details", env={"DTK_TEST_DESC": "a: b # c"})
        self.assertIn("description: a: b # c", r.out)
        self.run_json(cfg, rc=0, env={"DTK_TEST_DESC": "a: b # c"})

    def test_profiles_file_values_are_env_expanded_and_retyped(self):
        self.write("detectk_profiles.yaml", "profiles:\n  gen:\n    type: synthetic\n"
                                            "    base: ${DTK_TEST_BASE:-321}\n")
        cfg = self.write("m.yaml", "name: envprof\ncollector: {profile: gen}\n"
                                   "detector: {type: threshold, params: {threshold: 5000}}\n")
        self.assertEqual(self.value(cfg), 321.0)


class LoadHistory(CliTestCase):
    FROM, TO = "2024-10-01T00:00:00Z", "2024-10-31T00:00:00Z"

    def config(self, name="hist", params="base: 100, noise: 3, seed: 9", interval="10 minutes"):
        return self.write("%s.yaml" % name, synthetic_config(name, MAD_DAY, params=params,
                                                             interval=interval))

    def load(self, cfg, frm, to, env=None):
        r = self.dtk("load-history", cfg, "--from", frm, "--to", to, env=env)
        self.assertEqual(r.rc, 0, r)
        return r

    def rows(self, db=None):
        db = db or self.db_path()
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT metric_name, collected_at, value, is_missing, context "
                               "FROM dtk_datapoints ORDER BY metric_name, collected_at").fetchall()
        finally:
            con.close()

    def test_fills_30_days_and_is_idempotent(self):
        cfg = self.config()
        r = self.load(cfg, self.FROM, self.TO)
        self.assertIn("loaded 4320 points", r.out)
        rows = self.rows()
        self.assertEqual(len(rows), 30 * 144)
        self.assertEqual(rows[0][1], 1727740800)            # 2024-10-01T00:00:00Z
        self.assertEqual(rows[-1][1], 1730332800 - 600)     # the slot before --to
        self.assertTrue(all(r[3] == 0 for r in rows))
        self.load(cfg, self.FROM, self.TO)
        self.assertEqual(self.rows(), rows)

    def test_resumed_load_equals_an_uninterrupted_one(self):
        cfg = self.config()
        self.load(cfg, self.FROM, "2024-10-12T07:40:00Z")
        partial = self.rows()
        r = self.load(cfg, self.FROM, self.TO)
        self.assertIn("resum", r.err)
        fresh_state = os.path.join(self.tmp, "fresh")
        self.load(cfg, self.FROM, self.TO, env={"DTK_STATE_DIR": fresh_state})
        full = self.rows(os.path.join(fresh_state, "dtk.db"))
        self.assertEqual(self.rows(), full)
        self.assertEqual(full[:len(partial)], partial)

    def test_killed_load_resumes_to_the_same_rows(self):
        import signal
        import subprocess
        import time
        from cli_helpers import DTK
        cfg = self.config("killed", interval="1 minute", params="base: 100, noise: 3, seed: 9")
        frm, to = "2020-01-01T00:00:00Z", "2024-01-01T00:00:00Z"  # ~2.1M slots
        env = dict(self.env)
        p = subprocess.Popen([DTK, "load-history", cfg, "--from", frm, "--to", to], env=env,
                             cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        # kill once a few batches are committed
        while time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
            try:
                con = sqlite3.connect(self.db_path(), timeout=5)
                n = con.execute("SELECT count(*) FROM dtk_datapoints").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = 0
            if n >= 43200:  # one 30-day batch committed
                break
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        short_to = "2020-04-01T00:00:00Z"  # resume only the first quarter, to stay fast
        n_killed = len(self.rows())
        self.assertGreater(n_killed, 0)
        if n_killed >= 91 * 1440:
            self.skipTest("the load finished the checked range before it could be killed")
        self.load(cfg, frm, short_to)
        fresh_state = os.path.join(self.tmp, "fresh")
        self.load(cfg, frm, short_to, env={"DTK_STATE_DIR": fresh_state})
        self.assertEqual(self.rows(), self.rows(os.path.join(fresh_state, "dtk.db")))

    def test_missing_window_is_stored_missing_and_kept_out_of_the_baseline(self):
        cfg = self.config("holes", interval="1 hour", params=(
            "base: 100, noise: 3, seed: 9, missing: [{start: \"2024-11-02T03:00:00Z\", "
            "end: \"2024-11-02T06:00:00Z\"}]"))
        self.load(cfg, "2024-10-30T00:00:00Z", "2024-11-02T14:00:00Z")
        rows = self.rows()
        missing = [r[1] for r in rows if r[3] == 1]
        self.assertEqual(missing, [1730516400, 1730520000, 1730523600])  # 03:00, 04:00, 05:00
        self.assertTrue(all(r[2] is None for r in rows if r[3] == 1))
        doc, _ = self.run_json(cfg)
        meta = doc["detections"][0]["metadata"]
        # the day before the 13:00 point: 24 slots, 3 of them missing
        self.assertEqual(meta["window_points"], 21)

    def test_relative_windows_are_relative_to_the_end_of_the_load(self):
        cfg = self.config("relwin", interval="1 hour", params=(
            "base: 100, noise: 0, anomalies: [{start: \"-2h\", end: \"-1h\", factor: 2}]"))
        self.load(cfg, "2024-11-02T00:00:00Z", "2024-11-02T14:00:00Z")
        values = {r[1]: r[2] for r in self.rows()}
        self.assertEqual(values[1730548800], 200.0)  # 12:00
        self.assertEqual(values[1730545200], 100.0)  # 11:00
        self.assertEqual(values[1730552400], 100.0)  # 13:00

    def test_usage_errors(self):
        cfg = self.config()
        for args in (["load-history", cfg], ["load-history", "--from", self.FROM],
                     ["load-history", cfg, "--from", self.TO, "--to", self.FROM],
                     ["load-history", cfg, "--from", "last tuesday"]):
            with self.subTest(args=args):
                self.assertEqual(self.dtk(*args).rc, 2)
        self.assertFalse(os.path.exists(self.db_path()) and self.rows())

    def test_config_error_exits_2(self):
        cfg = self.write("bad.yaml", "name: bad\ncollector: {type: synthetic}\n")
        r = self.dtk("load-history", cfg, "--from", self.FROM, "--to", self.TO)
        self.assertConfigError(r, "bad.yaml")

    def test_storage_disabled_is_refused(self):
        cfg = self.write("nos.yaml", synthetic_config("nos", MAD_DAY, extra="storage: {enabled: false}"))
        r = self.dtk("load-history", cfg, "--from", self.FROM, "--to", self.TO)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("disabled", r.err)


class ValidateAndLists(CliTestCase):
    def test_validate_prints_detector_ids_by_the_conformance_rule(self):
        cfg = self.write("m.yaml", """
            name: ids
            collector: {type: synthetic}
            detectors:
              - type: mad
                params: {window_size: "30 days"}
              - id: mine
                type: threshold
                params: {threshold: 5}
            alerters:
              - type: console
              - id: loud
                type: console
            """)
        r = self.run_ok("validate", cfg)
        self.assertIn("OK", r.out)
        self.assertIn("metric ids", r.out)
        self.assertIn("detector a2b640f6 (mad)", r.out)
        self.assertIn("detector mine (threshold)", r.out)
        self.assertIn("alerter  0 (console)", r.out)
        self.assertIn("alerter  loud (console)", r.out)

    def test_validate_ids_ignore_default_valued_params(self):
        # n_sigma 3 == 3.0 is the default and is dropped from the hash
        a = self.write("a.yaml", "name: a\ncollector: {type: synthetic}\n"
                       "detector: {type: mad, params: {window_size: \"30 days\", n_sigma: 3}}\n")
        self.assertIn("detector a2b640f6 (mad)", self.run_ok("validate", a).out)

    def test_duplicate_detector_ids_are_an_error(self):
        cfg = self.write("m.yaml", "name: a\ncollector: {type: synthetic}\ndetectors:\n"
                         "  - {type: mad, params: {window_size: \"30 days\"}}\n"
                         "  - {type: mad, params: {window_size: \"30 days\"}}\n")
        r = self.dtk("validate", cfg)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("a2b640f6", r.out)

    def test_validate_several_files_reports_each_and_exits_2_if_any_is_invalid(self):
        good = self.write("good.yaml", synthetic_config("good", THRESHOLD_HIGH))
        bad = self.write("bad.yaml", "name: bad\ncollector: {type: synthetic}\n")
        r = self.dtk("validate", good, bad)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("OK      %s" % good, r.out)
        self.assertIn("INVALID %s" % bad, r.out)
        self.assertEqual(self.dtk("validate", good).rc, 0)

    def test_validate_does_not_connect_or_write(self):
        cfg = self.write("m.yaml", """
            name: noconnect
            collector:
              type: sqlite
              params: {path: not_there.db, query: "SELECT 1 AS value -- {{ period_start }} {{ period_finish }}"}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        r = self.run_ok("validate", cfg)
        self.assertIn("OK", r.out)
        self.assertFalse(os.path.exists(self.path("not_there.db")))
        self.assertEqual(os.listdir(self.state), [])

    def test_validate_no_env_leaves_placeholders(self):
        cfg = self.write("m.yaml", """
            name: noenv
            tags: [a]
            collector:
              type: synthetic
              params: {base: "${DTK_TEST_UNSET_X}"}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        r = self.dtk("validate", cfg)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("DTK_TEST_UNSET_X", r.out)
        r = self.run_ok("validate", "--no-env", cfg)
        self.assertIn("OK", r.out)
        self.assertIn("not built", r.out)

    def test_validate_no_env_still_requires_name_tags_and_schedule(self):
        cfg = self.write("m.yaml", """
            name: noenv2
            tags: ["${DTK_TEST_UNSET_TAG}"]
            collector: {type: synthetic}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        r = self.dtk("validate", "--no-env", cfg)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("tags", r.out)

    def test_validate_usage_errors(self):
        self.assertEqual(self.dtk("validate").rc, 2)
        self.assertEqual(self.dtk("validate", "--bogus", "x.yaml").rc, 2)
        r = self.dtk("validate", self.path("none.yaml"))
        self.assertEqual(r.rc, 2, r)
        self.assertIn("none.yaml", r.out + r.err)

    def test_validate_init_storage_creates_the_tables(self):
        cfg = self.write("m.yaml", synthetic_config("initst", THRESHOLD_HIGH))
        r = self.run_ok("validate", "--init-storage", cfg)
        self.assertIn("storage tables ready", r.out)
        con = sqlite3.connect(self.db_path())
        tables = {t[0] for t in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        con.close()
        self.assertIn("dtk_datapoints", tables)

    def test_list_types(self):
        self.assertEqual(sorted(line.split()[0]
                                for line in self.run_ok("list-collectors").out.splitlines()),
                         sorted(["synthetic", "sqlite", "sql", "postgres", "mysql", "clickhouse",
                                 "http", "prometheus"]))
        dets = [line.split()[0] for line in self.run_ok("list-detectors").out.splitlines()]
        self.assertEqual(sorted(dets), sorted(["threshold", "zscore", "mad", "iqr", "missing_data"]))
        self.assertEqual(sorted(line.split()[0]
                                for line in self.run_ok("list-alerters").out.splitlines()),
                         sorted(["console", "mattermost", "slack", "webhook", "alertmanager"]))

    def make_project(self):
        proj = self.path("proj")
        self.write("proj/configs/a.yaml", """
            name: list_a
            description: first metric
            tags: [x, shared]
            collector: {type: synthetic}
            detectors:
              - {type: mad, params: {window_size: "1 day"}}
              - {type: threshold, params: {threshold: 5}}
            schedule: {interval: 1 hour}
            """)
        self.write("proj/configs/nested/b.yaml", """
            name: list_b
            tags: [y, shared]
            collector:
              type: sqlite
              params: {path: x.db, query: "SELECT 1 AS value -- {{ period_start }} {{ period_finish }}"}
            detector: {type: zscore}
            """)
        # a file outside configs/ is not a metric of the project
        self.write("proj/stray.yaml", "name: stray\ncollector: {type: synthetic}\n"
                                      "detector: {type: threshold, params: {threshold: 5}}\n")
        self.write("proj/detectk_profiles.yaml", "profiles:\n  x: {type: synthetic}\n")
        return proj

    def test_list_metrics_scans_configs_subdir(self):
        proj = self.make_project()
        r = self.run_ok("list-metrics", "-p", proj)
        self.assertIn("list_a", r.out)
        self.assertIn("list_b", r.out)
        self.assertNotIn("stray", r.out)
        self.assertIn("2 metrics", r.out)

    def test_list_metrics_without_configs_subdir_scans_the_dir_and_skips_profiles_files(self):
        self.write("flat/one.yaml", synthetic_config("flat_one", THRESHOLD_HIGH))
        self.write("flat/detectk_profiles.yaml", "profiles:\n  x: {type: synthetic}\n")
        r = self.run_ok("list-metrics", "-p", self.path("flat"))
        self.assertIn("flat_one", r.out)
        self.assertIn("1 metric", r.out)
        self.assertNotIn("INVALID", r.out)

    def test_list_metrics_details(self):
        proj = self.make_project()
        out = self.run_ok("list-metrics", "-p", proj, "--details").out
        self.assertIn("description: first metric", out)
        self.assertIn("collector:   synthetic", out)
        self.assertIn("detector:    mad", out)
        self.assertIn("detector:    threshold", out)
        self.assertIn("collector:   sqlite", out)
        self.assertIn("1 hour", out)

    def test_list_metrics_filters_by_tag_and_collector(self):
        proj = self.make_project()
        out = self.run_ok("list-metrics", "-p", proj, "-t", "x").out
        self.assertIn("list_a", out)
        self.assertNotIn("list_b", out)
        out = self.run_ok("list-metrics", "-p", proj, "-t", "x,y", "--match-all-tags").out
        self.assertIn("0 metrics", out)
        out = self.run_ok("list-metrics", "-p", proj, "-t", "x", "-t", "y").out
        self.assertIn("2 metrics", out)
        out = self.run_ok("list-metrics", "-p", proj, "-c", "sqlite").out
        self.assertIn("list_b", out)
        self.assertNotIn("list_a", out)

    def test_list_metrics_needs_no_secrets_but_validate_flag_checks_them(self):
        self.write("p/configs/s.yaml", """
            name: needs_secret
            collector: {type: synthetic, params: {base: "${DTK_TEST_UNSET_S}"}}
            detector: {type: threshold, params: {threshold: 5}}
            """)
        out = self.run_ok("list-metrics", "-p", self.path("p")).out
        self.assertIn("needs_secret", out)
        r = self.dtk("list-metrics", "-p", self.path("p"), "--validate")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("DTK_TEST_UNSET_S", r.out)

    def test_init_each_detector_type_writes_a_config_that_validates_and_runs(self):
        for det in ("threshold", "mad", "zscore", "iqr"):
            with self.subTest(detector=det):
                p = self.path("init_%s.yaml" % det)
                r = self.run_ok("init", p, "-d", det)
                self.assertIn(p, r.out)
                v = self.run_ok("validate", p)
                self.assertIn("(%s)" % det, v.out)
                self.assertNotIn("warning", v.out)
                state = os.path.join(self.tmp, "state_" + det)
                self.run_ok("load-history", p, "--from", "2024-10-25T00:00:00Z", "--to",
                            "2024-11-02T14:00:00Z", env={"DTK_STATE_DIR": state})
                doc, _ = self.run_json(p, rc=0, env={"DTK_STATE_DIR": state})
                self.assertEqual(doc["detections"][0]["detector_type"], det)
                self.assertIsNone(doc["detections"][0]["skipped"])
                self.assertIn("clickhouse", open(p, encoding="utf-8").read())

    def test_init_default_path_and_detector(self):
        r = self.run_ok("init")
        self.assertTrue(os.path.exists(self.path("metric.yaml")), r)
        self.assertIn("(mad)", self.run_ok("validate", "metric.yaml").out)

    def test_init_refuses_to_overwrite_without_overwrite(self):
        p = self.write("mine.yaml", "name: precious\n")
        r = self.dtk("init", p)
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("--overwrite", r.err)
        self.assertEqual(open(p, encoding="utf-8").read(), "name: precious\n")
        self.run_ok("init", p, "--overwrite", "-d", "zscore")
        self.assertIn("(zscore)", self.run_ok("validate", p).out)

    def test_init_rejects_an_unknown_detector(self):
        r = self.dtk("init", self.path("x.yaml"), "-d", "prophet")
        self.assertEqual(r.rc, 2, r)
        self.assertFalse(os.path.exists(self.path("x.yaml")))

    def test_init_project_lays_out_a_project_whose_example_runs(self):
        proj = self.path("newproj")
        self.run_ok("init-project", proj)
        for f in ("configs", "detectk_profiles.yaml", ".env.example", "README.md"):
            self.assertTrue(os.path.exists(os.path.join(proj, f)), f)
        example = os.path.join(proj, "configs", "example_metric.yaml")
        self.run_ok("validate", example)
        doc, _ = self.run_json(example, rc=0)
        self.assertEqual(doc["metric"], "example_metric")
        r = self.run_ok("run-tagged", os.path.join(proj, "configs"), "--tags", "example")
        self.assertIn("Total: 1", r.out)
        self.assertIn("example_metric", self.run_ok("list-metrics", "-p", proj).out)
        # the profiles template is a valid profiles file, and not a metric
        r = self.dtk("validate", os.path.join(proj, "detectk_profiles.yaml"))
        self.assertEqual(r.rc, 2, r)
        self.assertIn("profiles file, not a metric", r.out)
        # a second init-project does not clobber the first
        with open(example, "a", encoding="utf-8") as f:
            f.write("# edited\n")
        self.assertNotEqual(self.dtk("init-project", proj).rc, 0)
        self.assertTrue(open(example, encoding="utf-8").read().endswith("# edited\n"))

    def test_demo_configs_validate(self):
        d = os.path.join(SOURCE_DIR, "configs", "examples")
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".yaml"))
        r = self.dtk("validate", *files)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.count("OK "), len(files))
        self.assertNotIn("warning", r.out)


if __name__ == "__main__":
    unittest.main()
