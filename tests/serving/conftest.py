"""Real parts for the serving tests: an MLflow server that can be stopped and restarted, two real
registered versions, and the prediction API as a real uvicorn process, for each example.

Once for the package: start ``mlflow server`` (SQLite, temporary folder). Then per example
(``tests.support.examples``: flights, penguins): build a small lake (12 replayed days; the penguin
table), and register two versions with the pipeline's own code: version A (a cheap learner: logistic
regression, ridge; made champion) and version B (gradient boosting, a different model family, so the
two versions really answer differently). Tests move the champion alias themselves and start their
own API processes; the environment changes are undone afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from stack.config import ROOT
from stack.mlflow_server import mlflow_server_command
from stack.processes import free_port, stop_process_group, wait_for_http

from include.mlpipeline.core.settings import get_settings
from tests.support.examples import EXAMPLES, Example, example_id
from tests.support.pipeline import environment, replay_and_open_run, small_pipeline

API_KEY = "serving-test-key"


@dataclass
class MlflowServer:
    """``mlflow server`` on a fixed port and backend, which a test may stop and start again."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    _log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            mlflow_server_command(self.folder, self.port, workers=1),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the server and its workers
        )
        wait_for_http(f"{self.url}/health", timeout=180, process=self.process)

    def stop(self) -> None:
        """Stop the server and every process it started; afterwards the port refuses connections."""
        if self.process is None:
            return
        # An outage, not a clean shutdown: on SIGTERM the server's workers take 20 s or more to exit.
        stop_process_group(self.process, timeout=3)
        deadline = time.monotonic() + 20
        while _accepts_connections(self.url) and time.monotonic() < deadline:  # workers exiting
            time.sleep(0.1)
        self.process = None
        self._log.close()


