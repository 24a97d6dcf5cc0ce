"""A/B testing end to end on a real API process, for each example: split traffic, log it, join outcomes,
decide, log the decision.

A second version (a different model family) is registered as ``challenger``; the API runs as a real
uvicorn process with half the traffic going to it; the lake's days (flights: the last 6 replayed
days; penguins: its one load) are sent as live traffic by the pipeline's own traffic replay; the A/B
evaluation then joins the logged predictions with the outcomes in the feature partitions (the labels;
the body masses) and logs its decision to MLflow: per-prediction log loss for flights, squared error
for penguins.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from mlflow import MlflowClient
from stack.config import ROOT
from stack.processes import free_port, wait_for_http

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.etl import CLEAN
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.monitoring import live_outcomes
from include.mlpipeline.serving.prediction_log import PREDICTIONS
from tests.support.examples import Example

from .conftest import RegisteredModel

API_KEY = "ab-test-key"
RECORDS_PER_DAY_OVER = {"flights": 500, "penguins": 300}  # a June day's flights; the table's clean birds
# Scored predictions each variant needs: 342 penguins split in two give about 170 a variant.
MIN_SAMPLES = {"flights": 200, "penguins": 100}
STATISTIC = {"binary": "log loss", "regression": "squared error"}


def traffic_days(example: Example) -> list[str]:
    return list(example.days[-6:])


@pytest.fixture(scope="module")
def challenger(registered_model: RegisteredModel) -> str:
    """Version 2: a model of another family (gradient boosting) on the same window, registered as challenger."""
    from include.mlpipeline.ml import registry, tracking
    from include.mlpipeline.ml.training import train_candidate
    from include.mlpipeline.ml.window import select_window

    window = select_window().to_dict()
    parent = tracking.start_parent_run(window, run_name="ab challenger")
    other = registered_model.example.other_model
    results = [train_candidate(name, window, parent, evaluation_artifacts=False) for name in ("baseline", other)]
    registration = registry.register_best(results, window, parent)
    assert registry.alias_version("challenger", registered_model.name) == str(registration["version"])
    assert registry.alias_version("champion", registered_model.name) == registered_model.version
    return str(registration["version"])


@pytest.fixture(scope="module")
def ab_api(registered_model: RegisteredModel, challenger: str, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLP_API_KEY": API_KEY,
        "MLP_AB_CHALLENGER_SHARE": "0.5",
        "MLP_PREDICTION_LOG_FLUSH_S": "0.5",
        "MLP_API_RELOAD_INTERVAL_S": "3600",
    }
    log = (tmp_path_factory.mktemp("api") / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "include.mlpipeline.serving.app:create_app",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/ready", timeout=120, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def traffic(ab_api: str, registered_model: RegisteredModel, monkeypatch_module) -> dict:
    """The pipeline's traffic replay, pointed at the A/B API."""
    from include.mlpipeline.deployment import traffic as replay

    monkeypatch_module.setenv("MLP_API_URL", ab_api)
    monkeypatch_module.setenv("MLP_API_KEY", API_KEY)
    get_settings.cache_clear()
    return replay.replay_days(traffic_days(registered_model.example))


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch
    get_settings.cache_clear()


def test_model_endpoint_shows_both_variants(ab_api: str, registered_model: RegisteredModel, challenger: str):
    info = httpx.get(f"{ab_api}/model").json()
    assert info["model_version"] == registered_model.version
    assert info["challenger"]["model_version"] == challenger
    assert info["ab_challenger_share"] == 0.5


def test_traffic_is_split_and_sticky(
    ab_api: str, registered_model: RegisteredModel, example: Example, traffic: dict, challenger: str
):
    lake = Lake(registered_model.lake_uri)
    for day in traffic_days(example):
        counts = traffic[day]
        assert counts["records"] == len(lake.read(CLEAN, day)) > RECORDS_PER_DAY_OVER[example.name]
        assert 0.35 < counts["challenger"] / counts["records"] < 0.65
    records = example.canaries()
    headers = {"X-API-Key": API_KEY}
    first = httpx.post(f"{ab_api}/predict", json=example.body(records), headers=headers).json()["predictions"]
    again = httpx.post(f"{ab_api}/predict", json=example.body(records[::-1]), headers=headers).json()["predictions"]
    assert {p["id"]: p["variant"] for p in first} == {p["id"]: p["variant"] for p in again}
    for prediction in first:
        assert prediction["model_version"] == (challenger if prediction["variant"] == "challenger" else "1")


