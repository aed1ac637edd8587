"""The --due pattern (docs/airflow.md, example d): one DAG, every minute,
running `dtk-dispatch --due --wait`: the configs whose interval grid has a
slot starting in the run's minute are published to the fleet, whatever their
interval, so one DAG replaces a DAG per schedule. The task fails when a check
fails (exit 1) or a config does not load (exit 2).

Runs may overlap (max_active_runs 5) when results take longer than a minute;
DTK_TIMEOUT bounds the wait of each."""

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from detectk_airflow import dag_arguments, dispatch_command

with DAG(**dag_arguments(
    dag_id="detectk_due",
    description="Every minute: dtk-dispatch --due --wait",
    schedule="* * * * *",
    max_active_runs=5,
)):
    BashOperator(task_id="dispatch_due", bash_command=dispatch_command(due=True))
