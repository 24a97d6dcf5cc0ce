"""End to end, with the real thing: Airflow scheduler, dag-processor, triggerer and api-server, an MLflow
server and the prediction API, on a temporary state folder and free ports (so it runs beside a live
`make run`).

One stack start serves every assertion in this module, in order:

1. an ETL run triggered through the REST API chains into features, train and deploy, each of them an
   ``asset_triggered`` run, and the live API then serves the newly registered version;
2. a corrupt source fails the ETL quality gate at once (no retry), emits no asset event, starts no
   downstream run, and the served model keeps serving;
3. a day without source data (29 February) is a successful no-op that triggers nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from stack import ChainMonitor, Stack, StackConfig

from include.flight_delay import sources

pytestmark = pytest.mark.e2e

RUN_DAY = "2026-06-30"


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the source files, so a test can corrupt one without touching the package."""
    folder = tmp_path_factory.mktemp("source")
    for path in sources.data_dir().iterdir():
        if path.suffix in {".csv", ".zip"}:
            shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, source_dir: Path) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack")
    config = StackConfig.isolated(
        state,
        extra_env={
            "MLP_ETL_SCHEDULE": "none",  # trigger-only, so the only ETL runs are the ones this test starts
            "MLP_BOOTSTRAP_DAYS": "20",
            "MLP_VALIDATION_DAYS": "4",
            "MLP_TEST_DAYS": "4",
            "MLP_FLIGHTS_DATA_DIR": str(source_dir),
        },
    )
    running = Stack(config)
    try:
        running.start()
        running.airflow.wait_for_dags()
        for dag_id in ("features", "train", "deploy", "etl"):
            running.airflow.set_paused(dag_id, False)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def monitor(stack: Stack) -> ChainMonitor:
    return ChainMonitor(stack.airflow)


@pytest.fixture(scope="module")
def first_chain(stack: Stack, monitor: ChainMonitor) -> dict:
    """Trigger etl once and wait for the whole chain (the other tests build on its outcome)."""
    run = stack.airflow.trigger("etl", conf={"date": RUN_DAY})
    etl = monitor.wait_for_run("etl", run["dag_run_id"], timeout=600)
    runs = {"etl": etl}
    for dag_id in ("features", "train", "deploy"):
        runs[dag_id] = monitor.wait_for_success(dag_id, timeout=600)
    return runs


def events(stack: Stack, dag_id: str) -> list[dict]:
    return stack.airflow.request("GET", "/assets/events", params={"source_dag_id": dag_id, "limit": 100})[
        "asset_events"
    ]


def test_chain_runs_on_asset_events(first_chain: dict):
    assert first_chain["etl"]["run_type"] == "manual"
    for dag_id in ("features", "train", "deploy"):
        assert first_chain[dag_id]["run_type"] == "asset_triggered", dag_id
        assert first_chain[dag_id]["state"] == "success", dag_id


def test_clean_data_event_describes_the_partitions(stack: Stack, first_chain: dict):
    (event,) = events(stack, "etl")
    extra = event["extra"]
    assert extra["partitions"][-1] == RUN_DAY
    assert len(extra["partitions"]) == 21  # the run's day and 20 bootstrap days
    assert extra["rows_out"] + extra["rows_quarantined"] == extra["rows_in"] > 15_000
    assert set(extra["content_hashes"]) == set(extra["partitions"])


def test_api_serves_the_new_version(stack: Stack, first_chain: dict):
    (approved,) = events(stack, "train")
    version = str(approved["extra"]["version"])
    assert approved["extra"]["decision"]["promote"] is True
    (served,) = events(stack, "deploy")
    assert served["extra"]["version"] == version
    assert served["extra"]["max_abs_difference"] <= 1e-9

    api = httpx.Client(base_url=stack.config.api_url, headers=stack.api_headers(), timeout=30)
    model = api.get("/model").json()
    assert model["model_version"] == version
    from include.mlpipeline.problem import load_problem

    records = load_problem().canary_records()[:3]
    answer = api.post("/predict", json={"flights": records}).json()
    assert answer["model_version"] == version
    assert len(answer["predictions"]) == 3
    assert httpx.post(f"{stack.config.api_url}/predict", json={"flights": records}).status_code == 401


def test_bad_source_blocks_the_chain(stack: Stack, monitor: ChainMonitor, first_chain: dict, source_dir: Path):
    """A renamed column in the source: the raw gate fails without retry; nothing downstream runs."""
    flights_file = source_dir / "flights.csv.zip"
    original = flights_file.read_bytes()
    flights = pd.read_csv(flights_file)
    flights.rename(columns={"sched_dep_time": "scheduled_departure"}).to_csv(
        flights_file, index=False, compression={"method": "zip", "archive_name": "flights.csv"}
    )
    served_before = httpx.get(f"{stack.config.api_url}/model").json()["model_version"]
    features_runs_before = len(stack.airflow.runs("features"))
    try:
        run = stack.airflow.trigger("etl", conf={"date": "2026-07-01", "bootstrap_days": 0})
        with pytest.raises(RuntimeError, match="failed"):
            monitor.wait_for_run("etl", run["dag_run_id"], timeout=300)
    finally:
        flights_file.write_bytes(original)

    tasks = {t["task_id"]: t for t in stack.airflow.task_instances("etl", run["dag_run_id"]) if t["map_index"] <= 0}
    extract = [t for t in stack.airflow.task_instances("etl", run["dag_run_id"]) if t["task_id"] == "extract"]
    failed = [t for t in extract if t["state"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["try_number"] == 1, "a data error must not be retried"
    assert tasks["publish"]["state"] == "upstream_failed"
    assert len(events(stack, "etl")) == 1, "no asset event for the failed run"
    assert len(stack.airflow.runs("features")) == features_runs_before
    assert httpx.get(f"{stack.config.api_url}/model").json()["model_version"] == served_before

    log = stack.airflow.request(
        "GET",
        f"/dags/etl/dagRuns/{run['dag_run_id']}/taskInstances/extract/logs/1",
        params={"map_index": failed[0]["map_index"], "full_content": True},
        headers={"Accept": "application/json"},
    )
    text = str(log)
    assert "quality gate 'raw_flights' failed" in text
    assert "column_in_dataframe:sched_dep_time" in text


def test_day_without_data_is_a_no_op(stack: Stack, monitor: ChainMonitor, first_chain: dict):
    features_runs_before = len(stack.airflow.runs("features"))
    run = stack.airflow.trigger("etl", conf={"date": "2028-02-29", "bootstrap_days": 0})
    finished = monitor.wait_for_run("etl", run["dag_run_id"], timeout=300)
    assert finished["state"] == "success"
    states = {t["task_id"]: t["state"] for t in stack.airflow.task_instances("etl", run["dag_run_id"])}
    assert states["publish"] == "skipped"
    assert len(events(stack, "etl")) == 1
    assert len(stack.airflow.runs("features")) == features_runs_before
