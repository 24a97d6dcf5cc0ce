"""The deploy safety net against a real API process and a real registry, for each example.

A good version passes (the live canary answers equal the registered model's own); a version the API
cannot serve fails the deploy with the reason, the champion alias goes back to the previous version
and the API never stops serving it; the manual rollback command serves an earlier version again.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import mlflow
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from stack.config import ROOT

from include.mlpipeline.deployment import deploy

from .conftest import API_KEY


class ConstantModel(mlflow.pyfunc.PythonModel):
    """A valid MLflow model, but no sklearn model: the API (which loads the sklearn flavor) cannot serve it."""

    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


@pytest.fixture(scope="module")
def unservable(registry) -> dict[str, str]:
    """Two registered versions the API cannot serve, by kind, with the reason the API gives."""
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_experiment(registry.name)
    requirements = ["scikit-learn", "pandas", "cloudpickle"]  # pinned, so logging starts no inference subprocess
    with mlflow.start_run(run_name="not an sklearn model"):
        pyfunc = mlflow.pyfunc.log_model(
            name="model",
            python_model=ConstantModel(),
            pip_requirements=requirements,
            registered_model_name=registry.name,
        )
    other = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    # A model of the problem's own kind, so only its features are wrong.
    model = LogisticRegression() if registry.example.kind.classifier else LinearRegression()
    with mlflow.start_run(run_name="other features"):
        mismatch = mlflow.sklearn.log_model(
            model.fit(other, [0, 1, 0, 1]),
            name="model",
            pip_requirements=requirements,
            registered_model_name=registry.name,
        )
    return {
        "not_sklearn": str(pyfunc.registered_model_version),
        "wrong_features": str(mismatch.registered_model_version),
    }


REASONS = {"not_sklearn": 'does not have the "sklearn" flavor', "wrong_features": "feature names"}


@pytest.fixture(scope="module")
def api(start_api, registry):
    registry.set_champion(registry.v1)
    return start_api()


@pytest.fixture
def live(api, deploy_env):
    """The API, with the pipeline's settings (deploy, registry) pointed at it."""
    deploy_env(api)
    return api


def predict_version(api, example, records) -> str:
    response = httpx.post(f"{api.url}/predict", json=example.body(records), headers={"X-API-Key": API_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def test_good_deploy_passes(live, registry, canaries):
    api = live
    api.serve(registry, registry.v1)

    promoted = deploy.promote(registry.v2)
    assert promoted == {"version": registry.v2, "previous": registry.v1}
    result = deploy.verify_or_roll_back(registry.v2, promoted["previous"])

    assert result["version"] == registry.v2
    assert result["canaries"] == len(canaries)
    assert result["max_abs_difference"] <= deploy.PREDICTION_TOLERANCE
    assert registry.champion() == registry.v2
    assert api.model()["model_version"] == registry.v2
    assert predict_version(api, registry.example, canaries) == registry.v2


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_unservable_version_is_rolled_back(kind, unservable, live, registry, canaries):
    api = live
    api.serve(registry, registry.v1)
    bad = unservable[kind]

    promoted = deploy.promote(bad)
    assert registry.champion() == bad
    with pytest.raises(deploy.DeployError) as failure:
        deploy.verify_or_roll_back(bad, promoted["previous"])

    message = str(failure.value)
    assert f"deploy of version {bad} rolled back to {registry.v1}; the API is reloading it" in message
    assert f"did not serve version {bad}" in message
    assert REASONS[kind] in message  # the API's own reason, from /model's last_registry_error
    assert registry.champion() == registry.v1
    info = api.model()
    assert info["model_version"] == registry.v1
    assert info["last_registry_error"] is None  # the rollback's reload found the alias back on v1
    assert predict_version(api, registry.example, canaries) == registry.v1


def rollback_cli(api, registry, version: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLP_PROBLEM": registry.example.module,
        "MLP_MLFLOW_TRACKING_URI": registry.tracking_uri,
        "MLP_REGISTERED_MODEL_NAME": registry.name,
        "MLP_API_URL": api.url,
        "MLP_API_KEY": API_KEY,
        "MLP_DEPLOY_TIMEOUT_S": "60",
    }
    return subprocess.run(
        [sys.executable, "-m", "include.mlpipeline.deployment.deploy", "rollback", "--to", version],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_manual_rollback_command(api, registry, canaries):
    api.serve(registry, registry.v2)

    result = rollback_cli(api, registry, registry.v1)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "smoke test passed" in result.stderr
    assert registry.champion() == registry.v1
    assert api.model()["model_version"] == registry.v1
    assert predict_version(api, registry.example, canaries) == registry.v1


def test_manual_rollback_to_an_unknown_version_changes_nothing(api, registry, canaries):
    api.serve(registry, registry.v1)

    result = rollback_cli(api, registry, "999")

    assert result.returncode != 0
    assert "999" in result.stderr
    assert registry.champion() == registry.v1
    assert predict_version(api, registry.example, canaries) == registry.v1
