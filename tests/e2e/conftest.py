"""End-to-end tests start their own Airflow, MLflow and API processes on this machine.

Inside an Astro Runtime container (``astro dev pytest``) there is already an Airflow with its own
ports and database, and these tests would fight it: they are skipped there. Run them with
``make test`` or ``make test-e2e``.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("ASTRONOMER_RUNTIME_VERSION"):
        return
    skip = pytest.mark.skip(reason="end-to-end stack tests do not run inside an Astro Runtime container")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
