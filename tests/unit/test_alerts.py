"""Slack alerts: what each message says, that a missing connection is one log line, that a Slack outage
never raises nor holds the caller beyond the alert timeout, and that the real SlackWebhookNotifier
posts the expected payload to a local webhook stub (conn type slackwebhook, URL as password).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from include.mlpipeline.core import bounded
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.orchestration import alerts, sentry_hooks, slack_messages, tasks
from include.mlpipeline.orchestration.assets import APPROVED_MODEL
from include.mlpipeline.telemetry import pipeline_metrics
from tests.support import SlackStub

RUN_ID = "manual__2026-07-01T00:00:00+00:00"
DAGS = Path(__file__).resolve().parents[2] / "dags"
LOGGER = "include.mlpipeline.orchestration.alerts"

# What train's `approve` task puts on the approved_model event (registry.register_best's return value).
APPROVED_EXTRA = {
    "model_name": "flight_delay",
    "version": "7",
    "candidate": "random_forest",
    "run_id": "4f1c0ffee",
    "threshold": 0.155,
    "test": {
        "roc_auc": 0.6403,
        "pr_auc": 0.3312,
        "log_loss": 0.5211,
        "brier": 0.1702,
        "f1": 0.4031,
        "precision": 0.31,
        "recall": 0.58,
        "positive_rate": 0.226,
        "rows": 4570.0,
    },
    "baseline_test": {"roc_auc": 0.5, "pr_auc": 0.226, "log_loss": 0.5431, "brier": 0.178, "f1": 0.369},
    "data_version": "md5-2c41e0",
    "previous_champion": "6",
    "decision": {
        "promote": True,
        "reason": "beats the champion: 0.6403 vs 0.6310 (+0.0093 >= 0.002)",
        "challenger_score": 0.6403,
        "champion_score": 0.6310,
        "baseline_score": 0.5,
    },
}
SERVED = {"version": "7", "previous": "6", "canaries": 20, "max_abs_difference": 0.0}


@pytest.fixture(autouse=True)
def _fresh_alerts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Slack connection from the developer's environment; the once-per-process log starts empty."""
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.test:8080")
    bounded._logged_once.clear()
    yield
    bounded._logged_once.clear()


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStub]:
    with SlackStub() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", server.connection_json())
        yield server


def runtime_ti(task_id: str = "extract", map_index: int = 2, try_number: int = 1) -> RuntimeTaskInstance:
    """Airflow's own task instance class, so ``log_url`` is the real one."""
    return RuntimeTaskInstance.model_construct(
        dag_id="etl", task_id=task_id, run_id=RUN_ID, map_index=map_index, try_number=try_number
    )


def context(error: BaseException | None = None, **extra: Any) -> dict[str, Any]:
    ti = runtime_ti()
    ti.rendered_map_index = "flights"
    return {"ti": ti, "dag": SimpleNamespace(dag_id="etl"), "run_id": RUN_ID, "exception": error, **extra}


def gate_error() -> DataQualityError:
    return DataQualityError("raw_flights", {"column_in_dataframe:sched_dep_time": 0, "dep_delay:in_range": 12})


def wrapped(error: Exception) -> AirflowFailException:
    """The error as a task raises it: fail_fast_on_data_errors turns it into AirflowFailException."""
    try:
        with tasks.fail_fast_on_data_errors():
            raise error
    except AirflowFailException as failed:
        return failed
    raise AssertionError("fail_fast_on_data_errors did not raise")


def capture_sends(monkeypatch: pytest.MonkeyPatch) -> list[slack_messages.SlackMessage]:
    sent: list[slack_messages.SlackMessage] = []
    monkeypatch.setattr(alerts, "send_slack", lambda message, **kw: sent.append(message) or True)
    return sent


# ------------------------------------------------------------------------------------ messages
def test_log_url_is_airflows_own_with_the_configured_base_url() -> None:
    ref = slack_messages.TaskRef.from_context(context())

    assert ref.log_url == (
        "http://airflow.test:8080/dags/etl/runs/manual__2026-07-01T00%3A00%3A00%2B00%3A00/tasks/extract/mapped/2"
        "?try_number=1"
    )
    assert ref.task_label == "extract [flights]"


