"""The array lookups behind cleaning's joins, against the pandas operations they replace.

``local_timestamps``, ``ObservationIndex`` and ``join_plane_registry`` exist so that the API's
few-row requests do not pay a pandas join's fixed cost. They must answer exactly what
``pd.to_datetime``, ``pd.merge_asof(direction="nearest", tolerance=2h)`` and a left merge answer:
these tests use those as the reference, on hand-picked edge cases and on seeded random frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import cleaning

PARTS = ["year", "month", "day", "hour", "minute"]


def reference_timestamps(parts: pd.DataFrame) -> pd.Series:
    """The assembly cleaning used before: pandas' own, invalid clock parts masked first."""
    numbers = parts[PARTS].apply(pd.to_numeric, errors="coerce")
    valid = numbers["hour"].between(0, 23) & numbers["minute"].between(0, 59)
    return pd.to_datetime(numbers.where(valid), errors="coerce")


@pytest.mark.parametrize(
    ("year", "month", "day", "hour", "minute"),
    [
        (2013, 1, 1, 0, 0),
        (2013, 12, 31, 23, 59),
        (2012, 2, 29, 12, 0),  # leap day
        (2013, 2, 29, 12, 0),  # not a leap year
        (2013, 2, 31, 5, 5),
        (2013, 4, 31, 5, 5),
        (2013, 13, 1, 5, 5),
        (2013, 0, 1, 5, 5),
        (2013, 6, 0, 5, 5),
        (2013, 6, 32, 5, 5),
        (2013, 6, 1, 24, 0),
        (2013, 6, 1, -1, 0),
        (2013, 6, 1, 5, 60),
        (None, 6, 1, 5, 0),
        (2013, 6, 1, None, 0),
        ("2013", "6", "1", "5", "7"),  # text parts, as a CSV may deliver
        ("x", 6, 1, 5, 0),
    ],
)
def test_local_timestamps_match_pandas(year: object, month: object, day: object, hour: object, minute: object) -> None:
    parts = pd.DataFrame([[year, month, day, hour, minute]], columns=PARTS, dtype=object)

    stamps = cleaning.local_timestamps(*(parts[c] for c in PARTS))

    expected = reference_timestamps(parts)
    assert stamps.dtype == np.dtype("datetime64[ns]")
    assert pd.Series(stamps).equals(expected.astype("datetime64[ns]")), (stamps, expected.tolist())


def test_local_timestamps_match_pandas_on_random_parts() -> None:
    rng = np.random.default_rng(7)
    parts = pd.DataFrame(
        {
            "year": rng.choice([2012, 2013, 2024], 2_000),
            "month": rng.integers(0, 14, 2_000),
            "day": rng.integers(0, 33, 2_000),
            "hour": rng.integers(-1, 25, 2_000),
            "minute": rng.integers(-1, 61, 2_000),
        }
    )

    stamps = cleaning.local_timestamps(*(parts[c] for c in PARTS))

    assert pd.Series(stamps).equals(reference_timestamps(parts).astype("datetime64[ns]"))


