"""DetectK through the fleet, by tags (docs/airflow.md, example a).

Every 10 minutes: `dtk-dispatch --tags critical --fail-on-anomaly` and
`dtk-dispatch --exclude-tags critical`, each publishing to Kafka
($DTK_KAFKA_BROKERS) and waiting (--wait) for the dtk-worker results. A task
fails when a check of its selection fails (exit 1) or a config does not load
(exit 2); the critical one also fails on an anomaly (exit 3)."""

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from detectk_airflow import critical_tags, dag_arguments, dispatch_command

CRITICAL = critical_tags()

with DAG(**dag_arguments(
    dag_id="detectk_dispatch_tags",
    description="DetectK checks by tag through dtk-dispatch and the worker fleet",
    schedule="*/10 * * * *",
)):
    BashOperator(task_id="dispatch_critical",
                 bash_command=dispatch_command(tags=CRITICAL, fail_on_anomaly=True))
    BashOperator(task_id="dispatch_others",
                 bash_command=dispatch_command(exclude_tags=CRITICAL))
