"""A real MLflow server with a real registered model, for the API tests.

Once for all API tests: start ``mlflow server`` (SQLite, temporary folder), build a small lake
from the replay (12 days), train two cheap candidates with the pipeline's own code, register the
best and make it champion. The environment changes are undone afterwards, so tests running
later in the session see the defaults again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from stack.mlflow_server import running_mlflow_server

from include.mlpipeline.core.settings import Settings
from tests.support.pipeline import environment, replay_and_open_run, small_pipeline

MODEL_NAME = "api_test_model"


@dataclass
class RegisteredModel:
    tracking_uri: str
    lake_uri: str
    name: str
    version: str

    def settings(self, **overrides: object) -> Settings:
        values = {
            "mlflow_tracking_uri": self.tracking_uri,
            "lake_uri": self.lake_uri,
            "registered_model_name": self.name,
            "api_reload_interval_s": 3600.0,  # tests reload explicitly
            **overrides,
        }
        return Settings(**values)


@pytest.fixture(scope="package")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="package")
def registered_model(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisteredModel]:
    from include.mlpipeline.deployment import deploy
    from include.mlpipeline.ml import registry
    from include.mlpipeline.ml.training import train_candidate

    lake_uri = f"file://{tmp_path_factory.mktemp('lake')}"
    with environment(**small_pipeline(mlflow_server, lake_uri, MODEL_NAME)):
        window, parent = replay_and_open_run("api tests")
        results = [train_candidate(name, window, parent) for name in ("baseline", "logistic_regression")]
        registration = registry.register_best(results, window, parent)
        assert registration["decision"]["promote"], registration["decision"]
        deploy.promote(registration["version"])
        yield RegisteredModel(mlflow_server, lake_uri, MODEL_NAME, str(registration["version"]))


@pytest.fixture(scope="package")
def problem():
    from include.mlpipeline.core.problem import load_problem

    return load_problem()


@pytest.fixture
def flights(problem) -> list[dict]:
    return problem.canary_records()


def lake_dir(model: RegisteredModel) -> Path:
    return Path(model.lake_uri.removeprefix("file://"))
