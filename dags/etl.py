"""
### ETL: source tables to clean, quality-gated daily partitions

Runs on `MLP_ETL_SCHEDULE` (daily by default). For its day (the `date` param, else the logical
date) it extracts every source table in parallel into `raw/<source>`, then cleans the days (in
parallel chunks when there are many): the problem's cleaning rules, then the **clean** quality gate
(pandera). Rows failing row-level checks go to `quarantine/clean`; a table-level failure or more
than `MLP_QUARANTINE_MAX_SHARE` bad rows fails the task without retry and no asset event is
emitted, so nothing downstream runs on bad data.

On a fresh lake the first run also loads the `bootstrap_days` days before its own (default
`MLP_BOOTSTRAP_DAYS`), so training can start without a manual backfill. Set `bootstrap_days` to 0 for
backfills. A day without source data (29 February in the replay) is a logged no-op.

Emits **clean_data** with extra: partitions, rows in/out/quarantined, content hash per partition.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.orchestration.assets import CLEAN_DATA
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import (
    chunk_days,
    chunk_label,
    emit,
    fail_fast_on_data_errors,
    run_day,
)


@pipeline_dag(
    "etl",
    schedule=get_settings().etl_schedule,
    start_date=dt.datetime.combine(get_settings().etl_start_date, dt.time(), tzinfo=dt.UTC),
    max_active_runs=4,
    params={
        "date": Param(
            None, type=["null", "string"], format="date", description="Day to process (default: logical date)."
        ),
        "bootstrap_days": Param(
            None, type=["null", "integer"], minimum=0, description="History to ensure; 0 for backfills."
        ),
    },
    tags=["ml", "etl", "data-quality"],
    doc_md=__doc__,
)
def etl():
    @task
    def plan() -> list[list[str]]:
        from include.mlpipeline.data import etl as steps
        from include.mlpipeline.orchestration.connections import source_storage_options

        context = get_current_context()
        bootstrap_days = context["params"].get("bootstrap_days")
        # The sources' connection is resolved here, when the task runs: a table lists its days with it.
        days = steps.plan_partitions(run_day(context), bootstrap_days, storage_options=source_storage_options())
        return chunk_days(days, get_settings().max_parallel_partitions)

    @task
    def list_sources() -> list[str]:
        from include.mlpipeline.core.problem import load_problem

        return [source.name for source in load_problem().sources]

    @task(multiple_outputs=False, map_index_template="{{ source_name }}")
    def extract(source: str, chunks: list[list[str]]) -> dict:
        from include.mlpipeline.data import etl as steps
        from include.mlpipeline.orchestration.connections import source_storage_options

        get_current_context()["source_name"] = source
        # The source's connection is resolved here, when the task runs: never at parse time, and
        # its credentials reach the reader as storage options without leaving this process.
        storage_options = source_storage_options()
        with fail_fast_on_data_errors():
            days = [day for chunk in chunks for day in chunk]
            return steps.extract_source(source, days, storage_options=storage_options)

    @task(map_index_template="{{ partitions }}")
    def clean(days: list[str]) -> list[dict]:
        from include.mlpipeline.data import etl as steps

        get_current_context()["partitions"] = chunk_label(days)
        with fail_fast_on_data_errors():
            return steps.transform_partitions(days)

    @task(multiple_outputs=False, outlets=[CLEAN_DATA])
    def publish(summaries: list[list[dict]]) -> dict:
        from include.mlpipeline.data import etl as steps

        extra = steps.publish_summary(steps.CLEAN, summaries)
        if not extra["partitions"]:
            raise AirflowSkipException(f"no new partitions (days without data: {extra['no_data']})")
        return emit(CLEAN_DATA, extra)

    chunks = plan()
    extracted = extract.partial(chunks=chunks).expand(source=list_sources())
    cleaned = clean.expand(days=chunks)
    extracted >> cleaned
    publish(cleaned)


etl()
