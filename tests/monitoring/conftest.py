"""Shared fixtures of the monitoring tests: the Prometheus tools, a real Pushgateway, pipeline settings.

The Prometheus binaries come from Debian (``make monitoring-tools``). Where they are missing (inside
an Astro Runtime container, say) the tests that need them are skipped, except under ``make test``,
which sets ``MLP_REQUIRE_MONITORING_TOOLS=1`` so that a missing tool fails instead of hiding.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from stack.monitoring import monitoring_binaries  # noqa: E402
from stack.processes import free_port  # noqa: E402


def require_tool(name: str) -> str:
    """The path of ``name`` (prometheus, promtool, pushgateway), else skip (or fail under make test)."""
    path = monitoring_binaries()[name]
    if path:
        return path
    message = f"{name} is not installed (`make monitoring-tools` installs the Debian packages)"
    if os.environ.get("MLP_REQUIRE_MONITORING_TOOLS"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pushgateway() -> Iterator[str]:
    """A real Pushgateway on a free port; its URL."""
    binary = require_tool("pushgateway")
    port = free_port()
    process = subprocess.Popen(
        # no persistence: Debian's build would default to a file shared by every Pushgateway on the machine
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=", "--web.enable-admin-api"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the Pushgateway did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set MLP_* variables for one test; the cached settings are re-read before and after it."""
    from include.mlpipeline.core.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
