"""The observability kit of deploy/observability/ (docs/observability.md)
against a real dtk-worker.

ctest-labels: integration;observability

Static part (no services): promtool (Debian's `prometheus` package;
scripts/install-deps.sh installs it) checks prometheus.yml and alerts.yml and
runs the alert unit tests of alerts.test.yml; the Grafana dashboard is
well-formed (unique ids, a PromQL target per panel, the ${datasource}
variable, panels inside the 24-column grid without overlaps); the PromQL
name extractor below passes its own examples.

Live part (the Kafka broker and Redis of scripts/services.sh): a dtk-worker
with --metrics-port and --redis runs a handful of requests (ok, anomaly with
a console alert sent, anomaly with a webhook alert that fails, rejected,
expired, a poison message for the DLQ); then every metric name that a rule
expression, a dashboard panel or a dashboard variable uses, parsed out of the
PromQL, is a sample name of the worker's /metrics (histograms by their
_bucket/_sum/_count series), every label a selector matches on or groups by is
a label of those samples (or a target label Prometheus adds: job, instance,
pod, namespace, node), and every label value an equality or alternation
matcher asks for occurs. Nothing is hard-coded: add a rule or a panel and it
is checked.

Without DTK_KAFKA_BROKERS the live part is skipped (failed under
DTK_REQUIRE_SERVICES=1); without promtool the promtool checks are skipped
(failed under DTK_REQUIRE_SERVICES=1).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yaml

from kafka_helpers import BROKERS, SOURCE, SYNTHETIC, WORKER, KafkaHelpers, now_ms
from test_worker_metrics import free_port, get, parse_exposition

OBS = os.path.join(SOURCE, "deploy", "observability")
PROMETHEUS_YML = os.path.join(OBS, "prometheus.yml")
ALERTS = os.path.join(OBS, "alerts.yml")
ALERTS_TEST = os.path.join(OBS, "alerts.test.yml")
DASHBOARD = os.path.join(OBS, "grafana-dashboard.json")
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
REDIS = os.environ.get("DTK_REDIS_URL")
KEY = "observability-test-signing-key"
PARTITIONS = 3
# Labels Prometheus (or the scrape config's relabelling) puts on every series.
TARGET_LABELS = {"job", "instance", "pod", "namespace", "node", "fleet"}

# ---- PromQL: the metric names and label matchers an expression uses --------

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "offset", "bool", "inf", "nan", "atan2"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<dur>\d+(?:ms|s|m|h|d|w|y)(?![A-Za-z0-9_:]))
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
""", re.X)


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError("cannot tokenize PromQL at %r" % expr[pos:pos + 20])
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def unquote(s):
    return s[1:-1].encode().decode("unicode_escape") if s[0] in "\"'" else s[1:-1]


def promql_selectors(expr):
    """[(metric name, [(label, op, value)])] of every vector selector, and the
    set of label names used by by/without/on/ignoring/group_* clauses."""
    toks = tokens(expr)
    selectors, grouping = [], set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "ident" and text in LABEL_LIST_KEYWORDS:
            if nxt[1] == "(":
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    if toks[j][0] == "ident":
                        grouping.add(toks[j][1])
                    j += 1
                i = j + 1
                continue
            i += 1
            continue
        if kind == "ident" and text == "offset":
            i += 2  # and its duration
            continue
        if kind == "ident" and text.lower() in KEYWORDS:
            i += 1
            continue
        if kind == "ident" and (nxt[1] == "(" or (text in AGGREGATIONS and nxt[1] in ("by", "without"))):
            i += 1  # a function, or an aggregation (sum by (x) (...))
            continue
        if (kind == "ident") or (kind == "op" and text == "{"):
            name = text if kind == "ident" else None
            matchers = []
            j = i + 1 if kind == "ident" else i
            if j < len(toks) and toks[j][1] == "{":
                j += 1
                while j < len(toks) and toks[j][1] != "}":
                    if toks[j][1] == ",":
                        j += 1
                        continue
                    label, op, value = toks[j][1], toks[j + 1][1], toks[j + 2]
                    if value[0] == "str":
                        value = unquote(value[1])
                    else:
                        value = value[1]  # a Grafana variable
                    if label == "__name__" and op == "=":
                        name = value
                    else:
                        matchers.append((label, op, value))
                    j += 3
                j += 1
            else:
                j = i + 1
            if name:
                selectors.append((name, matchers))
            i = j
            continue
        i += 1
    return selectors, grouping


