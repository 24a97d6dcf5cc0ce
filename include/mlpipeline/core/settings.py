"""One typed settings object for the DAGs, the tasks, the prediction API and the tools.

Every field can be overridden by an environment variable named ``MLP_<FIELD>`` (upper case),
for example ``MLP_LAKE_URI=s3://my-bucket/lake``. Secrets (the API key, storage credentials)
come only from the environment or from Airflow connections, never from files in git.

Reading settings is cheap (environment only, no network, no database), so DAG files may call
:func:`get_settings` at parse time. That is also why this is a plain pydantic model with a small
environment loader rather than pydantic-settings: importing pydantic-settings costs about 200 ms,
ten times the parse time of a DAG file, and the dag-processor pays it on every parse.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from include.mlpipeline.core.split import PartSize

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _from_env_text(raw: str, annotation: Any) -> Any:
    """An environment string as a field value: JSON for dict and list fields, else the text itself
    (pydantic turns "35" into 35, "true" into True, and so on)."""
    kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if any(typing.get_origin(kind) in {dict, list} or kind in {dict, list} for kind in kinds):
        return json.loads(raw)
    return raw


class EnvSettings(BaseModel):
    """A settings model whose fields default to ``<env_prefix><FIELD>`` environment variables.

    Precedence: values passed to the constructor, then the environment, then the field defaults.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    env_prefix: ClassVar[str] = "MLP_"

    @model_validator(mode="before")
    @classmethod
    def _read_environment(cls, data: Any) -> Any:
        values = dict(data) if isinstance(data, dict) else {}
        for name, field in cls.model_fields.items():
            raw = os.environ.get(f"{cls.env_prefix}{name}".upper())
            if name not in values and raw is not None:
                values[name] = _from_env_text(raw, field.annotation)
        return values


