"""One typed settings object for the DAGs, the tasks, the prediction API and the tools.

Every field can be overridden by an environment variable named ``MLP_<FIELD>`` (upper case),
for example ``MLP_LAKE_URI=s3://my-bucket/lake``. Secrets (the API key, storage credentials)
come only from the environment or from Airflow connections, never from files in git.

Reading settings is cheap (environment only, no network, no database), so DAG files may call
:func:`get_settings` at parse time.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Pipeline settings; see the field descriptions (also rendered by ``python -m include.mlpipeline.settings``)."""

    model_config = SettingsConfigDict(env_prefix="MLP_", extra="ignore", frozen=True)

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

    # Training
    train_window_days: int = Field(60, ge=3, description="Feature partitions (days) in the training window.")
    validation_days: int = Field(
        5, ge=1, description="Last days of the window before the test days: threshold choice and model selection."
    )
    test_days: int = Field(5, ge=1, description="Last days of the window: held-out test set, never used to fit.")
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
        description="A challenger replaces the champion only if its test ROC AUC is higher by at least this.",
    )

    min_gain_over_baseline: float = Field(
        0.02,
        ge=0.0,
        description="Floor: a model is registered as promotable only if its test ROC AUC beats the "
        "trivial baseline's by at least this.",
    )

    # Prediction API
    api_url: str = Field("http://127.0.0.1:8000", description="Base URL of the prediction API (used by deploy).")
    api_key: SecretStr | None = Field(
        None, description="If set, /predict and /admin/* require it in the X-API-Key header."
    )
    api_max_batch: int = Field(1000, ge=1, description="Most flights (rows) one /predict request may carry.")
    api_max_body_bytes: int = Field(2_000_000, ge=1024, description="Largest accepted request body.")
    api_reload_interval_s: float = Field(
        30.0, gt=0, description="How often the API checks the registry alias for a newly promoted version."
    )
    api_registry_timeout_s: float = Field(
        15.0, gt=0, description="Timeout of one registry call from the API (it retries on its own schedule)."
    )
    deploy_timeout_s: float = Field(120.0, gt=0, description="How long deploy waits for the API to serve a version.")

    @field_validator("etl_schedule")
    @classmethod
    def _none_schedule(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in {"", "none", "null"} else value.strip()

    @field_validator("lake_uri", "mlflow_tracking_uri", "api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()


if __name__ == "__main__":  # pragma: no cover - a small CLI to show the effective settings
    import json
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger(__name__).info(json.dumps(get_settings().model_dump(mode="json"), indent=2, default=str))
