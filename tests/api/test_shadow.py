"""Shadow mode on the real app, for each example: the challenger scores every request off the response
path, its answers are logged beside the champion's, and a slow or failing challenger never changes or
holds up the answer (its work is dropped and counted).

A second version (another model family) is registered as ``challenger`` on the real MLflow server; the
app runs in-process with ``MLP_SHADOW_ENABLED`` and the real model store, scoring pass and prediction
log. For the slow and failing cases the served challenger's pipeline is wrapped so it waits on an event
or raises: the answer must still come (no timing assertion: it comes while the shadow is blocked).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from include.mlpipeline.serving.app import create_app
from include.mlpipeline.serving.model_store import LoadedModel
from include.mlpipeline.serving.prediction_log import PREDICTIONS
from tests.support.examples import Example

from .conftest import RegisteredModel, lake_dir
from .test_api import wait_until_ready

API_KEY = "shadow-key"


class GatedPipeline:
    """The challenger's real pipeline behind a gate: each call waits for ``gate`` (or raises ``error``)."""

    def __init__(self, pipeline: Any, gate: threading.Event | None = None, error: Exception | None = None):
        self.pipeline, self.gate, self.error = pipeline, gate, error
        self.entered = threading.Event()

    def _wait(self) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(60)
        if self.error is not None:
            raise self.error

    def predict_proba(self, features: Any) -> Any:
        self._wait()
        return self.pipeline.predict_proba(features)

    def predict(self, features: Any) -> Any:
        self._wait()
        return self.pipeline.predict(features)


@pytest.fixture(scope="module")
def challenger(registered_model: RegisteredModel) -> str:
    """A model of another family on the same window, registered as challenger."""
    from include.mlpipeline.ml import registry, tracking
    from include.mlpipeline.ml.training import train_candidate
    from include.mlpipeline.ml.window import select_window

    window = select_window().to_dict()
    parent = tracking.start_parent_run(window, run_name="shadow challenger")
    other = registered_model.example.other_model
    results = [train_candidate(name, window, parent, evaluation_artifacts=False) for name in ("baseline", other)]
    version = str(registry.register_best(results, window, parent)["version"])
    assert registry.alias_version("challenger", registered_model.name) == version
    return version


@pytest.fixture
def shadow_client(registered_model: RegisteredModel, challenger: str, request) -> Iterator[TestClient]:
    overrides = {"shadow_enabled": True, "api_key": API_KEY, "prediction_log_flush_s": 3600.0}
    overrides.update(getattr(request, "param", {}))
    with TestClient(create_app(registered_model.settings(**overrides)), headers={"X-API-Key": API_KEY}) as client:
        wait_until_ready(client)
        deadline = time.monotonic() + 60
        while client.app.state.store.challenger is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.app.state.store.challenger.version == challenger
        yield client


