"""The prediction API against a real MLflow registry, for each example: answers, validation, auth, limits, reload."""

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


def predict(client, example, records, **kwargs):
    return client.post("/predict", json=example.body(records), **kwargs)


def test_health_and_ready(client, registered_model):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "model_version": registered_model.version}
    assert gc.get_freeze_count() > 10_000  # loaded: modules, lookups and model are out of the collector's reach


def test_single_prediction(client, example, canaries, registered_model):
    response = predict(client, example, canaries[:1])
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == registered_model.version
    assert body["model_name"] == registered_model.name
    (prediction,) = body["predictions"]
    example.check_answer(prediction, body.get("threshold"))
    if example.binary:
        assert prediction["label"] == ("delayed" if prediction["positive"] else "on_time")
    else:
        assert "threshold" not in body
    assert prediction["id"] == example.record_id(canaries[0])


def test_batch_keeps_order_and_matches_the_registered_model(client, example, canaries, registered_model, problem):
    """No train/serve skew: the live answers equal the registered model's own predictions."""
    response = predict(client, example, canaries)
    assert response.status_code == 200
    answers = response.json()["predictions"]
    assert [p["id"] for p in answers] == [example.record_id(record) for record in canaries]
    live = [p[example.answer_field] for p in answers]

    mlflow.set_tracking_uri(registered_model.tracking_uri)
    uri = f"models:/{registered_model.name}/{registered_model.version}"
    model = mlflow.sklearn.load_model(uri)
    features = problem.request_features(canaries, problem.load_serving_context())
    expected = example.kind.predict(model, features[problem.feature_columns])
    if example.binary:
        np.testing.assert_allclose(expected, model.predict_proba(features[problem.feature_columns])[:, 1])
    np.testing.assert_allclose(live, expected, rtol=0, atol=1e-12)


def test_the_answer_is_the_documented_response(client, example, canaries):
    """The hand-encoded answer is exactly what /openapi.json documents (extra fields are refused)."""
    response = predict(client, example, canaries)
    (route,) = [route for route in client.app.routes if getattr(route, "path", None) == "/predict"]

    answer = route.response_model.model_validate_json(response.content)

    assert len(answer.predictions) == len(canaries)
    documented = client.get("/openapi.json").json()["components"]["schemas"]
    assert list(documented["Prediction"]["properties"]) == ["id", *example.answer_fields, "variant", "model_version"]
    if example.binary:
        assert list(documented["Prediction"]["properties"]) == [
            "id", "probability", "label", "positive", "variant", "model_version",
        ]  # fmt: skip
        assert "threshold" in documented["PredictResponse"]["required"]
    else:
        assert "threshold" not in documented["PredictResponse"]["properties"]


def test_codes_of_open_sets_never_seen_are_answered(client, example, canaries):
    """A carrier and a destination never seen in training get a probability, not a 500 (documented
    rule); a closed set (an origin, a penguin's island) is an enum, refused (tests/serving/test_fuzz.py)."""
    if example.name != "flights":
        pytest.skip("penguins have no open set of codes: species, island and sex are enums")
    record = {**canaries[0], "carrier": "ZZ", "dest": "XXX", "tailnum": "N0NE"}
    response = predict(client, example, [record])
    assert response.status_code == 200
    assert 0.0 <= response.json()["predictions"][0]["probability"] <= 1.0


INVALID_RECORDS = {
    "flights": {
        "missing-field": (lambda r: r.pop("carrier"), "carrier", "missing"),
        "wrong-type": (lambda r: r.update(distance="far"), "distance", "float_type"),
        "bool-for-a-number": (lambda r: r.update(flight=True), "flight", "int_type"),
        "out-of-range": (lambda r: r.update(month=13), "month", "less_than_equal"),
        "leakage-field": (lambda r: r.update(dep_delay=12.0), "dep_delay", "extra_forbidden"),
        "restated-field": (lambda r: r.update(time_hour="2013-06-14T21:00:00Z"), "time_hour", "extra_forbidden"),
    },
    "penguins": {
        "missing-field": (lambda r: r.pop("species"), "species", "missing"),
        "wrong-type": (lambda r: r.update(flipper_length_mm="long"), "flipper_length_mm", "float_type"),
        "bool-for-a-number": (lambda r: r.update(flipper_length_mm=True), "flipper_length_mm", "float_type"),
        "number-for-a-bool": (lambda r: r.update(clutch_completion=1), "clutch_completion", "bool_type"),
        "out-of-range": (lambda r: r.update(flipper_length_mm=120.0), "flipper_length_mm", "greater_than_equal"),
        "leakage-field": (lambda r: r.update(body_mass_g=3750.0), "body_mass_g", "extra_forbidden"),
        # No field restating another in a penguin request: nothing to send there.
    },
}
CASES = ["missing-field", "wrong-type", "bool-for-a-number", "number-for-a-bool", "out-of-range", "leakage-field"]


