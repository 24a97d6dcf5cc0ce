"""Start and stop the local stack without Docker: Airflow, an MLflow server and the prediction API.

Airflow runs as its separate components (``db migrate``, then scheduler, dag-processor, triggerer,
api-server), which is what ``airflow standalone`` and ``astro dev start --standalone`` do, with the
ports, folders and secrets chosen here so that several stacks can run side by side (the end-to-end
tests start one next to a live ``make run``). Everything binds to 127.0.0.1.

Used by ``scripts/run_stack.py`` (``make run``), the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from include.mlpipeline.core.code_version import code_version

log = logging.getLogger("stack")

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_DAGS = ("etl", "features", "train", "deploy")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
    # (`make run`; the end-to-end tests start their own, see Monitoring).
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


def mlflow_server_command(folder: Path, port: int, backend_uri: str | None = None, workers: int = 2) -> list[str]:
    """``mlflow server`` with its registry in ``backend_uri`` (default SQLite in ``folder``), serving artifacts."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", backend_uri or f"sqlite:///{folder}/mlflow.db",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers 200 (fail early if ``process`` dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def exit_on_sigterm() -> None:
    """Make SIGTERM end this process as an exception would, so ``finally`` blocks stop what it started
    (a stack's processes, its databases). Long benchmarks run as background jobs, which ignore SIGINT,
    and a plain SIGTERM would leave their servers running."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """End a process started with ``start_new_session=True`` and everything it started: SIGTERM to its
    group, SIGKILL to what is left after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %d did not stop in %.0fs; killing its group", process.pid, timeout)
    with contextlib.suppress(ProcessLookupError):  # also workers that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running_mlflow_server(folder: Path, *, workers: int = 1, timeout: float = 180) -> Iterator[str]:
    """An ``mlflow server`` with its registry and artifacts in ``folder`` (log: ``folder/server.log``)
    for tests and benchmarks; yields its URL once it answers, stops it and its workers on exit."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("wb") as server_log:
        process = subprocess.Popen(
            mlflow_server_command(folder, port, workers=workers),
            stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/health", timeout=timeout, process=process)
            yield url
        finally:
            stop_process_group(process)


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


POSTGRES_ADMIN_URL = os.environ.get("MLP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_postgres_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """Create an empty PostgreSQL database (dropping a leftover of that name); returns its URL."""
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_postgres_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def load_or_create_secrets(path: Path) -> tuple[dict[str, str], bool]:
    """Secrets of a local stack, generated once and kept (git-ignored) so restarts reuse them.

    Returns:
        The secrets and whether they were created just now.
    """
    if path.exists():
        return json.loads(path.read_text()), False
    values = {
        "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(12),
        "api_key": secrets.token_urlsafe(24),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=1))
    path.chmod(0o600)
    return values, True


class Stack:
    """A running local stack; a context manager that stops what it started."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.processes: dict[str, subprocess.Popen] = {}
        self._commands: dict[str, tuple[list[str], dict[str, str]]] = {}  # how each component was started
        self.secrets, self.secrets_created = load_or_create_secrets(config.state_dir / "secrets.json")
        self._airflow: AirflowClient | None = None
        self.monitoring: Monitoring | None = None

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
            **cfg.extra_env,
        }
        # Derived settings never override one set explicitly (in the shell or in extra_env).
        env.update({k: v for k, v in sentry_airflow_env(env).items() if k not in os.environ and k not in cfg.extra_env})
        env.update({k: v for k, v in statsd_airflow_env(env).items() if k not in os.environ and k not in cfg.extra_env})
        return env

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

    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def check_ports(self) -> None:
        cfg = self.config
        busy = [
            f"{n} :{p}"
            for n, p in (
                ("Airflow", cfg.airflow_port),
                ("MLflow", cfg.mlflow_port),
                ("API", cfg.api_port),
                ("worker logs", cfg.worker_log_port),
                ("trigger logs", cfg.trigger_log_port),
            )
            if port_in_use(p)
        ]
        if busy:
            raise RuntimeError(f"ports already in use: {', '.join(busy)} (another stack running? stop it first)")

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
            return
        monitoring.start()
        self.monitoring = monitoring

    def start_mlflow(self) -> None:
        cfg = self.config
        command = mlflow_server_command(cfg.state_dir / "mlflow", cfg.mlflow_port, cfg.mlflow_backend_uri)
        self._spawn("mlflow", command, {**os.environ, "PYTHONPATH": str(ROOT)})

    def migrate_airflow(self) -> None:
        env = self.airflow_env()
        self.config.airflow_home.mkdir(parents=True, exist_ok=True)
        passwords = self.config.airflow_home / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps({"admin": self.secrets["admin_password"]}))
            passwords.chmod(0o600)
        result = subprocess.run(
            [self._bin("airflow"), "db", "migrate"], check=False, env=env, capture_output=True, text=True, cwd=ROOT
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def start_airflow(
        self, components: tuple[str, ...] = ("scheduler", "dag-processor", "triggerer", "api-server")
    ) -> None:
        env = self.airflow_env()
        for component in components:
            self._spawn(component, [self._bin("airflow"), component], env)

    def start_workers(self) -> None:
        """Celery workers, each with its own log-server port (they share this machine)."""
        cfg = self.config
        for name, queues in cfg.celery_workers:
            env = {**self.airflow_env(), "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            command = [self._bin("airflow"), "celery", "worker", "--queues", queues, "--celery-hostname", name,
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


class AirflowClient:
    """The few Airflow REST API v2 calls the tools need, with a JWT from /auth/token."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        self._credentials = {"username": username, "password": password}
        self._client = httpx.Client(base_url=base_url, timeout=30)
        self._token_at: float | None = None  # not 0.0: monotonic time starts near 0 on a freshly booted machine

    def _auth(self) -> None:
        if self._token_at is not None and time.monotonic() - self._token_at < 600:
            return
        response = self._client.post("/auth/token", json=self._credentials)
        response.raise_for_status()
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self._token_at = time.monotonic()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self._auth()
        response = self._client.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 100})["dags"]}

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/importErrors")["import_errors"]

    def wait_for_dags(self, dag_ids: tuple[str, ...] = PIPELINE_DAGS, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(dag_ids) <= self.dag_ids():
                return
            errors = self.import_errors()
            if errors:
                raise RuntimeError(f"DAG import errors: {json.dumps(errors, indent=1)[:3000]}")
            time.sleep(1)
        raise TimeoutError(f"DAGs {dag_ids} not parsed within {timeout:.0f}s; found {sorted(self.dag_ids())}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> dict[str, Any]:
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json={"conf": conf or {}, "logical_date": logical_date})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 50})[
            "dag_runs"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})[
            "task_instances"
        ]


@contextlib.contextmanager
def running_stack(config: StackConfig) -> Iterator[Stack]:
    stack = Stack(config)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


class ChainMonitor:
    """Follows the newest run of each pipeline DAG through the REST API."""

    def __init__(self, client: AirflowClient, dag_ids: tuple[str, ...] = PIPELINE_DAGS):
        self.client = client
        self.dag_ids = dag_ids

    def latest(self) -> dict[str, dict[str, Any] | None]:
        runs = {}
        for dag_id in self.dag_ids:
            found = self.client.runs(dag_id)
            runs[dag_id] = found[0] if found else None
        return runs

    def progress(self, dag_id: str, run: dict[str, Any]) -> str:
        states = [t["state"] for t in self.client.task_instances(dag_id, run["dag_run_id"])]
        done = sum(s in {"success", "skipped"} for s in states)
        failed = sum(s in {"failed", "upstream_failed"} for s in states)
        return f"{done}/{len(states)} tasks done" + (f", {failed} failed" if failed else "")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        """Wait for one run to finish; return it if it succeeded, raise if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.client.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] == "success":
                return run
            if run["state"] == "failed":
                raise RuntimeError(f"{dag_id} run {run_id} failed: {self.progress(dag_id, run)}")
            time.sleep(2)
        raise TimeoutError(f"{dag_id} run {run_id} not finished within {timeout:.0f}s")

    def wait_for_success(self, dag_id: str, timeout: float = 600) -> dict[str, Any]:
        """Wait until ``dag_id`` has a run (its first one, or any later one) and that run succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.client.runs(dag_id)
            if runs:
                return self.wait_for_run(dag_id, runs[0]["dag_run_id"], timeout=max(1.0, deadline - time.monotonic()))
            time.sleep(2)
        raise TimeoutError(f"no {dag_id} run within {timeout:.0f}s")


# --- metrics: Prometheus, Pushgateway, StatsD bridge ------------------------------------------------
MONITORING_DIR = ROOT / "monitoring"
STATSD_PREFIX = "airflow"


def statsd_airflow_env(env: dict[str, str]) -> dict[str, str]:
    """Airflow's StatsD metrics (``[metrics] statsd_*``), from ``MLP_STATSD_ADDRESS`` (host:port) when it is set.

    The names Airflow sends under the ``airflow`` prefix are what ``monitoring/statsd/mapping.yml``
    maps; the receiver is statsd_exporter or ``include/mlpipeline/monitoring/statsd_bridge.py``.
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


def monitoring_binaries() -> dict[str, str | None]:
    """Paths of prometheus, promtool and the Pushgateway (Debian names it prometheus-pushgateway)."""
    import shutil

    return {
        "prometheus": shutil.which("prometheus"),
        "promtool": shutil.which("promtool"),
        "pushgateway": shutil.which("prometheus-pushgateway") or shutil.which("pushgateway"),
    }


def prometheus_config(
    targets: dict[str, str],
    *,
    rules_dir: Path = MONITORING_DIR / "prometheus",
    scrape_interval: str | None = None,
) -> dict[str, Any]:
    """``monitoring/prometheus/prometheus.yml`` (written for docker compose) with local targets.

    ``targets`` maps a scrape job of that file (pushgateway, statsd-exporter, prediction-api,
    prometheus) to a host:port; jobs without a target are left out. Rule files become absolute paths,
    so the same alert rules are loaded; everything else (honor_labels, paths) stays as in the file.
    """
    import yaml

    config = yaml.safe_load((MONITORING_DIR / "prometheus" / "prometheus.yml").read_text())
    if scrape_interval:
        config.setdefault("global", {}).update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    config["rule_files"] = [str(rules_dir / name) for name in config.get("rule_files") or []]
    config.pop("alerting", None)  # no Alertmanager locally: Prometheus shows the alerts itself
    jobs = []
    for job in config.get("scrape_configs") or []:
        if job["job_name"] in targets:
            jobs.append({**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]})
    config["scrape_configs"] = jobs
    return config


