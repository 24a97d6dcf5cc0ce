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
from dataclasses import dataclass

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
    out["sched_dep_ts"] = local_timestamps(*(out[c] for c in ("year", "month", "day", "hour", "minute")))
    return out


def local_timestamps(
    year: pd.Series, month: pd.Series, day: pd.Series, hour: pd.Series, minute: pd.Series
) -> np.ndarray:
    """Timestamps (datetime64[ns]) from date and clock parts; NaT where a part is missing, not a whole
    number, out of range, or the date does not exist (31 February).

    Calendar arithmetic on arrays rather than ``pd.to_datetime`` on a frame of parts: the same answers,
    but without its fixed cost of a few milliseconds per call, most of what a one-flight API request
    spent here.
    """
    parts = [
        pd.to_numeric(p, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        for p in (year, month, day, hour, minute)
    ]
    y, mo, d, h, mi = parts
    with np.errstate(invalid="ignore"):
        valid = np.logical_and.reduce([np.isfinite(p) & (p == np.floor(p)) for p in parts])
        valid &= (y >= 1678) & (y <= 2261) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31)
        valid &= (h >= 0) & (h <= 23) & (mi >= 0) & (mi <= 59)
    months = np.where(valid, (y - 1970) * 12 + mo - 1, 0).astype("int64").astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(valid, d - 1, 0).astype("int64").astype("timedelta64[D]")
    valid &= days.astype("datetime64[M]") == months  # 31 February rolls over into March: not a date
    minutes = np.where(valid, h * 60 + mi, 0).astype("int64").astype("timedelta64[m]")
    stamps = days.astype("datetime64[ns]") + minutes
    stamps[~valid] = np.datetime64("NaT")
    return stamps


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


