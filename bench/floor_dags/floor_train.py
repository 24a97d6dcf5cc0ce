"""### Floor train: the `train` DAG's shape, with tasks that do nothing (see floor_etl.py)"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, get_current_context, task

FLOOR_FEATURES = Asset(name="bench_floor_features", uri="x-bench://floor/features")
FLOOR_APPROVED = Asset(name="bench_floor_approved", uri="x-bench://floor/approved")


@dag(
    dag_id="floor_train",
    schedule=[FLOOR_FEATURES],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["bench"],
)
def floor_train():
    @task(multiple_outputs=False)  # as train's: the dict is one XCom, not one per key
    def select_window() -> dict:
        return get_current_context()["triggering_asset_events"][FLOOR_FEATURES][-1].extra["shape"]

    @task
    def open_parent_run(window: dict) -> str:
        return "parent"

    @task
    def list_candidates() -> list[int]:
        shape = get_current_context()["triggering_asset_events"][FLOOR_FEATURES][-1].extra["shape"]
        return list(range(shape["candidates"]))

    @task
    def train_candidate(name: int, window: dict, parent_run_id: str) -> None:
        return None

    @task(multiple_outputs=False)
    def register_best(results: list[None], window: dict, parent_run_id: str) -> dict:
        return window

    @task(outlets=[FLOOR_APPROVED])
    def approve(registration: dict) -> None:
        get_current_context()["outlet_events"][FLOOR_APPROVED].extra = {"shape": registration}

    window = select_window()
    parent = open_parent_run(window)
    results = train_candidate.partial(window=window, parent_run_id=parent).expand(name=list_candidates())
    approve(register_best(results, window, parent))


floor_train()
