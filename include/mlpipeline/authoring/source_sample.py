"""Where a new problem's table is, and a sample of it: what ``make new-problem`` reads first.

A SOURCE is one of:

- a CSV or Parquet file (compressed CSV too): a path or any fsspec URL (``s3://bucket/t.csv``);
  the format follows the extension, as :mod:`include.mlpipeline.data.file_source` decides it;
- a SQL table or query through a SQLAlchemy URL: ``postgresql://user@host:port/db#table``
  (``#`` names the table; or give a query instead);
- a SQL table or query through an Airflow connection: ``conn:<conn_id>#table``. The connection is
  resolved here (``AIRFLOW_CONN_*`` variables work outside a task), and the generated problem names
  it in ``source_conn_id``, so its tasks resolve it again when they run.

Credentials never reach generated code: a URL holding a password is refused, with a pointer to a
connection or the driver's own variable (``PGPASSWORD``). The sample is read through
:class:`~include.mlpipeline.data.table_source.TableSource`, the class the generated problem reads
its table with, so a sample that reads here reads the same way at run time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from include.mlpipeline.core.settings import PROJECT_ROOT
from include.mlpipeline.data import file_source
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.data.table_source import SQL_URL_OPTION, TableSource, is_sql_url

log = logging.getLogger(__name__)

CONNECTION_PREFIX = "conn:"
SEED = 42  # the sample of a large file is the same on every run
_PASSWORD_IN_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:[^/@]*@")
FORMS = (
    "a .csv or .parquet file (a path or fsspec URL such as s3://bucket/table.csv), "
    "a SQL URL such as postgresql://user@host:5432/db#table, or conn:<airflow_conn_id>#table"
)


class NewProblemError(ValueError):
    """Input ``make new-problem`` cannot work from; the message says what to fix."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed SOURCE.

    Attributes:
        kind: ``file``, ``sql`` (a SQLAlchemy URL) or ``connection`` (an Airflow connection).
        location: What the generated TableSource reads: the file's absolute path or URL, or a SQL URL
            without a password.
        table: The SQL table (``schema.table`` allowed), or None.
        query: The SQL query, or None.
        conn_id: The Airflow connection, for ``connection``.
        project_path: A local file inside the project: its path relative to the project root (the
            generated code resolves it with ``PROJECT_ROOT``, so the project can move).
        storage_options: What reading needs now (a connection's URL, password included): never rendered.
    """

    kind: Literal["file", "sql", "connection"]
    location: str
    table: str | None = None
    query: str | None = None
    conn_id: str | None = None
    project_path: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def table_name(self) -> str:
        """A name for the source table: the SQL table's, or the file's without its extensions."""
        if self.table:
            return self.table.rsplit(".", 1)[-1]
        if self.query:
            return "query"
        name = self.location.rstrip("/").rsplit("/", 1)[-1]
        return name.split(".", 1)[0] or "table"

    @property
    def secrets(self) -> list[str]:
        """The passwords reading needs now (a connection's), which no generated file may hold."""
        from sqlalchemy.engine import make_url

        url = self.storage_options.get(SQL_URL_OPTION)
        password = make_url(url).password if url else None
        return [str(password)] if password else []

    @property
    def shown(self) -> str:
        """The source as a person would name it (no secrets)."""
        where = f"connection {self.conn_id}" if self.conn_id else self.project_path or self.location
        what = f"#{self.table}" if self.table else " (query)" if self.query else ""
        return f"{where}{what}"


def parse_source(text: str, query: str | None = None) -> SourceSpec:
    """The SOURCE ``text`` (see the module doc), with ``query`` for SQL instead of a table.

    Raises:
        NewProblemError: an unknown form, a URL with a password, SQL without a table or query, an
            unknown connection.
    """
    text = text.strip()
    query = query.strip() if query else None
    if text.startswith(CONNECTION_PREFIX):
        return _connection_source(text.removeprefix(CONNECTION_PREFIX), query)
    if _PASSWORD_IN_URL.match(text):
        raise NewProblemError(
            "the SOURCE URL holds a password, which would end up in the generated code: remove it and give the "
            "password through an Airflow connection (SOURCE=conn:<conn_id>#table) or the driver's environment "
            "variable (PGPASSWORD for PostgreSQL)"
        )
    if is_sql_url(text):
        url, _, table = text.partition("#")
        return SourceSpec("sql", url, *_table_or_query(table, query, text))
    if query:
        raise NewProblemError(f"--query needs a SQL source (a SQL URL or conn:<conn_id>), not {text!r}")
    try:
        file_source.file_format(text)
    except ValueError:
        raise NewProblemError(f"cannot tell what SOURCE {text!r} is: give {FORMS}") from None
    if "://" in text and not text.startswith("file://"):
        return SourceSpec("file", text)
    path = Path(text.removeprefix("file://")).expanduser().resolve()
    if not path.is_file():
        raise NewProblemError(f"cannot read {text}: there is no file at {path}")
    inside = path.is_relative_to(PROJECT_ROOT)
    return SourceSpec("file", str(path), project_path=str(path.relative_to(PROJECT_ROOT)) if inside else None)


def _table_or_query(table: str, query: str | None, text: str) -> tuple[str | None, str | None]:
    if table and query:
        raise NewProblemError(f"give either a table ({text}) or --query, not both")
    if not table and not query:
        raise NewProblemError(
            f"{text} names a database but no table: add '#<table>' (e.g. {text}#sales) or give --query 'SELECT ...'"
        )
    return table or None, query


def _connection_source(rest: str, query: str | None) -> SourceSpec:
    from sqlalchemy.engine import URL, make_url

    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    conn_id, _, table = rest.partition("#")
    if not conn_id:
        raise NewProblemError("conn: needs a connection id: SOURCE=conn:<airflow_conn_id>#table")
    table_name, query = _table_or_query(table, query, f"conn:{conn_id}")
    try:
        options = storage_options_from_connection(conn_id)
    except Exception as error:  # not found, or not a database: both are the user's to fix
        raise NewProblemError(
            f"cannot use the Airflow connection {conn_id!r}: {type(error).__name__}: {error}. Define it, e.g. "
            f"AIRFLOW_CONN_{conn_id.upper()}='postgresql://user:password@host:5432/db' (the password stays in "
            "the connection, never in the generated code)"
        ) from None
    if SQL_URL_OPTION not in options:
        raise NewProblemError(f"the connection {conn_id!r} is not a database connection: conn: reads SQL tables")
    url = make_url(options[SQL_URL_OPTION])
    # URL.set(password=None) keeps the password (None means "unchanged"): build the URL without it.
    public = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    public = public.render_as_string(hide_password=False)
    return SourceSpec("connection", public, table_name, query, conn_id=conn_id, storage_options=options)


# ------------------------------------------------------------------------------------ reading
def read_sample(spec: SourceSpec, rows: int) -> tuple[pd.DataFrame, bool]:
    """At most ``rows`` rows of the table, and whether that is the whole table.

    A file is read whole (a seeded sample of it is kept if it is longer); SQL asks the database for
    the first rows only.

    Raises:
        NewProblemError: the file or table cannot be read, the database cannot be reached, or the
            table is empty.
    """
    if spec.kind == "file":
        frame = _read_file(spec)
        whole = len(frame) <= rows
        if not whole:
            frame = frame.sample(n=rows, random_state=SEED).sort_index().reset_index(drop=True)
    else:
        frame = _read_sql(spec, rows + 1)  # one more than asked says whether there is more
        whole = len(frame) <= rows
        frame = frame.head(rows)
    if frame.empty:
        raise NewProblemError(f"the table {spec.shown} is empty (it has {len(frame.columns)} columns, no rows)")
    log.info("sample of %s: %d rows, %d columns (%s)", spec.shown, len(frame), len(frame.columns), whole)
    return frame, whole


def _read_file(spec: SourceSpec) -> pd.DataFrame:
    try:
        return TableSource(spec.table_name, spec.location).read()
    except DataQualityError as error:
        raise NewProblemError(str(error)) from None
    except (FileNotFoundError, OSError) as error:
        raise NewProblemError(f"cannot read {spec.location}: {type(error).__name__}: {error}") from None


def _read_sql(spec: SourceSpec, rows: int) -> pd.DataFrame:
    import sqlalchemy as sa

    url = spec.storage_options.get(SQL_URL_OPTION) or spec.location
    engine = sa.create_engine(url)
    try:
        if spec.table:
            _require_table(engine, spec)
            preparer = engine.dialect.identifier_preparer
            selected = ".".join(preparer.quote(part) for part in spec.table.split("."))
        else:
            selected = f"({str(spec.query).strip().rstrip(';')}) AS new_problem_sample"
        statement = sa.select(sa.literal_column("*")).select_from(sa.text(selected)).limit(rows)
        limited = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        return TableSource(spec.table_name, spec.location, query=limited).read(spec.storage_options)
    except DataQualityError as error:
        raise NewProblemError(f"cannot read {spec.shown}: {error}") from None
    except sa.exc.DBAPIError as error:
        raise NewProblemError(f"cannot reach the database {spec.location}: {_first_line(error)}") from None
    finally:
        engine.dispose()


def _require_table(engine: Any, spec: SourceSpec) -> None:
    import sqlalchemy as sa

    schema, _, name = str(spec.table).rpartition(".")
    inspector = sa.inspect(engine)
    if not inspector.has_table(name, schema=schema or None):
        known = sorted(inspector.get_table_names(schema=schema or None))
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none"
        raise NewProblemError(f"the SQL table {spec.table!r} does not exist in {spec.location} (tables: {shown})")


def _first_line(error: Exception) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0][:300] if str(original).strip() else type(original).__name__
