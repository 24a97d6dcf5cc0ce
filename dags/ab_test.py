"""
### A/B test: champion vs challenger on live traffic

Scheduled on **feature_data**, so the outcomes of newly landed days are known. Joins the API's
prediction log with those outcomes (and with outcomes posted to `/feedback`), computes live metrics
per variant, and decides with a one-sided Welch t-test on per-prediction log loss (alpha
`MLP_AB_ALPHA`, at least `MLP_AB_MIN_SAMPLES` per variant) whether the challenger wins. The decision
and its numbers are logged to MLflow (experiment `<model>-ab-tests`).

A win emits **approved_model** with the challenger's version: the deploy DAG promotes it through the
same verified deploy, with rollback, as a model approved by training. The API splits traffic only
when `MLP_AB_CHALLENGER_SHARE` > 0.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.orchestration.alerts import DagFailureAlert, DagRunMetrics
from include.mlpipeline.orchestration.assets import APPROVED_MODEL, FEATURE_DATA
from include.mlpipeline.orchestration.tasks import default_args, emit


@dag(
    dag_id="ab_test",
    schedule=[FEATURE_DATA],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_success_callback=DagRunMetrics(),  # run duration, state, end time to the Pushgateway
    on_failure_callback=[DagFailureAlert(), DagRunMetrics()],  # timeouts, deadlocks; failed tasks alert themselves
    tags=["ml", "serving", "ab-testing"],
    doc_md=__doc__,
)
def ab_test():
    @task
    def evaluate() -> dict:
        from include.mlpipeline.deployment import abtest

        return abtest.evaluate_ab()

    @task(outlets=[APPROVED_MODEL])
    def approve_challenger(result: dict) -> dict:
        if not result["promote"]:
            raise AirflowSkipException(f"{result['decision']}: {result['reason']}")
        return emit(APPROVED_MODEL, result)

    approve_challenger(evaluate())


ab_test()
