"""Process plumbing shared by the stack, the tests and the benchmarks: ports, readiness, stopping.

Every server here is started with ``start_new_session=True``, so that stopping its process group also
stops the workers it forked (uvicorn, gunicorn, Celery), which would otherwise outlive it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def venv_bin(name: str) -> str:
    """A console script of this interpreter's environment (airflow, mlflow), whether or not it is on PATH."""
    return str(Path(sys.executable).parent / name)


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers 200 (fail early if ``process`` dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process as an exception would, so ``finally`` blocks stop what it started
    (a stack's processes, its databases). Long benchmarks run as background jobs, which ignore SIGINT,
    and a plain SIGTERM would leave their servers running."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """End a process started with ``start_new_session=True`` and everything it started: SIGTERM to its
    group, SIGKILL to what is left after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %d did not stop in %.0fs; killing its group", process.pid, timeout)
    with contextlib.suppress(ProcessLookupError):  # also workers that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
