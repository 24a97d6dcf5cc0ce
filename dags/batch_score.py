"""
### Batch score: the champion's predictions for new clean data, with no traffic needed

Scheduled on **clean_data | served_model**. On clean_data it scores the partitions the triggering
ETL runs published; on served_model (a new champion) it also re-scores the newest
`MLP_BATCH_LOOKBACK_DAYS` clean partitions (a snapshot problem: its newest load), so the new
version's predictions exist for recent days. Triggered by hand, it scores the `dates` param's
partitions, or else re-scores the newest ones.

Rows are scored as the API scores a request (the problem's request records, request checks and
feature code, the champion loaded from the registry as the API loads it), in chunks, into
`batch_predictions/date=D`: one partition per clean partition, with the model version, the clean
partition's content hash and the model's training data version, committed whole and replaced by a
rerun. Rows the API would refuse go to `quarantine/batch_predictions`. Once their outcomes land, the
monitor's live-performance check reads these predictions beside the API's log.

Emits **batch_predictions** with extra: partitions, rows, content hash per partition, model version,
seconds. `MLP_BATCH_SCORING_ENABLED=false` turns it off (its runs skip).
"""

from __future__ import annotations

from airflow.sdk import Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.orchestration.assets import BATCH_PREDICTIONS, CLEAN_DATA, SERVED_MODEL
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import emit, fail_fast_on_data_errors, partitions_of


@pipeline_dag(
    "batch_score",
    schedule=(CLEAN_DATA | SERVED_MODEL),
    params={
        "dates": Param(
            [],
            type="array",
            items={"type": "string", "format": "date"},
            description="Days to score when triggered by hand (none: re-score the newest ones).",
        )
    },
    tags=["ml", "serving", "batch-scoring"],
    doc_md=__doc__,
)
def batch_score():
    @task(multiple_outputs=False)
    def plan() -> dict:
        from include.mlpipeline.deployment import batch_scoring

        context = get_current_context()
        events = context["triggering_asset_events"]
        clean_days = partitions_of(events.get(CLEAN_DATA, [])) or list(context["params"]["dates"])
        # A new champion re-scores the newest days; so does a hand trigger naming none.
        rescore = bool(events.get(SERVED_MODEL, [])) or not clean_days
        planned = batch_scoring.plan_days(clean_days, rescore_recent=rescore)
        if not planned["days"]:
            raise AirflowSkipException(planned["reason"])
        return planned

    @task(multiple_outputs=False)
    def score(planned: dict) -> dict:
        from include.mlpipeline.deployment import batch_scoring

        with fail_fast_on_data_errors():
            return batch_scoring.score_days(planned["days"])

    @task(multiple_outputs=False, outlets=[BATCH_PREDICTIONS])
    def publish(scored: dict) -> dict:
        if not scored["partitions"]:
            raise AirflowSkipException(scored.get("reason") or "no clean partition to score in the planned days")
        return emit(BATCH_PREDICTIONS, scored)

    publish(score(plan()))


batch_score()
