"""What the API needs to know about flights: the request row, its lookups, canary flights, and the
requests that clean rows stand for (the traffic replay's).

A request carries only what is known before departure: the raw ``flights`` columns without
dep_time, dep_delay, arr_time, arr_delay and air_time (sending one of those is a 422), and without
``sched_dep_time`` and ``time_hour``, which only restate ``year``/``month``/``day``/``hour``/``minute``
(HHMM; the local hour as UTC) and which the model never reads: a copy the API would ignore, or have
to check against the fields it does read. The API looks up weather and plane details itself, from
the same source tables and with the same join code the ETL uses, then builds features with the
training code.

Closed and open sets: ``origin`` is one of the three New York airports (the weather the API looks
up is theirs), an enum in the schema, so anything else is a 422 that lists them. ``carrier`` and
``dest`` are open: airlines and routes come and go, and the model is built to answer a code it did
not see (one-hot codes pool rare and unseen values; ``carrier_known`` marks a carrier outside the
airlines table), so they are answered. The calendar rule (no 31 April) is in the schema too, as
``if``/``then`` clauses (:data:`CALENDAR_RULE`), and :func:`impossible_dates` enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from include.flight_delay import cleaning, sources
from include.mlpipeline.core.request_types import Integer

ORIGINS = ("EWR", "JFK", "LGA")
_LEAP_YEAR = {"anyOf": [{"multipleOf": 400}, {"multipleOf": 4, "not": {"multipleOf": 100}}]}
CALENDAR_RULE = [
    {"if": {"properties": {"month": {"enum": [4, 6, 9, 11]}}}, "then": {"properties": {"day": {"maximum": 30}}}},
    {"if": {"properties": {"month": {"const": 2}}}, "then": {"properties": {"day": {"maximum": 29}}}},
    {
        "if": {"properties": {"month": {"const": 2}, "day": {"const": 29}}, "required": ["month", "day"]},
        "then": {"properties": {"year": _LEAP_YEAR}},
    },
]
"""JSON Schema of "the day exists in its month": what :func:`impossible_dates` checks, stated in the
request's schema (a test compares the two on every day of several years)."""


class FlightRequest(BaseModel):
    """One scheduled flight, as known before departure."""

    # strict: exact JSON types (include/mlpipeline/core/request_types.py), as the schema documents them.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "example": {
                "year": 2013,
                "month": 6,
                "day": 14,
                "sched_arr_time": 2015,
                "carrier": "UA",
                "flight": 1545,
                "tailnum": "N14228",
                "origin": "EWR",
                "dest": "IAH",
                "distance": 1400,
                "hour": 17,
                "minute": 30,
            },
            "allOf": CALENDAR_RULE,
        },
    )

    year: Integer = Field(ge=1900, le=2100, description="Year of the scheduled departure.")
    month: Integer = Field(ge=1, le=12, description="Month of the scheduled departure.")
    day: Integer = Field(
        ge=1, le=31, description="Day of month of the scheduled departure; it must exist in the month."
    )
    hour: Integer = Field(ge=0, le=23, description="Hour of the scheduled departure, local time.")
    minute: Integer = Field(ge=0, le=59, description="Minute of the scheduled departure.")
    sched_arr_time: Integer = Field(ge=0, le=2400, description="Scheduled arrival, HHMM local time.")
    carrier: str = Field(
        min_length=2, max_length=2, description="Two-letter carrier code (any case; one never seen is answered)."
    )
    flight: Integer = Field(ge=1, le=99_999, description="Flight number.")
    tailnum: str | None = Field(None, max_length=10, description="Tail number, if known.")
    origin: Literal[ORIGINS] = Field(description="Origin airport: one of the New York airports, EWR, JFK or LGA.")
    dest: str = Field(
        min_length=3, max_length=3, description="Destination airport, FAA code (any case; one never seen is answered)."
    )
    distance: float = Field(gt=0, le=10_000, description="Distance between the airports, miles.")


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


_UPPER_CASE = ("dest", "carrier")  # origin is one of ORIGINS, already in upper case


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
            :func:`include.mlpipeline.core.request_frame.records_frame` builds it. Not changed.
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
    """The request each clean flight stands for, as a caller would have sent it before departure: its
    request fields, codes as cleaning left them (the raw values, which the clean contract requires
    upper case).

    Args:
        clean: Rows of the clean table (:class:`~include.flight_delay.schemas.CleanFlights`).

    Returns:
        One :class:`FlightRequest` record (JSON form) per row, in the rows' order.
    """
    fields = list(FlightRequest.model_fields)
    rows = clean[fields].astype(object).where(clean[fields].notna(), None).to_dict(orient="records")
    return [FlightRequest.model_validate(row).model_dump(mode="json") for row in rows]
