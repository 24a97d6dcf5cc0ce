"""Bursts of asset events while one-run-at-a-time consumers run: none waits in the queue (apache/airflow#56050).

Airflow 3.3 leaves behind all but the first event of an asset that arrive while its consumer is at
``max_active_runs`` (train and deploy allow one run): the next run consumes only the first, and the
others wait until an unrelated later event arrives. ``include/mlpipeline/orchestration/asset_queue.py``
works around it; the production stack (conftest.py: PostgreSQL, Celery, the real scheduler) loads it
as every stack does.

The bursts go to ``burst_train`` and ``burst_deploy`` (``burst_dags/``): the shape of train and
deploy (``data | retrain`` -> model -> deploy, one run at a time) with tasks that only sleep, so a
burst costs seconds. Events are posted through the REST API, as a caller's asset event is:

1. one ``burst_data`` event starts a train run; while it runs, a burst of three (data, retrain, data);
2. while a deploy run runs (its task is the longer one, so models pile up), three more.

Once nothing runs and nothing is queued, every posted event was consumed by exactly one train run,
and every model event by exactly one deploy run. The real chain on the same stack is held to the
same: its feature and approval events were consumed once each and nothing of it is left queued.
Without the workaround (``AIRFLOW__CORE__ASSET_MANAGER_CLASS=airflow.assets.manager.AssetManager``)
the first two tests fail: the last event of each burst is never consumed.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import pytest
from stack.airflow_client import AirflowClient
from stack.stack import Stack

pytestmark = pytest.mark.e2e

TRAIN, DEPLOY = "burst_train", "burst_deploy"
ACTIVE = ("queued", "running")
SETTLE_TIMEOUT_S = 420.0
QUIET_S = 6.0  # nothing running and nothing queued for this long (an event and its queue row commit together)


class AssetQueue:
    """The REST calls the test makes: post events, see runs and what each consumed, see the queue."""

    def __init__(self, client: AirflowClient):
        self.client = client
        assets = client.request("GET", "/assets", params={"limit": 100})["assets"]
        self.ids = {asset["name"]: asset["id"] for asset in assets}

    def post(self, asset: str, burst: str) -> int:
        event = self.client.request(
            "POST", "/assets/events", json={"asset_id": self.ids[asset], "extra": {"burst": burst}}
        )
        return event["id"]

    def active(self, dag_id: str) -> list[dict[str, Any]]:
        return [run for run in self.client.runs(dag_id) if run["state"] in ACTIVE]

    def queued(self, dag_id: str) -> int:
        return self.client.request("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"]

    def wait_until_running(self, dag_id: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(run["state"] == "running" for run in self.client.runs(dag_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {dag_id} run started within {timeout:.0f}s")
            time.sleep(0.5)

    def wait_until_settled(self, dag_ids: tuple[str, ...], timeout: float = SETTLE_TIMEOUT_S) -> None:
        """Until no run of ``dag_ids`` is queued or running and no event is queued for them, for QUIET_S."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            busy = [d for d in dag_ids if self.active(d) or self.queued(d)]
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                return
            time.sleep(2)
        state = {d: {"active runs": len(self.active(d)), "queued events": self.queued(d)} for d in dag_ids}
        raise TimeoutError(f"{dag_ids} not settled within {timeout:.0f}s: {state}")

    def consumed(self, dag_id: str) -> dict[str, list[int]]:
        """Event ids each asset-triggered run of ``dag_id`` consumed, by run id."""
        return {
            run["dag_run_id"]: [
                event["id"]
                for event in self.client.request(
                    "GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents"
                )["asset_events"]
            ]
            for run in self.client.runs(dag_id)
            if run["run_type"] == "asset_triggered"
        }

    def events(self, asset: str) -> list[int]:
        found = self.client.request("GET", "/assets/events", params={"asset_id": self.ids[asset], "limit": 100})
        return [event["id"] for event in found["asset_events"]]


def consumed_once(posted: list[int], consumed: dict[str, list[int]]) -> tuple[list[int], list[int]]:
    """(events no run consumed, events more than one run consumed), of ``posted``."""
    counts = collections.Counter(event for events in consumed.values() for event in events)
    return [e for e in posted if counts[e] == 0], [e for e in posted if counts[e] > 1]


@pytest.fixture(scope="module")
def bursts(production_stack: Stack) -> dict[str, Any]:
    client = production_stack.airflow
    client.wait_for_dags((TRAIN, DEPLOY))
    for dag_id in (DEPLOY, TRAIN):  # consumers first: a paused consumer is not queued
        client.set_paused(dag_id, False)
    queue = AssetQueue(client)
    started = time.monotonic()
    posted = [queue.post("burst_data", "start")]
    queue.wait_until_running(TRAIN)
    posted += [queue.post(asset, "while train runs") for asset in ("burst_data", "burst_retrain", "burst_data")]
    queue.wait_until_running(DEPLOY)
    posted += [queue.post(asset, "while deploy runs") for asset in ("burst_data", "burst_data", "burst_retrain")]
    queue.wait_until_settled((TRAIN, DEPLOY))
    for dag_id in (TRAIN, DEPLOY):
        client.set_paused(dag_id, True)
    return {
        "posted": posted,
        "models": queue.events("burst_model"),
        "train": queue.consumed(TRAIN),
        "deploy": queue.consumed(DEPLOY),
        "queued": {d: queue.queued(d) for d in (TRAIN, DEPLOY)},
        "seconds": time.monotonic() - started,
    }


def test_every_event_is_consumed_by_exactly_one_train_run(bursts: dict[str, Any]):
    missed, twice = consumed_once(bursts["posted"], bursts["train"])

    assert (missed, twice) == ([], []), f"posted {bursts['posted']}; train runs consumed {bursts['train']}"
    assert len(bursts["train"]) < len(bursts["posted"]), "each burst waits for one run, not one run per event"


def test_every_model_is_consumed_by_exactly_one_deploy_run(bursts: dict[str, Any]):
    models = bursts["models"]
    missed, twice = consumed_once(models, bursts["deploy"])

    assert len(models) == len(bursts["train"]), "one model per train run"
    assert (missed, twice) == ([], []), f"models {models}; deploy runs consumed {bursts['deploy']}"


def test_nothing_is_left_queued_once_the_bursts_settle(bursts: dict[str, Any]):
    assert bursts["queued"] == {TRAIN: 0, DEPLOY: 0}


def test_the_real_chain_consumed_its_events_once(production_stack: Stack, production_chain: dict):
    queue = AssetQueue(production_stack.airflow)
    queue.wait_until_settled(("train", "deploy"))
    for dag_id, asset in (("train", "feature_data"), ("deploy", "approved_model")):
        missed, twice = consumed_once(queue.events(asset), queue.consumed(dag_id))
        assert (missed, twice) == ([], []), f"{dag_id}: {asset} events not consumed once"
        assert queue.queued(dag_id) == 0
