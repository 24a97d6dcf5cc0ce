"""A cheap stand-in for ``train`` -> ``deploy``, for the asset-queue test (tests/e2e/test_asset_bursts.py).

Same shape as the real pair: ``burst_train`` runs one at a time on ``burst_data | burst_retrain``
(train: ``feature_data | retrain_requested``) and emits ``burst_model``; ``burst_deploy`` runs one
at a time on ``burst_model`` (deploy: ``approved_model``). Each task only sleeps, so a run takes
seconds instead of minutes, and deploy's run is the longer one: models pile up while it runs, as
they do during a bootstrap or a backfill. Loaded only by the end-to-end stack, as a second DAG
bundle beside dags/.
"""

from __future__ import annotations

import datetime as dt
import time

from airflow.sdk import Asset, dag, task

BURST_DATA = Asset(name="burst_data", uri="x-test://burst/data")
BURST_RETRAIN = Asset(name="burst_retrain", uri="x-test://burst/retrain")
BURST_MODEL = Asset(name="burst_model", uri="x-test://burst/model")
TRAIN_SECONDS, DEPLOY_SECONDS = 6, 15
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dag(schedule=(BURST_DATA | BURST_RETRAIN), max_active_runs=1, catchup=False, start_date=START, tags=["test"])
def burst_train():
    @task(outlets=[BURST_MODEL], retries=0)
    def fit() -> None:
        time.sleep(TRAIN_SECONDS)

    fit()


@dag(schedule=[BURST_MODEL], max_active_runs=1, catchup=False, start_date=START, tags=["test"])
def burst_deploy():
    @task(retries=0)
    def serve() -> None:
        time.sleep(DEPLOY_SECONDS)

    serve()


burst_train()
burst_deploy()
