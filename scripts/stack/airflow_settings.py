"""Airflow settings derived from the pipeline's own variables, so one ``MLP_*`` setting drives both.

``MLP_SENTRY_DSN`` and ``MLP_STATSD_ADDRESS`` are what the pipeline and the API read; Airflow's
components need the same thing as ``[sentry]`` and ``[metrics]`` settings. The stack adds these to
every Airflow component's environment unless the same key is set explicitly.
"""

from __future__ import annotations

from include.mlpipeline.core.code_version import code_version

# The prefix monitoring/statsd/mapping.yml matches (airflow.dagrun..., airflow.ti...).
STATSD_PREFIX = "airflow"


def sentry_airflow_env(env: dict[str, str]) -> dict[str, str]:
    """Airflow's Sentry integration for task errors, from ``MLP_SENTRY_DSN`` when it is set.

    The API reads ``MLP_SENTRY_DSN`` itself. Airflow passes the other ``[sentry]`` keys to
    ``sentry_sdk.init``; ``before_send`` is left out on purpose: Airflow 3.3.2 hands it over as a string,
    which makes the SDK drop every event (the DAGs add the secret scrubbing themselves, see
    ``include/mlpipeline/orchestration/alerts.py``). Slack needs nothing here: ``MLP_SLACK_CONN_ID`` and
    ``AIRFLOW_CONN_SLACK_DEFAULT`` reach every component from the environment.
    """
    dsn = env.get("MLP_SENTRY_DSN")
    if not dsn:
        return {}
    return {
        "AIRFLOW__SENTRY__SENTRY_ON": "True",
        "AIRFLOW__SENTRY__SENTRY_DSN": dsn,
        "AIRFLOW__SENTRY__ENVIRONMENT": env.get("MLP_SENTRY_ENVIRONMENT") or "local",
        "AIRFLOW__SENTRY__RELEASE": code_version(),
    }


def statsd_airflow_env(env: dict[str, str]) -> dict[str, str]:
    """Airflow's StatsD metrics (``[metrics] statsd_*``), from ``MLP_STATSD_ADDRESS`` (host:port) when it is set.

    The names Airflow sends under the ``airflow`` prefix are what ``monitoring/statsd/mapping.yml``
    maps; the receiver is statsd_exporter or ``scripts/stack/statsd_bridge.py``.
    """
    address = (env.get("MLP_STATSD_ADDRESS") or "").strip()
    if not address or address.lower() in {"none", "null"}:
        return {}
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"MLP_STATSD_ADDRESS must be host:port, got {address!r}")
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": host,
        "AIRFLOW__METRICS__STATSD_PORT": port,
        "AIRFLOW__METRICS__STATSD_PREFIX": STATSD_PREFIX,
    }
