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
    return pd.Series(days_to_holiday(days), index=stamps.index, dtype="int64")


def days_to_holiday(days: np.ndarray) -> np.ndarray:
    """:func:`days_to_nearest_holiday` of dates (``datetime64[D]``), as int64."""
    if len(days) == 0:
        return np.empty(0, dtype="int64")
    years = days.astype("datetime64[Y]").astype("int64") + 1970
    holidays = _holidays(int(years.min()), int(years.max()))
    position = np.searchsorted(holidays, days)
    after = holidays[np.clip(position, 0, len(holidays) - 1)]
    before = holidays[np.clip(position - 1, 0, len(holidays) - 1)]
    return np.minimum(np.abs((after - days).astype(int)), np.abs((days - before).astype(int))).astype("int64")


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    """Turn clean rows (or request rows enriched the same way) into the feature table.

    Args:
        clean: Rows with the clean table's pre-departure columns; the label column is optional
            (absent for API requests).

    Returns:
        Key columns, the label if present, and every feature, in contract order.
    """
    # Columns are gathered as arrays and the frame is built once: a column-by-column build paid
    # pandas' per-column cost, which dominated for the API's few-row requests.
    stamps = clean["sched_dep_ts"]
    # pd.to_datetime on a column that already holds timestamps still samples its values (a few ms).
    ts = pd.DatetimeIndex(stamps if pd.api.types.is_datetime64_any_dtype(stamps) else pd.to_datetime(stamps))
    # Python lists of str for the per-row string building (iterating numpy arrays yields slower scalars).
    dates = ts.to_numpy(dtype="datetime64[D]").astype(str).tolist()
    carrier, origin, dest = (clean[c].astype(str).to_numpy() for c in ("carrier", "origin", "dest"))
    origins = origin.tolist()
    flight = clean["flight"].astype(str).tolist()
    columns: dict[str, object] = {
        "flight_id": [f"{d}_{c}_{f}_{o}" for d, c, f, o in zip(dates, carrier.tolist(), flight, origins, strict=True)],
        "sched_dep_ts": ts,
    }
    if TARGET in clean.columns:
        columns[TARGET] = clean[TARGET].to_numpy().astype("int64")
    columns |= {
        "dep_hour": ts.hour,
        "arr_hour": pd.to_numeric(clean["sched_arr_time"]).to_numpy() // 100,
        "weekday": ts.weekday,
        "month": ts.month,
        "days_to_holiday": days_to_nearest_holiday(pd.Series(ts)).to_numpy(),
        "distance": clean["distance"].to_numpy(dtype="float64"),
    }
    for column in ("temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib"):
        columns[column] = clean[column].to_numpy(dtype="float64", na_value=np.nan)
    columns["weather_missing"] = clean["weather_missing"].to_numpy().astype("int64")
    plane_year = clean["plane_year"].to_numpy(dtype="float64", na_value=np.nan)
    columns["plane_age"] = np.clip(ts.year.to_numpy() - plane_year, 0, None)
    columns["plane_seats"] = clean["plane_seats"].to_numpy(dtype="float64", na_value=np.nan)
    columns["plane_engines"] = clean["plane_engines"].to_numpy(dtype="float64", na_value=np.nan)
    columns["plane_known"] = clean["plane_known"].to_numpy().astype("int64")
    columns |= {"carrier": carrier, "origin": origin, "dest": dest}
    columns["route"] = [f"{o}-{d}" for o, d in zip(origins, dest.tolist(), strict=True)]
    out = pd.DataFrame(columns)
    return out[[c for c in _contract_columns() if c in out.columns]]


@functools.cache
def _contract_columns() -> tuple[str, ...]:
    return tuple(FlightFeatures.to_schema().columns)
