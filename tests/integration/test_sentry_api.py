"""Sentry for real: the FastAPI app sends a real envelope over HTTP to a local receiver on an unhandled
error, with the exception in it and no secret anywhere in the raw (decompressed) envelope bytes; and the
scrubbing added to a client Airflow's task integration started the way Airflow 3.3.2 starts it.

The receiver speaks the envelope protocol the SDK uses (``POST /api/1/envelope/``, gzip); nothing
is mocked between the app and the bytes on the wire.
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from include.mlpipeline.core.code_version import code_version
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.serving.app import create_app
from include.mlpipeline.telemetry import sentry as observability
from tests.support import SentryReceiver


@pytest.fixture
def receiver() -> Iterator[SentryReceiver]:
    with SentryReceiver() as server:
        yield server
    observability.shutdown_sentry()


@pytest.fixture
def known(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Secrets the process knows: the API key, a connection password, Airflow's own keys (via env)."""
    values = {
        "api_key": f"api-{secrets.token_urlsafe(18)}",
        "conn_password": f"conn-{secrets.token_urlsafe(18)}",
        "fernet_key": f"fernet-{secrets.token_urlsafe(24)}",
        "webhook": f"https://hooks.slack.com/services/T0/B0/{secrets.token_urlsafe(18)}",
    }
    monkeypatch.setenv("MLP_API_KEY", values["api_key"])
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", values["fernet_key"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps({"conn_type": "postgres", "host": "db", "login": "etl", "password": values["conn_password"]}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DEFAULT", json.dumps({"conn_type": "slackwebhook", "password": values["webhook"]})
    )
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def api_settings(receiver: SentryReceiver, tmp_path: Path, api_key: str) -> Settings:
    return Settings(
        api_key=api_key,
        sentry_dsn=receiver.dsn,
        sentry_environment="integration-test",
        mlflow_tracking_uri="http://127.0.0.1:9",  # no registry: the test route needs none
        lake_uri=f"file://{tmp_path}/lake",
        api_reload_interval_s=3600.0,
    )


def assert_no_secret(raw: bytes, values: dict[str, str]) -> None:
    assert raw, "nothing received"
    for name, value in values.items():
        assert value.encode() not in raw, f"{name} leaked into the envelope"


def test_unhandled_api_error_reaches_sentry_without_secrets(
    receiver: SentryReceiver, known: dict[str, str], tmp_path: Path
) -> None:
    settings = api_settings(receiver, tmp_path, known["api_key"])
    assert observability.init_sentry(settings)  # what create_app does once the lead wires it; idempotent
    app = create_app(settings)
    password = known["conn_password"]

    @app.get("/boom")
    def boom(request: Request) -> None:
        key = request.headers["x-api-key"]  # a local variable holding the secret: frames carry locals
        url = f"postgresql://etl:{password}@db/warehouse"
        raise RuntimeError(f"scoring failed for key {key} on {url}")

    # Credentials the process does not know as secrets: scrubbed for the header they came in.
    bearer, session = f"bearer-{secrets.token_urlsafe(18)}", f"session-{secrets.token_urlsafe(18)}"
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: the route needs no model
    response = client.get(
        "/boom?debug=1",
        headers={"X-API-Key": known["api_key"], "Authorization": f"Bearer {bearer}", "Cookie": f"sid={session}"},
    )
    assert response.status_code == 500
    import sentry_sdk

    sentry_sdk.flush(timeout=10)
    events = receiver.wait_for_events(1, timeout=20)

    assert not receiver.errors, receiver.errors
    assert receiver.envelopes[0].path == "/api/1/envelope/"
    assert receiver.envelopes[0].headers.get("Content-Encoding") == "gzip", "a real, compressed envelope"
    event = events[-1]
    (exception,) = [e for e in event["exception"]["values"] if e["type"] == "RuntimeError"]
    assert exception["value"].startswith("scoring failed for key [Filtered] on postgresql://etl:[Filtered]@db")
    assert any(frame.get("function") == "boom" for frame in exception["stacktrace"]["frames"])
    assert event["environment"] == "integration-test"
    assert event["release"] == code_version()
    assert event["tags"]["service"] == "prediction-api"
    assert event["request"]["url"].endswith("/boom")
    headers = {k.lower(): v for k, v in event["request"]["headers"].items()}
    assert headers["x-api-key"] == headers["authorization"] == "[Filtered]"
    assert headers.get("cookie") in {None, "[Filtered]"}
    assert_no_secret(receiver.raw, {**known, "bearer token": bearer, "session cookie": session})


