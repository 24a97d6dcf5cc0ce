"""### Floor etl: the `etl` DAG's shape, with tasks that do nothing (the orchestration floor of bench/pipeline.py)

Same graph as `dags/etl.py` (plan, list_sources, mapped extract, mapped clean, publish with an
outlet), bodies that return at once. The `shape` param sets the mapped widths; publish passes it on
in the asset event's extra, so the whole floor chain has the task counts of the run it is compared with.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, Param, dag, get_current_context, task

FLOOR_CLEAN = Asset(name="bench_floor_clean", uri="x-bench://floor/clean")
SHAPE = {"extract": 4, "clean": 1, "build": 1, "candidates": 4}  # one daily partition of our chain


@dag(
    dag_id="floor_etl",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    params={"shape": Param(SHAPE, type="object")},
    tags=["bench"],
)
def floor_etl():
    @task
    def plan() -> list[int]:
        return list(range(get_current_context()["params"]["shape"]["clean"]))

    @task
    def list_sources() -> list[int]:
        return list(range(get_current_context()["params"]["shape"]["extract"]))

    @task
    def extract(source: int, chunks: list[int]) -> None:
        return None

    @task
    def clean(days: int) -> None:
        return None

    @task(outlets=[FLOOR_CLEAN])
    def publish(summaries: list[None]) -> None:
        context = get_current_context()
        context["outlet_events"][FLOOR_CLEAN].extra = {"shape": context["params"]["shape"]}

    chunks = plan()
    extracted = extract.partial(chunks=chunks).expand(source=list_sources())
    cleaned = clean.expand(days=chunks)
    extracted >> cleaned
    publish(cleaned)


floor_etl()
