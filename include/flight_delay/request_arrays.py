"""The API's fast path for flights: request columns to feature columns on arrays, without frames.

:func:`request_feature_arrays` gives what ``build_features(serving_frame(requests, lookups))`` gives
for the key and feature columns, by the same rules: codes upper-cased, the local scheduled
departure from its parts, the origin's weather nearest it within two hours (the same
:class:`~include.flight_delay.cleaning.ObservationIndex`), the plane by tail number, the calendar
features. The frame path pays pandas' fixed cost per call in every step, which for the API's
one-flight requests was most of the request's time; here each step is a few array operations. The
API serves it only if it gives the frame path's values on the canary flights, and
tests/unit/test_flight_features.py compares the two on thousands of flights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from include.flight_delay import cleaning, features
from include.flight_delay.serving import FlightLookups

_WEATHER = ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib")
_WEATHER_AT = [cleaning.WEATHER_COLUMNS.index(column) for column in _WEATHER]


@dataclass(frozen=True)
class PlaneTable:
    """The plane registry as a dict from tail number to its row of plane columns (built once)."""

    rows: dict[str, int]
    values: np.ndarray  # one row per plane: cleaning.PLANE_COLUMNS as float64

    @classmethod
    def of(cls, lookups: FlightLookups) -> PlaneTable:
        """The table of ``lookups``' registry, built at its first use and kept with the lookups."""
        table = lookups.__dict__.get("_plane_table")  # as functools.cached_property keeps a value
        if table is None:
            registry = lookups.plane_registry
            rows = {tailnum: row for row, tailnum in enumerate(registry.index.tolist())}
            table = cls(rows, registry.to_numpy(dtype="float64", na_value=np.nan))
            lookups.__dict__["_plane_table"] = table
        return table


def _gather(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]``, NaN where a row is -1 (not found): a left join's columns."""
    picked = values[np.maximum(rows, 0)]
    picked[rows < 0] = np.nan
    return picked


def _texts(column: Any) -> list[Any]:
    """A text column's values as a list (``tolist``: numpy's conversion of a pandas Series asks it for
    attributes it lacks, which pandas looks up as columns, slowly)."""
    return column.tolist() if hasattr(column, "tolist") else list(column)


def _local_departures(columns: Mapping[str, Any]) -> np.ndarray:
    """The scheduled local departures (``datetime64[ns]``) of checked request parts (valid dates)."""
    year, month, day, hour, minute = (
        np.asarray(columns[c], dtype="int64") for c in ("year", "month", "day", "hour", "minute")
    )
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    return days.astype("datetime64[ns]") + (hour * 60 + minute).astype("timedelta64[m]")


def request_feature_arrays(columns: Mapping[str, Any], lookups: FlightLookups) -> dict[str, np.ndarray]:
    """The key and feature columns of checked flight requests (see the module docstring).

    Args:
        columns: One sequence per :class:`~include.flight_delay.serving.FlightRequest` field, one value
            per request, as the API's body parser gives them (the request checks have passed).
        lookups: The reference data (:func:`~include.flight_delay.serving.load_serving_context`).

    Returns:
        ``flight_id``, ``sched_dep_ts`` and every feature column, one array each.
    """
    carrier, origin, dest = ([code.upper() for code in _texts(columns[c])] for c in ("carrier", "origin", "dest"))
    stamps = _local_departures(columns)
    days = stamps.astype("datetime64[D]")
    dates = days.astype(str).tolist()
    flight = np.asarray(columns["flight"], dtype="int64").tolist()
    out: dict[str, Any] = {
        "flight_id": np.array(
            [f"{d}_{c}_{f}_{o}" for d, c, f, o in zip(dates, carrier, flight, origin, strict=True)], dtype=object
        ),
        "sched_dep_ts": stamps,
        "dep_hour": np.asarray(columns["hour"], dtype="int64"),
        "arr_hour": np.asarray(columns["sched_arr_time"], dtype="int64") // 100,
        "weekday": (days.astype("int64") + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        "month": np.asarray(columns["month"], dtype="int64"),
        "days_to_holiday": features.days_to_holiday(days),
        "distance": np.asarray(columns["distance"], dtype="float64"),
    }
    observations = lookups.observations
    found = observations.nearest(np.array(origin, dtype=object), stamps)
    weather = _gather(observations.values[:, _WEATHER_AT], found)
    out |= {column: weather[:, position] for position, column in enumerate(_WEATHER)}
    out["weather_missing"] = (found < 0).astype("int64")
    planes = PlaneTable.of(lookups)
    tails = np.array([planes.rows.get(tail, -1) for tail in _texts(columns["tailnum"])], dtype="int64")
    plane = _gather(planes.values, tails)
    year = np.asarray(columns["year"], dtype="int64")
    out["plane_age"] = np.clip(year - plane[:, 0], 0, None)
    out["plane_seats"], out["plane_engines"] = plane[:, 1], plane[:, 2]
    out["plane_known"] = (tails >= 0).astype("int64")
    out |= {
        "carrier": np.array(carrier, dtype=object),
        "origin": np.array(origin, dtype=object),
        "dest": np.array(dest, dtype=object),
    }
    out["route"] = np.array([f"{o}-{d}" for o, d in zip(origin, dest, strict=True)], dtype=object)
    return out
