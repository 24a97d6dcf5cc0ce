"""An asset manager that keeps every asset event in the queue until a run consumes it (apache/airflow#56050).

Airflow 3.3 queues an asset event for a consumer DAG as one row per (asset, DAG) in
``asset_dag_run_queue``, stamped when the row is first written. A later event of the same asset
finds the row there and leaves it as it is (``ON CONFLICT DO NOTHING`` on PostgreSQL, a merge
that keeps the old stamp elsewhere). The scheduler then creates the consumer's run up to the
newest *stamp*, consumes the events up to that time, and deletes the row. So when several events
of one asset arrive while the consumer is at ``max_active_runs`` (``train`` and ``deploy`` allow
one run: a bootstrap, a backfill or a burst of retrain requests does this), the next run consumes
only the first of them and the others are left behind with no row to queue them: they wait until
an unrelated later event arrives. Upstream: https://github.com/apache/airflow/issues/56050 (open;
fix PRs #71992 and #71998 were closed unmerged).

:class:`EventQueueAssetManager` moves the stamp of the queue row up to the time of each new event,
in the same transaction that records the event (never back: an event committed late with an
older time does not lower it). The next run then reaches up to the newest queued event and
consumes all of them, in one run, as Airflow means to. Airflow loads it through
``[core] asset_manager_class`` in every component that records asset events (the api-server, which
the tasks report through, and the scheduler and triggerer)::

    AIRFLOW__CORE__ASSET_MANAGER_CLASS=include.mlpipeline.orchestration.asset_queue.EventQueueAssetManager

``make run``, the tests' stacks (``scripts/stack/stack.py``) and the image (``Dockerfile``) set it.
``tests/e2e/test_asset_bursts.py`` sends bursts of events to a DAG pair shaped like train and
deploy on the real scheduler and checks that every event is consumed by exactly one run. Remove
this once the installed Airflow stamps the row with its newest event (check ``AssetManager`` in
``airflow/assets/manager.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow.assets.manager import AssetManager
from airflow.models.asset import AssetDagRunQueue
from sqlalchemy import update

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

MANAGER_CLASS = f"{__name__}.EventQueueAssetManager"
"""The value of ``[core] asset_manager_class`` (``AIRFLOW__CORE__ASSET_MANAGER_CLASS``) that loads it."""


class EventQueueAssetManager(AssetManager):
    """Airflow's ``AssetManager``; a queued (asset, DAG) row is stamped with its newest event, not its first."""

    @classmethod
    def _queue_dagruns(cls, *, asset_id: int, dags_to_queue: set[Any], partition_key: str | None,
                       event: Any, session: Session, **kwargs: Any) -> None:  # fmt: skip
        super()._queue_dagruns(
            asset_id=asset_id,
            dags_to_queue=dags_to_queue,
            partition_key=partition_key,
            event=event,
            session=session,
            **kwargs,
        )
        if partition_key is None:  # partitioned runs are queued elsewhere (asset partition rows)
            dag_ids = sorted(dag.dag_id for dag in dags_to_queue if not dag.timetable_partitioned)
            restamp_queue_rows(session, asset_id, dag_ids, event.timestamp)


def restamp_queue_rows(session: Session, asset_id: int, dag_ids: list[str], stamp: dt.datetime) -> int:
    """Move the queue rows of ``asset_id`` for ``dag_ids`` up to ``stamp`` (never back); returns rows moved.

    Args:
        session: the session of the transaction that records the event.
        asset_id: the asset whose event was recorded.
        dag_ids: the consumer DAGs it was queued for.
        stamp: the event's time.

    Returns:
        How many rows were stamped later (0 when each was queued by this event).
    """
    if not dag_ids:
        return 0
    moved = session.execute(
        update(AssetDagRunQueue)
        .where(
            AssetDagRunQueue.asset_id == asset_id,
            AssetDagRunQueue.target_dag_id.in_(dag_ids),
            AssetDagRunQueue.created_at < stamp,
        )
        .values(created_at=stamp)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved:
        log.debug("asset %d: queued runs of %s now wait for its event of %s", asset_id, dag_ids, stamp)
    return moved
