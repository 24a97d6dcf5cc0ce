"""``mlflow server``: the command the stack runs, and a throwaway server for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from stack.processes import free_port, stop_process_group, venv_bin, wait_for_http


def mlflow_server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default: this process's) without MLflow's job execution.

    MLflow 3.17's server starts a job runner with seven huey consumer processes (GenAI scorers, prompt
    optimisation, trace roll-ups), each importing MLflow at start and holding about 150 MB. The pipeline
    runs no MLflow job, and on two cores their start-up competed with the first training run.
    """
    return {**(os.environ if base is None else base), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def mlflow_server_command(folder: Path, port: int, backend_uri: str | None = None, workers: int = 2) -> list[str]:
    """``mlflow server`` with its registry in ``backend_uri`` (default SQLite in ``folder``), serving artifacts."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        venv_bin("mlflow"), "server",
        "--backend-store-uri", backend_uri or f"sqlite:///{folder}/mlflow.db",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


@contextlib.contextmanager
def running_mlflow_server(folder: Path, *, workers: int = 1, timeout: float = 180) -> Iterator[str]:
    """An ``mlflow server`` with its registry and artifacts in ``folder`` (log: ``folder/server.log``)
    for tests and benchmarks; yields its URL once it answers, stops it and its workers on exit."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("wb") as server_log:
        process = subprocess.Popen(
            mlflow_server_command(folder, port, workers=workers),
            env=mlflow_server_env(), stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/health", timeout=timeout, process=process)
            yield url
        finally:
            stop_process_group(process)