def test_log_url_is_built_when_the_task_instance_has_none() -> None:
    ti = SimpleNamespace(dag_id="train", task_id="register_best", run_id="r 1", map_index=-1, try_number=2)

    ref = slack_messages.TaskRef.from_context({"ti": ti, "run_id": "r 1"})

    assert ref.log_url == "http://airflow.test:8080/dags/train/runs/r%201/tasks/register_best?try_number=2"
    assert ref.task_label == "register_best"


def test_task_failure_message_names_dag_task_run_error_and_log() -> None:
    error = ValueError("\n".join(f"line {i} <b>" for i in range(1, 20)))

    message = slack_messages.task_failure_message(context(error))

    assert message.kind == "task_failure"
    assert "Task failed: etl.extract [flights] (try 1), run " + RUN_ID in message.text
    assert "ValueError: line 1 <b>" in message.text
    assert "line 6" in message.text and "line 7" not in message.text, "only the first lines of the error"
    assert "/dags/etl/runs/manual__2026-07-01T00%3A00%3A00%2B00%3A00/tasks/extract/mapped/2" in message.text
    blocks = str(message.blocks)
    assert "line 1 &lt;b&gt;" in blocks, "mrkdwn control characters are escaped in blocks"
    assert "<http://airflow.test:8080/dags/etl/runs/" in blocks and "|Open the task log in Airflow>" in blocks


def test_secrets_in_an_error_do_not_reach_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_API_KEY", "the-api-key-123")
    monkeypatch.setenv("AIRFLOW_CONN_DWH", "postgres://etl:dwh-password-7@db/dwh")
    get_settings.cache_clear()

    message = slack_messages.task_failure_message(
        context(ConnectionError("postgres://etl:dwh-password-7@db/dwh refused; key the-api-key-123"))
    )

    assert "ConnectionError: postgres://etl:[Filtered]@db/dwh refused; key [Filtered]" in message.text
    assert "dwh-password-7" not in str(message.blocks) and "the-api-key-123" not in str(message.blocks)


def test_gate_blocked_message_names_gate_checks_and_rows() -> None:
    message = slack_messages.gate_blocked_message(context(), gate_error())

    assert message.kind == "quality_gate"
    assert "Quality gate 'raw_flights' blocked etl.extract [flights]" in message.text
    assert "column_in_dataframe:sched_dep_time (table-level)" in message.text
    assert "dep_delay:in_range: 12 rows" in message.text
    assert "2 failed checks, 12 rows broke row-level checks" in message.text
    assert "nothing downstream runs" in message.text
    assert "tasks/extract/mapped/2" in message.text
    assert "Quality gate 'raw_flights' blocked data" in str(message.blocks)


def test_failure_callback_tells_a_blocked_gate_from_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_sends(monkeypatch)

    alerts.TaskFailureAlert()(context(wrapped(gate_error())))
    alerts.TaskFailureAlert()(context(RuntimeError("MLflow is down")))
    alerts.TaskFailureAlert()(context(None))  # the task process died: the dag-processor runs the callback

    assert [m.kind for m in sent] == ["quality_gate", "task_failure", "task_failure"]
    assert "raw_flights" in sent[0].text and "RuntimeError: MLflow is down" in sent[1].text
    assert "no error details" in sent[2].text


def test_default_args_attach_the_callbacks() -> None:
    args = tasks.default_args()

    assert any(isinstance(cb, alerts.TaskFailureAlert) for cb in args["on_failure_callback"])
    assert tasks.prepare_task_process in args["on_execute_callback"]


def test_a_starting_task_protects_sentry_and_resolves_lake_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.mlpipeline.data import lake

    calls = []
    monkeypatch.setattr(sentry_hooks, "protect_sentry_events", lambda context=None: calls.append("sentry"))
    monkeypatch.setattr(tasks, "protect_sentry_events", lambda context=None: calls.append("sentry"))
    monkeypatch.setattr(lake, "_resolvers", [])

    tasks.prepare_task_process({})

    assert calls == ["sentry"]
    assert lake._resolvers  # MLP_LAKE_CONN_ID now resolves through Airflow connections


