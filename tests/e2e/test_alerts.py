"""Alerts end to end, on one real stack (scheduler, dag-processor, triggerer, api-server, MLflow, API):
Airflow's Slack connection points at a local webhook stub and Airflow's Sentry integration at a local
envelope receiver (through ``MLP_SENTRY_DSN``, which scripts/stack/airflow_settings.py turns into
``[sentry]`` settings).

1. a corrupt source (renamed column) fails the ETL gate: Slack gets one gate-blocked message naming
   the gate and the check, with a link to the task log; Sentry gets the task's error, tagged with the
   DAG and the task; no secret of the stack is in anything either received;
2. then Slack hangs (the stub accepts connections and never answers in time) while two ETL runs go
   at once: one whose day has bad rows fails its clean gate and reaches ``failed`` within seconds of
   its alert (a task's FAILED state reaches Airflow only after its failure callbacks), the other
   succeeds as usual.

Only ``etl`` is unpaused and bootstrap is off: no chain, one day per run (the chain has its own test).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from stack.chain_monitor import ChainMonitor
from stack.config import StackConfig
from stack.stack import Stack

from include.flight_delay import sources
from tests.support import SentryReceiver, SlackStub

pytestmark = pytest.mark.e2e

ALERT_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    for path in sources.data_dir().iterdir():
        if path.suffix in {".csv", ".zip"}:
            shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def flights_versions(source_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The flights file as shipped; with ``sched_dep_time`` renamed (a broken export); with every flight
    of 3 July given a negative distance (one bad day: its clean gate fails, other days pass)."""
    flights_file = source_dir / "flights.csv.zip"
    folder = tmp_path_factory.mktemp("broken")
    flights = pd.read_csv(flights_file, low_memory=False)
    bad_day = flights.copy()
    bad_day.loc[(bad_day["month"] == 7) & (bad_day["day"] == 3), "distance"] = -1.0
    versions = {"original": flights_file.read_bytes()}
    for name, frame in (
        ("renamed", flights.rename(columns={"sched_dep_time": "scheduled_departure"})),
        ("bad_day", bad_day),
    ):
        target = folder / f"{name}.csv.zip"
        frame.to_csv(target, index=False, compression={"method": "zip", "archive_name": "flights.csv"})
        versions[name] = target.read_bytes()
    return versions


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub(delay=60) as stub:
        yield stub


@pytest.fixture(scope="module")
def sentry() -> Iterator[SentryReceiver]:
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, source_dir: Path, slack: SlackStub, sentry: SentryReceiver
) -> Iterator[Stack]:
    config = StackConfig.isolated(
        tmp_path_factory.mktemp("stack"),
        extra_env={
            "MLP_ETL_SCHEDULE": "none",
            "MLP_BOOTSTRAP_DAYS": "0",
            "MLP_DVC_ENABLED": "false",
            "MLP_FLIGHTS_DATA_DIR": str(source_dir),
            "AIRFLOW_CONN_SLACK_DEFAULT": slack.connection_json(),
            "MLP_ALERT_TIMEOUT_S": str(ALERT_TIMEOUT_S),
            "MLP_SENTRY_DSN": sentry.dsn,
            "MLP_SENTRY_ENVIRONMENT": "e2e",
        },
    )
    running = Stack(config)
    try:
        running.start()
        running.airflow.wait_for_dags(("etl",))
        running.airflow.set_paused("etl", False)
        yield running
    finally:
        running.stop()


@dataclass
class Setup:
    stack: Stack
    monitor: ChainMonitor
    slack: SlackStub
    sentry: SentryReceiver
    flights_file: Path
    versions: dict[str, bytes]

    @contextmanager
    def flights(self, version: str) -> Iterator[None]:
        self.flights_file.write_bytes(self.versions[version])
        try:
            yield
        finally:
            self.flights_file.write_bytes(self.versions["original"])

    def task_instances(self, run_id: str, task_id: str) -> list[dict]:
        return [t for t in self.stack.airflow.task_instances("etl", run_id) if t["task_id"] == task_id]


@pytest.fixture(scope="module")
def setup(
    stack: Stack, slack: SlackStub, sentry: SentryReceiver, source_dir: Path, flights_versions: dict[str, bytes]
) -> Setup:
    monitor = ChainMonitor(stack.airflow, dag_ids=("etl",))
    return Setup(stack, monitor, slack, sentry, source_dir / "flights.csv.zip", flights_versions)


