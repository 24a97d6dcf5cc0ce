"""`make run`'s stack configuration from the environment: SQLite by default, Postgres + Celery by settings."""

from __future__ import annotations

import pytest
from stack.config import celery_workers_from_text, local_config

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"
CELERY = {"MLP_STACK_CELERY_BROKER_URL": "redis://x"}


def test_default_is_sqlite_and_local_executor():
    config = local_config({})
    assert config.executor == "LocalExecutor"
    assert config.airflow_db_url is None
    assert config.mlflow_backend_uri is None
    assert config.celery_workers == ()


def test_postgres_and_celery_from_environment():
    config = local_config({
        "MLP_STACK_AIRFLOW_DB_URL": PG,
        "MLP_STACK_MLFLOW_BACKEND_URI": "postgresql://postgres@127.0.0.1:5432/mlflow",
        "MLP_STACK_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "MLP_TRAINING_QUEUE": "training",
    })  # fmt: skip
    assert config.executor == "CeleryExecutor"
    assert config.airflow_db_url == PG
    assert config.mlflow_backend_uri.endswith("/mlflow")
    assert config.celery_result_backend == "db+postgresql://postgres@127.0.0.1:5432/airflow"
    # One worker per queue unless told otherwise, so the training queue is never left without one.
    assert config.celery_workers == (("worker-default", "default"), ("worker-training", "training"))


def test_explicit_workers_with_several_queues():
    assert celery_workers_from_text("w1:default;training, w2:training") == (
        ("w1", "default,training"),
        ("w2", "training"),
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MLP_STACK_CELERY_BROKER_URL": "redis://x"}, "needs MLP_STACK_AIRFLOW_DB_URL on PostgreSQL"),
        (
            {"MLP_STACK_AIRFLOW_DB_URL": PG, **CELERY, "MLP_STACK_CELERY_WORKERS": "w"},
            "expected name:queue",
        ),
    ],
)
def test_bad_stack_settings_are_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        local_config(environ)
