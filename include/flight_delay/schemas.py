"""Data contracts of the flight-delay example: raw source tables, the clean table, the feature table.

Raw contracts check structure (columns present, values coercible to their types); the clean and
feature contracts also check values, row by row, and are strict so that no unexpected column (in
particular no leakage column) slips through.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

NYC_ORIGINS = ["EWR", "JFK", "LGA"]

# Known only after departure or arrival: must never be a model input.
LEAKAGE_COLUMNS = ("dep_time", "dep_delay", "arr_time", "air_time", "arr_delay")


def _clock_hhmm(values: pd.Series) -> pd.Series:
    """A clock time written as HHMM (e.g. 1545): hours 0..24 (2400 is midnight), minutes 0..59."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.isna() | ((numbers >= 0) & (numbers <= 2400) & (numbers % 100 < 60))


# ---------------------------------------------------------------------------------------- raw
class RawFlights(pa.DataFrameModel):
    """One row per scheduled flight departing NYC, as the source delivers it."""

    year: Series[int] = pa.Field(description="Year of the scheduled departure.")
    month: Series[int] = pa.Field(description="Month of the scheduled departure (1-12).")
    day: Series[int] = pa.Field(description="Day of month of the scheduled departure.")
    dep_time: Series[float] = pa.Field(nullable=True, description="Actual departure (HHMM, local); null if cancelled.")
    sched_dep_time: Series[int] = pa.Field(description="Scheduled departure (HHMM, local).")
    dep_delay: Series[float] = pa.Field(nullable=True, description="Departure delay in minutes; null if cancelled.")
    arr_time: Series[float] = pa.Field(nullable=True, description="Actual arrival (HHMM, local).")
    sched_arr_time: Series[int] = pa.Field(description="Scheduled arrival (HHMM, local).")
    arr_delay: Series[float] = pa.Field(nullable=True, description="Arrival delay in minutes; null if not arrived.")
    carrier: Series[str] = pa.Field(description="Two-letter carrier code.")
    flight: Series[int] = pa.Field(description="Flight number.")
    tailnum: Series[str] = pa.Field(nullable=True, description="Plane tail number; may be missing.")
    origin: Series[str] = pa.Field(description="Origin airport (FAA code).")
    dest: Series[str] = pa.Field(description="Destination airport (FAA code).")
    air_time: Series[float] = pa.Field(nullable=True, description="Minutes in the air.")
    distance: Series[float] = pa.Field(description="Distance between airports, miles.")
    hour: Series[int] = pa.Field(description="Hour of the scheduled departure.")
    minute: Series[int] = pa.Field(description="Minute of the scheduled departure.")
    time_hour: Series[str] = pa.Field(description="Scheduled departure hour as an ISO-8601 UTC timestamp.")

    class Config:
        coerce = True
        strict = "filter"


class RawWeather(pa.DataFrameModel):
    """Hourly weather observations at the three NYC airports."""

    origin: Series[str] = pa.Field(description="Airport (FAA code) where the weather was observed.")
    year: Series[int] = pa.Field(description="Year of the observation (local time).")
    month: Series[int] = pa.Field(description="Month of the observation.")
    day: Series[int] = pa.Field(description="Day of the observation.")
    hour: Series[int] = pa.Field(description="Hour of the observation (local time).")
    temp: Series[float] = pa.Field(nullable=True, description="Temperature, F.")
    dewp: Series[float] = pa.Field(nullable=True, description="Dew point, F.")
    humid: Series[float] = pa.Field(nullable=True, description="Relative humidity, %.")
    wind_dir: Series[float] = pa.Field(nullable=True, description="Wind direction, degrees.")
    wind_speed: Series[float] = pa.Field(nullable=True, description="Wind speed, mph.")
    wind_gust: Series[float] = pa.Field(nullable=True, description="Gust speed, mph; null when no gust.")
    precip: Series[float] = pa.Field(nullable=True, description="Precipitation, inches.")
    pressure: Series[float] = pa.Field(nullable=True, description="Sea level pressure, millibars.")
    visib: Series[float] = pa.Field(nullable=True, description="Visibility, miles.")

    class Config:
        coerce = True
        strict = "filter"