@dataclass(frozen=True)
class ObservationIndex:
    """Observations sorted by time per airport, for nearest-observation lookups.

    Equivalent to ``pd.merge_asof(..., by="origin", direction="nearest", tolerance=2 hours)``: the
    nearest observation at the same airport, the earlier one on a tie, none beyond the tolerance
    (inclusive). A sorted search per airport instead of a join, so a call on a few rows does not pay a
    join's fixed cost (the API looks up every request; it builds this index once).
    """

    times: dict[str, np.ndarray]  # airport -> observation times, int64 nanoseconds, ascending
    positions: dict[str, np.ndarray]  # airport -> row of each of those observations in ``values``
    values: np.ndarray  # one row per observation, WEATHER_COLUMNS as float64

    @classmethod
    def from_observations(cls, observations: pd.DataFrame) -> ObservationIndex:
        """Index the output of :func:`clean_weather` (one row per airport and time)."""
        stamps = pd.to_datetime(observations["obs_ts"]).to_numpy(dtype="datetime64[ns]").astype("int64")
        origins = observations["origin"].astype(str).to_numpy()
        times, positions = {}, {}
        for origin in pd.unique(origins):
            rows = np.flatnonzero(origins == origin)
            rows = rows[np.argsort(stamps[rows], kind="stable")]
            times[origin], positions[origin] = stamps[rows], rows
        values = observations[WEATHER_COLUMNS].to_numpy(dtype="float64", na_value=np.nan)
        return cls(times, positions, values)

    def nearest(self, origins: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """Row in ``values`` of each flight's observation, -1 where none lies within the tolerance."""
        found = np.full(len(stamps), -1, dtype="int64")
        at = np.asarray(stamps, dtype="datetime64[ns]")
        timed = ~np.isnat(at)
        at = at.astype("int64")
        tolerance = WEATHER_TOLERANCE.value
        for origin in pd.unique(origins[timed]):
            times = self.times.get(origin)
            if times is None or len(times) == 0:
                continue
            rows = np.flatnonzero(timed & (origins == origin))
            t = at[rows]
            after = np.searchsorted(times, t, side="left")  # first observation at or after t
            before = np.searchsorted(times, t, side="right") - 1  # last observation at or before t
            never = np.iinfo("int64").max
            before_gap = np.where(before >= 0, t - times[np.maximum(before, 0)], never)
            after_gap = np.where(after < len(times), times[np.minimum(after, len(times) - 1)] - t, never)
            pick = np.where(after_gap < before_gap, after, before)  # a tie goes to the earlier observation
            gap = np.minimum(before_gap, after_gap)
            hit = gap <= tolerance
            found[rows[hit]] = self.positions[origin][pick[hit]]
        return found


def join_observations(flights: pd.DataFrame, observations: pd.DataFrame | ObservationIndex) -> pd.DataFrame:
    """:func:`attach_weather` on observations already cleaned by :func:`clean_weather` (or indexed)."""
    out = flights.drop(columns=[c for c in WEATHER_COLUMNS if c in flights.columns]).reset_index(drop=True)
    stamps = out["sched_dep_ts"].to_numpy(dtype="datetime64[ns]")
    return pd.concat([out, weather_at(out["origin"], stamps, observations)], axis=1)


def weather_at(origins: pd.Series, stamps: np.ndarray, observations: pd.DataFrame | ObservationIndex) -> pd.DataFrame:
    """The weather columns and ``weather_missing`` for flights from ``origins`` at ``stamps`` (positional)."""
    if not isinstance(observations, ObservationIndex):
        observations = ObservationIndex.from_observations(observations)
    rows = observations.nearest(origins.astype(str).to_numpy(), stamps)
    return _gather(observations.values, rows, WEATHER_COLUMNS).assign(weather_missing=rows < 0)


def _gather(values: np.ndarray, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``values[rows]`` as a frame, all-NaN where a row is -1 (not found): the columns of a left join."""
    found = rows >= 0
    picked = values[np.where(found, rows, 0)] if len(values) else np.empty((len(rows), len(columns)))
    picked[~found] = np.nan
    return pd.DataFrame(picked, columns=columns)


def attach_planes(flights: pd.DataFrame, planes: pd.DataFrame) -> pd.DataFrame:
    """Join plane year, seats and engines by tail number; keep unknown planes with a flag."""
    return join_plane_registry(flights, plane_registry(planes))


PLANE_COLUMNS = ["plane_year", "plane_seats", "plane_engines"]


def plane_registry(planes: pd.DataFrame) -> pd.DataFrame:
    """One row per tail number (the index) with the plane columns the features use; the API builds it once."""
    return (
        planes.drop_duplicates("tailnum")
        .rename(columns={"year": "plane_year", "seats": "plane_seats", "engines": "plane_engines"})
        .set_index("tailnum")[PLANE_COLUMNS]
        .astype("float64")
    )


def join_plane_registry(flights: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """:func:`attach_planes` with the registry already built by :func:`plane_registry`."""
    out = flights.drop(columns=[c for c in PLANE_COLUMNS if c in flights.columns]).reset_index(drop=True)
    return pd.concat([out, planes_of(out["tailnum"], registry)], axis=1)


def planes_of(tailnums: pd.Series, registry: pd.DataFrame) -> pd.DataFrame:
    """The plane columns and ``plane_known`` for ``tailnums`` (positional): a left join by tail number,
    done as a lookup in the registry's index, whose hash table is built once per registry."""
    rows = registry.index.get_indexer(tailnums)
    planes = _gather(registry.to_numpy(dtype="float64", na_value=np.nan), rows, PLANE_COLUMNS)
    return planes.assign(plane_known=rows >= 0)


def attach_airlines(flights: pd.DataFrame, airlines: pd.DataFrame | frozenset[str]) -> pd.DataFrame:
    """Flag carriers missing from the airlines table (kept: the model treats them as unseen).

    ``airlines`` is the table or, as the API holds it, the set of its carrier codes.
    """
    out = flights.copy()
    out["carrier_known"] = out["carrier"].isin(carrier_codes(airlines))
    return out


def carrier_codes(airlines: pd.DataFrame | frozenset[str]) -> frozenset[str]:
    """The carrier codes of the airlines table (given as the table or already as its codes)."""
    return airlines if isinstance(airlines, frozenset) else frozenset(airlines["carrier"])


def enrich(flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame, airlines: pd.DataFrame) -> pd.DataFrame:
    """The pre-departure part of cleaning, shared by the ETL and the API."""
    return enrich_prepared(flights, clean_weather(weather), plane_registry(planes), airlines)


def enrich_prepared(
    flights: pd.DataFrame,
    observations: pd.DataFrame | ObservationIndex,
    registry: pd.DataFrame,
    airlines: pd.DataFrame | frozenset[str],
) -> pd.DataFrame:
    """:func:`enrich` with the lookups prepared once (:func:`clean_weather` or :class:`ObservationIndex`,
    :func:`plane_registry`, the carrier codes), as the API holds them.

    The same rules as applying :func:`scheduled_departure_timestamp`, :func:`join_observations`,
    :func:`join_plane_registry` and :func:`attach_airlines` in turn, with the added columns joined
    in one step: each step's copy of the frame cost more than its rule for the API's few-row requests.
    """
    stamps = local_timestamps(*(flights[c] for c in ("year", "month", "day", "hour", "minute")))
    added = [
        pd.DataFrame({"sched_dep_ts": stamps}),
        weather_at(flights["origin"], stamps, observations),
        planes_of(flights["tailnum"], registry),
        pd.DataFrame({"carrier_known": flights["carrier"].isin(carrier_codes(airlines)).to_numpy()}),
    ]
    replaced = {column for frame in added for column in frame.columns}
    out = flights.drop(columns=[c for c in flights.columns if c in replaced]).reset_index(drop=True)
    return pd.concat([out, *added], axis=1)


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