def test_dag_failure_alert_only_for_reasons_of_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_sends(monkeypatch)
    base = {"dag": SimpleNamespace(dag_id="train", dagrun_timeout=dt.timedelta(hours=2)), "run_id": "scheduled__x"}

    alerts.DagFailureAlert()({**base, "reason": "task_failure"})
    alerts.DagFailureAlert()({**base, "reason": "timed_out"})
    alerts.DagFailureAlert()({**base, "reason": "all_tasks_deadlocked"})

    assert [m.kind for m in sent] == ["dag_failure", "dag_failure"]
    assert sent[0].text.startswith(
        ":hourglass: DAG run timed out: train, run scheduled__x: still running after its dagrun_timeout of 2 h."
    )
    assert "http://airflow.test:8080/dags/train/runs/scheduled__x" in sent[0].text
    assert sent[1].text.startswith(":red_circle: DAG run deadlocked: train, run scheduled__x: no task can run")


def _timed_out_request(dag_id: str, run_id: str, last_task: str | None) -> Any:
    """The callback request the scheduler sends the dag-processor when ``dagrun_timeout`` passed
    (``SchedulerJobRunner._schedule_dag_run``: ``reason="timed_out"``, the last unfinished task as ``last_ti``)."""
    import uuid

    from airflow.api_fastapi.execution_api.datamodels.taskinstance import DagRun, TaskInstance
    from airflow.callbacks.callback_requests import DagCallbackRequest, DagRunContext

    start = dt.datetime(2026, 7, 1, 0, 0, 5, tzinfo=dt.UTC)
    run = DagRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=start,
        start_date=start,
        end_date=start + dt.timedelta(minutes=31),
        run_type="asset_triggered",
        state="failed",
        consumed_asset_events=[],
        partition_key=None,
    )
    last_ti = None
    if last_task:
        last_ti = TaskInstance(
            id=uuid.uuid4(), task_id=last_task, dag_id=dag_id, run_id=run_id, try_number=1, dag_version_id=uuid.uuid4()
        )
    return DagCallbackRequest(
        filepath=f"{dag_id}.py",
        dag_id=dag_id,
        run_id=run_id,
        bundle_name="dags-folder",
        bundle_version=None,
        context_from_server=DagRunContext(dag_run=run, last_ti=last_ti),
        is_failure_callback=True,
        msg="timed_out",
    )


@pytest.mark.parametrize("last_task", ["verify_live_service", None], ids=["last-task", "minimal-context"])
def test_a_timed_out_run_alerts_through_airflows_own_dag_callback(
    monkeypatch: pytest.MonkeyPatch, last_task: str | None
) -> None:
    """The real deploy DAG, its callbacks run by the dag-processor's own code on a timeout's request.

    With a last unfinished task the processor passes that task's full template context; without one
    only ``dag``, ``run_id`` and ``reason``. Either way Slack hears that the run timed out, after which
    bound, and where it stopped.
    """
    import structlog
    from airflow.dag_processing.dagbag import DagBag
    from airflow.dag_processing.processor import _execute_dag_callbacks

    sent = capture_sends(monkeypatch)
    runs: list[tuple[str, str]] = []
    monkeypatch.setattr(pipeline_metrics, "record_dag_run", lambda dag_id, state, **kw: runs.append((dag_id, state)))
    bag = DagBag(dag_folder=str(DAGS / "deploy.py"))
    run_id = "asset_triggered__2026-07-01T00:00:00+00:00"

    _execute_dag_callbacks(bag, _timed_out_request("deploy", run_id, last_task), structlog.get_logger())

    assert [m.kind for m in sent] == ["dag_failure"]
    text = sent[0].text
    assert text.startswith(
        f":hourglass: DAG run timed out: deploy, run {run_id}: still running after its dagrun_timeout of 30 min"
    )
    assert "Airflow failed the run and marked its unfinished tasks skipped" in text
    if last_task:
        assert ", started 2026-07-01 00:00 UTC." in text
        assert "the last of them to start was verify_live_service." in text
        assert "`verify_live_service`" in str(sent[0].blocks)
    assert text.endswith(
        "\nRun: http://airflow.test:8080/dags/deploy/runs/asset_triggered__2026-07-01T00%3A00%3A00%2B00%3A00"
    )
    assert runs == [("deploy", "failed")], "the failed run is pushed as a metric too"