class Settings(EnvSettings):
    """Pipeline settings; see the field descriptions (rendered by ``python -m include.mlpipeline.core.settings``)."""

    # What problem the generic machinery runs
    problem: str = Field(
        "include.flight_delay",
        description="Import path of the module that defines PROBLEM (a ProblemSpec): sources, schemas, "
        "features and target. Point it at your own module to retarget the template.",
    )

    # Orchestration
    etl_schedule: str | None = Field(
        "@daily",
        description="Schedule of the etl DAG: a cron preset or expression; empty or 'none' for trigger-only.",
    )
    etl_start_date: dt.date = Field(
        dt.date(2026, 1, 1),
        description="First day the etl schedule runs for. Backfills reach any date, so a later start date holds "
        "the schedule back while a backfill replays history (Airflow backfills only an unpaused DAG).",
    )

    training_queue: str = Field(
        "default",
        description="Celery queue of the training tasks (e.g. 'training', served by workers on bigger machines). "
        "Executors without queues ignore it.",
    )
    data_dagrun_timeout_min: float = Field(
        240.0,
        gt=0,
        description="dagrun_timeout of etl, features and batch_score, in minutes: a daily run takes minutes, a "
        "bootstrap or catch-up of a year over an hour on 2 cores. A run still going then is failed (its "
        "unfinished tasks skipped) and alerted on Slack. Raise it for runs of more than a year of days or much "
        "larger data.",
    )
    train_dagrun_timeout_min: float = Field(
        120.0,
        gt=0,
        description="dagrun_timeout of train, in minutes: minutes with the default window and no search. Raise it "
        "with MLP_SEARCH_TRIALS (each candidate's search may take MLP_SEARCH_TIMEOUT_S) or a much larger window.",
    )

    # Data lake
    lake_uri: str = Field(
        f"file://{PROJECT_ROOT}/data/lake",
        description="Root of the Parquet data lake: file://, s3:// or gs:// (any fsspec URL).",
    )
    lake_storage_options: dict = Field(
        default_factory=dict,
        description='fsspec storage options for the lake as JSON, e.g. {"endpoint_url": "http://..."}. '
        "Keep credentials out of here: use the provider's environment variables or an Airflow connection.",
    )
    lake_conn_id: str | None = Field(
        None,
        description="Airflow connection (aws or google_cloud_platform) whose credentials the lake uses; "
        "resolved when a task runs, merged over lake_storage_options.",
    )
    bootstrap_days: int = Field(
        35,
        ge=0,
        description="When the lake is empty, the first ETL run also loads this many days before its "
        "logical date, so a fresh install can train without a manual backfill.",
    )
    max_parallel_partitions: int = Field(
        4, ge=1, description="At most this many parallel tasks per stage when a run processes many days."
    )
    quarantine_max_share: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Largest share of rows a quality gate may quarantine before it fails the partition.",
    )

    # Data versions (DVC)
    dvc_enabled: bool = Field(True, description="Push every published clean and feature partition to the DVC remote.")
    dvc_workdir: str = Field(
        str(PROJECT_ROOT / ".local" / "dvc"),
        description="Local DVC workspace (a DVC repository without git) used to stage and push partitions.",
    )
    dvc_remote_url: str = Field(
        str(PROJECT_ROOT / "data" / "dvc-remote"),
        description="DVC remote holding every partition version: a local folder, s3://... or gs://...",
    )
    dvc_remote_options: dict = Field(
        default_factory=dict,
        description='Extra DVC remote options as JSON, e.g. {"endpointurl": "http://minio:9000"} for S3.',
    )

    # Training
    train_window_days: int | None = Field(
        None,
        ge=3,
        description="Newest feature partitions (days) a training run uses, for data with a time axis "
        "(default: the problem's split; none there: every partition).",
    )
    validation_size: str | None = Field(
        None,
        description="Size of the validation part, which chooses the threshold, the best candidate and the search's "
        "trials: '5 days', '500 rows' or '15%' (default: the problem's split).",
    )
    test_size: str | None = Field(
        None,
        description="Size of the held-out test part the promotion gate scores: '5 days', '500 rows' or '15%' "
        "(default: the problem's split).",
    )
    search_trials: int = Field(
        0,
        ge=0,
        description="Hyperparameter search trials per candidate (Optuna, seeded; each trial a nested MLflow run); "
        "0: no search, every candidate trains with its default parameters.",
    )
    search_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Longest time one candidate's search may take; the trials started by then finish "
        "(with a timeout the number of trials, hence the result, can vary between runs).",
    )
    train_max_rows: int = Field(
        1_000_000,
        ge=1000,
        description="Most rows a training run loads from its window (train, validation and test days together). "
        "A window holding more is sampled as it is read, partition by partition: every day keeps the same share "
        "of its rows (at least one), chosen by a seeded hash of the key columns, so the same window always gives "
        "the same rows and memory is bounded by this number instead of by the window.",
    )
    random_seed: int = Field(42, description="Seed for every random step, so retraining is reproducible.")

    # MLflow
    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server URL.")
    experiment_name: str | None = Field(None, description="MLflow experiment; defaults to the problem name.")
    registered_model_name: str | None = Field(
        None, description="Registered model name in the MLflow registry; defaults to the problem name."
    )
    champion_alias: str = Field("champion", description="Registry alias the API serves.")
    challenger_alias: str = Field("challenger", description="Registry alias of the newest trained candidate.")
    promotion_min_gain: float = Field(
        0.002,
        ge=0.0,
        description="A challenger replaces the champion only if its test score (the problem's primary metric, e.g. "
        "ROC AUC) is better by at least this.",
    )

    min_gain_over_baseline: float = Field(
        0.02,
        ge=0.0,
        description="Floor: a model is registered as promotable only if its test score (the primary metric) beats "
        "the trivial baseline's by at least this.",
    )

    # Prediction API
    api_url: str = Field("http://127.0.0.1:8000", description="Base URL of the prediction API (used by deploy).")
    api_key: SecretStr | None = Field(
        None, description="If set, /predict and /admin/* require it in the X-API-Key header."
    )
    api_max_batch: int = Field(1000, ge=1, description="Most flights (rows) one /predict request may carry.")
    api_max_body_bytes: int = Field(2_000_000, ge=1024, description="Largest accepted request body.")
    api_native_threads: int = Field(
        1,
        ge=1,
        description="Threads each API process lets numpy's BLAS and OpenMP use; scale with processes instead "
        "(more let idle threads spin: measured 1.7 cores busy for the throughput of 1.0).",
    )
    api_reload_interval_s: float = Field(
        30.0, gt=0, description="How often the API checks the registry alias for a newly promoted version."
    )
    api_registry_timeout_s: float = Field(
        15.0, gt=0, description="Timeout of one registry call from the API (it retries on its own schedule)."
    )
    # A/B testing and the prediction log
    ab_challenger_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of traffic the API sends to the challenger alias (sticky per record key); 0 = off.",
    )
    prediction_log_enabled: bool = Field(
        True, description="Log every prediction (variant, version, features, probability) to the lake."
    )
    prediction_log_flush_s: float = Field(5.0, gt=0, description="Longest time a logged prediction waits in memory.")
    ab_lookback_days: int = Field(14, ge=1, description="Days of logged predictions an A/B evaluation looks at.")
    ab_min_samples: int = Field(
        300, ge=10, description="Predictions with known outcomes each variant needs before the A/B test decides."
    )
    ab_alpha: float = Field(
        0.05, gt=0, lt=1, description="Significance level of the A/B test (one-sided Welch t-test on log loss)."
    )
    # Shadow deployment (serving/shadow.py)
    shadow_enabled: bool = Field(
        False,
        description="The challenger alias also scores every request off the response path, its answers logged as "
        "variant 'shadow' beside the champion's (same request and record id); callers get the champion's.",
    )
    shadow_queue_size: int = Field(
        64, ge=1, description="Scoring passes waiting for the shadow model at most; more are dropped (and counted)."
    )
    shadow_max_age_s: float = Field(
        2.0, gt=0, description="Shadow work older than this when the worker reaches it is dropped (and counted)."
    )
    # Batch scoring
    batch_scoring_enabled: bool = Field(
        True,
        description="The batch_score DAG scores every new clean partition with the champion (the API's feature "
        "code and model), into batch_predictions/, so live metrics exist without traffic; false: its runs skip.",
    )
    batch_lookback_days: int = Field(
        7,
        ge=1,
        description="Newest clean partitions batch_score re-scores when a new champion is served (a snapshot "
        "problem: its newest load, the whole table).",
    )
    # Monitoring
    drift_share_threshold: float = Field(
        0.3, gt=0, le=1, description="Share of drifted features (Evidently) at which the monitor requests a retrain."
    )
    drift_window_days: int = Field(7, ge=1, description="Newest days the monitor compares with the training data.")
    live_auc_drop: float = Field(
        0.05, gt=0, le=1, description="Drop of live ROC AUC below the offline test ROC AUC that requests a retrain."
    )
    live_loss_rise: float = Field(
        0.10,
        gt=0,
        description="Multiclass and regression models: relative rise of the live mean per-prediction loss over "
        "the offline test loss that requests a retrain (also beyond 1.645 standard errors).",
    )
    retrain_window_days: int = Field(
        30, ge=3, description="Window of a drift-requested retrain: shorter than usual, to follow the change."
    )
    deploy_timeout_s: float = Field(120.0, gt=0, description="How long deploy waits for the API to serve a version.")
    deploy_approval_required: bool = Field(
        False,
        description="deploy waits for a person to approve each version in Airflow's UI (Required Actions) "
        "before moving the champion alias; false: it deploys at once, as without the step.",
    )
    deploy_approval_timeout_min: float = Field(
        1440.0, gt=0, description="How long deploy waits for that answer before the timeout policy decides."
    )
    deploy_approval_on_timeout: Literal["reject", "approve"] = Field(
        "reject",
        description="What an unanswered approval becomes: reject (the champion stays; nobody vouched for the "
        "candidate) or approve (deploy unless someone objects in time).",
    )

    # Alerts (Slack) and error tracking (Sentry)
    slack_conn_id: str | None = Field(
        "slack_default",
        description="Airflow connection (type slackwebhook, the webhook URL as password) that failure, "
        "quality-gate, promotion and drift alerts go to; empty or 'none' turns Slack alerts off. Without "
        "that connection alerts are skipped (logged once per process).",
    )
    alert_timeout_s: float = Field(
        5.0, gt=0, le=30, description="Longest time one Slack alert may take; an outage never delays the pipeline more."
    )
    sentry_dsn: SecretStr | None = Field(
        None,
        description="Sentry DSN: errors of the prediction API, and (through scripts/stack/airflow_settings.py) of "
        "Airflow tasks, go there. Unset: no Sentry.",
    )
    sentry_environment: str = Field("local", description="Sentry environment tag (e.g. local, staging, production).")

    # Pipeline metrics (Prometheus)
    pushgateway_url: str | None = Field(
        None,
        description="Prometheus Pushgateway the pipeline pushes its own metrics to (rows, quality gates, model "
        "metrics, drift, A/B results, served version, DAG run health), e.g. http://127.0.0.1:9091. Unset: no "
        "metrics are pushed. An unreachable Pushgateway never fails a task.",
    )
    pushgateway_timeout_s: float = Field(
        2.0, gt=0, le=30, description="Longest time one push to the Pushgateway may take."
    )
    statsd_address: str | None = Field(
        None,
        description="host:port of the StatsD server (statsd_exporter, or the local bridge) that Airflow sends its "
        "own metrics to; scripts/stack/airflow_settings.py turns it into Airflow's [metrics] statsd_* settings. "
        "Under astro dev start, docker-compose.override.yml sets AIRFLOW__METRICS__* itself.",
    )

    @field_validator("validation_size", "test_size")
    @classmethod
    def _part_size(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        PartSize.parse(value)  # a clear error now rather than at the first training run
        return value.strip()

    @field_validator("pushgateway_url", "statsd_address")
    @classmethod
    def _optional_address(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in {"", "none", "null"} else value.strip().rstrip("/")

    @field_validator("etl_schedule")
    @classmethod
    def _none_schedule(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in {"", "none", "null"} else value.strip()

    @field_validator("deploy_approval_on_timeout", mode="before")
    @classmethod
    def _policy_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("slack_conn_id")
    @classmethod
    def _none_conn_id(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in {"", "none", "null"} else value.strip()

    @field_validator("lake_uri", "mlflow_tracking_uri", "api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    @property
    def sentry_dsn_value(self) -> str | None:
        return self.sentry_dsn.get_secret_value() if self.sentry_dsn else None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()


if __name__ == "__main__":  # pragma: no cover - a small CLI to show the effective settings
    import json
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger(__name__).info(json.dumps(get_settings().model_dump(mode="json"), indent=2, default=str))
