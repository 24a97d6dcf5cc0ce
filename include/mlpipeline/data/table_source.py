"""One whole table as a source: a CSV or Parquet file behind any fsspec URL, or a SQL table or query.

What ``Source.extract`` needs for a table a user points at (``make new-problem`` writes problems on
it): with a ``date_column`` the table has a time axis, and each day's rows become that day's slice
(:meth:`TableSource.available_days` lists the days the table holds, so a first ETL run can load its
whole history); without one it is a snapshot, and every requested day gets the whole table, one
version per load.

Where it reads:

- a file (``location`` a path or any fsspec URL): read with :mod:`include.mlpipeline.data.file_source`,
  so an unreadable file is a :class:`DataQualityError` and an I/O error is retried;
- SQL (``location`` a SQLAlchemy URL, with ``table`` or ``query``): one query per extract, the day
  filter in SQL. Credentials never live in code: a URL without a password here, and the password
  in an environment variable the driver reads (``PGPASSWORD``) or an Airflow connection, whose
  resolved URL the orchestrator hands over as the ``sqlalchemy_url`` storage option.

A missing table or column is a :class:`DataQualityError` naming it: retrying cannot create it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from include.mlpipeline.data import file_source
from include.mlpipeline.data.quality import DataQualityError

log = logging.getLogger(__name__)

SQL_URL_OPTION = "sqlalchemy_url"  # the storage option a resolved database connection arrives as


def is_sql_url(location: str) -> bool:
    """Whether ``location`` is a SQLAlchemy database URL rather than a file path or fsspec URL."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    return scheme.split("+", 1)[0] in {"postgresql", "postgres", "mysql", "mariadb", "sqlite", "mssql", "oracle"}


@dataclass(frozen=True)
class TableSource:
    """A table read whole (see the module doc).

    Attributes:
        name: The source's name (its folder under ``raw/`` and its gate ``raw_<name>``).
        location: A file path or fsspec URL, or a SQLAlchemy URL.
        table: For SQL, the table (``schema.table`` allowed); or give ``query``.
        query: For SQL, a SELECT whose rows are the table.
        date_column: The column whose date puts a row in a day; None for a snapshot.
        fmt: ``"csv"`` or ``"parquet"`` for a file whose name does not say.
    """

    name: str
    location: str
    table: str | None = None
    query: str | None = None
    date_column: str | None = None
    fmt: str | None = None

    def __post_init__(self) -> None:
        if is_sql_url(self.location) and not (self.table or self.query):
            raise ValueError(f"source {self.name}: a SQL location needs a table or a query")

    # ------------------------------------------------------------------------------ reading
    def read(self, storage_options: Mapping[str, Any] | None = None, days: Sequence[dt.date] = ()) -> pd.DataFrame:
        """The table (for SQL with a date column and ``days``, only the rows of those days).

        Raises:
            DataQualityError: the file cannot be read, or the table, the query or the date column fails.
        """
        options = dict(storage_options or {})
        url = options.pop(SQL_URL_OPTION, None)
        if url or is_sql_url(self.location):
            return self._read_sql(url or self.location, days)
        frame = file_source.read_file(self.location, storage_options=options, fmt=self.fmt, gate=self.gate)
        if frame is None:
            raise FileNotFoundError(f"source {self.name}: no file at {self.location}")
        return frame

    @property
    def gate(self) -> str:
        return f"raw_{self.name}"

    def _select(self, engine: Any) -> str:
        if self.query:
            return f"({self.query.strip().rstrip(';')}) AS source_rows"
        preparer = engine.dialect.identifier_preparer
        return ".".join(preparer.quote(part) for part in str(self.table).split("."))

    def _read_sql(self, url: str, days: Sequence[dt.date]) -> pd.DataFrame:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            # Quoted identifiers, or the problem author's own query (code, not request input); values are bound.
            statement = f"SELECT * FROM {self._select(engine)}"  # noqa: S608  # nosec B608
            parameters: dict[str, Any] = {}
            if self.date_column and days:
                column = engine.dialect.identifier_preparer.quote(self.date_column)
                statement += f" WHERE {column} >= :first AND {column} < :after"
                parameters = {"first": min(days), "after": max(days) + dt.timedelta(days=1)}
            try:
                with engine.connect() as connection:
                    return pd.read_sql(sa.text(statement), connection, params=parameters)
            except (sa.exc.ProgrammingError, sa.exc.NoSuchTableError) as error:
                raise DataQualityError(
                    self.gate, {"table_readable": 0}, f"{self.table or 'the query'}: {str(error.orig or error)[:300]}"
                ) from None
        finally:
            engine.dispose()

    # ------------------------------------------------------------------------------- by day
    def _dates(self, frame: pd.DataFrame) -> pd.Series:
        if self.date_column not in frame.columns:
            raise DataQualityError(
                self.gate,
                {f"column_in_dataframe:{self.date_column}": 0},
                f"the date column {self.date_column!r} is not in {self.location}: "
                f"columns are {list(frame.columns)[:20]}",
            )
        # Times with an offset count in UTC, times without one as they are written.
        dates = pd.to_datetime(frame[self.date_column], errors="coerce", utc=True, format="mixed")
        return dates.dt.tz_convert(None).dt.date

    def extract(
        self, days: Sequence[dt.date], storage_options: Mapping[str, Any] | None = None
    ) -> dict[dt.date, pd.DataFrame | None]:
        """``Source.extract``: each day's rows (None when the table holds none that day), or, for a
        snapshot, the whole table for every day."""
        frame = self.read(storage_options, days)
        if self.date_column is None:
            log.info("%s: snapshot of %d rows for %d day(s)", self.name, len(frame), len(days))
            return {day: frame for day in days}
        dates = self._dates(frame)
        groups = {day: rows for day, rows in frame.groupby(dates.to_numpy(), sort=False)}
        slices = {day: groups[day].reset_index(drop=True) if day in groups else None for day in days}
        log.info(
            "%s: %d of %d days have rows (%d rows)",
            self.name,
            sum(s is not None for s in slices.values()),
            len(days),
            sum(len(s) for s in slices.values() if s is not None),
        )
        return slices

    def available_days(self, storage_options: Mapping[str, Any] | None = None) -> list[dt.date]:
        """The days the table has rows for, oldest first (a snapshot has none: it is loaded whole)."""
        if self.date_column is None:
            return []
        return sorted({day for day in self._dates(self.read(storage_options)) if not pd.isna(day)})