def grafana_expressions(dash):
    """(where, PromQL) of every panel target and every query variable."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append(("panel %r" % p.get("title"), t["expr"]))
            walk(p.get("panels") or [])

    walk(dash.get("panels") or [])
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
        if m:
            out.append(("variable %r" % v.get("name"), m.group(1)))
            out.append(("variable %r label" % v.get("name"), "%s{%s!=\"\"}" % (m.group(1), m.group(2))))
        elif q:
            out.append(("variable %r" % v.get("name"), q))
    return out


def rule_expressions():
    with open(ALERTS) as f:
        rules = yaml.safe_load(f)
    return [("rule %s" % (r.get("alert") or r.get("record")), r["expr"])
            for g in rules["groups"] for r in g["rules"]]


def all_expressions():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    return rule_expressions() + grafana_expressions(dash)


def promtool():
    return shutil.which("promtool")


class PromQLParser(unittest.TestCase):
    def test_examples(self):
        sel, grp = promql_selectors(
            'sum by (status) (rate(dtk_worker_checks_total{job=~"$job",status!="ok"}[$__rate_interval]))'
            ' / ignoring(x) group_left(pod) foo:bar offset 5m > bool 0.5 and on() absent(up)')
        self.assertEqual(sel, [("dtk_worker_checks_total", [("job", "=~", "$job"), ("status", "!=", "ok")]),
                               ("foo:bar", []), ("up", [])])
        self.assertEqual(grp, {"status", "x", "pod"})
        sel, _ = promql_selectors('histogram_quantile(0.95, sum by (le, stage) (rate(x_bucket[5m])))')
        self.assertEqual(sel, [("x_bucket", [])])
        sel, _ = promql_selectors('{__name__="a_total", e="1"} - b offset 1h')
        self.assertEqual(sel, [("a_total", [("e", "=", "1")]), ("b", [])])
        sel, _ = promql_selectors('delta(sum(x)[15m:1m]) > 0 and sum(y) > 100')
        self.assertEqual([n for n, _ in sel], ["x", "y"])

    def test_every_expression_names_a_metric(self):
        exprs = all_expressions()
        self.assertGreater(len(exprs), 20)
        for where, e in exprs:
            sel, _ = promql_selectors(e)
            self.assertTrue(sel, "%s: no metric in %r" % (where, e))
            for name, _ in sel:
                self.assertTrue(name.startswith("dtk_worker_"), "%s: %s is not a worker metric" % (where, name))


class Files(unittest.TestCase):
    def setUp(self):
        if promtool() is None and self._testMethodName.startswith("test_promtool"):
            msg = "promtool is not installed (Debian's prometheus package; scripts/install-deps.sh)"
            if REQUIRE:
                self.fail(msg)
            self.skipTest(msg)

    def run_promtool(self, *args):
        return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=OBS)

    def test_promtool_rules_and_unit_tests(self):
        out = self.run_promtool("check", "rules", ALERTS)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        out = self.run_promtool("test", "rules", ALERTS_TEST)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SUCCESS", out.stdout + out.stderr)
        # every alert has a unit test that expects it to fire
        with open(ALERTS_TEST) as f:
            tests = yaml.safe_load(f)
        fired = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"] if t.get("exp_alerts")}
        with open(ALERTS) as f:
            alerts = {r["alert"] for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r}
        self.assertEqual(alerts - fired, set(), "alerts without a firing unit test")

    def test_promtool_config(self):
        out = self.run_promtool("check", "config", PROMETHEUS_YML)
        text = out.stdout + out.stderr
        if out.returncode != 0 and "field kubernetes_sd_configs not found" in text:
            # Debian builds Prometheus without Kubernetes service discovery:
            # check the rest with promtool, the Kubernetes job's shape here.
            with open(PROMETHEUS_YML) as f:
                cfg = yaml.safe_load(f)
            k8s = [j for j in cfg["scrape_configs"] if "kubernetes_sd_configs" in j]
            cfg["scrape_configs"] = [j for j in cfg["scrape_configs"] if "kubernetes_sd_configs" not in j]
            cfg["rule_files"] = [os.path.join(OBS, r) for r in cfg.get("rule_files", [])]
            self.assertTrue(k8s)
            for job in k8s:
                self.check_kubernetes_job(job)
            with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
                yaml.safe_dump(cfg, f)
                f.flush()
                out = self.run_promtool("check", "config", f.name)
            text = out.stdout + out.stderr
            print("promtool has no kubernetes_sd_configs (Debian's build); checked the other jobs, "
                  "and the Kubernetes job by shape")
        self.assertEqual(out.returncode, 0, text)
        self.assertIn("SUCCESS: 9 rules found", text)

    def check_kubernetes_job(self, job):
        """What Prometheus 2.x accepts for a kubernetes_sd job (its docs)."""
        self.assertLessEqual(set(job), {"job_name", "kubernetes_sd_configs", "relabel_configs",
                                        "metric_relabel_configs", "scrape_interval", "scrape_timeout",
                                        "metrics_path", "scheme"})
        for sd in job["kubernetes_sd_configs"]:
            self.assertLessEqual(set(sd), {"role", "namespaces", "selectors", "api_server",
                                           "kubeconfig_file", "attach_metadata"})
            self.assertIn(sd["role"], {"node", "service", "pod", "endpoints", "endpointslice", "ingress"})
            self.assertLessEqual(set(sd.get("namespaces", {})), {"names", "own_namespace"})
            for s in sd.get("selectors", []):
                self.assertLessEqual(set(s), {"role", "label", "field"})
                self.assertIn(s["role"], {"node", "service", "pod", "endpoints", "endpointslice", "ingress"})
        for r in job.get("relabel_configs", []):
            self.assertLessEqual(set(r), {"source_labels", "separator", "regex", "modulus", "target_label",
                                          "replacement", "action"})
            self.assertIn(r.get("action", "replace"), {"replace", "keep", "drop", "hashmod", "labelmap",
                                                       "labeldrop", "labelkeep", "keepequal", "dropequal",
                                                       "lowercase", "uppercase"})
            for label in r.get("source_labels", []):
                self.assertRegex(label, r"^__meta_kubernetes_[a-z_]+$|^[a-zA-Z_][a-zA-Z0-9_]*$")
            re.compile(r.get("regex", "(.*)"))

    def test_rules_shape(self):
        with open(ALERTS) as f:
            rules = yaml.safe_load(f)
        for g in rules["groups"]:
            for r in g["rules"]:
                self.assertIn(r["labels"]["severity"], ("warning", "critical"), r["alert"])
                self.assertTrue(r["annotations"]["summary"] and r["annotations"]["description"], r["alert"])
        names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
        # what the issue asks for: lag growing, error ratio, DLQ growth, limiter waits, no results
        for a in ("DtkConsumerLagGrowing", "DtkCheckErrorRatioHigh", "DtkDeadLetterGrowing",
                  "DtkLimiterWaitsHigh", "DtkNoResults"):
            self.assertIn(a, names)
        doc = open(os.path.join(SOURCE, "docs", "observability.md")).read()
        for a in names:
            self.assertIn(a, doc, "docs/observability.md does not explain " + a)

    def test_dashboard_shape(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertTrue(dash["uid"] and dash["title"])
        ids, cells = set(), {}
        names = [v["name"] for v in dash["templating"]["list"]]
        self.assertIn("datasource", names)
        for p in dash["panels"]:
            self.assertNotIn(p["id"], ids)
            ids.add(p["id"])
            g = p["gridPos"]
            self.assertTrue(0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, "%s overlaps %s" % (p["title"], cells.get((x, y))))
                    cells[(x, y)] = p["title"]
            if p["type"] == "row":
                continue
            self.assertTrue(p["targets"], p["title"])
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
                for var in re.findall(r"\$\{?([A-Za-z_]\w*)", t["expr"]):
                    self.assertTrue(var.startswith("__") or var in names, "%s: $%s" % (p["title"], var))


class LiveWorker(KafkaHelpers, unittest.TestCase):
    """Every name the rules and the dashboard use is served by a worker."""
    KEY = KEY

    @classmethod
    def setUpClass(cls):
        if not BROKERS:
            msg = "DTK_KAFKA_BROKERS is not set (scripts/services.sh start kafka redis)"
            if REQUIRE:
                raise RuntimeError(msg)
            raise unittest.SkipTest(msg)

    def setUp(self):
        self.fleet_setup("dtk-obs-%d" % os.getpid())

    def logs(self):
        return self.procs_output()[-4000:]

    def alerting(self, name, alerter):
        db = os.path.join(self.tmp.name, "store.db")
        return self.config(name, SYNTHETIC.format(name=name, base=5000, db=db) + alerter)

    def test_every_series_the_kit_uses_is_served(self):
        self.feed("create", str(PARTITIONS), self.topic, self.results, self.dlq)
        msgs = [self.message("ok1", self.encode("ok1", self.synthetic("ok1"))),
                self.message("ok2", self.encode("ok2", self.synthetic("ok2"))),
                self.message("an1", self.encode("an1", self.alerting(
                    "an1", "alerter: {type: console}\n"))),
                # an alert that cannot be delivered: outcome failed
                self.message("an2", self.encode("an2", self.alerting(
                    "an2", "alerter: {type: webhook, params: {url: \"http://127.0.0.1:%d/x\", "
                    "timeout: 1}}\n" % free_port())))]
        past = now_ms() - 120000
        msgs.append(self.message("late", self.encode("late", self.synthetic("late"),
                                                     dispatched_ms=past, deadline_ms=past + 1000)))
        broken = self.config("broken", SYNTHETIC.replace("threshold, params", "nope, params").format(
            name="broken", base=1, db="/tmp/x.db"))
        msgs.append(self.message("broken", self.encode("broken", broken)))
        msgs.append(self.message("poison", "not json {"))
        self.assertEqual(len(self.publish(msgs)), len(msgs))

        port = free_port()
        args = [WORKER, "--brokers", BROKERS, "--group", self.group, "--topic", self.topic,
                "--results-topic", self.results, "--dlq-topic", self.dlq,
                "--kafka-prop", "session.timeout.ms=6000", "--startup-timeout", "30",
                "--metrics-port", str(port), "--concurrency", "2"]
        if REDIS:
            args += ["--redis", REDIS]
        with open(os.path.join(self.tmp.name, "worker.log"), "w") as log:
            w = subprocess.Popen(args, env=self.env, stdout=log, stderr=log)
        self.procs.append((w, log.name))
        results = self.read(self.results, 6, timeout=120)
        self.assertEqual(len(results), 6, self.logs())

        # wait for librdkafka's statistics (every 5 s): the per-partition lag
        deadline = time.time() + 40
        while True:
            got = get(port, "/metrics")
            self.assertIsNotNone(got, self.logs())
            fams = parse_exposition(got[1])
            samples = [s for f in fams.values() for s in f["samples"]]
            if (any(n == "dtk_worker_consumer_lag" for n, _, _ in samples)
                    and any(n == "dtk_worker_alerts_total" and l.get("outcome") == "failed"
                            for n, l, _ in samples)) or time.time() > deadline:
                break
            time.sleep(0.5)
        served = {}
        for name, labels, _ in samples:
            served.setdefault(name, []).append(labels)

        checked = 0
        for where, expr in all_expressions():
            selectors, grouping = promql_selectors(expr)
            names_here = set()
            for name, matchers in selectors:
                self.assertIn(name, served, "%s uses %s, which the worker does not serve:\n%s\n%s"
                              % (where, name, expr, sorted(served)))
                names_here.add(name)
                have = {k for labels in served[name] for k in labels}
                for label, op, value in matchers:
                    self.assertIn(label, have | TARGET_LABELS, "%s: %s has no label %s" % (where, name, label))
                    if label in TARGET_LABELS or value.startswith("$"):
                        continue
                    values = {labels.get(label) for labels in served[name]}
                    if op == "=":
                        self.assertIn(value, values, "%s: no %s{%s=%r}" % (where, name, label, value))
                    elif op == "=~" and re.fullmatch(r"[\w|]+", value):
                        for alt in value.split("|"):
                            self.assertIn(alt, values, "%s: no %s{%s=%r}" % (where, name, label, alt))
                checked += 1
            have = {k for n in names_here for labels in served[n] for k in labels}
            for label in grouping - {"le"}:
                self.assertIn(label, have | TARGET_LABELS, "%s groups by %s, which %s lack"
                              % (where, label, sorted(names_here)))
        self.assertGreater(checked, 30)
        w.terminate()
        self.assertEqual(w.wait(timeout=60), 0, self.logs())


if __name__ == "__main__":
    unittest.main(verbosity=2)
