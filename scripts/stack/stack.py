"""A running local stack: the MLflow server, Airflow's components and the prediction API.

Airflow runs as its separate components (``db migrate``, then scheduler, dag-processor, triggerer,
api-server, and Celery workers under the CeleryExecutor), which is what ``airflow standalone`` and
``astro dev start --standalone`` do, with the ports, folders and secrets of a
:class:`~stack.config.StackConfig` so that several stacks can run side by side (the end-to-end tests
start one next to a live ``make run``). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any, Self

import httpx

from stack.airflow_client import AirflowClient
from stack.airflow_settings import sentry_airflow_env, statsd_airflow_env
from stack.config import ROOT, STACK_PORTS, StackConfig, busy_ports
from stack.local_secrets import load_or_create_secrets
from stack.mlflow_server import mlflow_server_command, mlflow_server_env
from stack.monitoring import Monitoring
from stack.processes import free_port, venv_bin

log = logging.getLogger(__name__)

ASSET_MANAGER_CLASS = "include.mlpipeline.orchestration.asset_queue.EventQueueAssetManager"
"""Airflow's ``[core] asset_manager_class`` in every component (a name, so that this process imports no Airflow)."""

TASK_PRELOAD = (
    "airflow.executors.local_executor", "airflow.sdk.execution_time.task_runner",
    "pandas", "pyarrow.parquet", "fsspec", "httpx", "pandera.pandas", "pandera.backends.pandas.builtin_checks",
    "pandera.strategies.pandas_strategies", "sklearn.compose", "sklearn.ensemble",
    "sklearn.linear_model", "sklearn.metrics", "sklearn.pipeline", "sklearn.preprocessing", "mlflow",
    "mlflow.sklearn", "skops.io", "matplotlib.pyplot",
)  # fmt: skip
"""What the LocalExecutor's task processes inherit instead of importing each: every task process is a
fork of an executor worker, and the workers are forks of a forkserver that imported these once
(``[scheduler] mp_start_method = forkserver`` and ``mp_forkserver_preload``, Airflow 3.3). Importing
pandas, scikit-learn and MLflow cost each training task 3 to 4 s of CPU (more than most fits) and
every other task 1 to 2 s; pandera's checks, which it imports at a gate's first validation, 0.4 s.
Libraries only: our own code (``include/``) is imported fresh by each task, so an edit takes effect
at the next task, as before."""


