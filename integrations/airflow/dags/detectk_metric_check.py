"""In-process checks with the Python API (docs/airflow.md, example b).

One PythonOperator per config of DTK_AIRFLOW_CHECK_CONFIGS (paths separated by
os.pathsep) runs detectk.check.MetricCheck at the end of the run's data
interval and pushes the check result object to XCom (return_value). A failed
check fails its task (the result is still in XCom); an anomaly fails it for
a metric tagged with one of DTK_AIRFLOW_CRITICAL_TAGS. A last task, run
whatever the checks did, pulls every result and returns a summary."""
import os

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TriggerRule

from detectk_airflow import (critical_tags, dag_arguments, run_metric_check, safe_id,
                             summarize_checks)

PATHS = [p for p in os.environ.get("DTK_AIRFLOW_CHECK_CONFIGS", "").split(os.pathsep) if p]

with DAG(**dag_arguments(
    dag_id="detectk_metric_check",
    description="DetectK checks in process (detectk.check.MetricCheck), results in XCom",
    schedule="*/10 * * * *",
)):
    checks = []
    if PATHS:
        from detectk.config import ConfigLoader

        loader = ConfigLoader(strict=False)
        for path in PATHS:
            cfg = loader.load(path)
            checks.append(PythonOperator(
                task_id="check_" + safe_id(cfg.name),
                python_callable=run_metric_check,
                op_kwargs={"path": path,
                           "fail_on_anomaly": bool(set(cfg.tags) & set(critical_tags()))}))
    summary = PythonOperator(task_id="summary", python_callable=summarize_checks,
                             op_kwargs={"task_ids": [c.task_id for c in checks]},
                             trigger_rule=TriggerRule.ALL_DONE)
    checks >> summary
