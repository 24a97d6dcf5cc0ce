"""Small helpers the DAG files share: default arguments, the run's day, failing fast on bad data."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.mlpipeline.core.jsonable import json_safe
from include.mlpipeline.orchestration.alerts import TaskFailureAlert
from include.mlpipeline.orchestration.sentry_hooks import protect_sentry_events, tag_quality_failure

log = logging.getLogger(__name__)

OWNER = "ml-platform"


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries with exponential backoff for transient errors, and a timeout so nothing hangs forever.

    Data errors do not use these retries: :func:`fail_fast_on_data_errors` fails them at once.
    A task's final failure goes to Slack (a blocked quality gate with its own message), and, when
    Airflow's Sentry integration is on, its Sentry event is scrubbed of secrets (see ``sentry_hooks``).
    """
    return {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": dt.timedelta(seconds=20),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        "execution_timeout": dt.timedelta(minutes=30),
        "on_failure_callback": [TaskFailureAlert()],
        "on_execute_callback": [prepare_task_process],
        **overrides,
    }


def prepare_task_process(context: Any = None) -> None:
    """``on_execute_callback`` of every task: secret scrubbing for Airflow's Sentry client (a no-op
    without Sentry), and Airflow connections for the lake's credentials (``MLP_LAKE_CONN_ID``)."""
    from include.mlpipeline.orchestration.connections import resolve_lake_connections

    protect_sentry_events(context)
    resolve_lake_connections()


@contextlib.contextmanager
def fail_fast_on_data_errors() -> Iterator[None]:
    """Turn a failed quality gate into a task failure without retries (retrying cannot fix data)."""
    from include.mlpipeline.data.quality import DataQualityError

    try:
        yield
    except DataQualityError as error:
        tag_quality_failure(error)  # the gate and its checks on the Sentry event; the Slack alert reads the cause
        record_gate_blocked(error)  # the Pushgateway's blocked-gate metrics (if configured); never raises
        raise AirflowFailException(str(error)) from error


def record_gate_blocked(error: Any) -> None:
    """Push a blocked quality gate, with the DAG and task that hit it, to the Pushgateway. Never raises."""
    from include.mlpipeline.telemetry.pipeline_metrics import record_gate_blocked as push_blocked

    dag_id = task_id = None
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        dag_id, task_id = ti.dag_id, ti.task_id
    except Exception as problem:  # outside a task (tests, DVC stages): the gate alone
        log.debug("no task context for the gate metrics: %s", problem)
    push_blocked(error.gate, error.failed_checks, dag_id=dag_id, task_id=task_id)


def run_day(context: Mapping[str, Any]) -> str:
    """The day a run processes: the ``date`` param if given, else its logical date, else when it ran."""
    params = context.get("params") or {}
    if params.get("date"):
        return dt.date.fromisoformat(str(params["date"])[:10]).isoformat()
    stamp = context.get("logical_date") or context["dag_run"].run_after
    return stamp.date().isoformat()


def chunk_days(days: Sequence[str], max_chunks: int) -> list[list[str]]:
    """Split days into at most ``max_chunks`` contiguous, near-equal chunks (one mapped task each).

    A daily run has one day, hence one task; a bootstrap or catch-up of many days gets a few tasks
    instead of one per day, because each task pays a process start and imports.
    """
    days = list(days)
    if not days:
        return []
    count = max(1, min(max_chunks, len(days)))
    size, extra = divmod(len(days), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(days[start:end])
        start = end
    return chunks


def chunk_label(days: Sequence[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


def emit(asset: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """Attach ``extra`` to this task's event for ``asset`` and return it (for XCom)."""
    from airflow.sdk import get_current_context

    clean = json_safe(extra)
    get_current_context()["outlet_events"][asset].extra = clean
    return clean


def events_extra(events: Sequence[Any]) -> list[dict[str, Any]]:
    """The extras of triggering asset events, oldest first."""
    return [dict(event.extra or {}) for event in sorted(events, key=lambda e: e.timestamp)]


def partitions_of(events: Sequence[Any]) -> list[str]:
    """Every partition named by the triggering events (several ETL runs may be batched into one run)."""
    days = {day for extra in events_extra(events) for day in extra.get("partitions", [])}
    return sorted(days)
