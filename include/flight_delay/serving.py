"""What the API needs to know about flights: the request row, its lookups, canary flights, and the
requests that clean rows stand for (the traffic replay's).

A request carries only what is known before departure: the raw ``flights`` columns without
dep_time, dep_delay, arr_time, arr_delay and air_time (sending one of those is a 422). The API looks
up weather and plane details itself, from the same source tables and with the same join code the
ETL uses, then builds features with the training code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from include.flight_delay import cleaning, sources


class FlightRequest(BaseModel):
    """One scheduled flight, as known before departure."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "year": 2013,
                "month": 6,
                "day": 14,
                "sched_dep_time": 1730,
                "sched_arr_time": 2015,
                "carrier": "UA",
                "flight": 1545,
                "tailnum": "N14228",
                "origin": "EWR",
                "dest": "IAH",
                "distance": 1400,
                "hour": 17,
                "minute": 30,
                "time_hour": "2013-06-14T21:00:00Z",
            }
        },
    )

    year: int = Field(ge=1900, le=2100, description="Year of the scheduled departure.")
    month: int = Field(ge=1, le=12, description="Month of the scheduled departure.")
    day: int = Field(ge=1, le=31, description="Day of month of the scheduled departure.")
    sched_dep_time: int = Field(ge=0, le=2400, description="Scheduled departure, HHMM local time.")
    sched_arr_time: int = Field(ge=0, le=2400, description="Scheduled arrival, HHMM local time.")
    carrier: str = Field(min_length=2, max_length=2, description="Two-letter carrier code.")
    flight: int = Field(ge=1, le=99_999, description="Flight number.")
    tailnum: str | None = Field(None, max_length=10, description="Tail number, if known.")
    origin: str = Field(min_length=3, max_length=3, description="Origin airport (FAA code).")
    dest: str = Field(min_length=3, max_length=3, description="Destination airport (FAA code).")
    distance: float = Field(gt=0, le=10_000, description="Distance between the airports, miles.")
    hour: int = Field(ge=0, le=23, description="Hour of the scheduled departure.")
    minute: int = Field(ge=0, le=59, description="Minute of the scheduled departure.")
    time_hour: dt.datetime = Field(description="Scheduled departure hour, ISO-8601 timestamp (UTC).")


@dataclass(frozen=True)
class FlightLookups:
    """Reference data the API joins onto requests."""

    weather: pd.DataFrame
    planes: pd.DataFrame
    airlines: pd.DataFrame

    @cached_property
    def observations(self) -> cleaning.ObservationIndex:
        """The weather cleaned (one row per airport and hour) and indexed once, for every request."""
        return cleaning.ObservationIndex.from_observations(cleaning.clean_weather(self.weather))

    @cached_property
    def plane_registry(self) -> pd.DataFrame:
        """The plane registry deduplicated once, for every request to join."""
        return cleaning.plane_registry(self.planes)

    @cached_property
    def carriers(self) -> frozenset[str]:
        """The carrier codes of the airlines table."""
        return cleaning.carrier_codes(self.airlines)


def load_serving_context() -> FlightLookups:
    """Weather, planes and airlines from the same sources the ETL reads."""
    lookups = FlightLookups(
        weather=sources.whole_table("weather"),
        planes=sources.whole_table("planes"),
        airlines=sources.whole_table("airlines"),
    )
    _ = lookups.observations, lookups.plane_registry, lookups.carriers  # prepared at start-up, not in the first request
    return lookups


_UPPER_CASE = ("origin", "dest", "carrier")
# Every flight departs New York: the source's time_hour is the scheduled local hour in this zone, in UTC.
LOCAL_TIME_ZONE = "America/New_York"


def impossible_dates(requests: pd.DataFrame) -> pd.Series:
    """Why a request cannot be scored: its date does not exist (31 February passes every field's bounds).

    Args:
        requests: The request frame (one column per :class:`FlightRequest` field).

    Returns:
        Per row, ``"YYYY-MM-DD is not a calendar date"`` or None.
    """
    year, month, day = (requests[c].to_numpy(dtype="int64") for c in ("year", "month", "day"))
    first = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days_in_month = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype("int64")
    reasons = np.full(len(requests), None, dtype=object)
    for row in np.flatnonzero(day > days_in_month):
        reasons[row] = f"{year[row]}-{month[row]:02d}-{day[row]:02d} is not a calendar date"
    return pd.Series(reasons, index=requests.index, dtype=object)


def serving_frame(requests: pd.DataFrame, lookups: FlightLookups) -> pd.DataFrame:
    """Request rows enriched exactly as the ETL enriches flights (no outcome columns).

    Args:
        requests: The request frame: one column per :class:`FlightRequest` field, typed as
            :func:`include.mlpipeline.core.request_frame.records_frame` builds it (``time_hour`` in UTC).
            Not changed.
        lookups: The reference data, prepared once (:func:`load_serving_context`).

    Returns:
        One row per request: its fields (codes upper-cased) and the columns
        :func:`cleaning.enrich_prepared` adds.
    """
    flights = requests.copy(deep=False)
    for column in _UPPER_CASE:
        flights[column] = pd.Series(
            [code.upper() for code in requests[column].tolist()], index=requests.index, dtype=object
        )
    return cleaning.enrich_prepared(flights, lookups.observations, lookups.plane_registry, lookups.carriers)


def canary_records() -> list[dict[str, Any]]:
    """Eight real flights of the replay year (mid-June, all three origins) for deploy smoke tests."""
    year = sources.source_settings().replay_year
    flights = sources.whole_table("flights")
    day = flights[(flights["year"] == year) & (flights["month"] == 6) & (flights["day"] == 14)]
    picked = day.groupby("origin", group_keys=False).head(3).head(8)
    columns = list(FlightRequest.model_fields)
    records = picked[columns].to_dict(orient="records")
    for record in records:
        if isinstance(record["tailnum"], float):  # NaN from the CSV
            record["tailnum"] = None
    return [FlightRequest.model_validate(r).model_dump(mode="json") for r in records]


def request_records(clean: pd.DataFrame) -> list[dict[str, Any]]:
    """The request each clean flight stands for, as a caller would have sent it before departure.

    The clean table keeps every request field but ``time_hour``, which is rebuilt as the source
    defines it: the scheduled departure's local hour in New York, as a UTC timestamp (an hour that
    does not exist locally, when clocks go forward, moves to the next; one that occurs twice, when
    they go back, is the first). Codes are as cleaning left them (the raw values, which the clean
    contract requires upper case).

    Args:
        clean: Rows of the clean table (:class:`~include.flight_delay.schemas.CleanFlights`).

    Returns:
        One :class:`FlightRequest` record (JSON form) per row, in the rows' order.
    """
    fields = [name for name in FlightRequest.model_fields if name != "time_hour"]
    local_hour = pd.to_datetime(clean["sched_dep_ts"]).dt.floor("h")
    time_hour = local_hour.dt.tz_localize(LOCAL_TIME_ZONE, ambiguous=True, nonexistent="shift_forward")
    rows = clean[fields].astype(object).where(clean[fields].notna(), None).to_dict(orient="records")
    stamps = time_hour.dt.tz_convert("UTC").tolist()
    return [
        FlightRequest.model_validate({**row, "time_hour": stamp}).model_dump(mode="json")
        for row, stamp in zip(rows, stamps, strict=True)
    ]
