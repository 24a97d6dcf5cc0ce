"""A real MLflow server with a real registered model, for the API tests, once per example.

Once for all API tests: start ``mlflow server`` (SQLite, temporary folder). Then per example
(``tests.support.examples``: flights, penguins): build a small lake (12 replayed days; the penguin
table), train the baseline and a cheap learner with the pipeline's own code, register the best and
make it champion (without evaluation artifacts: tests/integration/test_registry.py checks those). The
environment changes are undone afterwards, so tests running later in the session see the defaults again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from stack.mlflow_server import running_mlflow_server

from include.mlpipeline.core.settings import Settings
from tests.support.examples import EXAMPLES, Example, example_id
from tests.support.pipeline import environment, replay_and_open_run, small_pipeline


@dataclass
class RegisteredModel:
    tracking_uri: str
    lake_uri: str
    name: str
    version: str
    example: Example

    def settings(self, **overrides: object) -> Settings:
        values = {
            "problem": self.example.module,
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


@pytest.fixture(scope="package", params=EXAMPLES, ids=example_id)
def example(request: pytest.FixtureRequest) -> Example:
    return request.param


@pytest.fixture(scope="package")
def registered_model(
    mlflow_server: str, example: Example, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegisteredModel]:
    from include.mlpipeline.deployment import deploy
    from include.mlpipeline.ml import registry
    from include.mlpipeline.ml.training import train_candidate

    name = f"api_test_{example.name}"
    lake_uri = f"file://{tmp_path_factory.mktemp('lake')}"
    with environment(**small_pipeline(mlflow_server, lake_uri, name, example)):
        window, parent = replay_and_open_run("api tests", example)
        # Without evaluation figures and model cards (the registry tests check those): only the model serves here.
        results = [
            train_candidate(candidate, window, parent, evaluation_artifacts=False)
            for candidate in ("baseline", example.cheap_model)
        ]
        registration = registry.register_best(results, window, parent)
        assert registration["decision"]["promote"], registration["decision"]
        deploy.promote(registration["version"])
        yield RegisteredModel(mlflow_server, lake_uri, name, str(registration["version"]), example)


@pytest.fixture(scope="package")
def problem(example: Example):
    return example.problem


@pytest.fixture
def canaries(example: Example) -> list[dict]:
    return example.canaries()


def lake_dir(model: RegisteredModel) -> Path:
    return Path(model.lake_uri.removeprefix("file://"))
