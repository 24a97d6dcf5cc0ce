"""The traffic replay is idempotent: a retry adds no prediction twice, for each example.

A real API process (uvicorn, the package's registered model) logs to the lake; the pipeline's own
replay posts to it. A named request (``X-Request-Id``) is logged once however often it is posted,
before or after the log flushes; a replay run posted again (a retry of its task) adds nothing, also
once a fresh API process, which remembers nothing, serves it; another run adds its rows again.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stack.config import ROOT
from stack.processes import free_port, wait_for_http

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.deployment import traffic
from include.mlpipeline.serving.prediction_log import PREDICTIONS, REQUEST_ID_HEADER

from .conftest import RegisteredModel

API_KEY = "replay-retry-key"
FLUSH_S = 1.0
BATCH = 100  # records per replayed request: several batches a day


def start_api(model: RegisteredModel, log_path: Path, flush_s: float = FLUSH_S) -> subprocess.Popen:
    """A real API process on the package's model and lake; its URL is the ``url`` attribute."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLP_API_KEY": API_KEY,
        "MLP_AB_CHALLENGER_SHARE": "0",
        "MLP_PREDICTION_LOG_FLUSH_S": str(flush_s),
        "MLP_API_RELOAD_INTERVAL_S": "3600",
    }
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "include.mlpipeline.serving.app:create_app",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    wait_for_http(f"{process.url}/ready", timeout=120, process=process)  # type: ignore[attr-defined]
    return process


def stop_api(process: subprocess.Popen) -> None:
    process.terminate()  # a clean stop flushes the log
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def api(registered_model: RegisteredModel, tmp_path_factory) -> Iterator[str]:
    """The API for this module, its URL in MLP_API_URL and its key in MLP_API_KEY (for the replay)."""
    process = start_api(registered_model, tmp_path_factory.mktemp("replay-api") / "api.log")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLP_API_URL", process.url)  # type: ignore[attr-defined]
        patch.setenv("MLP_API_KEY", API_KEY)
        get_settings.cache_clear()
        try:
            yield process.url  # type: ignore[attr-defined]
        finally:
            stop_api(process)
    get_settings.cache_clear()


def logged_rows(model: RegisteredModel) -> int:
    """Rows in the prediction log of today and yesterday (UTC), where these tests' answers are logged."""
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=1), today]
    return len(Lake(model.lake_uri).read_appended(PREDICTIONS, days, columns=["request_id"]))


def settled_rows(model: RegisteredModel, expected: int | None = None, timeout: float = 30) -> int:
    """The prediction log's rows once a flush has passed (and ``expected`` rows are there, if given)."""
    deadline = time.monotonic() + timeout
    time.sleep(2 * FLUSH_S)
    rows = logged_rows(model)
    while expected is not None and rows < expected and time.monotonic() < deadline:
        time.sleep(FLUSH_S)
        rows = logged_rows(model)
    return rows


def test_a_named_request_is_logged_once(api: str, registered_model: RegisteredModel, canaries: list[dict]):
    example = registered_model.example
    headers = {"X-API-Key": API_KEY, REQUEST_ID_HEADER: f"client-{example.name}-1"}
    before = settled_rows(registered_model)

    answers = [httpx.post(f"{api}/predict", json=example.body(canaries), headers=headers, timeout=60) for _ in "ab"]
    after_two = settled_rows(registered_model, before + len(canaries))
    again = httpx.post(f"{api}/predict", json=example.body(canaries), headers=headers, timeout=60)

    assert [a.status_code for a in (*answers, again)] == [200, 200, 200]
    assert {a.json()["request_id"] for a in (*answers, again)} == {headers[REQUEST_ID_HEADER]}
    assert after_two == before + len(canaries)
    assert settled_rows(registered_model) == after_two


@pytest.mark.parametrize(
    ("request_id", "why"),
    [("", "empty"), ("-starts-with-a-dash", "punctuation first"), ("x" * 129, "too long"), ("a b", "a space")],
)
def test_a_bad_request_id_is_refused_naming_the_header(
    api: str, registered_model: RegisteredModel, canaries: list[dict], request_id: str, why: str
):
    headers = {"X-API-Key": API_KEY, REQUEST_ID_HEADER: request_id}
    response = httpx.post(f"{api}/predict", json=registered_model.example.body(canaries), headers=headers, timeout=60)

    assert response.status_code == 422, why
    assert REQUEST_ID_HEADER.lower() in response.text.lower(), response.text


def test_a_retry_of_the_replay_adds_no_prediction(api: str, registered_model: RegisteredModel, tmp_path):
    days = list(registered_model.example.days[-2:])
    run = f"traffic_replay__retry_{registered_model.example.name}"
    before = settled_rows(registered_model)

    first = traffic.replay_days(days, run_id=run, batch=BATCH)
    records = sum(day["records"] for day in first.values())
    after_first = settled_rows(registered_model, before + records)
    retry = traffic.replay_days(days, run_id=run, batch=BATCH)
    after_retry = settled_rows(registered_model)
    fresh = start_api(registered_model, tmp_path / "fresh-api.log")  # remembers no request id
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLP_API_URL", fresh.url)  # type: ignore[attr-defined]
            get_settings.cache_clear()
            retry_on_fresh_api = traffic.replay_days(days, run_id=run, batch=BATCH)
    finally:
        stop_api(fresh)
        get_settings.cache_clear()
    after_fresh = settled_rows(registered_model)
    another_run = traffic.replay_days(days, run_id=f"{run}_next", batch=BATCH)

    assert records > BATCH and after_first == before + records
    assert [day["already_logged"] for day in retry.values()] == [day["records"] for day in first.values()]
    assert after_retry == after_first
    assert [day["already_logged"] for day in retry_on_fresh_api.values()] == [d["records"] for d in first.values()]
    assert after_fresh == after_first
    assert sum(day["already_logged"] for day in another_run.values()) == 0
    assert settled_rows(registered_model, after_first + records) == after_first + records


def test_a_retry_after_a_lost_flush_posts_the_lost_batches(registered_model: RegisteredModel, tmp_path):
    """A try whose answers never reached the log (the API crashed before flushing) is posted again."""
    days = list(registered_model.example.days[-1:])
    run = f"traffic_replay__lost_{registered_model.example.name}"
    crashed = start_api(registered_model, tmp_path / "crashed-api.log", flush_s=3600)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLP_API_URL", crashed.url)  # type: ignore[attr-defined]
        patch.setenv("MLP_API_KEY", API_KEY)
        get_settings.cache_clear()
        before = settled_rows(registered_model)
        first = traffic.replay_days(days, run_id=run, batch=BATCH)
        crashed.kill()  # no shutdown: the answers of the first try are never logged
        crashed.wait()
        retry_api = start_api(registered_model, tmp_path / "retry-api.log")
        try:
            patch.setenv("MLP_API_URL", retry_api.url)  # type: ignore[attr-defined]
            get_settings.cache_clear()
            retry = traffic.replay_days(days, run_id=run, batch=BATCH)
        finally:
            stop_api(retry_api)
    get_settings.cache_clear()
    records = sum(day["records"] for day in first.values())

    assert sum(day["already_logged"] for day in retry.values()) == 0
    assert settled_rows(registered_model, before + records) == before + records
