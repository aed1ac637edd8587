"""What the DetectK example DAGs share (docs/airflow.md): the mapping from a
config's schedule.interval to an Airflow schedule, the dtk-dispatch command
lines, the DAG arguments common to all, and the MetricCheck task callable.
Written for Airflow 3. Not a DAG file itself (.airflowignore): Airflow puts
the DAG folder (the dags-folder bundle) on sys.path, so the DAG files import
it as a module.

Settings come from the environment of the scheduler and of the workers:
  DTK_CONFIG_DIR            the metric configs (also read by dtk-dispatch)
  DTK_AIRFLOW_TAGS          comma list: the tags that get generated DAGs
  DTK_AIRFLOW_CRITICAL_TAGS comma list (default "critical"): an anomaly in a
                            metric with one of these tags fails its task
  DTK_AIRFLOW_CHECK_CONFIGS config paths (os.pathsep-separated) checked in
                            process by the MetricCheck DAG
Everything else dtk-dispatch reads from its own environment
(DTK_KAFKA_BROKERS, DTK_TOPIC, DTK_TIMEOUT, DTK_SIGNING_KEY, ...)."""

import datetime
import logging
import os
import re
import shlex

log = logging.getLogger(__name__)

# DetectK's interval grid: slots start at Monday 1970-01-05T00:00:00 + k *
# interval (UTC below one day, the config's timezone from one day up). A cron
# expression is exact only when its fire times are that grid: the origin is
# a midnight, so steps dividing an hour or a day are, and so are one day and
# (the origin being a Monday) one week.
MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 604800

# The first run of every DAG here (a Monday, on every grid that divides a
# week); catchup is off, so nothing before the first deployment runs.
START_DATE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def dag_arguments(**kw):
    """The arguments of DAG(...) that every DAG here shares, updated by kw:
    START_DATE without catchup, one run at a time, each task tried once for at
    most 30 minutes, the tag detectk."""
    args = {"start_date": START_DATE, "catchup": False, "max_active_runs": 1,
            "default_args": {"retries": 0, "execution_timeout": datetime.timedelta(minutes=30)},
            "tags": ["detectk"]}
    args.update(kw)
    return args


# Airflow renders this into each command: the end of the run's data interval
# (with Airflow 3's default trigger timetables, the time the run was due),
# whose aligned slot is the one that just ended; a manual run without a
# logical date has none and uses the time it was triggered for.
EXECUTION_TIME = "{{ (data_interval_end or dag_run.run_after) | ts }}"


def interval_schedule(seconds):
    """The Airflow schedule for a DetectK interval of `seconds`: a cron
    expression (str) whose fire times are exactly the slot starts, or a
    datetime.timedelta when no single cron expression has them (7 minutes,
    90 minutes, 5 hours, 2 days, 30 seconds, ...). A timedelta schedule runs
    once per interval, not on the slot starts, so each run checks the slot
    that ended last and every slot is checked once. Cron day and week
    schedules are read in the DAG's timezone (schedule_timezone)."""
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError("interval must be a positive number of seconds, got %r" % (seconds,))
    if seconds % MINUTE == 0 and seconds < HOUR and HOUR % seconds == 0:
        minutes = seconds // MINUTE
        return "* * * * *" if minutes == 1 else "*/%d * * * *" % minutes
    if seconds % HOUR == 0 and seconds < DAY and DAY % seconds == 0:
        hours = seconds // HOUR
        return "0 * * * *" if hours == 1 else "0 */%d * * *" % hours
    if seconds == DAY:
        return "0 0 * * *"
    if seconds == WEEK:
        return "0 0 * * 1"  # the grid origin is a Monday
    return datetime.timedelta(seconds=seconds)


def schedule_timezone(seconds, timezone):
    """The timezone the schedule of an interval is read in: the config's
    from one day up (DetectK aligns days and weeks in local time), UTC below."""
    if seconds >= DAY and timezone:
        return timezone
    return "UTC"


def interval_slug(seconds):
    """A DAG id fragment naming an interval: 30s, 10min, 90min, 1h, 2d, 1w."""
    for size, unit in ((WEEK, "w"), (DAY, "d"), (HOUR, "h"), (MINUTE, "min")):
        if seconds % size == 0:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def split_list(text):
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def critical_tags():
    return split_list(os.environ.get("DTK_AIRFLOW_CRITICAL_TAGS", "critical"))


def config_dir():
    return os.environ.get("DTK_CONFIG_DIR", "/etc/detectk/configs")


