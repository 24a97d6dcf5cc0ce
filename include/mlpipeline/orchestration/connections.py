"""Airflow connections as fsspec storage options: credentials for source files and the lake.

Airflow's object storage (``ObjectStoragePath("s3://<conn_id>@bucket/key")`` in the task SDK, used by
the common-io provider) turns a connection into a ready *filesystem* through the provider's fsspec
``get_fs``. The lake and the file source here take fsspec *storage options* instead, so that they run
(and are tested) without Airflow. This module makes those options with the providers' own parsing:

- ``aws`` connections go through the amazon provider's ``AwsConnectionWrapper``, the parser behind
  ``S3Hook.conn_config`` and hence behind the provider's ``get_fs``: login/password become
  ``key``/``secret`` (or extra ``aws_access_key_id``/``aws_secret_access_key``), extra
  ``aws_session_token`` becomes ``token``, extra ``endpoint_url`` (or ``service_config.s3.endpoint_url``)
  becomes ``endpoint_url``, ``region_name`` and ``verify`` go to ``client_kwargs``, ``config_kwargs``
  to ``config_kwargs``, ``profile_name`` to ``profile``. A connection that assumes a role
  (``role_arn``) has no static keys to hand over: its options carry the hook's self-refreshing
  session, exactly what ``get_fs`` gives ``S3FileSystem``.
- ``google_cloud_platform`` connections: the google provider's extras (``key_path``, ``keyfile_dict``,
  ``project``, ``is_anonymous``, with or without the ``extra__google_cloud_platform__`` prefix, and the
  ``gcs.*`` keys its ``get_fs`` reads) become gcsfs options (``token`` is the key file's path or its
  parsed JSON). The google provider is not a dependency of this project, so its extras are read here.

Resolve connections only when a task runs: a lookup may reach a secrets backend or the API server,
which DAG parsing must never do, and the secrets then live only in the task's memory.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from include.mlpipeline.data.table_source import SQL_URL_OPTION

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from include.mlpipeline.core.problem import ProblemSpec

log = logging.getLogger(__name__)

AWS_TYPES = frozenset({"aws"})
# Database connection types and the SQLAlchemy driver each one means.
SQL_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "sqlite": "sqlite",
    "mssql": "mssql+pymssql",
}
GOOGLE_TYPES = frozenset({"google_cloud_platform"})
_GOOGLE_PREFIX = "extra__google_cloud_platform__"
GCS_ANONYMOUS = "anon"  # gcsfs's token value for unauthenticated access (public buckets)
# The google provider's fsspec get_fs reads these extras (providers/google/cloud/fs/gcs.py).
_GCS_EXTRAS = {
    "gcs.access": "access",
    "gcs.consistency": "consistency",
    "gcs.cache-timeout": "cache_timeout",
    "gcs.requester-pays": "requester_pays",
    "gcs.session-kwargs": "session_kwargs",
    "gcs.endpoint": "endpoint_url",
    "gcs.default-bucket-location": "default_location",
}


def storage_options_from_connection(conn_id: str) -> dict[str, Any]:
    """fsspec storage options holding the credentials and endpoint of an Airflow connection.

    Args:
        conn_id: The connection id (looked up as Airflow does: secrets backends, ``AIRFLOW_CONN_*``
            environment variables, then the metadata database through the API server).

    Returns:
        Options for ``fsspec.core.url_to_fs`` (s3fs or gcsfs keyword arguments).

    Raises:
        airflow.sdk.exceptions.AirflowNotFoundException: no such connection.
        ValueError: a connection type with no object storage mapping here.
    """
    from airflow.sdk import Connection

    return connection_storage_options(Connection.get(conn_id))


def connection_storage_options(conn: Connection) -> dict[str, Any]:
    """fsspec storage options for one connection object (see the module docstring for the mapping).

    Args:
        conn: An Airflow connection of type ``aws`` or ``google_cloud_platform`` (object storage), or
            a database (``postgres``, ``mysql``, ``sqlite``, ``mssql``: a SQL table source reads the
            ``sqlalchemy_url`` option). One that assumes a role is looked up again by its id (the
            amazon hook builds the session), so it must be defined where Airflow finds connections,
            not only built in memory.

    Returns:
        s3fs or gcsfs keyword arguments, or ``{"sqlalchemy_url": ...}`` for a database.

    Raises:
        ValueError: for any other connection type.
    """
    if conn.conn_type in AWS_TYPES:
        options = _aws_options(conn)
    elif conn.conn_type in GOOGLE_TYPES:
        options = _google_options(conn)
    elif conn.conn_type in SQL_DRIVERS:
        options = {SQL_URL_OPTION: sqlalchemy_url(conn)}
    else:
        known = sorted(AWS_TYPES | GOOGLE_TYPES | set(SQL_DRIVERS))
        raise ValueError(
            f"connection {conn.conn_id!r} has type {conn.conn_type!r}; object storage needs one of {known}"
        )
    # Names only: the values are secrets.
    log.info("storage options from connection %s (%s): %s", conn.conn_id, conn.conn_type, sorted(options))
    return options


def source_storage_options(problem: ProblemSpec | None = None) -> dict[str, Any] | None:
    """The storage options of the problem's source connection, or None if it names none.

    A problem names its sources' connection in ``source_conn_id``: a string, or a callable
    returning one (the example reads ``MLP_FLIGHTS_SOURCE_CONN_ID`` that way, when the task runs).

    Args:
        problem: The problem (default: the configured one).

    Returns:
        The options, or None when there is no connection to resolve.
    """
    from include.mlpipeline.core.problem import load_problem

    problem = problem or load_problem()
    conn_id = problem.source_conn_id
    conn_id = conn_id() if callable(conn_id) else conn_id
    if not conn_id:
        return None
    return storage_options_from_connection(conn_id)


def resolve_lake_connections() -> None:
    """Let the lake resolve ``MLP_LAKE_CONN_ID`` through Airflow (see ``Lake.from_settings``).

    Called when a task starts (``on_execute_callback``), not at import: DAG parsing must stay free
    of the lake's imports, and of any connection lookup.
    """
    from include.mlpipeline.data.lake import register_connection_resolver

    register_connection_resolver(storage_options_from_connection)


def sqlalchemy_url(conn: Connection) -> str:
    """The SQLAlchemy URL of a database connection (password included: keep it in memory only)."""
    from sqlalchemy.engine import URL

    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host or conn.schema or ''}"
    url = URL.create(
        SQL_DRIVERS[conn.conn_type],
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    )
    return url.render_as_string(hide_password=False)


def _aws_options(conn: Connection) -> dict[str, Any]:
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    wrapper = AwsConnectionWrapper(conn)
    options: dict[str, Any] = {}
    if wrapper.role_arn:
        # Assumed-role credentials expire: only the hook's refreshing session keeps them valid.
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        options["session"] = S3Hook(aws_conn_id=conn.conn_id).get_session(deferrable=True)
    else:
        options.update(
            key=wrapper.aws_access_key_id,
            secret=wrapper.aws_secret_access_key,
            token=wrapper.aws_session_token,
            profile=wrapper.profile_name,
        )
    options["endpoint_url"] = wrapper.get_service_endpoint_url("s3")
    client_kwargs = {"region_name": wrapper.region_name, "verify": wrapper.verify}
    options["client_kwargs"] = {k: v for k, v in client_kwargs.items() if v is not None}
    config_kwargs = dict(wrapper.extra_config.get("config_kwargs") or {})
    if config_kwargs.get("signature_version") == "unsigned":  # botocore's spelling of s3fs's anon=True
        config_kwargs.pop("signature_version")
        options["anon"] = True
    options["config_kwargs"] = config_kwargs
    return {k: v for k, v in options.items() if v not in (None, {})}


def _google_options(conn: Connection) -> dict[str, Any]:
    extras = conn.extra_dejson

    def field(name: str) -> Any:
        value = extras.get(name)
        return extras.get(f"{_GOOGLE_PREFIX}{name}") if value in (None, "") else value

    options: dict[str, Any] = {}
    keyfile = field("keyfile_dict")
    if str(field("is_anonymous")).lower() == "true":
        options["token"] = GCS_ANONYMOUS
    elif keyfile:
        options["token"] = json.loads(keyfile) if isinstance(keyfile, str) else dict(keyfile)
    elif field("key_path"):
        options["token"] = field("key_path")
    # Without a key gcsfs falls back to Application Default Credentials, as the provider does.
    if field("project"):
        options["project"] = field("project")
    for extra, option in _GCS_EXTRAS.items():
        if extras.get(extra) not in (None, ""):
            options[option] = extras[extra]
    if "gcs.version-aware" in extras:
        options["version_aware"] = str(extras["gcs.version-aware"]).lower() == "true"
    return options