def test_promotion_message_compares_old_and_new() -> None:
    message = slack_messages.promotion_message(SERVED, APPROVED_EXTRA)

    assert message.kind == "promotion"
    assert "Model promoted: flight_delay v7 is now champion (was v6)" in message.text
    assert "v7 0.6403 vs v6 0.6310 (+0.0093), baseline 0.5000" in message.text
    assert "roc_auc 0.640, pr_auc 0.331, log_loss 0.521, brier 0.170, f1 0.403" in message.text
    assert "beats the champion" in message.text
    assert "20 canary records" in message.text
    assert "random_forest" in str(message.blocks) and "md5-2c41e0" in str(message.blocks)


def test_promotion_message_of_a_first_model_and_of_a_manual_rollback() -> None:
    first = {
        **APPROVED_EXTRA,
        "previous_champion": None,
        "decision": {**APPROVED_EXTRA["decision"], "champion_score": None},
    }

    assert "(was none (first model))" in slack_messages.promotion_message({**SERVED, "previous": None}, first).text
    assert "v7 0.6403 vs no champion" in slack_messages.promotion_message({**SERVED, "previous": None}, first).text
    rollback = slack_messages.promotion_message({"version": "5", "previous": "7"}, None)
    assert "v5 is now champion (was v7)" in rollback.text and "manual deploy or rollback" in rollback.text


def test_drift_message() -> None:
    summary = {
        "dataset": "feature_data",
        "drift_share": 0.4,
        "drifted_features": {"dep_hour": 0.001, "temp": 0.02},
        "n_features": 5,
        "threshold": 0.3,
        "reference": "2026-05-01..2026-05-31",
        "current": "2026-06-01..2026-06-07",
        "report_uri": "file:///lake/monitoring/drift/2026-06-07.html",
    }

    message = slack_messages.drift_message(summary)

    assert message.kind == "drift"
    assert "Data drift in feature_data: 40% of features drifted (2 of 5), threshold 0.30" in message.text
    assert "dep_hour (0.001), temp (0.020)" in message.text
    assert "Report: file:///lake/monitoring/drift/2026-06-07.html" in message.text
    assert "Report: `file:///lake/monitoring/drift/2026-06-07.html`" in str(message.blocks)
    linked = slack_messages.drift_message({**summary, "report_uri": "https://reports.test/d.html"})
    assert "<https://reports.test/d.html|Open the drift report>" in str(linked.blocks)


def test_drift_message_reads_the_monitor_dags_summary() -> None:
    """What dags/monitor.py passes: one comparison's part of drift.monitor()'s summary, plus reasons."""
    part = {
        "rows": 4512,
        "drift_share": 0.375,
        "drifted_features": ["dep_hour", "temp", "wind_speed"],
        "scores": {
            "dep_hour": 0.31,
            "temp": 0.27,
            "wind_speed": 0.22,
            "distance": 0.01,
            **{f"f{i}": 0.0 for i in range(4)},
        },
        "report_uri": "s3://lake/monitoring/date=2026-07-01/drift-new_partitions.html",
    }
    reasons = ["new_partitions: 3 of 8 features drifted (38% >= 30%): dep_hour, temp, wind_speed"]

    message = slack_messages.drift_message({**part, "reasons": reasons, "dag_id": "monitor"})

    assert "38% of features drifted (3 of 8)" in message.text
    assert "dep_hour (0.310), temp (0.270), wind_speed (0.220)" in message.text
    assert "Reason: new_partitions: 3 of 8 features drifted" in message.text
    assert "Report: s3://lake/monitoring/date=2026-07-01/drift-new_partitions.html" in message.text
    assert "4512" in str(message.blocks) and "`monitor`" in str(message.blocks)