def _accepts_connections(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.TransportError:
        return False
    return True


@dataclass
class Registry:
    """The registered model of the package's example and its two good versions."""

    server: MlflowServer
    lake_uri: str
    name: str
    v1: str
    v2: str
    example: Example

    @property
    def tracking_uri(self) -> str:
        return self.server.url

    def set_champion(self, version: str) -> None:
        from mlflow import MlflowClient

        MlflowClient(self.tracking_uri).set_registered_model_alias(self.name, "champion", str(version))

    def champion(self) -> str:
        from mlflow import MlflowClient

        return MlflowClient(self.tracking_uri).get_model_version_by_alias(self.name, "champion").version


@pytest.fixture(scope="package")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package", params=EXAMPLES, ids=example_id)
def example(request: pytest.FixtureRequest) -> Example:
    return request.param


@pytest.fixture(scope="package")
def registry(
    mlflow_server: MlflowServer, example: Example, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    from include.mlpipeline.deployment import deploy
    from include.mlpipeline.ml import registry
    from include.mlpipeline.ml.training import train_candidate

    name = f"serving_test_{example.name}"
    lake_uri = f"file://{tmp_path_factory.mktemp('lake')}"
    with environment(**small_pipeline(mlflow_server.url, lake_uri, name, example)):
        window, parent = replay_and_open_run("serving tests", example)
        # Without evaluation figures and model cards (the registry tests check those): only the models serve here.
        baseline = train_candidate("baseline", window, parent, evaluation_artifacts=False)
        versions = []
        for family in (example.cheap_model, example.other_model):
            results = [baseline, train_candidate(family, window, parent, evaluation_artifacts=False)]
            versions.append(str(registry.register_best(results, window, parent)["version"]))
        deploy.promote(versions[0])
        yield Registry(mlflow_server, lake_uri, name, *versions, example)


@pytest.fixture(scope="package")
def problem(example: Example):
    return example.problem


@pytest.fixture(scope="package")
def canaries(example: Example) -> list[dict]:
    return example.canaries()


@dataclass
class Api:
    """A prediction API running as a real uvicorn process."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": API_KEY}, timeout=60, **kwargs)

    def model(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/model", timeout=60).json()

    def wait_until_serving(self, version: str, timeout: float = 120) -> dict[str, Any]:
        """Poll ``/model`` until it reports ``version`` (no blind sleep)."""
        deadline = time.monotonic() + timeout
        info: Any = None
        while time.monotonic() < deadline:
            response = httpx.get(f"{self.url}/model", timeout=60)
            info = response.json()
            if response.status_code == 200 and info["model_version"] == str(version):
                return info
            time.sleep(0.1)
        raise TimeoutError(f"API does not serve version {version} after {timeout}s; /model says {info}")

    def serve(self, registry: Registry, version: str) -> None:
        """Make ``version`` the champion and wait until the API serves it."""
        registry.set_champion(version)
        httpx.post(f"{self.url}/admin/reload", headers={"X-API-Key": API_KEY}, timeout=60).raise_for_status()
        self.wait_until_serving(version)


@pytest.fixture(scope="package")
def start_api(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Api]]:
    """A factory of API processes (``start_api(MLP_SETTING=value, ...)``); all are stopped at the end."""
    started: list[Api] = []

    def start(**settings: str) -> Api:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MLP_PROBLEM": registry.example.module,
            "MLP_MLFLOW_TRACKING_URI": registry.tracking_uri,
            "MLP_LAKE_URI": registry.lake_uri,
            "MLP_REGISTERED_MODEL_NAME": registry.name,
            "MLP_API_KEY": API_KEY,
            "MLP_API_RELOAD_INTERVAL_S": "3600",  # tests reload explicitly unless they say otherwise
            "MLP_PREDICTION_LOG_FLUSH_S": "1",
            **settings,
        }
        log_path = tmp_path_factory.mktemp("api") / "api.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "include.mlpipeline.serving.app:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        api = Api(f"http://127.0.0.1:{port}", process, log_path)
        started.append(api)
        wait_for_http(f"{api.url}/ready", timeout=180, process=process)
        return api

    try:
        yield start
    finally:
        for api in started:
            stop_process(api.process)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def deploy_env(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Callable[[Api], None]:
    """Point the pipeline's settings (deploy, registry) at an API, with a short deploy timeout."""

    def point_at(api: Api) -> None:
        monkeypatch.setenv("MLP_API_URL", api.url)
        monkeypatch.setenv("MLP_API_KEY", API_KEY)
        monkeypatch.setenv("MLP_DEPLOY_TIMEOUT_S", "8")
        get_settings.cache_clear()

    yield point_at
    get_settings.cache_clear()


@dataclass
class Answer:
    started: float  # time.monotonic() just before the request was sent
    status: int | None  # None: no HTTP answer at all (transport error)
    version: str | None
    detail: str = ""


class Traffic:
    """``clients`` threads sending ``/predict`` (``body``) back to back until stopped; every answer is recorded."""

    def __init__(self, api: Api, body: dict, clients: int = 8):
        self.api = api
        self.body = body
        self.answers: list[list[Answer]] = [[] for _ in range(clients)]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"client-{i}", daemon=True) for i in range(clients)
        ]

    def _run(self, index: int) -> None:
        answers = self.answers[index]
        with self.api.client() as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post("/predict", json=self.body)
                except httpx.HTTPError as error:
                    answers.append(Answer(started, None, None, f"{type(error).__name__}: {error}"))
                    continue
                if response.status_code != 200:
                    answers.append(Answer(started, response.status_code, None, response.text[:300]))
                    continue
                body = response.json()
                versions = {p["model_version"] for p in body["predictions"]}
                version = body["model_version"] if versions == {body["model_version"]} else f"mixed {versions}"
                answers.append(Answer(started, 200, version))

    def wait_for(self, predicate: Callable[[list[Answer]], bool], timeout: float = 120) -> None:
        """Wait until ``predicate`` holds for every client's answers (polled, no blind sleep)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(predicate(list(answers)) for answers in self.answers):
                return
            time.sleep(0.05)
        raise TimeoutError(f"clients did not reach the condition in {timeout}s: {[len(a) for a in self.answers]}")

    def answered_since(self, moment: float, count: int) -> None:
        """Wait until every client has ``count`` answers to requests sent after ``moment``."""
        self.wait_for(lambda answers: sum(a.started > moment for a in answers) >= count)

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def failures(self) -> list[Answer]:
        return [a for answers in self.answers for a in answers if a.status != 200]

    def all_answers(self) -> list[Answer]:
        return [a for answers in self.answers for a in answers]


def assert_monotonic_switch(traffic: Traffic, old: str, new: str, switched_at: float) -> None:
    """Every answer names ``old`` or ``new``; per client, once ``new`` answered, ``old`` never does again;
    every request sent after ``switched_at`` (when ``/model`` first reported ``new``) is answered by ``new``."""
    assert traffic.failures() == []
    for index, answers in enumerate(traffic.answers):
        versions = [a.version for a in answers]
        assert set(versions) <= {old, new}, f"client {index} saw {set(versions)}"
        assert versions[0] == old and versions[-1] == new, f"client {index}: first {versions[0]}, last {versions[-1]}"
        first_new = versions.index(new)
        assert old not in versions[first_new:], f"client {index} went back to {old} after {new}: {versions}"
        late = [a.version for a in answers if a.started > switched_at]
        assert late and set(late) == {new}, f"client {index} after the swap: {set(late)}"
