"""Hot reload under load, on a real uvicorn process, with a real registry, for each example.

Eight client threads send ``/predict`` back to back while the champion alias moves. The store loads
and warms the new version beside the old one and swaps one reference, so: no request fails, every
answer names one of the two versions, each client sees the switch once and for good, and every
request sent after ``/model`` reported the new version is answered by it. The same holds when the
registry goes away in the middle: the API keeps serving what it has, says why it could not check,
and follows the alias again once the registry is back.
"""

from __future__ import annotations

import time

import httpx
import pytest

from include.mlpipeline.deployment import deploy

from .conftest import API_KEY, Traffic, assert_monotonic_switch

CLIENTS = 8
ANSWERS_PER_PHASE = 15  # per client, before and after each switch


@pytest.mark.parametrize("trigger", ["admin_reload", "background_poll"])
def test_champion_switch_under_load(trigger, start_api, registry, example, canaries):
    """promote v2 while 8 clients hammer /predict: zero failures, a clean, monotonic switch per client."""
    registry.set_champion(registry.v1)
    api = start_api(MLP_API_RELOAD_INTERVAL_S="3600" if trigger == "admin_reload" else "0.5")
    api.wait_until_serving(registry.v1)

    with Traffic(api, example.body(canaries[:2]), clients=CLIENTS) as traffic:
        traffic.answered_since(0, ANSWERS_PER_PHASE)
        deploy.promote(registry.v2)
        if trigger == "admin_reload":
            reload = httpx.post(f"{api.url}/admin/reload", headers={"X-API-Key": API_KEY}, timeout=120)
            assert reload.status_code == 200
            assert reload.json() == {"model_version": registry.v2, "error": None}
        info = api.wait_until_serving(registry.v2)
        switched_at = time.monotonic()
        traffic.answered_since(switched_at, ANSWERS_PER_PHASE)

    assert info["last_registry_error"] is None
    assert_monotonic_switch(traffic, registry.v1, registry.v2, switched_at)


def test_registry_outage_during_reload(start_api, registry, mlflow_server, example, canaries):
    """MLflow stops mid-traffic: the API keeps serving, stays ready, reports the error; it recovers
    (picks up a later promotion by itself) once MLflow is back on the same port and backend."""
    registry.set_champion(registry.v2)
    api = start_api(MLP_API_RELOAD_INTERVAL_S="1", MLP_API_REGISTRY_TIMEOUT_S="5")
    api.wait_until_serving(registry.v2)

    try:
        with Traffic(api, example.body(canaries[:2]), clients=CLIENTS) as traffic:
            traffic.answered_since(0, ANSWERS_PER_PHASE)
            mlflow_server.stop()
            outage = time.monotonic()

            reload = httpx.post(f"{api.url}/admin/reload", headers={"X-API-Key": API_KEY}, timeout=120)
            assert reload.status_code == 200
            assert reload.json()["model_version"] == registry.v2  # still the loaded model
            assert reload.json()["error"]  # ... and it says why it could not check
            traffic.answered_since(outage, ANSWERS_PER_PHASE)
            ready = httpx.get(f"{api.url}/ready", timeout=60)
            assert ready.status_code == 200 and ready.json()["model_version"] == registry.v2
            info = api.model()
            assert info["model_version"] == registry.v2
            assert "Connection" in info["last_registry_error"] or "Max retries" in info["last_registry_error"]

            mlflow_server.start()  # same port, same SQLite backend and artifacts
            registry.set_champion(registry.v1)  # a later promotion; the background poll must pick it up
            info = api.wait_until_serving(registry.v1)
            switched_at = time.monotonic()
            traffic.answered_since(switched_at, ANSWERS_PER_PHASE)
    finally:
        if mlflow_server.process is None:  # keep the package's registry up for the tests after this one
            mlflow_server.start()

    assert info["last_registry_error"] is None
    assert httpx.get(f"{api.url}/ready", timeout=60).status_code == 200
    assert_monotonic_switch(traffic, registry.v2, registry.v1, switched_at)