class RawPlanes(pa.DataFrameModel):
    """Aircraft registry: one row per tail number."""

    tailnum: Series[str] = pa.Field(description="Tail number.")
    year: Series[float] = pa.Field(nullable=True, description="Year the plane was built.")
    type: Series[str] = pa.Field(nullable=True, description="Type of plane.")
    manufacturer: Series[str] = pa.Field(nullable=True, description="Manufacturer.")
    engines: Series[float] = pa.Field(nullable=True, description="Number of engines.")
    seats: Series[float] = pa.Field(nullable=True, description="Number of seats.")

    class Config:
        coerce = True
        strict = "filter"


class RawAirlines(pa.DataFrameModel):
    """Carrier codes and names."""

    carrier: Series[str] = pa.Field(description="Two-letter carrier code.")
    name: Series[str] = pa.Field(description="Carrier name.")

    class Config:
        coerce = True
        strict = "filter"


# -------------------------------------------------------------------------------------- clean
class CleanFlights(pa.DataFrameModel):
    """One row per flight with its outcome, weather at the origin and plane details.

    The unique key is (year, month, day, carrier, flight, origin).
    """

    year: Series[int] = pa.Field(ge=1900, le=2100, description="Year of the scheduled departure.")
    month: Series[int] = pa.Field(ge=1, le=12, description="Month of the scheduled departure.")
    day: Series[int] = pa.Field(ge=1, le=31, description="Day of month of the scheduled departure.")
    sched_dep_time: Series[int] = pa.Field(description="Scheduled departure, HHMM local.")
    sched_arr_time: Series[int] = pa.Field(description="Scheduled arrival, HHMM local.")
    hour: Series[int] = pa.Field(ge=0, le=23, description="Hour of the scheduled departure.")
    minute: Series[int] = pa.Field(ge=0, le=59, description="Minute of the scheduled departure.")
    sched_dep_ts: Series[pd.Timestamp] = pa.Field(description="Scheduled departure, local wall-clock timestamp.")
    carrier: Series[str] = pa.Field(str_matches=r"^[A-Z0-9]{2}$", description="Two-letter carrier code.")
    flight: Series[int] = pa.Field(ge=1, description="Flight number.")
    tailnum: Series[str] = pa.Field(nullable=True, description="Tail number; null when the source lacks it.")
    origin: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$", description="Origin airport (FAA code).")
    dest: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$", description="Destination airport (FAA code).")
    distance: Series[float] = pa.Field(gt=0, le=10_000, description="Distance, miles; must be positive.")
    dep_delay: Series[float] = pa.Field(nullable=True, description="Outcome: departure delay, minutes.")
    arr_delay: Series[float] = pa.Field(nullable=True, description="Outcome: arrival delay, minutes.")
    cancelled: Series[bool] = pa.Field(description="Outcome: no departure recorded.")
    is_delayed: Series[int] = pa.Field(
        isin=[0, 1],
        description="Label: 1 if the flight arrived 15+ minutes late, or never arrived (cancelled/diverted).",
    )
    temp: Series[float] = pa.Field(nullable=True, ge=-40, le=130, description="Origin temperature, F.")
    dewp: Series[float] = pa.Field(nullable=True, ge=-60, le=100, description="Origin dew point, F.")
    humid: Series[float] = pa.Field(nullable=True, ge=0, le=100, description="Origin relative humidity, %.")
    wind_dir: Series[float] = pa.Field(nullable=True, ge=0, le=360, description="Origin wind direction.")
    wind_speed: Series[float] = pa.Field(nullable=True, ge=0, le=150, description="Origin wind speed, mph.")
    wind_gust: Series[float] = pa.Field(nullable=True, ge=0, le=200, description="Origin gusts, mph.")
    precip: Series[float] = pa.Field(nullable=True, ge=0, le=10, description="Origin precipitation, inches.")
    pressure: Series[float] = pa.Field(nullable=True, ge=900, le=1100, description="Origin pressure, mbar.")
    visib: Series[float] = pa.Field(nullable=True, ge=0, le=100, description="Origin visibility, miles.")
    weather_missing: Series[bool] = pa.Field(description="No weather observation within 2 hours of departure.")
    plane_year: Series[float] = pa.Field(nullable=True, ge=1900, le=2100, description="Year the plane was built.")
    plane_seats: Series[float] = pa.Field(nullable=True, ge=1, le=1000, description="Seats in the plane.")
    plane_engines: Series[float] = pa.Field(nullable=True, ge=0, le=8, description="Engines of the plane.")
    plane_known: Series[bool] = pa.Field(description="The tail number is in the plane registry.")
    carrier_known: Series[bool] = pa.Field(description="The carrier code is in the airlines table.")

    @pa.check("sched_dep_time", name="clock_hhmm")
    def _sched_dep_clock(cls, values: Series[int]) -> Series[bool]:
        return _clock_hhmm(values)

    @pa.check("sched_arr_time", name="clock_hhmm")
    def _sched_arr_clock(cls, values: Series[int]) -> Series[bool]:
        return _clock_hhmm(values)

    class Config:
        coerce = True
        strict = True
        unique = ["year", "month", "day", "carrier", "flight", "origin"]