def test_drift_message_reads_an_evidently_style_summary() -> None:
    summary = {
        "share_of_drifted_columns": 0.25,
        "number_of_columns": 4,
        "drift_by_columns": {"temp": {"drift_detected": True, "drift_score": 0.01}, "wind": {"drift_detected": False}},
    }

    text = slack_messages.drift_message(summary).text

    assert "25% of features drifted (1 of 4)" in text and "temp (0.010)" in text and "wind" not in text


# ------------------------------------------------------------------------------ no connection
def test_without_connection_alerts_are_skipped_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    results = [
        alerts.send_slack(slack_messages.task_failure_message(context(ValueError("x")))),
        alerts.notify_drift({"drift_share": 0.5}),
        alerts.notify_promotion(SERVED),
    ]

    assert results == [False, False, False]
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "no usable Airflow connection 'slack_default'" in records[0].getMessage()


def test_slack_turned_off_is_one_log_line(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MLP_SLACK_CONN_ID", "none")
    get_settings.cache_clear()
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    assert not alerts.notify_drift({"drift_share": 0.5})
    assert not alerts.notify_drift({"drift_share": 0.6})
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "Slack alerts are off (MLP_SLACK_CONN_ID is empty); not sending drift"
    ]


def test_a_connection_without_webhook_url_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", '{"conn_type": "slackwebhook"}')

    assert alerts.notify_drift({"drift_share": 0.5}) is False


# ---------------------------------------------------------------------------------- outages
def test_slack_500_is_logged_not_raised(stub: SlackStub, caplog: pytest.LogCaptureFixture) -> None:
    stub.mode = "error"
    caplog.set_level(logging.WARNING, logger=LOGGER)

    started = time.monotonic()
    assert alerts.notify_drift({"drift_share": 0.5}) is False
    assert time.monotonic() - started < 3

    assert len(stub.posts) == 1, "one attempt, no retry"
    assert any("not sent" in r.getMessage() and "500" in r.getMessage() for r in caplog.records)


def test_closed_port_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = SlackStub().start()
    dead.stop()  # nothing listens on that port any more
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", dead.connection_json())

    started = time.monotonic()
    assert alerts.notify_drift({"drift_share": 0.5}) is False
    assert time.monotonic() - started < 3


def test_a_webhook_that_never_answers_costs_at_most_the_timeout(
    stub: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.mode, stub.delay = "slow", 30
    monkeypatch.setenv("MLP_ALERT_TIMEOUT_S", "2")
    get_settings.cache_clear()
    alerts.send_slack(slack_messages.SlackMessage("warm-up", "imports and connection lookup are not timed"))
    stub.posts.clear()

    started = time.monotonic()
    alerts.TaskFailureAlert()(context(wrapped(gate_error())))  # the full callback path, as Airflow calls it
    elapsed = time.monotonic() - started

    assert elapsed < 2 + 1.5, f"the callback took {elapsed:.1f}s"
    assert len(stub.posts) == 1 and "raw_flights" in stub.posts[0].text, "the alert was attempted"


# --------------------------------------------------------------- the real notifier, real HTTP
def test_real_notifier_posts_the_gate_message(stub: SlackStub) -> None:
    alerts.TaskFailureAlert()(context(wrapped(gate_error())))

    (post,) = stub.posts
    assert post.path == "/services/T0/B0/X"
    assert post.headers["Content-Type"].startswith("application/json")
    payload = post.payload
    assert payload["unfurl_links"] is False
    assert "Quality gate 'raw_flights' blocked etl.extract [flights]" in payload["text"]
    assert "column_in_dataframe:sched_dep_time (table-level)" in payload["text"]
    assert payload["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Quality gate 'raw_flights' blocked data", "emoji": True},
    }
    assert "`dep_delay:in_range: 12 rows`" in str(payload["blocks"])