def safe_id(text):
    """An Airflow dag or task id from free text (letters, digits, _ . -)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def dispatch_command(*, tags=(), exclude_tags=(), metric=None, due=False, fleet=True,
                     fail_on_anomaly=False, directory=None):
    """The bash command of a dtk-dispatch task. fleet=True publishes to
    Kafka and waits for the workers' results, and fails at once when
    DTK_KAFKA_BROKERS is unset; fleet=False waits only when brokers are set
    (and runs the checks in process otherwise). The exit code is the task's
    outcome: 0 ok or anomaly, 1 a check failed, 2 a config error, 3 an
    anomaly with --fail-on-anomaly."""
    words = ["dtk-dispatch", "--config-dir", directory or config_dir()]
    for t in tags:
        words += ["--tags", t]
    for t in exclude_tags:
        words += ["--exclude-tags", t]
    if metric:
        words += ["--metric", metric]
    if due:
        words.append("--due")
    if fail_on_anomaly:
        words.append("--fail-on-anomaly")
    cmd = " ".join(shlex.quote(w) for w in words)
    cmd += ' --execution-time "%s"' % EXECUTION_TIME
    if fleet:
        return cmd + ' --brokers "${DTK_KAFKA_BROKERS:?set DTK_KAFKA_BROKERS}" --wait'
    return cmd + " ${DTK_KAFKA_BROKERS:+--wait}"


def load_configs(directory):
    """(configs, errors) for every *.yaml / *.yml under directory, loaded
    as dtk-dispatch loads them before publishing (unset ${VAR}s stay
    placeholders, so the scheduler needs none of the sources' secrets)."""
    from detectk import ConfigError
    from detectk.config import ConfigLoader

    loader = ConfigLoader(strict=False)
    configs, errors = [], []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, name)
            try:
                configs.append(loader.load(path))
            except ConfigError as e:
                errors.append((path, str(e)))
    return configs, errors


def group_by_tag_and_interval(configs, tags=None):
    """{(tag, interval_seconds, timezone): [config]}: each config once, under
    the first of `tags` it carries (all tags in sorted order when tags is
    empty, and "untagged" for a config without any); configs without one of
    `tags` are left out."""
    groups = {}
    for cfg in configs:
        if tags:
            tag = next((t for t in tags if t in cfg.tags), None)
            if tag is None:
                continue
        else:
            tag = sorted(cfg.tags)[0] if cfg.tags else "untagged"
        seconds = cfg.schedule.interval_seconds
        tz = schedule_timezone(seconds, cfg.timezone)
        groups.setdefault((tag, seconds, tz), []).append(cfg)
    return groups


def run_metric_check(path, fail_on_anomaly=False, **context):
    """PythonOperator callable: one in-process check (detectk.check), its
    to_dict() (the check result v1 object: metric, status, datapoint,
    detections, alert, errors) pushed to XCom as return_value whatever the
    outcome; raises when the check failed, and on an anomaly when
    fail_on_anomaly."""
    from airflow.sdk.exceptions import AirflowException
    from detectk.check import MetricCheck

    when = context.get("data_interval_end") or context["dag_run"].run_after
    result = MetricCheck().execute(path, execution_time=when.isoformat())
    doc = result.to_dict()
    context["ti"].xcom_push(key="return_value", value=doc)
    log.info("%s at %s: %s, value %s", result.metric_name, doc.get("execution_time"),
             result.status, result.value)
    if result.status == "error":
        raise AirflowException("%s: check failed: %s" % (
            result.metric_name, "; ".join(result.error_messages) or "see the result"))
    if fail_on_anomaly and result.is_anomaly:
        raise AirflowException("%s: anomaly at %s" % (result.metric_name, result.timestamp))


def summarize_checks(task_ids, **context):
    """PythonOperator callable: pulls the results of task_ids and returns
    {"ok": n, "anomaly": n, "error": n, "missing": [...], "anomalies": [...]}."""
    summary = {"ok": 0, "anomaly": 0, "error": 0, "missing": [], "anomalies": []}
    for task_id in task_ids:
        doc = context["ti"].xcom_pull(task_ids=task_id)
        if not doc:
            summary["missing"].append(task_id)
            continue
        status = doc.get("status")
        summary[status] = summary.get(status, 0) + 1
        if status == "anomaly":
            summary["anomalies"].append(doc.get("metric"))
    log.info("DetectK checks: %s", summary)
    return summary
