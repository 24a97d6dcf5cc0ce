"""The prediction API against a real MLflow registry: answers, validation, auth, limits, reload."""

from __future__ import annotations

import gc
import json
import os
import time

import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from include.mlpipeline.serving.app import create_app

API_KEY = "test-key-123"


@pytest.fixture(scope="module")
def client(registered_model):
    app = create_app(registered_model.settings(api_key=API_KEY, api_max_batch=50, api_max_body_bytes=64_000))
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        wait_until_ready(test_client)
        yield test_client


def wait_until_ready(client, timeout: float = 120) -> dict:
    """The model loads in the background after startup; wait for /ready (no blind sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return response.json()
        time.sleep(0.2)
    raise TimeoutError(f"API not ready after {timeout}s: {response.json()}")


def predict(client, records, **kwargs):
    return client.post("/predict", json={"flights": records}, **kwargs)


def test_health_and_ready(client, registered_model):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "model_version": registered_model.version}
    assert gc.get_freeze_count() > 10_000  # loaded: modules, lookups and model are out of the collector's reach


def test_single_prediction(client, flights, registered_model):
    response = predict(client, flights[:1])
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == registered_model.version
    assert body["model_name"] == registered_model.name
    (prediction,) = body["predictions"]
    assert 0.0 <= prediction["probability"] <= 1.0
    assert prediction["positive"] == (prediction["probability"] >= body["threshold"])
    assert prediction["label"] == ("delayed" if prediction["positive"] else "on_time")
    first = flights[0]
    day = f"{first['year']}-{first['month']:02d}-{first['day']:02d}"
    assert prediction["id"] == f"{day}_{first['carrier']}_{first['flight']}_{first['origin']}"


def test_batch_keeps_order_and_matches_the_registered_model(client, flights, registered_model, problem):
    """No train/serve skew: the live answers equal the registered model's own predictions."""
    response = predict(client, flights)
    assert response.status_code == 200
    live = [p["probability"] for p in response.json()["predictions"]]
    assert len(live) == len(flights)

    mlflow.set_tracking_uri(registered_model.tracking_uri)
    uri = f"models:/{registered_model.name}/{registered_model.version}"
    model = mlflow.sklearn.load_model(uri)
    features = problem.request_features(flights, problem.load_serving_context())
    expected = model.predict_proba(features[problem.feature_columns])[:, 1]
    np.testing.assert_allclose(live, expected, rtol=0, atol=1e-12)


def test_the_answer_is_the_documented_response(client, flights):
    """The hand-encoded answer is exactly what /openapi.json documents (extra fields are refused)."""
    response = predict(client, flights)
    (route,) = [route for route in client.app.routes if getattr(route, "path", None) == "/predict"]

    answer = route.response_model.model_validate_json(response.content)

    assert len(answer.predictions) == len(flights)
    documented = client.get("/openapi.json").json()["components"]["schemas"]
    assert list(documented["Prediction"]["properties"]) == [
        "id", "probability", "label", "positive", "variant", "model_version",
    ]  # fmt: skip
    assert "threshold" in documented["PredictResponse"]["required"]


def test_unknown_categories_are_answered(client, flights):
    """A carrier and airports never seen in training get a probability, not a 500 (documented rule)."""
    record = {**flights[0], "carrier": "ZZ", "origin": "QQQ", "dest": "XXX", "tailnum": "N0NE"}
    response = predict(client, [record])
    assert response.status_code == 200
    assert 0.0 <= response.json()["predictions"][0]["probability"] <= 1.0


@pytest.mark.parametrize(
    ("mutate", "location", "error_type"),
    [
        (lambda r: r.pop("carrier"), ["body", "flights", 0, "carrier"], "missing"),
        (lambda r: r.update(distance="far"), ["body", "flights", 0, "distance"], "float_parsing"),
        (lambda r: r.update(month=13), ["body", "flights", 0, "month"], "less_than_equal"),
        (lambda r: r.update(dep_delay=12.0), ["body", "flights", 0, "dep_delay"], "extra_forbidden"),
        (lambda r: r.update(time_hour="yesterday"), ["body", "flights", 0, "time_hour"], "datetime_from_date_parsing"),
    ],
    ids=["missing-field", "wrong-type", "out-of-range", "leakage-field", "bad-timestamp"],
)
def test_invalid_record_is_422_naming_the_field(client, flights, mutate, location, error_type):
    record = dict(flights[0])
    mutate(record)
    response = predict(client, [record])
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [location]
    assert errors[0]["type"] == error_type


