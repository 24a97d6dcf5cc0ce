"""Feature definitions of the example: every feature is known before departure.

Each feature is described in :class:`include.flight_delay.schemas.FlightFeatures` (the contract).
Row-level features are computed here, from the clean table in training and from request rows in
the API, with this same function, so training and serving cannot drift apart. Features that learn
from the data (scaling, encodings, delay rates per route or carrier) are fitted inside the model
pipeline on the training window only.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from include.flight_delay.schemas import FlightFeatures

TARGET = "is_delayed"
KEY_COLUMNS = ("flight_id", "sched_dep_ts")
NUMERIC_FEATURES = (
    "dep_hour",
    "arr_hour",
    "weekday",
    "month",
    "days_to_holiday",
    "distance",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
    "weather_missing",
    "plane_age",
    "plane_seats",
    "plane_engines",
    "plane_known",
)
CATEGORICAL_FEATURES = ("carrier", "origin", "dest", "route")


@functools.cache
def _holidays(first_year: int, last_year: int) -> np.ndarray:
    calendar = USFederalHolidayCalendar()
    days = calendar.holidays(start=f"{first_year - 1}-01-01", end=f"{last_year + 1}-12-31")
    return days.values.astype("datetime64[D]")


def days_to_nearest_holiday(stamps: pd.Series) -> pd.Series:
    """Whole days between each date and the nearest US federal holiday, before or after it."""
    days = stamps.dt.normalize().values.astype("datetime64[D]")
    if len(days) == 0:
        return pd.Series([], dtype="int64", index=stamps.index)
    holidays = _holidays(int(stamps.dt.year.min()), int(stamps.dt.year.max()))
    position = np.searchsorted(holidays, days)
    after = holidays[np.clip(position, 0, len(holidays) - 1)]
    before = holidays[np.clip(position - 1, 0, len(holidays) - 1)]
    distance = np.minimum(np.abs((after - days).astype(int)), np.abs((days - before).astype(int)))
    return pd.Series(distance, index=stamps.index, dtype="int64")


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    """Turn clean rows (or request rows enriched the same way) into the feature table.

    Args:
        clean: Rows with the clean table's pre-departure columns; the label column is optional
            (absent for API requests).

    Returns:
        Key columns, the label if present, and every feature, in contract order.
    """
    ts = pd.to_datetime(clean["sched_dep_ts"])
    out = pd.DataFrame(index=clean.index)
    out["flight_id"] = (
        ts.dt.strftime("%Y-%m-%d")
        + "_"
        + clean["carrier"].astype(str)
        + "_"
        + clean["flight"].astype(str)
        + "_"
        + clean["origin"].astype(str)
    )
    out["sched_dep_ts"] = ts
    if TARGET in clean.columns:
        out[TARGET] = clean[TARGET].astype("int64")
    out["dep_hour"] = ts.dt.hour
    out["arr_hour"] = pd.to_numeric(clean["sched_arr_time"]) // 100
    out["weekday"] = ts.dt.weekday
    out["month"] = ts.dt.month
    out["days_to_holiday"] = days_to_nearest_holiday(ts)
    out["distance"] = clean["distance"].astype(float)
    for column in ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"):
        out[column] = clean[column].astype(float)
    out["weather_missing"] = clean["weather_missing"].astype("int64")
    out["plane_age"] = (ts.dt.year - clean["plane_year"]).clip(lower=0).astype(float)
    out["plane_seats"] = clean["plane_seats"].astype(float)
    out["plane_engines"] = clean["plane_engines"].astype(float)
    out["plane_known"] = clean["plane_known"].astype("int64")
    for column in ("carrier", "origin", "dest"):
        out[column] = clean[column].astype(str)
    out["route"] = out["origin"] + "-" + out["dest"]
    columns = [c for c in FlightFeatures.to_schema().columns if c in out.columns]
    return out[columns].reset_index(drop=True)
