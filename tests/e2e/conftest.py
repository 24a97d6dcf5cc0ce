"""End-to-end tests start their own Airflow, MLflow and API processes on this machine.

Inside an Astro Runtime container (``astro dev pytest``) there is already an Airflow with its own
ports and database, and these tests would fight it: they are skipped there. Run them with
``make test`` or ``make test-e2e``.

The production-like stack (``production_stack``: PostgreSQL, Celery, Redis) is one per session,
shared by test_production_stack.py and test_production_asset_bursts.py, whose names sort them last
and next to each other, so it runs alone, after the other modules have stopped their stacks. It
loads a second DAG bundle, ``burst_dags/``, the cheap train/deploy stand-ins of the asset-queue
test; they stay paused unless that test runs.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from stack.chain_monitor import ChainMonitor
from stack.config import StackConfig
from stack.postgres import create_postgres_database, drop_postgres_database
from stack.stack import Stack

REDIS_DB = 11  # a database of the machine's Redis that nothing else here uses; flushed before and after
REDIS = urllib.parse.urlsplit(os.environ.get("MLP_TEST_REDIS_URL", "redis://127.0.0.1:6379"))
BURST_DAGS_DIR = Path(__file__).parent / "burst_dags"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("ASTRONOMER_RUNTIME_VERSION"):
        return
    skip = pytest.mark.skip(reason="end-to-end stack tests do not run inside an Astro Runtime container")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def with_burst_dags() -> dict[str, str]:
    """Airflow's DAG bundles: dags/ as always, and the asset-queue test's DAG pair."""
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": "e2e-burst-dags", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(BURST_DAGS_DIR)}},
    ]
    return {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}


@pytest.fixture(scope="session")
def production_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    airflow_db, mlflow_db = f"mlp_e2e_airflow_{suffix}", f"mlp_e2e_mlflow_{suffix}"
    airflow_url = create_postgres_database(airflow_db)
    mlflow_url = create_postgres_database(mlflow_db)
    broker = redis.Redis(host=REDIS.hostname, port=REDIS.port or 6379, db=REDIS_DB)
    broker.flushdb()
    config = StackConfig.isolated(
        tmp_path_factory.mktemp("prod-stack"),
        executor="CeleryExecutor",
        airflow_db_url=airflow_url.replace("postgresql://", "postgresql+psycopg2://"),
        mlflow_backend_uri=mlflow_url,
        celery_broker_url=f"redis://{REDIS.hostname}:{REDIS.port or 6379}/{REDIS_DB}",
        celery_result_backend=f"db+{airflow_url}",
        celery_workers=(("worker-default", "default"), ("worker-training", "training")),
        extra_env={
            "MLP_PROBLEM": "include.penguins",
            "MLP_ETL_SCHEDULE": "none",
            "MLP_TRAINING_QUEUE": "training",
            "MLP_DVC_ENABLED": "false",
            **with_burst_dags(),
        },
    )
    stack = Stack(config)
    try:
        stack.start()
        stack.airflow.wait_for_dags()
        for dag_id in ("features", "train", "deploy", "etl"):
            stack.airflow.set_paused(dag_id, False)
        yield stack
    finally:
        stack.stop()
        broker.flushdb()
        drop_postgres_database(airflow_db)
        drop_postgres_database(mlflow_db)


@pytest.fixture(scope="session")
def production_chain(production_stack: Stack) -> dict:
    """The chain on the production stack, from an ETL trigger to a served model: each DAG's run."""
    monitor = ChainMonitor(production_stack.airflow)
    run = production_stack.airflow.trigger("etl", conf={"date": "2026-05-20"})
    runs = {"etl": monitor.wait_for_run("etl", run["dag_run_id"], timeout=900)}
    for dag_id in ("features", "train", "deploy"):
        runs[dag_id] = monitor.wait_for_success(dag_id, timeout=900)
    return runs
