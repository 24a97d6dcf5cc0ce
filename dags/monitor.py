"""
### Monitor: drift and live performance of the champion; requests a retrain when needed

Scheduled on **clean_data**. Compares the new partitions, and the inputs the API served recently,
with the champion's training data (Evidently data drift, per feature), and the champion's live
log loss and ROC AUC (served predictions joined with their outcomes) with its offline test
metrics. The Evidently HTML reports go to the lake (`monitoring/date=D/`) and to MLflow.

When the drifted share reaches `MLP_DRIFT_SHARE_THRESHOLD` or live ROC AUC drops by
`MLP_LIVE_AUC_DROP`, it alerts on Slack and emits **retrain_requested**; `train` is scheduled on
`feature_data | retrain_requested`, so monitoring closes the loop without a human.
"""

from __future__ import annotations

from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.orchestration.assets import CLEAN_DATA, RETRAIN_REQUESTED
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import emit, partitions_of


@pipeline_dag(
    "monitor",
    schedule=[CLEAN_DATA],
    tags=["ml", "monitoring", "drift"],
    doc_md=__doc__,
)
def monitor():
    @task(multiple_outputs=False)
    def check_drift() -> dict:
        from include.mlpipeline.monitoring import drift

        days = partitions_of(get_current_context()["triggering_asset_events"][CLEAN_DATA])
        return drift.monitor(days)

    @task(multiple_outputs=False, outlets=[RETRAIN_REQUESTED])
    def request_retrain(summary: dict) -> dict:
        from include.mlpipeline.orchestration.alerts import notify_drift

        if not summary["retrain"]:
            raise AirflowSkipException(f"no retrain needed: {summary.get('status') or 'within thresholds'}")
        part = summary.get("newest_days") or summary.get("served_inputs") or {}
        notify_drift({**part, "reasons": summary["reasons"], "dag_id": "monitor"})
        return emit(RETRAIN_REQUESTED, summary)

    request_retrain(check_drift())


monitor()
