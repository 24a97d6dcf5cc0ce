"""Cleaning rules of the example, one named function each, composed by :func:`transform`.

The rules, and why:

- ``drop_duplicate_flights``: exact duplicate rows are dropped; then rows sharing the flight key
  (date, carrier, flight number, origin) keep the first delivered (a source resend, not a new flight).
- ``label_arrival_delay``: ``is_delayed`` is 1 when the flight arrived 15+ minutes late, and also when
  it never arrived (cancelled: no departure; diverted: departed, no arrival). A passenger who never
  arrives on time is delayed; dropping those flights would hide the worst days from the model.
- ``scheduled_departure_timestamp``: the local scheduled departure as one timestamp.
- ``clean_weather``: one observation per airport and hour (duplicates averaged); a missing gust
  means no gust was reported, so it takes the sustained wind speed.
- ``attach_weather``: the observation nearest the scheduled departure at the origin, if one lies
  within 2 hours; otherwise weather columns stay empty and ``weather_missing`` is set (the model
  imputes them). We never reach further: weather from 5 hours away is not that flight's weather.
- ``attach_planes``: plane details by tail number; unknown or missing tail numbers are kept, with
  ``plane_known`` false.
- ``attach_airlines``: ``carrier_known`` says whether the carrier code is in the airlines table.

Impossible values (non-positive distance, clock times like 1275, hour 25) are not repaired: the
clean contract rejects those rows into quarantine.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from include.flight_delay.schemas import CleanFlights

log = logging.getLogger(__name__)

FLIGHT_KEY = ["year", "month", "day", "carrier", "flight", "origin"]
WEATHER_TOLERANCE = pd.Timedelta(hours=2)
DELAY_THRESHOLD_MIN = 15
WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def drop_duplicate_flights(flights: pd.DataFrame) -> pd.DataFrame:
    """Drop exact duplicates, then keep the first row of each flight key."""
    exact = flights.duplicated()
    deduped = flights.loc[~exact]
    by_key = deduped.duplicated(FLIGHT_KEY, keep="first")
    if exact.any() or by_key.any():
        log.warning("dropped %d exact and %d key duplicate flights", int(exact.sum()), int(by_key.sum()))
    return deduped.loc[~by_key].reset_index(drop=True)


def label_arrival_delay(flights: pd.DataFrame) -> pd.DataFrame:
    """Add ``cancelled`` and the label ``is_delayed`` (15+ minutes late, or never arrived)."""
    out = flights.copy()
    out["cancelled"] = out["dep_time"].isna()
    never_arrived = out["arr_delay"].isna()
    out["is_delayed"] = ((out["arr_delay"] >= DELAY_THRESHOLD_MIN) | never_arrived).astype("int64")
    return out


def scheduled_departure_timestamp(flights: pd.DataFrame) -> pd.DataFrame:
    """Add ``sched_dep_ts``: the local scheduled departure. Invalid parts give NaT (the gate rejects them)."""
    out = flights.copy()
    parts = out[["year", "month", "day", "hour", "minute"]].apply(pd.to_numeric, errors="coerce")
    valid = parts["hour"].between(0, 23) & parts["minute"].between(0, 59)
    stamps = pd.to_datetime(parts[["year", "month", "day", "hour", "minute"]].where(valid), errors="coerce")
    out["sched_dep_ts"] = stamps
    return out


def clean_weather(weather: pd.DataFrame) -> pd.DataFrame:
    """One observation per airport and local hour, with ``obs_ts`` and gusts filled from wind speed."""
    out = weather.copy()
    out["obs_ts"] = pd.to_datetime(out[["year", "month", "day", "hour"]], errors="coerce")
    out = out.dropna(subset=["obs_ts"])
    out = out.groupby(["origin", "obs_ts"], as_index=False)[WEATHER_COLUMNS].mean()
    out["wind_gust"] = out["wind_gust"].fillna(out["wind_speed"])
    return out.sort_values("obs_ts").reset_index(drop=True)


def attach_weather(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Join the origin's observation nearest the scheduled departure (within 2 hours)."""
    return join_observations(flights, clean_weather(weather))