class Stack:
    """A running local stack; a context manager that stops what it started."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.processes: dict[str, subprocess.Popen] = {}
        self._commands: dict[str, tuple[list[str], dict[str, str]]] = {}  # how each component was started
        self.secrets, self.secrets_created = load_or_create_secrets(config.state_dir / "secrets.json")
        self._airflow: AirflowClient | None = None
        self.monitoring: Monitoring | None = None
        self.monitoring_off: str | None = None  # why metrics are off, when configured but not started

    # environment -------------------------------------------------------------------------------
    def pipeline_env(self) -> dict[str, str]:
        """Settings every component shares: the lake, MLflow, the API and its key."""
        cfg = self.config
        return {
            "PYTHONPATH": str(ROOT),
            "MLP_LAKE_URI": cfg.lake_uri,
            "MLP_MLFLOW_TRACKING_URI": cfg.mlflow_url,
            "MLFLOW_TRACKING_URI": cfg.mlflow_url,
            "MLP_API_URL": cfg.api_url,
            "MLP_API_KEY": self.secrets["api_key"],
            "MLP_DVC_WORKDIR": str(cfg.state_dir / "dvc"),
            "MLP_DVC_REMOTE_URL": cfg.dvc_remote_url or str(cfg.state_dir / "dvc-remote"),
            "GIT_PYTHON_REFRESH": "quiet",
            "MLFLOW_DISABLE_TELEMETRY": "true",  # also before MLflow is preloaded (TASK_PRELOAD), not only in include/
            **(self.monitoring.pipeline_env() if self.monitoring else {}),
        }

    def airflow_env(self) -> dict[str, str]:
        cfg = self.config
        home = cfg.airflow_home
        db_url = cfg.airflow_db_url or f"sqlite:///{home}/airflow.db"
        env = {
            **os.environ,
            **self.pipeline_env(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": cfg.executor,
            "AIRFLOW__CORE__PARALLELISM": str(cfg.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": self.secrets["fernet_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secrets["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": self.secrets["api_secret_key"],
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(cfg.airflow_port),
            "AIRFLOW__API__BASE_URL": cfg.airflow_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{cfg.airflow_url}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(cfg.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(cfg.trigger_log_port),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__XCOM_BACKEND": "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{cfg.state_dir}/xcom",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "4096",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION": "gzip",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            **self.celery_env(),
            **self.preload_env(),
            **cfg.extra_env,
        }
        # Derived settings never override one set explicitly (in the shell or in extra_env).
        # Asset events that arrive while a consumer is at max_active_runs must not be left in the queue
        # (apache/airflow#56050): see include/mlpipeline/orchestration/asset_queue.py.
        env.setdefault("AIRFLOW__CORE__ASSET_MANAGER_CLASS", ASSET_MANAGER_CLASS)
        # OpenMP threads (histogram gradient boosting) sleep while they wait instead of spinning: with the
        # candidates in parallel on a busy machine, spinning burnt 3 to 10 s of CPU in a fit that needs
        # 0.6 s, and slowed the fits beside it several times over.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env.update({k: v for k, v in sentry_airflow_env(env).items() if k not in os.environ and k not in cfg.extra_env})
        env.update({k: v for k, v in statsd_airflow_env(env).items() if k not in os.environ and k not in cfg.extra_env})
        return env

    def preload_env(self) -> dict[str, str]:
        """The LocalExecutor's workers from a forkserver that preloaded :data:`TASK_PRELOAD` (Celery's
        prefork pool forks its own way; it is left as it is)."""
        if self.config.executor != "LocalExecutor":
            return {}
        return {
            "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
            "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join(TASK_PRELOAD),
        }

    def celery_env(self) -> dict[str, str]:
        cfg = self.config
        if cfg.executor != "CeleryExecutor":
            return {}
        if not (cfg.celery_broker_url and cfg.celery_result_backend):
            raise ValueError("CeleryExecutor needs celery_broker_url and celery_result_backend")
        return {
            "AIRFLOW__CELERY__BROKER_URL": cfg.celery_broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": cfg.celery_result_backend,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        }

    # processes ---------------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        logs = self.config.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        handle = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed when the process is stopped
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        self.processes[name] = process
        self._commands[name] = (command, env)
        log.debug("started %s (pid %d): %s", name, process.pid, " ".join(command))
        return process

    def check_ports(self) -> None:
        """Refuse to start when a port of Airflow, MLflow or the API is taken, naming the setting that moves it."""
        busy = busy_ports(self.config.ports(STACK_PORTS))
        if busy:
            raise RuntimeError(
                f"{', '.join(busy)}. Another stack running? Stop it, or start this one beside it on free ports "
                "with its own state folder (MLP_STACK_STATE_DIR)"
            )

    def start_monitoring(self) -> None:
        """Prometheus, the Pushgateway and the StatsD bridge, if configured and installed (else a warning)."""
        cfg = self.config
        if not cfg.monitoring:
            return
        monitoring = Monitoring(
            cfg.state_dir,
            prometheus_port=cfg.prometheus_port,
            pushgateway_port=cfg.pushgateway_port,
            statsd_port=cfg.statsd_port,
            statsd_http_port=cfg.statsd_http_port,
            api_port=cfg.api_port,
            persist=True,
        )
        problem = monitoring.unavailable()
        if problem:
            log.warning("metrics off: %s", problem)
            self.monitoring_off = problem
            return
        monitoring.start()
        self.monitoring = monitoring

    def start_mlflow(self) -> None:
        cfg = self.config
        command = mlflow_server_command(cfg.state_dir / "mlflow", cfg.mlflow_port, cfg.mlflow_backend_uri)
        self._spawn("mlflow", command, mlflow_server_env({**os.environ, "PYTHONPATH": str(ROOT)}))

    def migrate_airflow(self) -> None:
        env = self.airflow_env()
        self.config.airflow_home.mkdir(parents=True, exist_ok=True)
        passwords = self.config.airflow_home / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps({"admin": self.secrets["admin_password"]}))
            passwords.chmod(0o600)
        result = subprocess.run(
            [venv_bin("airflow"), "db", "migrate"], check=False, env=env, capture_output=True, text=True, cwd=ROOT
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def start_airflow(
        self, components: tuple[str, ...] = ("scheduler", "dag-processor", "triggerer", "api-server")
    ) -> None:
        env = self.airflow_env()
        for component in components:
            self._spawn(component, [venv_bin("airflow"), component], env)

    def start_workers(self) -> None:
        """Celery workers, each with its own log-server port (they share this machine)."""
        cfg = self.config
        for name, queues in cfg.celery_workers:
            env = {**self.airflow_env(), "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            command = [venv_bin("airflow"), "celery", "worker", "--queues", queues, "--celery-hostname", name,
                       "--concurrency", str(cfg.worker_concurrency)]  # fmt: skip
            self._spawn(f"worker-{name}", command, env)

    def start_api(self) -> None:
        cfg = self.config
        env = {**os.environ, **self.pipeline_env(), "MLP_API_RELOAD_INTERVAL_S": "10", **cfg.extra_env}
        self._spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "include.mlpipeline.serving.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(cfg.api_port),
                "--no-access-log",
            ],
            env,
        )

    def start(self) -> Stack:
        """Start everything and wait until each component answers."""
        self.check_ports()
        self.start_monitoring()
        self.start_mlflow()
        self.migrate_airflow()
        self.start_airflow()
        self.start_workers()
        self.start_api()
        self.wait_until_healthy()
        return self

    def wait_until_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        checks = {
            "mlflow": f"{self.config.mlflow_url}/health",
            "api": f"{self.config.api_url}/health",
            "airflow": f"{self.config.airflow_url}/api/v2/monitor/health",
        }
        pending = dict(checks)
        while pending and time.monotonic() < deadline:
            self.raise_if_dead()
            for name, url in list(pending.items()):
                try:
                    response = httpx.get(url, timeout=5)
                except httpx.HTTPError:
                    continue
                if response.status_code == 200 and (name != "airflow" or _airflow_components_healthy(response.json())):
                    log.info("%s is up (%s)", name, url)
                    del pending[name]
            time.sleep(1)
        if pending:
            raise TimeoutError(f"not healthy after {timeout:.0f}s: {sorted(pending)}; see {self.config.state_dir}/logs")

    def raise_if_dead(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.config.state_dir / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with code {process.returncode}:\n{tail}")

    def stop(self, names: list[str] | None = None, timeout: float = 20) -> None:
        """Stop components (default: all), politely first (SIGTERM), then SIGKILL."""
        if names is None and self.monitoring:
            self.monitoring.stop()
        targets = {n: p for n, p in self.processes.items() if names is None or n in names}
        for process in targets.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, process in targets.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", name, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self.processes.pop(name, None)

    def kill(self, name: str) -> None:
        """Crash a component: SIGKILL to its whole process group at once, so no shutdown code runs."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.info("killed %s (pid %d)", name, process.pid)

    def restart(self, name: str, *, kill: bool = False) -> subprocess.Popen:
        """Start a component again with the command and environment it was first started with.

        A component still running is stopped first: politely (see :meth:`stop`), or, with ``kill``,
        crashed (see :meth:`kill`). One stopped earlier is just started again, on the same port.
        Waiting until it answers is the caller's business.

        Returns:
            The new process.
        """
        if name not in self._commands:
            raise KeyError(f"{name} was never started by this stack; known: {sorted(self._commands)}")
        if name in self.processes:
            if kill:
                self.kill(name)
            else:
                self.stop(names=[name])
        command, env = self._commands[name]
        process = self._spawn(name, command, env)
        log.info("restarted %s (pid %d)", name, process.pid)
        return process

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # clients -----------------------------------------------------------------------------------
    @property
    def airflow(self) -> AirflowClient:
        if self._airflow is None:
            self._airflow = AirflowClient(self.config.airflow_url, "admin", self.secrets["admin_password"])
        return self._airflow

    def api_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.secrets["api_key"]}


def _airflow_components_healthy(body: dict[str, Any]) -> bool:
    parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    return all((body.get(part) or {}).get("status") == "healthy" for part in parts)