def reference_weather_join(flights: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """Nearest observation at the origin within 2 hours, by pandas' merge_asof (row order kept)."""
    flights = flights.assign(_row=np.arange(len(flights)))
    timed = flights[flights["sched_dep_ts"].notna()].sort_values("sched_dep_ts")
    joined = pd.merge_asof(
        timed,
        observations.rename(columns={"obs_ts": "matched_ts"}),
        left_on="sched_dep_ts",
        right_on="matched_ts",
        by="origin",
        direction="nearest",
        tolerance=pd.Timedelta(hours=2),
    )
    joined = pd.concat([joined, flights[flights["sched_dep_ts"].isna()]]).sort_values("_row")
    return joined.reset_index(drop=True)


def random_observations(rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for origin in ("EWR", "JFK", "LGA"):
        # Irregular times (gaps of 10 minutes to 7 hours) so that ties, the 2-hour edge and gaps occur.
        gaps = rng.choice([10, 30, 60, 60, 60, 120, 121, 240, 420], 300)
        times = pd.Timestamp("2013-03-01") + pd.to_timedelta(np.cumsum(gaps), unit="min")
        values = {c: rng.normal(size=len(times)) for c in cleaning.WEATHER_COLUMNS}
        frames.append(pd.DataFrame({"origin": origin, "obs_ts": times, **values}))
    return pd.concat(frames, ignore_index=True).sort_values("obs_ts", ignore_index=True)


def test_observation_index_matches_merge_asof_nearest_within_two_hours() -> None:
    rng = np.random.default_rng(11)
    observations = random_observations(rng)
    count = 5_000
    span = int((observations["obs_ts"].max() - observations["obs_ts"].min()) / pd.Timedelta(minutes=1))
    stamps = pd.Timestamp("2013-02-28 20:00") + pd.to_timedelta(rng.integers(0, span + 480, count), unit="min")
    flights = pd.DataFrame(
        {
            "origin": rng.choice(["EWR", "JFK", "LGA", "XYZ"], count),  # XYZ: an airport with no weather
            "sched_dep_ts": pd.Series(stamps).where(rng.random(count) > 0.02),  # some without a timestamp
        }
    )

    ours = cleaning.join_observations(flights, observations)
    reference = reference_weather_join(flights, observations)

    assert ours["weather_missing"].tolist() == reference["matched_ts"].isna().tolist()
    assert 0 < ours["weather_missing"].mean() < 0.5  # the case mix is real: both outcomes occur
    for column in cleaning.WEATHER_COLUMNS:
        np.testing.assert_array_equal(ours[column].to_numpy(), reference[column].to_numpy(dtype="float64"))


@pytest.mark.parametrize(
    ("departure", "expected_temp"),
    [
        ("2013-03-01 10:30", 1.0),  # equidistant from 10:00 and 11:00: the earlier observation
        ("2013-03-01 10:31", 2.0),
        ("2013-03-01 08:00", 1.0),  # exactly 2 hours before the first observation: still in reach
        ("2013-03-01 07:59", None),
        ("2013-03-01 13:00", 2.0),  # exactly 2 hours after the last
        ("2013-03-01 13:01", None),
    ],
)
def test_observation_index_ties_and_the_tolerance_edge(departure: str, expected_temp: float | None) -> None:
    observations = pd.DataFrame(
        {"origin": "EWR", "obs_ts": pd.to_datetime(["2013-03-01 10:00", "2013-03-01 11:00"]), "temp": [1.0, 2.0]}
    ).reindex(columns=["origin", "obs_ts", *cleaning.WEATHER_COLUMNS])
    flights = pd.DataFrame({"origin": ["EWR"], "sched_dep_ts": pd.to_datetime([departure])})

    out = cleaning.join_observations(flights, cleaning.ObservationIndex.from_observations(observations))

    if expected_temp is None:
        assert out["weather_missing"].tolist() == [True] and np.isnan(out["temp"].iloc[0])
    else:
        assert out["weather_missing"].tolist() == [False] and out["temp"].iloc[0] == expected_temp


def test_join_plane_registry_matches_a_left_merge() -> None:
    rng = np.random.default_rng(3)
    planes = pd.DataFrame(
        {
            "tailnum": [f"N{i}" for i in range(50)],
            "year": rng.choice([1990.0, 2005.0, np.nan], 50),
            "seats": rng.integers(50, 400, 50),
            "engines": rng.integers(1, 4, 50),
        }
    )
    flights = pd.DataFrame({"tailnum": rng.choice([*planes["tailnum"], "N999", None], 400)}, index=range(7, 407))
    registry = cleaning.plane_registry(planes)

    ours = cleaning.join_plane_registry(flights, registry)

    renamed = planes.rename(columns={"year": "plane_year", "seats": "plane_seats", "engines": "plane_engines"})
    reference = flights.merge(renamed, on="tailnum", how="left", indicator=True)
    assert ours.index.tolist() == list(range(400))
    assert ours["plane_known"].tolist() == (reference["_merge"] == "both").tolist()
    for column in cleaning.PLANE_COLUMNS:
        np.testing.assert_array_equal(ours[column].to_numpy(), reference[column].to_numpy(dtype="float64"))