class Monitoring:
    """Prometheus, a Pushgateway and the StatsD bridge on 127.0.0.1: what `make run` adds when installed.

    Prometheus scrapes the Pushgateway (``honor_labels``), the bridge and the API, with the alert rules
    of ``monitoring/prometheus/alerts.yml``; pipeline tasks push to the Pushgateway, Airflow sends StatsD
    to the bridge (see :meth:`pipeline_env`). Grafana is not packaged for Debian: the dashboards of
    ``monitoring/grafana`` run under ``astro dev start``; locally, query Prometheus (:9090) directly.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        prometheus_port: int,
        pushgateway_port: int,
        statsd_port: int,
        statsd_http_port: int,
        api_port: int,
        scrape_interval: str | None = None,
        persist: bool = False,
    ):
        self.folder = state_dir / "monitoring"
        self.logs = state_dir / "logs"
        self.prometheus_port, self.pushgateway_port = prometheus_port, pushgateway_port
        self.statsd_port, self.statsd_http_port, self.api_port = statsd_port, statsd_http_port, api_port
        self.scrape_interval = scrape_interval
        self.persist = persist
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://127.0.0.1:{self.pushgateway_port}"

    @property
    def statsd_address(self) -> str:
        return f"127.0.0.1:{self.statsd_port}"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.statsd_http_port}"

    def pipeline_env(self) -> dict[str, str]:
        """Where the pipeline pushes its metrics and Airflow sends StatsD (turned into AIRFLOW__METRICS__*)."""
        return {"MLP_PUSHGATEWAY_URL": self.pushgateway_url, "MLP_STATSD_ADDRESS": self.statsd_address}

    def unavailable(self) -> str | None:
        """Why monitoring cannot start here (a missing binary, a busy port), or None."""
        binaries = monitoring_binaries()
        missing = [name for name in ("prometheus", "pushgateway") if not binaries[name]]
        if missing:
            return (
                f"{' and '.join(missing)} not installed (`make monitoring-tools` installs the Debian packages "
                "prometheus and prometheus-pushgateway)"
            )
        ports = {
            "Prometheus": self.prometheus_port,
            "Pushgateway": self.pushgateway_port,
            "StatsD bridge": self.statsd_http_port,
        }
        busy = [f"{name} :{port}" for name, port in ports.items() if port_in_use(port)]
        return f"ports already in use: {', '.join(busy)}" if busy else None

    def prometheus_config(self) -> dict[str, Any]:
        return prometheus_config(
            {
                "prometheus": f"127.0.0.1:{self.prometheus_port}",
                "pushgateway": f"127.0.0.1:{self.pushgateway_port}",
                "statsd-exporter": f"127.0.0.1:{self.statsd_http_port}",
                "prediction-api": f"127.0.0.1:{self.api_port}",
            },
            scrape_interval=self.scrape_interval,
        )

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        handle = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed when the process is stopped
        self.processes[name] = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )

    def start(self, timeout: float = 30) -> Monitoring:
        import yaml

        binaries = monitoring_binaries()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
        # make run: pushed metrics survive a restart, like the rest of .local/. Always explicit: Debian's
        # build defaults to /var/lib/prometheus/pushgateway.data, shared by every Pushgateway on the machine.
        persistence = self.folder / "pushgateway.db" if self.persist else ""
        self._spawn(
            "pushgateway",
            [
                str(binaries["pushgateway"]), f"--web.listen-address=127.0.0.1:{self.pushgateway_port}",
                f"--persistence.file={persistence}",
            ],
        )  # fmt: skip
        self._spawn(
            "statsd-bridge",
            [
                sys.executable, "-m", "include.mlpipeline.monitoring.statsd_bridge",
                "--mapping", str(MONITORING_DIR / "statsd" / "mapping.yml"),
                "--udp", self.statsd_address, "--http", f"127.0.0.1:{self.statsd_http_port}",
            ],
            {**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        self._spawn(
            "prometheus",
            [
                str(binaries["prometheus"]), f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            ],
        )  # fmt: skip
        try:
            for name, url in (
                ("pushgateway", f"{self.pushgateway_url}/-/ready"),
                ("statsd-bridge", f"{self.bridge_url}/metrics"),
                ("prometheus", f"{self.prometheus_url}/-/ready"),
            ):
                wait_for_http(url, timeout, self.processes[name])
        except Exception:
            self.stop()
            raise
        log.info("metrics: Prometheus %s, Pushgateway %s, StatsD bridge udp %s", self.prometheus_url,
                 self.pushgateway_url, self.statsd_address)  # fmt: skip
        return self

    def stop(self, timeout: float = 10) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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

    The production-like backends are a matter of environment, not code (README, "Production-like
    stack"): ``MLP_STACK_AIRFLOW_DB_URL`` (SQLAlchemy URL of the metadata database),
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


if __name__ == "__main__":  # `make airflow ARGS="..."`: the Airflow CLI against the make-run stack
    stack = Stack(local_config())
    os.execve(stack._bin("airflow"), ["airflow", *sys.argv[1:]], stack.airflow_env())  # noqa: S606
