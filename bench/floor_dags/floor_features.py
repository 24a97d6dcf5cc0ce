"""### Floor features: the `features` DAG's shape, with tasks that do nothing (see floor_etl.py)"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, get_current_context, task

FLOOR_CLEAN = Asset(name="bench_floor_clean", uri="x-bench://floor/clean")
FLOOR_FEATURES = Asset(name="bench_floor_features", uri="x-bench://floor/features")


@dag(
    dag_id="floor_features",
    schedule=[FLOOR_CLEAN],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["bench"],
)
def floor_features():
    @task
    def partitions_to_build() -> list[int]:
        shape = get_current_context()["triggering_asset_events"][FLOOR_CLEAN][-1].extra["shape"]
        return list(range(shape["build"]))

    @task
    def build(days: int) -> None:
        return None

    @task(outlets=[FLOOR_FEATURES])
    def publish(summaries: list[None]) -> None:
        context = get_current_context()
        shape = context["triggering_asset_events"][FLOOR_CLEAN][-1].extra["shape"]
        context["outlet_events"][FLOOR_FEATURES].extra = {"shape": shape}

    publish(build.expand(days=partitions_to_build()))


floor_features()
