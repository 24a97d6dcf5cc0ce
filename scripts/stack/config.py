"""What a stack is made of: where it keeps its state, which ports it uses, which backends it runs on.

:class:`StackConfig` describes one stack; :func:`local_config` is the one `make run` uses, and
``StackConfig.isolated`` gives the tests and benchmarks a stack on free ports beside it.

`make run`'s ports and state folder are settings (:data:`PORT_SETTINGS`, ``MLP_STACK_STATE_DIR``), so a
second `make run` can start beside a first one: give it other ports and its own state folder.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.processes import free_port, port_in_use

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_DAGS = ("etl", "features", "train", "deploy")
UNPAUSED_DAGS = (*PIPELINE_DAGS, "batch_score", "monitor", "ab_test")
"""The DAGs `make run` unpauses: the chain, batch scoring (the champion's live metrics need no traffic),
the drift monitor and the A/B test (traffic_replay, a simulation of callers, stays paused)."""
DEFAULT_STATE_DIR = ROOT / ".local"


@dataclass(frozen=True)
class PortSetting:
    """One port of `make run`: the :class:`StackConfig` field, its variable, what listens there, its default."""

    field: str
    variable: str
    serves: str
    default: int
    protocol: str = "tcp"


PORT_SETTINGS: tuple[PortSetting, ...] = (
    PortSetting("airflow_port", "MLP_STACK_AIRFLOW_PORT", "Airflow UI and API", 8080),
    PortSetting("mlflow_port", "MLP_STACK_MLFLOW_PORT", "MLflow", 5000),
    PortSetting("api_port", "MLP_STACK_API_PORT", "prediction API", 8000),
    PortSetting("worker_log_port", "MLP_STACK_WORKER_LOG_PORT", "Airflow worker log server", 8793),
    PortSetting("trigger_log_port", "MLP_STACK_TRIGGER_LOG_PORT", "Airflow triggerer log server", 8794),
    PortSetting("prometheus_port", "MLP_STACK_PROMETHEUS_PORT", "Prometheus", 9090),
    PortSetting("pushgateway_port", "MLP_STACK_PUSHGATEWAY_PORT", "Pushgateway", 9091),
    PortSetting("statsd_port", "MLP_STACK_STATSD_PORT", "StatsD bridge, UDP", 9125, protocol="udp"),
    PortSetting("statsd_http_port", "MLP_STACK_STATSD_HTTP_PORT", "StatsD bridge metrics", 9102),
)
PORTS = {setting.field: setting for setting in PORT_SETTINGS}
# The ports Stack.check_ports refuses to start on when taken, and the ones that only turn metrics off.
STACK_PORTS = ("airflow_port", "mlflow_port", "api_port", "worker_log_port", "trigger_log_port")
MONITORING_PORTS = ("prometheus_port", "pushgateway_port", "statsd_port", "statsd_http_port")


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
        ports = {name: free_port() for name in STACK_PORTS}
        return cls(state_dir=state_dir, lake_uri=f"file://{state_dir}/lake", **{**ports, **overrides})

    def ports(self, fields: tuple[str, ...] = tuple(PORTS)) -> dict[str, int]:
        """The ports of ``fields`` (default: all of them), by field name."""
        return {name: getattr(self, name) for name in fields}

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


def port_taken(port: int, protocol: str = "tcp") -> bool:
    """Whether ``port`` is held on 127.0.0.1: TCP, it answers or cannot be bound; UDP, it cannot be bound.

    Binding uses ``SO_REUSEADDR`` for TCP, so connections of a stack that just stopped (TIME_WAIT) do
    not count; only "address in use" counts (a port below 1024 without root is not "taken").
    """
    if protocol == "tcp" and port_in_use(port):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM) as sock:
        if protocol == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def busy_ports(ports: Mapping[str, int]) -> list[str]:
    """One message per taken port of ``ports`` (:class:`StackConfig` field -> port), naming the setting that moves it.

    >>> busy_ports({"airflow_port": 8080})  # doctest: +SKIP
    ['port 8080 is in use (Airflow UI and API; set MLP_STACK_AIRFLOW_PORT to a free port)']
    """
    return [
        f"port {port} is in use ({PORTS[name].serves}; set {PORTS[name].variable} to a free port)"
        for name, port in ports.items()
        if port_taken(port, PORTS[name].protocol)
    ]


def celery_workers_from_text(text: str) -> tuple[tuple[str, str], ...]:
    """``"worker-default:default,worker-training:training"`` -> ((name, queues), ...); queues split by ``;``."""
    workers = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, queues = item.partition(":")
        if not name or not queues:
            raise ValueError(f"MLP_STACK_CELERY_WORKERS: expected name:queue[;queue...], got {item!r}")
        workers.append((name, queues.replace(";", ",")))
    return tuple(workers)


def ports_from_env(env: Mapping[str, str]) -> dict[str, int]:
    """Every port of :data:`PORT_SETTINGS` from its variable (unset or empty: the default), checked.

    Raises:
        ValueError: naming the setting, for a value that is not a port number (1 to 65535; below
            1024 only as root), or for two settings on the same port.
    """

    def given(setting: PortSetting) -> str:
        return (env.get(setting.variable) or "").strip()

    def shown(setting: PortSetting, port: int) -> str:
        return f"{setting.variable}={port}" if given(setting) else f"{setting.variable} (default {port})"

    ports: dict[str, int] = {}
    owners: dict[int, PortSetting] = {}
    for setting in PORT_SETTINGS:
        text, port = given(setting), setting.default
        if text:
            if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
                raise ValueError(f"{setting.variable}={text!r} is not a port: use a whole number from 1024 to 65535")
            port = int(text)
            if port < 1024 and os.geteuid() != 0:
                raise ValueError(f"{setting.variable}={port}: a port below 1024 needs root; use one from 1024 to 65535")
        if port in owners:
            raise ValueError(f"{shown(setting, port)} and {shown(owners[port], port)} are one port: give each its own")
        owners[port] = setting
        ports[setting.field] = port
    return ports


def state_dir_from_env(env: Mapping[str, str]) -> Path:
    """``MLP_STACK_STATE_DIR`` as an absolute folder (a relative one is inside the project); default ``.local``."""
    text = (env.get("MLP_STACK_STATE_DIR") or "").strip()
    if not text:
        return DEFAULT_STATE_DIR
    path = Path(text).expanduser()
    path = (path if path.is_absolute() else ROOT / path).resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"MLP_STACK_STATE_DIR={text!r} is a file, not a folder")
    return path


def local_config(environ: Mapping[str, str] | None = None) -> StackConfig:
    """The configuration `make run` uses: state in .local/, the lake in data/lake, default ports.

    Where it runs is a matter of environment: ``MLP_STACK_STATE_DIR`` (the state folder, default
    ``.local`` in the project; a relative path is taken from the project folder) and one
    ``MLP_STACK_<NAME>_PORT`` per port (:data:`PORT_SETTINGS`). With the default state folder the lake
    is ``data/lake`` and the DVC remote ``data/dvc-remote``; with another one both are inside it
    (``lake/``, ``dvc-remote/``), so two stacks never share data. ``MLP_LAKE_URI`` and
    ``MLP_DVC_REMOTE_URL`` override either.

    The production-like backends are a matter of environment, not code (docs/deployment.md,
    "Production-like stack"): ``MLP_STACK_AIRFLOW_DB_URL`` (SQLAlchemy URL of the metadata database),
    ``MLP_STACK_MLFLOW_BACKEND_URI`` (MLflow's backend store), and for the CeleryExecutor
    ``MLP_STACK_CELERY_BROKER_URL`` with ``MLP_STACK_CELERY_WORKERS`` (``name:queue,...``; the train
    DAG's candidates go to the queue named by ``MLP_TRAINING_QUEUE``). Unset, everything is SQLite
    and the LocalExecutor.

    Raises:
        ValueError: a bad setting, named in the message.
    """
    env = os.environ if environ is None else environ
    state_dir = state_dir_from_env(env)
    data = ROOT / "data" if state_dir == DEFAULT_STATE_DIR else state_dir
    overrides: dict[str, Any] = ports_from_env(env)
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
        state_dir=state_dir,
        lake_uri=env.get("MLP_LAKE_URI") or f"file://{data}/lake",
        dvc_remote_url=env.get("MLP_DVC_REMOTE_URL") or str(data / "dvc-remote"),
        monitoring=True,
        **overrides,
    )
