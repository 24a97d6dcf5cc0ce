"""Airflow's Sentry integration, fitted to the pipeline's tasks: scrubbed, tagged, delivered.

Airflow 3 captures a failing task's exception with its own Sentry client (``[sentry] sentry_on``).
These hooks add what it lacks: secret scrubbing when a task starts, the quality gate as tags on a
blocked gate's event, and a flush before the task process exits. Each is a no-op without Sentry,
never raises, and imports ``sentry_sdk`` only when Airflow already did (so DAG parsing does not).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def protect_sentry_events(context: Any = None) -> None:
    """``on_execute_callback``: add secret scrubbing to Airflow's Sentry client (a no-op without Sentry)."""
    try:
        from include.mlpipeline.telemetry.sentry import protect_active_client

        protect_active_client()
    except Exception as error:
        log.warning("could not add secret scrubbing to Sentry: %s: %s", type(error).__name__, error)


def tag_quality_failure(error: Any) -> None:
    """Tag the Sentry event of a blocked quality gate with the gate and its checks (no-op without Sentry)."""
    if "sentry_sdk" not in sys.modules:
        return
    try:
        import sentry_sdk

        if sentry_sdk.get_client().is_active():
            sentry_sdk.set_tag("quality_gate", error.gate)
            sentry_sdk.set_context("quality_gate", {"gate": error.gate, "failed_checks": dict(error.failed_checks)})
    except Exception as problem:
        log.debug("could not tag the Sentry scope: %s", problem)


def flush_sentry(timeout: float = 2.0) -> None:
    """Deliver the task's Sentry event (captured just before the failure callbacks) before the process exits."""
    if "sentry_sdk" not in sys.modules:
        return
    try:
        import sentry_sdk

        if sentry_sdk.get_client().is_active():
            sentry_sdk.flush(timeout=timeout)
    except Exception as error:
        log.debug("Sentry flush failed: %s", error)
