"""`make run`'s stack configuration from the environment: SQLite by default, Postgres + Celery by settings;
ports and the state folder by settings, so a second stack can run beside the first."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import pytest
import stack.stack as stack_module
from stack.config import PORT_SETTINGS, PORTS, ROOT, busy_ports, celery_workers_from_text, local_config
from stack.monitoring import Monitoring
from stack.processes import free_port
from stack.stack import Stack

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


# ----------------------------------------------------------------------------- ports and state folder
def free_ports_env() -> dict[str, str]:
    """Every port setting on its own free port, so only the port a test occupies is taken."""
    ports: set[int] = set()
    while len(ports) < len(PORT_SETTINGS):
        ports.add(free_port())
    return {setting.variable: str(port) for setting, port in zip(PORT_SETTINGS, sorted(ports), strict=True)}


@contextlib.contextmanager
def occupied(protocol: str) -> Iterator[int]:
    """A port held by this test: a listening TCP socket, or a bound UDP socket."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        if protocol == "tcp":
            sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def no_secret_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stack() without writing secrets.json anywhere."""
    secrets = dict.fromkeys(("fernet_key", "jwt_secret", "api_secret_key", "admin_password", "api_key"), "x")
    monkeypatch.setattr(stack_module, "load_or_create_secrets", lambda path: (secrets, False))


def test_defaults_are_the_documented_ones():
    config = local_config({})
    assert config.state_dir == ROOT / ".local"
    assert config.lake_uri == f"file://{ROOT}/data/lake"
    assert config.dvc_remote_url == str(ROOT / "data" / "dvc-remote")
    assert config.ports() == {
        "airflow_port": 8080,
        "mlflow_port": 5000,
        "api_port": 8000,
        "worker_log_port": 8793,
        "trigger_log_port": 8794,
        "prometheus_port": 9090,
        "pushgateway_port": 9091,
        "statsd_port": 9125,
        "statsd_http_port": 9102,
    }
    assert config.ports() == {setting.field: setting.default for setting in PORT_SETTINGS}


def test_every_port_comes_from_its_setting():
    env = free_ports_env()
    config = local_config(env)
    assert {PORTS[name].variable: str(port) for name, port in config.ports().items()} == env


@pytest.mark.parametrize("setting", PORT_SETTINGS, ids=lambda s: s.variable)
def test_a_taken_port_names_the_setting_that_moves_it(setting, tmp_path):
    with occupied(setting.protocol) as port:
        config = local_config({**free_ports_env(), "MLP_STACK_STATE_DIR": str(tmp_path), setting.variable: str(port)})
        assert busy_ports(config.ports()) == [
            f"port {port} is in use ({setting.serves}; set {setting.variable} to a free port)"
        ]


def test_the_stack_refuses_taken_ports_with_the_settings_named(tmp_path, no_secret_files):
    with occupied("tcp") as airflow, occupied("tcp") as mlflow:
        env = {**free_ports_env(), "MLP_STACK_AIRFLOW_PORT": str(airflow), "MLP_STACK_MLFLOW_PORT": str(mlflow)}
        stack = Stack(local_config({**env, "MLP_STACK_STATE_DIR": str(tmp_path)}))
        with pytest.raises(RuntimeError) as refused:
            stack.check_ports()
    message = str(refused.value)
    assert message.startswith(
        f"port {airflow} is in use (Airflow UI and API; set MLP_STACK_AIRFLOW_PORT to a free port), "
        f"port {mlflow} is in use (MLflow; set MLP_STACK_MLFLOW_PORT to a free port). "
    )
    assert "MLP_STACK_STATE_DIR" in message


def test_taken_monitoring_ports_name_their_settings(tmp_path):
    with occupied("tcp") as prometheus, occupied("udp") as statsd:
        monitoring = Monitoring(
            tmp_path,
            prometheus_port=prometheus,
            pushgateway_port=free_port(),
            statsd_port=statsd,
            statsd_http_port=free_port(),
            api_port=free_port(),
        )
        busy = monitoring.busy_ports()
    assert busy == [
        f"port {prometheus} is in use (Prometheus; set MLP_STACK_PROMETHEUS_PORT to a free port)",
        f"port {statsd} is in use (StatsD bridge, UDP; set MLP_STACK_STATSD_PORT to a free port)",
    ]


def test_another_state_folder_moves_the_lake_and_the_dvc_remote(tmp_path):
    config = local_config({"MLP_STACK_STATE_DIR": str(tmp_path / "second")})
    assert config.state_dir == tmp_path / "second"
    assert config.airflow_home == tmp_path / "second" / "airflow"
    assert config.lake_uri == f"file://{tmp_path}/second/lake"
    assert config.dvc_remote_url == str(tmp_path / "second" / "dvc-remote")


def test_a_relative_state_folder_is_in_the_project_and_dot_local_is_the_default():
    assert local_config({"MLP_STACK_STATE_DIR": ".local-b"}).state_dir == ROOT / ".local-b"
    assert local_config({"MLP_STACK_STATE_DIR": ".local-b"}).lake_uri == f"file://{ROOT}/.local-b/lake"
    assert local_config({"MLP_STACK_STATE_DIR": "./.local/"}).lake_uri == f"file://{ROOT}/data/lake"


def test_lake_and_dvc_remote_settings_win_over_the_state_folder(tmp_path):
    config = local_config({
        "MLP_STACK_STATE_DIR": str(tmp_path / "second"),
        "MLP_LAKE_URI": "s3://bucket/lake",
        "MLP_DVC_REMOTE_URL": "s3://bucket/dvc",
    })  # fmt: skip
    assert (config.lake_uri, config.dvc_remote_url) == ("s3://bucket/lake", "s3://bucket/dvc")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MLP_STACK_AIRFLOW_PORT": "eighty"}, "MLP_STACK_AIRFLOW_PORT='eighty' is not a port"),
        ({"MLP_STACK_MLFLOW_PORT": "0"}, "MLP_STACK_MLFLOW_PORT='0' is not a port"),
        ({"MLP_STACK_API_PORT": "65536"}, "MLP_STACK_API_PORT='65536' is not a port"),
        ({"MLP_STACK_API_PORT": "-8000"}, "MLP_STACK_API_PORT='-8000' is not a port"),
        ({"MLP_STACK_STATSD_PORT": "9125.0"}, "MLP_STACK_STATSD_PORT='9125.0' is not a port"),
        ({"MLP_STACK_API_PORT": "8080"}, r"MLP_STACK_API_PORT=8080 and MLP_STACK_AIRFLOW_PORT \(default 8080\)"),
        (
            {"MLP_STACK_PROMETHEUS_PORT": "9300", "MLP_STACK_STATSD_HTTP_PORT": "9300"},
            "MLP_STACK_STATSD_HTTP_PORT=9300 and MLP_STACK_PROMETHEUS_PORT=9300 are one port",
        ),
    ],
)
def test_bad_port_settings_are_refused_by_name(environ, message):
    with pytest.raises(ValueError, match=message):
        local_config(environ)


def test_a_privileged_port_needs_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ValueError, match="MLP_STACK_API_PORT=80: a port below 1024 needs root"):
        local_config({"MLP_STACK_API_PORT": "80"})


def test_a_state_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "state").write_text("")
    with pytest.raises(ValueError, match=r"MLP_STACK_STATE_DIR=.* is a file"):
        local_config({"MLP_STACK_STATE_DIR": str(tmp_path / "state")})


def test_two_stacks_side_by_side_share_no_port_and_no_folder(tmp_path, no_secret_files):
    first = local_config({})  # make run as it is, on the defaults
    second = local_config({**free_ports_env(), "MLP_STACK_STATE_DIR": str(tmp_path / "second")})
    assert not set(first.ports().values()) & set(second.ports().values())

    def places(config):
        env = Stack(config).airflow_env()
        keys = ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH",
                "MLP_LAKE_URI", "MLP_DVC_WORKDIR", "MLP_DVC_REMOTE_URL", "MLP_API_URL", "MLP_MLFLOW_TRACKING_URI",
                "AIRFLOW__API__BASE_URL", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")  # fmt: skip
        return {key: env[key] for key in keys}

    one, two = places(first), places(second)
    assert all(one[key] != two[key] for key in one), {key: one[key] for key in one if one[key] == two[key]}
    # No folder of one stack is inside the other's state folder.
    for config, other in ((first, second), (second, first)):
        for value in places(config).values():
            assert str(other.state_dir) not in value