def test_real_notifier_posts_the_promotion_from_the_deploy_context(stub: SlackStub) -> None:
    older = {**APPROVED_EXTRA, "version": "5"}
    events = [
        SimpleNamespace(extra=older, timestamp=dt.datetime(2026, 7, 1, tzinfo=dt.UTC)),
        SimpleNamespace(extra=APPROVED_EXTRA, timestamp=dt.datetime(2026, 7, 2, tzinfo=dt.UTC)),
    ]

    assert alerts.notify_promotion(SERVED, {"triggering_asset_events": {APPROVED_MODEL: events}}) is True

    text = stub.posts[0].payload["text"]
    assert "flight_delay v7 is now champion (was v6)" in text
    assert "v7 0.6403 vs v6 0.6310 (+0.0093)" in text
    assert "roc_auc 0.640" in text


def test_real_notifier_posts_drift(stub: SlackStub) -> None:
    assert alerts.notify_drift({"drift_share": 0.5, "drifted_features": ["temp"], "report_uri": "s3://b/r.html"})

    payload = stub.posts[0].payload
    assert "50% of features drifted" in payload["text"] and "temp" in payload["text"]
    assert "s3://b/r.html" in str(payload["blocks"])


def test_error_text_is_not_rendered_as_a_template(stub: SlackStub) -> None:
    alerts.TaskFailureAlert()(context(KeyError("{{ conn.slack_default.password }}")))

    assert "{{ conn.slack_default.password }}" in stub.posts[0].payload["text"]


# ---------------------------------------------------------------- Sentry scrubbing (both sides)
def test_known_secrets_come_from_settings_connections_and_secret_named_variables() -> None:
    from include.mlpipeline.core.settings import Settings
    from include.mlpipeline.telemetry.sentry import known_secrets

    environ = {
        "AIRFLOW_CONN_SLACK_DEFAULT": '{"conn_type": "slackwebhook", "password": "https://hooks.slack.com/x/y/z"}',
        "AIRFLOW_CONN_WAREHOUSE": "postgres://etl:p%40ss-word-1@db:5432/dwh",
        "AIRFLOW_CONN_S3": '{"conn_type": "aws", "extra": {"aws_secret_access_key": "s3-secret-value"}}',
        "AIRFLOW__CORE__FERNET_KEY": "fernet-key-value",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:db-password-9@pg/airflow",
        "AWS_ACCESS_KEY_ID": "AKIAIDENTIFIER",  # an identifier, not a secret
        "AIRFLOW__SENTRY__SENTRY_ON": "True",
        "MLP_TOKEN_LIMIT": "12",  # too short to be a secret worth scrubbing everywhere
        "HOME": "/root",
    }

    found = known_secrets(Settings(api_key="api-key-value"), environ)

    assert found == {
        "api-key-value",
        "https://hooks.slack.com/x/y/z",
        "p@ss-word-1",
        "s3-secret-value",
        "fernet-key-value",
        "db-password-9",
    }


def test_scrub_event_drops_credential_headers_and_known_values_everywhere() -> None:
    from include.mlpipeline.telemetry.sentry import FILTERED, scrub_event

    event = {
        "request": {
            "headers": {"X-API-Key": "k", "Authorization": "Bearer t", "Accept": "*/*"},
            "cookies": {"sid": "c"},
            "url": "http://api/predict?key=known-secret-1",
        },
        "exception": {
            "values": [
                {
                    "value": "failed with known-secret-1",
                    "stacktrace": {
                        "frames": [
                            {
                                "vars": {
                                    "scope": {"headers": [["b'cookie'", "b'sid=abc'"], ["b'accept'", "b'*/*'"]]},
                                    "password": "whatever",
                                    "note": "prefix known-secret-1-and-more",
                                }
                            }
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": "posting to known-secret-1"}]},
    }

    scrubbed = scrub_event(event, {"known-secret-1"})

    assert scrubbed["request"]["headers"] == {"X-API-Key": FILTERED, "Authorization": FILTERED, "Accept": "*/*"}
    assert "cookies" not in scrubbed["request"]
    assert scrubbed["request"]["url"] == f"http://api/predict?key={FILTERED}"
    frame = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]
    assert frame["scope"]["headers"] == [["b'cookie'", FILTERED], ["b'accept'", "b'*/*'"]]
    assert frame["password"] == FILTERED
    assert frame["note"] == f"prefix {FILTERED}-and-more"
    assert "known-secret-1" not in str(scrubbed)