def metric(client: TestClient, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def wait_for(client: TestClient, name: str, at_least: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while (value := metric(client, name)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def logged(client: TestClient, registered_model: RegisteredModel) -> pd.DataFrame:
    from include.mlpipeline.data.lake import Lake

    client.app.state.prediction_log.flush()
    today = pd.Timestamp.now("UTC").date()
    return Lake(f"file://{lake_dir(registered_model)}").read_appended(PREDICTIONS, [today])


def answers(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def gate_challenger(client: TestClient, pipeline: GatedPipeline) -> None:
    """Serve the challenger through ``pipeline`` (its uncompiled form, so every call reaches it)."""
    store = client.app.state.store
    model: LoadedModel = store.challenger
    store.challenger = dataclasses.replace(model, pipeline=pipeline, scoring=None)


def test_shadow_logs_both_and_answers_with_the_champion(
    shadow_client: TestClient, registered_model: RegisteredModel, example: Example, challenger: str
):
    records = example.canaries()
    served = answers(shadow_client.post("/predict", json=example.body(records), headers={"X-Request-Id": "shadow-1"}))
    assert {p["variant"] for p in served} == {"champion"}
    assert {p["model_version"] for p in served} == {registered_model.version}
    assert wait_for(shadow_client, "mlp_api_shadow_scored_total", len(records)) == len(records)

    log = logged(shadow_client, registered_model)
    mine = log[log["request_id"] == "shadow-1"]
    champion, shadow = mine[mine["variant"] == "champion"], mine[mine["variant"] == "shadow"]
    assert len(champion) == len(shadow) == len(records)
    assert set(shadow["model_version"]) == {challenger}
    assert sorted(shadow["id"]) == sorted(champion["id"]) == sorted(p["id"] for p in served)
    answer = "value" if example.problem.task == "regression" else "probability"
    by_id = champion.set_index("id")[answer]
    assert [by_id[p["id"]] for p in served] == pytest.approx([p[answer] for p in served])
    # The shadow is another model: its answers are its own, not the champion's copied.
    assert not shadow.set_index("id")[answer].loc[by_id.index].equals(by_id)

    # A retry under the same request id logs neither answer again.
    shadow_client.post("/predict", json=example.body(records), headers={"X-Request-Id": "shadow-1"})
    wait_for(shadow_client, "mlp_api_shadow_scored_total", 2 * len(records))
    again = logged(shadow_client, registered_model)
    assert len(again[again["request_id"] == "shadow-1"]) == 2 * len(records)


@pytest.mark.parametrize("shadow_client", [{"shadow_queue_size": 1, "shadow_max_age_s": 600.0}], indirect=True)
def test_a_blocked_challenger_never_holds_the_answer_and_drops_are_counted(
    shadow_client: TestClient, registered_model: RegisteredModel, example: Example
):
    records = example.canaries()
    expected = answers(shadow_client.post("/predict", json=example.body(records)))
    wait_for(shadow_client, "mlp_api_shadow_scored_total", len(records))
    gate = threading.Event()
    blocked = GatedPipeline(shadow_client.app.state.store.challenger.pipeline, gate=gate)
    gate_challenger(shadow_client, blocked)
    try:
        first = answers(shadow_client.post("/predict", json=example.body(records)))
        assert blocked.entered.wait(30)  # the worker now holds this pass, blocked
        # The shadow is blocked, and every answer still comes, the champion's, unchanged.
        later = [answers(shadow_client.post("/predict", json=example.body(records))) for _ in range(3)]
        assert not gate.is_set()
        for served in (first, *later):
            assert served == expected
        # One pass is held, one waits in the queue of 1: the other two were dropped and counted.
        assert metric(shadow_client, "mlp_api_shadow_dropped_total", reason="queue_full") == 2 * len(records)
    finally:
        gate.set()
    assert wait_for(shadow_client, "mlp_api_shadow_scored_total", 3 * len(records)) == 3 * len(records)


@pytest.mark.parametrize("shadow_client", [{"shadow_max_age_s": 0.2}], indirect=True)
def test_late_or_failing_shadow_work_is_counted_never_raised(
    shadow_client: TestClient, registered_model: RegisteredModel, example: Example
):
    records = example.canaries()
    expected = answers(shadow_client.post("/predict", json=example.body(records)))
    wait_for(shadow_client, "mlp_api_shadow_scored_total", len(records))
    real = shadow_client.app.state.store.challenger.pipeline
    gate = threading.Event()
    blocked = GatedPipeline(real, gate=gate)
    gate_challenger(shadow_client, blocked)
    try:
        assert answers(shadow_client.post("/predict", json=example.body(records))) == expected
        assert blocked.entered.wait(30)
        assert answers(shadow_client.post("/predict", json=example.body(records), headers={"X-Request-Id": "late"}))
        time.sleep(0.3)  # the queued pass grows older than MLP_SHADOW_MAX_AGE_S while the worker is held
    finally:
        gate.set()
    assert wait_for(shadow_client, "mlp_api_shadow_dropped_total", len(records)) == len(records)
    assert metric(shadow_client, "mlp_api_shadow_dropped_total", reason="stale") == len(records)

    gate_challenger(shadow_client, GatedPipeline(real, error=RuntimeError("challenger broke")))
    served = answers(shadow_client.post("/predict", json=example.body(records), headers={"X-Request-Id": "broke"}))
    assert served == expected
    assert wait_for(shadow_client, "mlp_api_shadow_errors_total", len(records)) == len(records)
    log = logged(shadow_client, registered_model)
    for request in ("late", "broke"):
        assert len(log[(log["request_id"] == request) & (log["variant"] == "champion")]) == len(records)
        assert not len(log[(log["request_id"] == request) & (log["variant"] == "shadow")])


def test_the_daily_report_is_logged_to_mlflow(
    shadow_client: TestClient, registered_model: RegisteredModel, example: Example, challenger: str
):
    from mlflow import MlflowClient

    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.deployment.shadow_test import evaluate_shadow

    records = example.canaries()
    answers(shadow_client.post("/predict", json=example.body(records), headers={"X-Request-Id": "report-1"}))
    wait_for(shadow_client, "mlp_api_shadow_scored_total", len(records))
    logged(shadow_client, registered_model)  # flushed

    settings = registered_model.settings(shadow_enabled=True, ab_min_samples=10_000)
    result = evaluate_shadow(lake=Lake(registered_model.lake_uri), settings=settings)

    report = result["report"]
    assert (report["champion_version"], report["shadow_version"]) == (registered_model.version, challenger)
    assert report["agreement"]["pairs"] >= len(records)
    assert result["decision"] == "insufficient_data" and not result["promote"]
    client = MlflowClient(registered_model.tracking_uri)
    experiment = client.get_experiment_by_name(f"{registered_model.name}-shadow")
    (run,) = client.search_runs([experiment.experiment_id], max_results=1, order_by=["start_time DESC"])
    assert run.data.tags["decision"] == "insufficient_data"
    assert run.data.metrics["agreement_pairs"] == report["agreement"]["pairs"]