@pytest.mark.parametrize(
    ("body", "location"),
    [({"flights": []}, ["body", "flights"]), ({}, ["body", "flights"]), ({"flights": "x"}, ["body", "flights"])],
    ids=["empty-list", "no-key", "not-a-list"],
)
def test_invalid_envelope_is_422(client, body, location):
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_not_json_is_422(client):
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_batch_over_the_limit_is_422(client, flights):
    response = predict(client, (flights * 7)[:51])
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"


def test_oversized_body_is_413(client, flights):
    padding = "x" * 70_000
    response = client.post(
        "/predict",
        content=json.dumps({"flights": flights, "pad": padding}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("headers", [{"X-API-Key": ""}, {"X-API-Key": "wrong"}], ids=["empty", "wrong"])
def test_api_key_required(client, flights, headers):
    assert predict(client, flights[:1], headers=headers).status_code == 401
    assert client.post("/admin/reload", headers=headers).status_code == 401


def test_api_key_missing(registered_model, flights):
    app = create_app(registered_model.settings(api_key=API_KEY))
    with TestClient(app) as anonymous:
        wait_until_ready(anonymous)
        assert predict(anonymous, flights[:1]).status_code == 401
        assert anonymous.get("/health").status_code == 200


def test_model_lineage(client, registered_model):
    info = client.get("/model").json()
    assert info["model_version"] == registered_model.version
    assert info["model_name"] == registered_model.name
    assert len(info["data_version"]) == 16
    assert info["run_id"]
    assert 0 < info["threshold"] < 1
    assert (info["task"], info["classes"]) == ("binary", [0, 1])
    assert info["metrics"]["test_roc_auc"] > 0.5
    assert info["params"]["window_start"] == "2013-06-01"
    assert info["tags"]["candidate"] == "logistic_regression"


def test_metrics_exposed(client, flights, registered_model):
    predict(client, flights[:2])
    text = client.get("/metrics").text
    assert 'mlp_api_requests_total{path="/predict",status="200"}' in text
    assert f'mlp_api_model_served{{model_version="{registered_model.version}",variant="champion"}} 1.0' in text
    assert 'variant="champion"' in text and "mlp_api_predictions_total" in text
    passes = next(line for line in text.splitlines() if line.startswith("mlp_api_scoring_pass_requests_count"))
    assert float(passes.split()[-1]) >= 1


def test_registry_unreachable_at_start(flights, monkeypatch):
    """The service starts without a registry, says it is not ready, and refuses predictions with 503."""
    from include.mlpipeline.core.settings import Settings

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    app = create_app(
        Settings(mlflow_tracking_uri="http://127.0.0.1:9", registered_model_name="nothing", api_reload_interval_s=3600)
    )
    with TestClient(app) as offline:
        assert offline.get("/health").status_code == 200
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and set(blas) == {1}  # MLP_API_NATIVE_THREADS
        assert "OMP_NUM_THREADS" not in os.environ  # read by OpenMP, not left for processes started later
        store = offline.app.state.store
        deadline = time.monotonic() + 60
        while store.last_error is None and time.monotonic() < deadline:  # the first load attempt fails
            time.sleep(0.2)
        assert "ConnectionError" in (store.last_error or "") or "Max retries" in (store.last_error or "")
        ready = offline.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert predict(offline, flights[:1]).status_code == 503


def test_no_champion_yet_is_not_ready(registered_model):
    app = create_app(registered_model.settings(registered_model_name="never_registered"))
    with TestClient(app) as empty:
        store = empty.app.state.store
        deadline = time.monotonic() + 60
        while store.last_check is None and time.monotonic() < deadline:
            time.sleep(0.2)
        ready = empty.get("/ready")
        assert ready.status_code == 503
        assert "no alias" in ready.json()["reason"] or "RESOURCE_DOES_NOT_EXIST" in ready.json()["reason"]