def test_stack_turns_mlp_sentry_dsn_into_airflow_sentry_settings(setup: Setup) -> None:
    env = setup.stack.airflow_env()
    assert env["AIRFLOW__SENTRY__SENTRY_ON"] == "True"
    assert env["AIRFLOW__SENTRY__SENTRY_DSN"] == setup.sentry.dsn
    assert env["AIRFLOW__SENTRY__ENVIRONMENT"] == "e2e"
    assert "AIRFLOW__SENTRY__BEFORE_SEND" not in env


def test_blocked_gate_alerts_slack_and_sentry_without_secrets(setup: Setup) -> None:
    stack, slack, sentry = setup.stack, setup.slack, setup.sentry
    with setup.flights("renamed"):
        run_id = stack.airflow.trigger("etl", conf={"date": "2026-07-01"})["dag_run_id"]
        with pytest.raises(RuntimeError, match="failed"):
            setup.monitor.wait_for_run("etl", run_id, timeout=300)
    (failed,) = [t for t in setup.task_instances(run_id, "extract") if t["state"] == "failed"]
    assert failed["try_number"] == 1

    posts = [p for p in slack.wait_for(1, timeout=60) if run_id in p.text]
    assert len(posts) == 1, [p.text for p in slack.posts]
    text = posts[0].text
    assert text.startswith(":no_entry: Quality gate 'raw_flights' blocked etl.extract [flights], run " + run_id)
    assert "column_in_dataframe:sched_dep_time (table-level)" in text
    log_url = (
        f"{stack.config.airflow_url}/dags/etl/runs/{quote(run_id)}/tasks/extract/mapped/{failed['map_index']}"
        "?try_number=1"
    )
    assert f"Log: {log_url}" in text
    assert posts[0].payload["blocks"][0]["text"]["text"] == "Quality gate 'raw_flights' blocked data"

    events = sentry.wait_for_events(1, timeout=60)
    tagged = [e for e in events if e.get("tags", {}).get("dag_id") == "etl"]
    assert tagged, f"no event tagged dag_id=etl among {[e.get('tags') for e in events]}"
    event = tagged[0]
    assert event["tags"]["task_id"] == "extract"
    assert event["tags"]["quality_gate"] == "raw_flights"
    assert event["environment"] == "e2e"
    assert "quality gate 'raw_flights' failed" in str(event["exception"])
    assert not sentry.errors, sentry.errors

    received = sentry.raw + b"".join(p.raw for p in slack.posts)
    for name, value in {**stack.secrets, "slack webhook URL": slack.webhook_url}.items():
        assert value.encode() not in received, f"{name} reached Slack or Sentry"


def test_hanging_slack_delays_no_failure_and_touches_no_good_run(setup: Setup) -> None:
    stack, slack = setup.stack, setup.slack
    slack.mode = "slow"  # accepts the connection, then answers only after 60 s
    before = len(slack.posts)
    failed_at = None
    with setup.flights("bad_day"):
        bad = stack.airflow.trigger("etl", conf={"date": "2026-07-03"})["dag_run_id"]
        good = stack.airflow.trigger("etl", conf={"date": "2026-07-02"})["dag_run_id"]
        posts = slack.wait_for(before + 1, timeout=300)
        assert len(posts) > before, "the failure alert was never attempted"
        alert_at = posts[before].received_at
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and failed_at is None:
            if any(t["state"] == "failed" for t in setup.task_instances(bad, "clean")):
                failed_at = time.time()
            else:
                time.sleep(0.5)
        with pytest.raises(RuntimeError, match="failed"):
            setup.monitor.wait_for_run("etl", bad, timeout=300)
        finished = setup.monitor.wait_for_run("etl", good, timeout=300)

    assert failed_at is not None, "the failing task never reached failed"
    delay = failed_at - alert_at
    assert delay < ALERT_TIMEOUT_S + 12, f"failed {delay:.1f}s after its alert (Slack would answer after 60 s)"
    text = posts[before].text
    assert f"Quality gate 'clean' blocked etl.clean [2026-07-03], run {bad}" in text
    assert "distance:greater_than(0):" in text and "rows broke row-level checks" in text

    assert finished["state"] == "success"
    assert {t["state"] for t in setup.task_instances(good, "publish")} == {"success"}
    assert len(slack.posts) == before + 1, "the good run alerts nothing"