# ----------------------------------------------------------------------------------- features
class FlightFeatures(pa.DataFrameModel):
    """Model-ready table: key, label and features known before departure. Nothing else."""

    flight_id: Series[str] = pa.Field(unique=True, description="Key: YYYY-MM-DD_carrier_flight_origin.")
    sched_dep_ts: Series[pd.Timestamp] = pa.Field(description="Key: scheduled departure (local).")
    is_delayed: Series[int] = pa.Field(isin=[0, 1], description="Label: arrived 15+ minutes late or not at all.")
    dep_hour: Series[int] = pa.Field(ge=0, le=23, description="Scheduled departure hour.")
    arr_hour: Series[int] = pa.Field(ge=0, le=24, description="Scheduled arrival hour.")
    weekday: Series[int] = pa.Field(ge=0, le=6, description="Day of week of departure (Monday=0).")
    month: Series[int] = pa.Field(ge=1, le=12, description="Month of departure.")
    days_to_holiday: Series[int] = pa.Field(
        ge=0, le=366, description="Days to the nearest US federal holiday (either direction)."
    )
    distance: Series[float] = pa.Field(gt=0, description="Route distance, miles.")
    temp: Series[float] = pa.Field(nullable=True, description="Origin temperature at departure hour, F.")
    dewp: Series[float] = pa.Field(nullable=True, description="Origin dew point, F.")
    humid: Series[float] = pa.Field(nullable=True, description="Origin relative humidity, %.")
    wind_speed: Series[float] = pa.Field(nullable=True, description="Origin wind speed, mph.")
    wind_gust: Series[float] = pa.Field(nullable=True, description="Origin gusts, mph (wind speed if none).")
    precip: Series[float] = pa.Field(nullable=True, description="Origin precipitation, inches.")
    pressure: Series[float] = pa.Field(nullable=True, description="Origin sea-level pressure, mbar.")
    visib: Series[float] = pa.Field(nullable=True, description="Origin visibility, miles.")
    weather_missing: Series[int] = pa.Field(isin=[0, 1], description="1 if no weather within 2 hours.")
    plane_age: Series[float] = pa.Field(nullable=True, ge=0, le=100, description="Plane age in years.")
    plane_seats: Series[float] = pa.Field(nullable=True, description="Seats in the plane.")
    plane_engines: Series[float] = pa.Field(nullable=True, description="Engines of the plane.")
    plane_known: Series[int] = pa.Field(isin=[0, 1], description="1 if the tail number is in the registry.")
    carrier: Series[str] = pa.Field(description="Carrier code (categorical).")
    origin: Series[str] = pa.Field(description="Origin airport (categorical).")
    dest: Series[str] = pa.Field(description="Destination airport (categorical).")
    route: Series[str] = pa.Field(description="origin-dest pair (categorical).")

    @pa.dataframe_check(name="no_leakage_columns")
    def _no_leakage(cls, frame: pd.DataFrame) -> bool:
        return not set(LEAKAGE_COLUMNS) & set(frame.columns)

    class Config:
        coerce = True
        strict = True