def test_forced_variant(ab_api: str, example: Example, challenger: str):
    records = example.canaries()
    for variant, version in (("champion", "1"), ("challenger", challenger)):
        answer = httpx.post(
            f"{ab_api}/predict", json=example.body(records), headers={"X-API-Key": API_KEY, "X-Model-Variant": variant}
        ).json()
        assert {p["model_version"] for p in answer["predictions"]} == {version}


def test_predictions_are_logged_to_the_lake(registered_model: RegisteredModel, example: Example, traffic: dict):
    lake = Lake(registered_model.lake_uri)
    expected = sum(c["records"] for c in traffic.values())
    deadline = time.monotonic() + 30
    logged = lake.read_appended(PREDICTIONS, [time.strftime("%Y-%m-%d", time.gmtime())])
    while len(logged) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        logged = lake.read_appended(PREDICTIONS, [time.strftime("%Y-%m-%d", time.gmtime())])
    assert len(logged) >= expected
    assert set(logged["variant"]) == {"champion", "challenger"}
    for column in (
        "request_id",
        "ts",
        "id",
        "model_version",
        "features_hash",
        "probability",
        "latency_ms",
        *(f"f_{feature}" for feature in example.problem.feature_columns),  # flights: f_distance among them
    ):
        assert column in logged.columns
    assert logged[example.answer_field].notna().all()  # flights: the probability; penguins: the value


FEEDBACK_ID = {"flights": "2013-06-12_UA_1_EWR", "penguins": "PAL0708-Adelie-1"}  # a record in the lake


def test_feedback_is_stored(ab_api: str, example: Example):
    valid, invalid = example.outcomes  # flights: 1 and 2; penguins: a mass in grams and a text
    response = httpx.post(
        f"{ab_api}/feedback",
        json={"outcomes": [{"id": FEEDBACK_ID[example.name], "outcome": valid}]},
        headers={"X-API-Key": API_KEY},
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert (
        httpx.post(
            f"{ab_api}/feedback", json={"outcomes": [{"id": "x", "outcome": invalid}]}, headers={"X-API-Key": API_KEY}
        ).status_code
        == 422
    )
    assert httpx.post(f"{ab_api}/feedback", json={"outcomes": [{"id": "x", "outcome": valid}]}).status_code == 401


def test_ab_evaluation_logs_a_decision(
    registered_model: RegisteredModel,
    example: Example,
    traffic: dict,
    challenger: str,
    monkeypatch_module: pytest.MonkeyPatch,
):
    from include.mlpipeline.deployment import abtest

    min_samples = MIN_SAMPLES[example.name]
    monkeypatch_module.setenv("MLP_AB_MIN_SAMPLES", str(min_samples))
    get_settings.cache_clear()
    lake = Lake(registered_model.lake_uri)
    deadline = time.monotonic() + 30
    while live_outcomes.recent_days(lake, 14) == [] and time.monotonic() < deadline:
        time.sleep(0.5)
    result = abtest.evaluate_ab()
    assert result["decision"] in {"challenger_wins", "champion_better", "no_significant_difference"}
    assert result["champion_version"] == "1" and result["challenger_version"] == challenger
    champion, candidate = result["variants"]["champion"], result["variants"]["challenger"]
    assert champion["predictions"] >= min_samples and candidate["predictions"] >= min_samples
    assert result["test"] == f"one-sided Welch t-test on per-prediction {STATISTIC[example.problem.task]}"
    assert 0 < result["p_value"] < 1
    assert result["promote"] == (result["decision"] == "challenger_wins")
    if result["promote"]:
        assert result["version"] == challenger

    client = MlflowClient(registered_model.tracking_uri)
    experiment = client.get_experiment_by_name(f"{registered_model.name}-ab-tests")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["decision"] == result["decision"]
    assert run.data.metrics["p_value"] == pytest.approx(result["p_value"])
