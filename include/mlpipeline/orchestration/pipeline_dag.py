"""The ``@dag`` settings every pipeline DAG shares, written once.

A DAG file says only what is its own (id, schedule, tags, params, its docstring as ``doc_md``)::

    @pipeline_dag("deploy", schedule=[APPROVED_MODEL], tags=["ml", "deploy"], doc_md=__doc__)
    def deploy(): ...

and gets the house defaults: no catchup, the task defaults of :func:`~.tasks.default_args` (owner,
retries with backoff, timeout, the Slack failure alert), the run metrics pushed on success and on
failure, and the DAG-level failure alert. DAG files import this at parse time, so it imports only
modules that DAG files load anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk import dag

from include.mlpipeline.orchestration.alerts import DagFailureAlert, DagRunMetrics
from include.mlpipeline.orchestration.tasks import default_args

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Where asset-scheduled DAGs start; with catchup off it only has to lie in the past."""


def pipeline_dag(
    dag_id: str,
    *,
    schedule: Any,
    doc_md: str | None,
    tags: Sequence[str],
    max_active_runs: int = 1,
    params: Mapping[str, Any] | None = None,
    start_date: dt.datetime = START_DATE,
    **overrides: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``airflow.sdk.dag`` decorator with the pipeline's defaults; ``overrides`` replace any of them.

    One run at a time unless the DAG says otherwise (etl and features work on separate days, so they
    allow a few).
    """
    settings: dict[str, Any] = {
        "start_date": start_date,
        "catchup": False,
        "max_active_runs": max_active_runs,
        "default_args": default_args(),
        "on_success_callback": DagRunMetrics(),  # run duration, state, end time to the Pushgateway
        # A run failed by a task is already alerted by that task; DagFailureAlert covers timeouts, deadlocks.
        "on_failure_callback": [DagFailureAlert(), DagRunMetrics()],
        "params": dict(params) if params is not None else None,
        "tags": list(tags),
        "doc_md": doc_md,
    }
    return dag(dag_id=dag_id, schedule=schedule, **{**settings, **overrides})
