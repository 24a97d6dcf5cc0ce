"""The production-like stack, for real: Airflow on PostgreSQL with the CeleryExecutor and a Redis
broker, two Celery workers (one for the `training` queue), MLflow on PostgreSQL.

Configuration only (scripts/stack/ passes settings and Airflow env vars; no code differs from
`make run`). The test creates its own databases and Redis database and removes them afterwards.
It runs the chain from an ETL trigger to a served model and checks that the training tasks ran on
the training worker.

The stack and the chain are the session fixtures ``production_stack`` and ``production_chain``
(tests/e2e/conftest.py), shared with test_production_asset_bursts.py.

It runs the second example, `include.penguins` (a regression on a snapshot table, no time axis),
so that the whole chain runs end to end for both shipped examples: the other end-to-end modules
run the flights example.
"""

from __future__ import annotations

import httpx
import pytest
from stack.stack import Stack

pytestmark = pytest.mark.e2e


def test_chain_reaches_a_served_model(production_stack: Stack, production_chain: dict):
    for dag_id in ("features", "train", "deploy"):
        assert production_chain[dag_id]["run_type"] == "asset_triggered"
    events = production_stack.airflow.request("GET", "/assets/events", params={"source_dag_id": "train"})
    version = str(events["asset_events"][-1]["extra"]["version"])
    model = httpx.get(f"{production_stack.config.api_url}/model").json()
    assert model["model_version"] == version
    assert (model["task"], model["classes"]) == ("regression", None)


def test_the_served_regression_answers_with_values(production_stack: Stack, production_chain: dict):
    from include.penguins import PROBLEM

    canaries = PROBLEM.canary_records()
    response = httpx.post(
        f"{production_stack.config.api_url}/predict",
        json={PROBLEM.request_key: canaries},
        headers=production_stack.api_headers(),
        timeout=60,
    )

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["id"] for p in predictions] == [c["penguin_id"] for c in canaries]
    assert all(2000 < p["value"] < 7000 and "probability" not in p for p in predictions)


def executed(stack: Stack, worker: str) -> list[str]:
    """Task ids a Celery worker executed, from its own log ("Executing workload ... task_id=...")."""
    lines = (stack.config.state_dir / "logs" / f"worker-{worker}.log").read_text(errors="replace").splitlines()
    return [
        line.split("task_id=", 1)[1].split("/", 1)[0]
        for line in lines
        if "Executing workload in Celery" in line and "task_id=" in line
    ]


def test_training_ran_on_the_training_queue(production_stack: Stack, production_chain: dict):
    tasks = production_stack.airflow.task_instances("train", production_chain["train"]["dag_run_id"])
    training = [t for t in tasks if t["task_id"] == "train_candidate"]
    assert len(training) == 4
    assert {t["queue"] for t in training} == {"training"}
    others = [t for t in tasks if t["task_id"] != "train_candidate" and t["state"] == "success"]
    assert others and {t["queue"] for t in others} == {"default"}
    assert executed(production_stack, "worker-training") == ["train_candidate"] * 4
    default_worker = executed(production_stack, "worker-default")
    assert "train_candidate" not in default_worker
    assert {"extract", "clean", "build", "register_best", "verify_live_service"} <= set(default_worker)


def test_metadata_really_lives_in_postgres(production_stack: Stack, production_chain: dict):
    import psycopg2

    url = production_stack.config.airflow_db_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("select count(*) from dag_run where dag_id = 'train' and state = 'success'")
        assert cursor.fetchone()[0] >= 1
    with psycopg2.connect(production_stack.config.mlflow_backend_uri) as connection, connection.cursor() as cursor:
        cursor.execute("select count(*) from model_versions")
        assert cursor.fetchone()[0] >= 1
