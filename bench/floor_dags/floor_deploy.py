"""### Floor deploy: the `deploy` DAG's shape, with tasks that do nothing (see floor_etl.py)"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, task

FLOOR_APPROVED = Asset(name="bench_floor_approved", uri="x-bench://floor/approved")
FLOOR_SERVED = Asset(name="bench_floor_served", uri="x-bench://floor/served")


@dag(
    dag_id="floor_deploy",
    schedule=[FLOOR_APPROVED],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["bench"],
)
def floor_deploy():
    @task
    def version_to_serve() -> str:
        return "1"

    @task
    def promote(version: str) -> str:
        return version

    @task(outlets=[FLOOR_SERVED])
    def verify_live_service(version: str) -> None:
        return None

    verify_live_service(promote(version_to_serve()))


floor_deploy()
