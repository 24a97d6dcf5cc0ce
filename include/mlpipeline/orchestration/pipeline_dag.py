"""The ``@dag`` settings every pipeline DAG shares, written once.

A DAG file says only what is its own (id, schedule, tags, params, its docstring as ``doc_md``)::

    @pipeline_dag("deploy", schedule=[APPROVED_MODEL], tags=["ml", "deploy"], doc_md=__doc__)
    def deploy(): ...

and gets the house defaults: no catchup, the task defaults of :func:`~.tasks.default_args` (owner,
retries with backoff, timeout, the Slack failure alert), the run metrics pushed on success and on
failure, the DAG-level failure alert, and a ``dagrun_timeout``. DAG files import this at parse time,
so it imports only modules that DAG files load anyway (the settings come with the assets).

A task that returns a dict says ``@task(multiple_outputs=False)``: every such dict is consumed whole,
and Airflow would otherwise infer ``multiple_outputs`` from the ``-> dict`` annotation and push each
key again as an XCom of its own, through the object-storage backend (ruff's AIR202 checks this in
``dags/``).

Run timeouts (``dagrun_timeout``, see :func:`dagrun_timeout`)
-------------------------------------------------------------

Task ``execution_timeout`` (30 min a try, from ``default_args``) does not catch a run that is stuck
between tasks: tasks queued with no worker to take them, a retry loop, a task that hangs on every
try (4 tries of 30 min). With ``max_active_runs=1`` such a run also holds back every later run of
its DAG, whose asset events wait in the queue. So every DAG has a bound for its whole run, well
above what a healthy run takes on a busy 2-core machine but below what a stuck one lasts:

- ``etl``, ``features``, ``batch_score``: 4 h (``MLP_DATA_DAGRUN_TIMEOUT_MIN``). A daily run takes
  minutes; a bootstrap or catch-up of a year in one run takes over an hour.
- ``train``: 2 h (``MLP_TRAIN_DAGRUN_TIMEOUT_MIN``). Minutes with the defaults (the four candidates
  fit in about 20 s); a search adds up to ``MLP_SEARCH_TIMEOUT_S`` per candidate.
- ``deploy``: 30 min, and at least 4 times ``MLP_DEPLOY_TIMEOUT_S``. A deploy takes about 2 min;
  its one long wait, for the API to serve the version, is bounded by ``MLP_DEPLOY_TIMEOUT_S`` (120 s).
  With ``MLP_DEPLOY_APPROVAL_REQUIRED``, plus ``MLP_DEPLOY_APPROVAL_TIMEOUT_MIN``: the wait for a person
  ends by its own timeout policy, never by the run's bound.
- ``monitor``, ``ab_test``, ``traffic_replay`` (and a DAG not named here): 1 h. Minutes: each
  reads bounded windows of days (the newest 7 to 14, a champion's training days), however long the
  history.

The bounds that follow how much data or search a run is given are settings; the others do a fixed
amount of work. ``deploy`` stays above its own wait so that ``verify_live_service`` always gets to
roll the alias back itself: a run timeout stops its tasks without that. The clock starts when a run
starts (a queued run waiting for ``max_active_runs`` does not count).

When the bound passes, the scheduler fails the run, marks its unfinished tasks skipped (running ones
are killed, with no task failure alert) and calls the DAG's ``on_failure_callback`` with
``reason="timed_out"`` and, as ``ti``, the last unfinished task. :class:`~.alerts.DagFailureAlert`
sends that to Slack (the message says the bound and the last task) and :class:`~.alerts.DagRunMetrics`
pushes the failed run. ``dagrun_timeout`` rather than a ``DeadlineAlert``: a deadline only notifies,
while a stuck run must end to free its DAG, and the failure callback already alerts through our
Slack sender, in the dag-processor, without the triggerer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import dag

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.orchestration.alerts import DagFailureAlert, DagRunMetrics
from include.mlpipeline.orchestration.tasks import default_args

if TYPE_CHECKING:
    from include.mlpipeline.core.settings import Settings

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Where asset-scheduled DAGs start; with catchup off it only has to lie in the past."""

DATA_DAGS = frozenset({"etl", "features", "batch_score"})
"""The DAGs whose run covers as many days as it is given (a day, or a year in a bootstrap)."""
RUN_TIMEOUT = dt.timedelta(hours=1)
"""The bound of a DAG that does a fixed amount of work (monitor, ab_test, traffic_replay, a new DAG)."""
DEPLOY_RUN_TIMEOUT = dt.timedelta(minutes=30)
DEPLOY_WAITS = 4  # deploy's bound stays this many of its waits for the API (MLP_DEPLOY_TIMEOUT_S) above them


def dagrun_timeout(dag_id: str, settings: Settings | None = None) -> dt.timedelta:
    """The ``dagrun_timeout`` of the pipeline DAG ``dag_id``; the module docstring says why each."""
    settings = settings or get_settings()
    if dag_id in DATA_DAGS:
        return dt.timedelta(minutes=settings.data_dagrun_timeout_min)
    if dag_id == "train":
        return dt.timedelta(minutes=settings.train_dagrun_timeout_min)
    if dag_id == "deploy":
        bound = max(DEPLOY_RUN_TIMEOUT, dt.timedelta(seconds=DEPLOY_WAITS * settings.deploy_timeout_s))
        if settings.deploy_approval_required:  # the run waits for a person first (orchestration/approval.py)
            bound += dt.timedelta(minutes=settings.deploy_approval_timeout_min)
        return bound
    return RUN_TIMEOUT


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
    allow a few). The run's bound is :func:`dagrun_timeout` (see the module docstring).
    """
    settings: dict[str, Any] = {
        "start_date": start_date,
        "catchup": False,
        "max_active_runs": max_active_runs,
        "dagrun_timeout": dagrun_timeout(dag_id),
        "default_args": default_args(),
        "on_success_callback": DagRunMetrics(),  # run duration, state, end time to the Pushgateway
        # A run failed by a task is already alerted by that task; DagFailureAlert covers timeouts, deadlocks.
        "on_failure_callback": [DagFailureAlert(), DagRunMetrics()],
        "params": dict(params) if params is not None else None,
        "tags": list(tags),
        "doc_md": doc_md,
    }
    return dag(dag_id=dag_id, schedule=schedule, **{**settings, **overrides})