def test_api_client_sends_no_default_pii_and_keeps_the_sdks_scrubber(
    receiver: SentryReceiver, known: dict[str, str], tmp_path: Path
) -> None:
    """Without the deprecated send_default_pii (a DeprecationWarning, an error under pytest's filters)
    the SDK still sends no default PII and keeps its EventScrubber (data_collection would drop it)."""
    import warnings

    import sentry_sdk

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert observability.init_sentry(api_settings(receiver, tmp_path, known["api_key"]))

    client = sentry_sdk.get_client()
    assert client.should_send_default_pii() is False
    assert client.options["event_scrubber"] is not None
    assert client.options["data_collection"]["user_info"] is False


def test_api_without_dsn_has_no_sentry(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    observability._state["logged_off"] = False
    caplog.set_level(logging.INFO, logger=observability.__name__)

    assert observability.init_sentry(Settings(lake_uri=f"file://{tmp_path}/lake", sentry_dsn=None)) is False
    assert observability.init_sentry(Settings(lake_uri=f"file://{tmp_path}/lake", sentry_dsn=None)) is False

    assert [r.getMessage() for r in caplog.records] == ["Sentry is off for the API (MLP_SENTRY_DSN is not set)"]


def test_create_app_initializes_sentry(receiver: SentryReceiver, known: dict[str, str], tmp_path: Path) -> None:
    """Once app.py calls observability.init_sentry (the lead's two lines), create_app alone turns Sentry on."""
    import include.mlpipeline.serving.app as app_module

    if "init_sentry" not in inspect.getsource(app_module.create_app):
        pytest.skip("create_app does not call observability.init_sentry yet (see the alerts/observability report)")
    import sentry_sdk

    create_app(api_settings(receiver, tmp_path, known["api_key"]))

    assert sentry_sdk.get_client().is_active()
    assert sentry_sdk.get_client().options["environment"] == "integration-test"


def test_airflow_task_client_gets_the_scrubbing(receiver: SentryReceiver, known: dict[str, str]) -> None:
    """Airflow's task integration calls sentry_sdk.init with [sentry] options; a dotted-path before_send
    arrives as a string, which alone makes the SDK drop every event. protect_active_client (the
    DAGs' on_execute_callback) resolves it and adds the scrubbing."""
    import sentry_sdk

    sentry_sdk.init(dsn=receiver.dsn, before_send="json.loads", environment="airflow")  # as 3.3.2 does it
    try:
        raise ValueError(f"dropped: {known['fernet_key']}")
    except ValueError as error:
        sentry_sdk.capture_exception(error)
    sentry_sdk.flush(timeout=5)
    assert receiver.events == [], "a string before_send drops the event (why [sentry] before_send stays unset)"

    sentry_sdk.init(dsn=receiver.dsn, environment="airflow")
    assert observability.protect_active_client() is True
    assert observability.protect_active_client() is True, "idempotent"
    webhook = known["webhook"]
    try:
        raise ValueError(f"Slack webhook {webhook} refused; fernet {known['fernet_key']}")
    except ValueError as error:
        sentry_sdk.capture_exception(error)
    sentry_sdk.flush(timeout=5)

    (event,) = receiver.wait_for_events(1, timeout=10)
    assert event["exception"]["values"][-1]["value"] == "Slack webhook [Filtered] refused; fernet [Filtered]"
    assert_no_secret(receiver.raw, known)