def join_observations(flights: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """:func:`attach_weather` on observations already cleaned by :func:`clean_weather`."""
    out = flights.drop(columns=[c for c in WEATHER_COLUMNS if c in flights.columns])
    out["_row"] = np.arange(len(out))
    has_ts = out["sched_dep_ts"].notna()
    timed = out.loc[has_ts].sort_values("sched_dep_ts")
    joined = pd.merge_asof(
        timed,
        observations.rename(columns={"obs_ts": "sched_dep_ts_obs"}),
        left_on="sched_dep_ts",
        right_on="sched_dep_ts_obs",
        by="origin",
        direction="nearest",
        tolerance=WEATHER_TOLERANCE,
    )
    out = pd.concat([joined, out.loc[~has_ts]], ignore_index=True).sort_values("_row")
    out["weather_missing"] = out["sched_dep_ts_obs"].isna()
    return out.drop(columns=["_row", "sched_dep_ts_obs"]).reset_index(drop=True)


def attach_planes(flights: pd.DataFrame, planes: pd.DataFrame) -> pd.DataFrame:
    """Join plane year, seats and engines by tail number; keep unknown planes with a flag."""
    return join_plane_registry(flights, plane_registry(planes))


def plane_registry(planes: pd.DataFrame) -> pd.DataFrame:
    """One row per tail number with the plane columns the features use (the API builds it once)."""
    return planes.drop_duplicates("tailnum").rename(
        columns={"year": "plane_year", "seats": "plane_seats", "engines": "plane_engines"}
    )[["tailnum", "plane_year", "plane_seats", "plane_engines"]]


def join_plane_registry(flights: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """:func:`attach_planes` with the registry already built by :func:`plane_registry`."""
    out = flights.merge(registry, on="tailnum", how="left", indicator=True)
    out["plane_known"] = out["_merge"] == "both"
    return out.drop(columns="_merge")


def attach_airlines(flights: pd.DataFrame, airlines: pd.DataFrame) -> pd.DataFrame:
    """Flag carriers missing from the airlines table (kept: the model treats them as unseen)."""
    out = flights.copy()
    out["carrier_known"] = out["carrier"].isin(set(airlines["carrier"]))
    return out


def enrich(flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame, airlines: pd.DataFrame) -> pd.DataFrame:
    """The pre-departure part of cleaning, shared by the ETL and the API."""
    return enrich_prepared(flights, clean_weather(weather), plane_registry(planes), airlines)


def enrich_prepared(
    flights: pd.DataFrame, observations: pd.DataFrame, registry: pd.DataFrame, airlines: pd.DataFrame
) -> pd.DataFrame:
    """:func:`enrich` with the lookups prepared once (:func:`clean_weather`, :func:`plane_registry`),
    as the API holds them: preparing them per request cost more than everything else a one-flight
    request does."""
    out = scheduled_departure_timestamp(flights)
    out = join_observations(out, observations)
    out = join_plane_registry(out, registry)
    return attach_airlines(out, airlines)


def transform(raw: Mapping[str, pd.DataFrame], day: dt.date) -> pd.DataFrame:
    """Turn one day's raw tables into the clean table (columns in contract order).

    Args:
        raw: The day's raw tables by source name: flights, weather, planes, airlines.
        day: The logical date being processed (for logs).

    Returns:
        One row per flight: schedule, outcome and label, origin weather, plane details.
    """
    flights = drop_duplicate_flights(raw["flights"])
    flights = label_arrival_delay(flights)
    out = enrich(flights, raw["weather"], raw["planes"], raw["airlines"])
    log.info(
        "%s: %d flights cleaned, %d without weather, %d unknown planes",
        day,
        len(out),
        int(out["weather_missing"].sum()),
        int((~out["plane_known"]).sum()),
    )
    return out[list(CleanFlights.to_schema().columns)]
