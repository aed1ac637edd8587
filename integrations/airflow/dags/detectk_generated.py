"""DAGs generated from the metric configs (docs/airflow.md, example c).

Reads every config under DTK_CONFIG_DIR with detectk.config.ConfigLoader and
makes one DAG per (tag, schedule.interval): detectk_<tag>_<interval>, e.g.
detectk_critical_10min on "*/10 * * * *". A config goes to the DAG of the
first of DTK_AIRFLOW_TAGS it carries (all tags, sorted, when unset; untagged
configs to detectk_untagged_*), so no metric runs twice. Each metric is one
task: `dtk-dispatch --metric NAME`, through the fleet when DTK_KAFKA_BROKERS
is set (waiting for the result) and in process otherwise; an anomaly fails
the task for metrics tagged with one of DTK_AIRFLOW_CRITICAL_TAGS.

Intervals map to cron exactly when a cron expression has DetectK's grid
(10min -> */10 * * * *, 1h -> 0 * * * *, 1d -> 0 0 * * * in the config's
timezone, 1w -> Mondays); the others (7min, 90min, 5h, 2d, 30s) run on a
timedelta. A config that does not load gets no DAG and is logged here."""
import logging
import os

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from detectk_airflow import (START_DATE, config_dir, critical_tags, dag_arguments,
                             dispatch_command, group_by_tag_and_interval, interval_schedule,
                             interval_slug, load_configs, safe_id, split_list)

log = logging.getLogger(__name__)

DIRECTORY = config_dir()
CONFIGS, ERRORS = load_configs(DIRECTORY) if os.path.isdir(DIRECTORY) else ([], [])
for path, error in ERRORS:
    log.warning("detectk: no DAG for %s: %s", path, error)

for (tag, seconds, tz), configs in sorted(group_by_tag_and_interval(
        CONFIGS, split_list(os.environ.get("DTK_AIRFLOW_TAGS"))).items()):
    dag_id = "detectk_%s_%s" % (safe_id(tag), interval_slug(seconds))
    if tz != "UTC":
        dag_id += "_" + safe_id(tz)
    with DAG(**dag_arguments(
        dag_id=dag_id,
        description="DetectK metrics tagged %s, every %s" % (tag, interval_slug(seconds)),
        schedule=interval_schedule(seconds),
        start_date=pendulum.datetime(START_DATE.year, START_DATE.month, START_DATE.day, tz=tz),
        tags=["detectk", tag],
    )) as dag:
        for cfg in configs:
            BashOperator(
                task_id=safe_id(cfg.name),
                bash_command=dispatch_command(
                    metric=cfg.name, directory=DIRECTORY, fleet=False,
                    fail_on_anomaly=bool(set(cfg.tags) & set(critical_tags()))))
    globals()[dag_id] = dag
