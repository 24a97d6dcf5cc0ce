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

In shadow mode (`MLP_SHADOW_ENABLED`) the challenger also answers every request unseen: the run logs
the newest day's shadow report (agreement with the champion, each one's live metrics) to MLflow
(`<model>-shadow`) and as gauges, and a shadow win on live outcomes (the same test) is emitted the same way.
"""

from __future__ import annotations

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.orchestration.assets import APPROVED_MODEL, FEATURE_DATA
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import emit


@pipeline_dag(
    "ab_test",
    schedule=[FEATURE_DATA],
    tags=["ml", "serving", "ab-testing"],
    doc_md=__doc__,
)
def ab_test():
    @task(multiple_outputs=False)
    def evaluate() -> dict:
        from include.mlpipeline.deployment import abtest

        return abtest.evaluate_ab()

    @task(multiple_outputs=False)
    def evaluate_shadow() -> dict:
        from include.mlpipeline.deployment import shadow_test

        return shadow_test.evaluate_shadow()

    @task(multiple_outputs=False, outlets=[APPROVED_MODEL])
    def approve_challenger(result: dict, shadow: dict) -> dict:
        from include.mlpipeline.deployment.shadow_test import promotion

        winner = promotion(result, shadow)
        if winner is None:
            raise AirflowSkipException(
                f"A/B {result['decision']}: {result['reason']}; shadow {shadow['decision']}: {shadow['reason']}"
            )
        return emit(APPROVED_MODEL, winner)

    approve_challenger(evaluate(), evaluate_shadow())


ab_test()
