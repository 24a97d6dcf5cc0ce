"""``mlflow server``: the command the stack runs, and a throwaway server for tests and benchmarks."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from stack.processes import free_port, stop_process_group, venv_bin, wait_for_http


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
            stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/health", timeout=timeout, process=process)
            yield url
        finally:
            stop_process_group(process)