@pytest.mark.parametrize("case", [*CASES, "restated-field"])
def test_invalid_record_is_422_naming_the_field(client, example, canaries, case):
    if case not in INVALID_RECORDS[example.name]:
        pytest.skip(f"{example.name} requests have no field for the {case} case")
    mutate, field, error_type = INVALID_RECORDS[example.name][case]
    record = dict(canaries[0])
    mutate(record)
    response = predict(client, example, [record])
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors] == [["body", example.problem.request_key, 0, field]]
    assert errors[0]["type"] == error_type


@pytest.mark.parametrize("body", ["empty-list", "no-key", "not-a-list"])
def test_invalid_envelope_is_422(client, problem, body):
    key = problem.request_key
    bodies = {"empty-list": {key: []}, "no-key": {}, "not-a-list": {key: "x"}}
    response = client.post("/predict", json=bodies[body])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", key]


def test_an_extra_top_level_field_is_422_naming_it(client, example, canaries):
    response = client.post("/predict", json={**example.body(canaries[:1]), "model_version": "2"})
    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body", "model_version"], "extra_forbidden")
    ]


def test_not_json_is_422(client):
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_batch_over_the_limit_is_422(client, example, canaries):
    response = predict(client, example, (canaries * 51)[:51])
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_long"


def test_oversized_body_is_413(client, problem, canaries):
    padding = "x" * 70_000
    response = client.post(
        "/predict",
        content=json.dumps({problem.request_key: canaries, "pad": padding}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("headers", [{"X-API-Key": ""}, {"X-API-Key": "wrong"}], ids=["empty", "wrong"])
def test_api_key_required(client, example, canaries, headers):
    assert predict(client, example, canaries[:1], headers=headers).status_code == 401
    assert client.post("/admin/reload", headers=headers).status_code == 401


def test_api_key_missing(registered_model, example, canaries):
    app = create_app(registered_model.settings(api_key=API_KEY))
    with TestClient(app) as anonymous:
        wait_until_ready(anonymous)
        assert predict(anonymous, example, canaries[:1]).status_code == 401
        assert anonymous.get("/health").status_code == 200


def test_model_lineage(client, example, registered_model):
    info = client.get("/model").json()
    assert info["model_version"] == registered_model.version
    assert info["model_name"] == registered_model.name
    assert len(info["data_version"]) == 16
    assert info["run_id"]
    if example.binary:
        assert 0 < info["threshold"] < 1
        assert (info["task"], info["classes"]) == ("binary", [0, 1])
    else:
        assert info["threshold"] is None
        assert (info["task"], info["classes"]) == (example.problem.task, None)
    assert info["metrics"][f"test_{example.primary_metric}"] > example.constant_score  # flights: test_roc_auc > 0.5
    assert info["params"]["window_start"] == example.days[0]  # flights: 2013-06-01
    assert info["tags"]["candidate"] == example.cheap_model


def test_model_names_its_verified_scoring_form(client, example, canaries):
    """The registered pipeline is served as array code, checked at load against its own answers on the
    canaries, the registered validation rows and probes of every category (see compiled_model.py)."""
    scoring = client.get("/model").json()["scoring"]

    assert scoring["form"] == "arrays, estimator linear folded into the encodings", (
        scoring
    )  # logistic regression, ridge
    assert scoring["max_difference"] <= scoring["tolerance"] == 1e-6
    assert scoring["rows_checked"] > len(canaries) + 5  # + the 5 registered validation rows + probes
    assert scoring["reason"] is None
    features = "arrays" if example.name == "flights" else "frames"  # penguins have no request_feature_arrays
    assert scoring["features"] == features, scoring["features_reason"]


def test_metrics_exposed(client, example, canaries, registered_model):
    predict(client, example, canaries[:2])
    text = client.get("/metrics").text
    assert 'mlp_api_requests_total{path="/predict",status="200"}' in text
    assert f'mlp_api_model_served{{model_version="{registered_model.version}",variant="champion"}} 1.0' in text
    assert 'variant="champion"' in text and "mlp_api_predictions_total" in text
    passes = next(line for line in text.splitlines() if line.startswith("mlp_api_scoring_pass_requests_count"))
    assert float(passes.split()[-1]) >= 1


def test_registry_unreachable_at_start(example, canaries, monkeypatch):
    """The service starts without a registry, says it is not ready, and refuses predictions with 503."""
    from include.mlpipeline.core.settings import Settings

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    app = create_app(
        Settings(
            problem=example.module,
            mlflow_tracking_uri="http://127.0.0.1:9",
            registered_model_name="nothing",
            api_reload_interval_s=3600,
        )
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
        assert predict(offline, example, canaries[:1]).status_code == 503


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
