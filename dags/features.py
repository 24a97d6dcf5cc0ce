"""
### Features: clean partitions to model-ready feature partitions

Scheduled on **clean_data**: builds the feature table of every partition the triggering ETL runs
published (several ETL runs may be batched into one features run), in parallel chunks, with the problem's
feature code (the same code the API uses on requests). The **features** quality gate checks the
contract, including that no column known only after departure reaches the table.

Triggered by hand, it builds the `dates` param's partitions.

Emits **feature_data** with extra: partitions, rows, content hash per partition.
"""

from __future__ import annotations

from airflow.sdk import Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.orchestration.assets import CLEAN_DATA, FEATURE_DATA
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import (
    chunk_days,
    chunk_label,
    emit,
    fail_fast_on_data_errors,
    partitions_of,
)


@pipeline_dag(
    "features",
    schedule=[CLEAN_DATA],
    max_active_runs=2,
    params={
        "dates": Param(
            [],
            type="array",
            items={"type": "string", "format": "date"},
            description="Days to build when triggered by hand.",
        )
    },
    tags=["ml", "features", "data-quality"],
    doc_md=__doc__,
)
def features():
    @task
    def partitions_to_build() -> list[list[str]]:
        from include.mlpipeline.core.settings import get_settings

        context = get_current_context()
        days = partitions_of(context["triggering_asset_events"][CLEAN_DATA]) or list(context["params"]["dates"])
        if not days:
            raise AirflowSkipException("no partitions in the triggering events or the dates param")
        return chunk_days(days, get_settings().max_parallel_partitions)

    @task(map_index_template="{{ partitions }}")
    def build(days: list[str]) -> list[dict]:
        from include.mlpipeline.data import etl as steps

        get_current_context()["partitions"] = chunk_label(days)
        with fail_fast_on_data_errors():
            return steps.build_feature_partitions(days)

    @task(multiple_outputs=False, outlets=[FEATURE_DATA])
    def publish(summaries: list[list[dict]]) -> dict:
        from include.mlpipeline.data import etl as steps

        extra = steps.publish_summary(steps.FEATURES, summaries)
        return emit(FEATURE_DATA, extra)

    publish(build.expand(days=partitions_to_build()))


features()
