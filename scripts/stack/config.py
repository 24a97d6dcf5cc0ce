"""What a stack is made of: where it keeps its state, which ports it uses, which backends it runs on.

:class:`StackConfig` describes one stack; :func:`local_config` is the one `make run` uses, and
``StackConfig.isolated`` gives the tests and benchmarks a stack on free ports beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_DAGS = ("etl", "features", "train", "deploy")


@dataclass
class StackConfig:
    """Where a stack keeps its state and which ports it uses."""

    state_dir: Path
    lake_uri: str
    airflow_port: int = 8080
    mlflow_port: int = 5000
    api_port: int = 8000
    worker_log_port: int = 8793
    trigger_log_port: int = 8794
    dvc_remote_url: str | None = None  # default: a folder in the state folder
    airflow_db_url: str | None = None  # default: SQLite in the state folder
    mlflow_backend_uri: str | None = None  # default: SQLite in the state folder
    executor: str = "LocalExecutor"
    parallelism: int = 8
    # CeleryExecutor only: the broker, where task results go, and the workers as (name, queues).
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    celery_workers: tuple[tuple[str, str], ...] = ()
    worker_concurrency: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    # Prometheus, a Pushgateway and the StatsD bridge beside the stack, when their binaries exist
    # (`make run`; the end-to-end tests start their own, see stack.monitoring.Monitoring).
    monitoring: bool = False
    prometheus_port: int = 9090
    pushgateway_port: int = 9091
    statsd_port: int = 9125
    statsd_http_port: int = 9102

    @classmethod
    def isolated(cls, state_dir: Path, **overrides: Any) -> StackConfig:
        """A stack on free ports with everything under ``state_dir`` (for tests and benchmarks)."""
        ports = {
            name: free_port()
            for name in ("airflow_port", "mlflow_port", "api_port", "worker_log_port", "trigger_log_port")
        }
        return cls(state_dir=state_dir, lake_uri=f"file://{state_dir}/lake", **{**ports, **overrides})

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def celery_workers_from_text(text: str) -> tuple[tuple[str, str], ...]:
    """``"worker-default:default,worker-training:training"`` -> ((name, queues), ...); queues split by ``;``."""
    workers = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, queues = item.partition(":")
        if not name or not queues:
            raise ValueError(f"MLP_STACK_CELERY_WORKERS: expected name:queue[;queue...], got {item!r}")
        workers.append((name, queues.replace(";", ",")))
    return tuple(workers)


def local_config(environ: dict[str, str] | None = None) -> StackConfig:
    """The configuration `make run` uses: state in .local/, the lake in data/lake, default ports.

    The production-like backends are a matter of environment, not code (docs/deployment.md,
    "Production-like stack"): ``MLP_STACK_AIRFLOW_DB_URL`` (SQLAlchemy URL of the metadata database),
    ``MLP_STACK_MLFLOW_BACKEND_URI`` (MLflow's backend store), and for the CeleryExecutor
    ``MLP_STACK_CELERY_BROKER_URL`` with ``MLP_STACK_CELERY_WORKERS`` (``name:queue,...``; the train
    DAG's candidates go to the queue named by ``MLP_TRAINING_QUEUE``). Unset, everything is SQLite
    and the LocalExecutor.
    """
    env = os.environ if environ is None else environ
    overrides: dict[str, Any] = {}
    if env.get("MLP_STACK_AIRFLOW_DB_URL"):
        overrides["airflow_db_url"] = env["MLP_STACK_AIRFLOW_DB_URL"]
    if env.get("MLP_STACK_MLFLOW_BACKEND_URI"):
        overrides["mlflow_backend_uri"] = env["MLP_STACK_MLFLOW_BACKEND_URI"]
    if env.get("MLP_STACK_CELERY_BROKER_URL"):
        if not overrides.get("airflow_db_url", "").startswith("postgresql"):
            raise ValueError("the CeleryExecutor needs MLP_STACK_AIRFLOW_DB_URL on PostgreSQL (not SQLite)")
        queue = env.get("MLP_TRAINING_QUEUE", "default")
        default_workers = "worker-default:default" + (f",worker-{queue}:{queue}" if queue != "default" else "")
        overrides.update(
            executor="CeleryExecutor",
            celery_broker_url=env["MLP_STACK_CELERY_BROKER_URL"],
            # Task states go to the metadata database (Celery's result backend on SQLAlchemy).
            celery_result_backend="db+" + overrides["airflow_db_url"].replace("+psycopg2", ""),
            celery_workers=celery_workers_from_text(env.get("MLP_STACK_CELERY_WORKERS", default_workers)),
        )
    return StackConfig(
        state_dir=ROOT / ".local",
        lake_uri=f"file://{ROOT}/data/lake",
        dvc_remote_url=str(ROOT / "data" / "dvc-remote"),
        monitoring=True,
        **overrides,
    )
