"""The flight example's cleaning rules, one named rule per test, on frames of a few rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import cleaning
from include.flight_delay.schemas import CleanFlights
from include.mlpipeline.data.quality import apply_gate

DAY = dt.date(2013, 3, 1)


# ------------------------------------------------------------------------ drop_duplicate_flights
def test_drop_duplicate_flights_drops_exact_duplicates(make_flights: Callable[..., pd.DataFrame]) -> None:
    flights = make_flights({"flight": 1}, {"flight": 2}, {"flight": 1})

    out = cleaning.drop_duplicate_flights(flights)

    assert out["flight"].tolist() == [1, 2]
    assert out.index.tolist() == [0, 1]


def test_drop_duplicate_flights_keeps_the_first_row_of_a_flight_key(
    make_flights: Callable[..., pd.DataFrame],
) -> None:
    flights = make_flights(
        {"flight": 1, "arr_delay": 5.0},
        {"flight": 1, "arr_delay": 99.0},  # a resend of flight 1 with other values
        {"flight": 1, "origin": "JFK"},  # same number from another airport: another flight
        {"flight": 1, "day": 2},  # same number on another day: another flight
    )

    out = cleaning.drop_duplicate_flights(flights)

    assert len(out) == 3
    assert out.loc[out["origin"].eq("EWR") & out["day"].eq(1), "arr_delay"].tolist() == [5.0]


def test_drop_duplicate_flights_keeps_distinct_flights(make_flights: Callable[..., pd.DataFrame]) -> None:
    flights = make_flights({"flight": 1}, {"flight": 2}, {"flight": 1, "carrier": "AA"})

    pd.testing.assert_frame_equal(cleaning.drop_duplicate_flights(flights), flights)


# --------------------------------------------------------------------------- label_arrival_delay
@pytest.mark.parametrize(
    ("dep_time", "arr_delay", "is_delayed", "cancelled"),
    [
        pytest.param(1032.0, 15.0, 1, False, id="15-min-late"),
        pytest.param(1032.0, 140.0, 1, False, id="very-late"),
        pytest.param(1032.0, 14.0, 0, False, id="14-min-late"),
        pytest.param(1032.0, -20.0, 0, False, id="early"),
        pytest.param(np.nan, np.nan, 1, True, id="cancelled"),
        pytest.param(1032.0, np.nan, 1, False, id="diverted"),
    ],
)
def test_label_arrival_delay(
    make_flights: Callable[..., pd.DataFrame], dep_time: float, arr_delay: float, is_delayed: int, cancelled: bool
) -> None:
    flights = make_flights({"dep_time": dep_time, "arr_delay": arr_delay})

    out = cleaning.label_arrival_delay(flights)

    assert out["is_delayed"].tolist() == [is_delayed]
    assert out["is_delayed"].dtype == "int64"
    assert out["cancelled"].tolist() == [cancelled]


def test_label_arrival_delay_leaves_its_input_untouched(make_flights: Callable[..., pd.DataFrame]) -> None:
    flights = make_flights({})

    cleaning.label_arrival_delay(flights)

    assert "is_delayed" not in flights.columns


# ----------------------------------------------------------------- scheduled_departure_timestamp
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, pd.Timestamp("2013-03-01 10:30"), id="valid"),
        pytest.param({"hour": 0, "minute": 0}, pd.Timestamp("2013-03-01 00:00"), id="midnight"),
        pytest.param({"hour": 23, "minute": 59}, pd.Timestamp("2013-03-01 23:59"), id="last-minute"),
    ],
)
def test_scheduled_departure_timestamp(
    make_flights: Callable[..., pd.DataFrame], overrides: dict[str, object], expected: pd.Timestamp
) -> None:
    out = cleaning.scheduled_departure_timestamp(make_flights(overrides))

    assert out["sched_dep_ts"].tolist() == [expected]
    assert out["sched_dep_ts"].dtype == "datetime64[ns]"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"hour": 25}, id="hour-25"),
        pytest.param({"hour": 24, "minute": 0}, id="hour-24"),
        pytest.param({"minute": 60}, id="minute-60"),
        pytest.param({"hour": -1}, id="negative-hour"),
        pytest.param({"month": 2, "day": 30}, id="february-30"),
        pytest.param({"hour": "x"}, id="not-a-number"),
    ],
)
def test_scheduled_departure_timestamp_of_invalid_parts_is_nat(
    make_flights: Callable[..., pd.DataFrame], overrides: dict[str, object]
) -> None:
    out = cleaning.scheduled_departure_timestamp(make_flights(overrides))

    assert out["sched_dep_ts"].isna().tolist() == [True]


def test_scheduled_departure_timestamp_invalid_row_does_not_spoil_the_others(
    make_flights: Callable[..., pd.DataFrame],
) -> None:
    flights = make_flights({"hour": 25}, {"flight": 2, "hour": 6, "minute": 5})

    stamps = cleaning.scheduled_departure_timestamp(flights)["sched_dep_ts"]

    assert stamps.isna().tolist() == [True, False]
    assert stamps.iloc[1] == pd.Timestamp("2013-03-01 06:05")


# ---------------------------------------------------------------------------- weather joins
def _timed(make_flights: Callable[..., pd.DataFrame], *rows: dict[str, object]) -> pd.DataFrame:
    return cleaning.scheduled_departure_timestamp(make_flights(*rows))


def test_attach_weather_takes_the_nearest_observation_at_the_origin(
    make_flights: Callable[..., pd.DataFrame], make_weather: Callable[..., pd.DataFrame]
) -> None:
    flights = _timed(make_flights, {"hour": 10, "minute": 40})
    weather = make_weather(
        ("EWR", 9, 30.0, 5.0, None),
        ("EWR", 11, 40.0, 6.0, None),  # 20 minutes away: the nearest
        ("JFK", 11, 99.0, 9.0, None),  # nearer in time but another airport
    )

    out = cleaning.attach_weather(flights, weather)

    assert out["temp"].tolist() == [40.0]
    assert out["weather_missing"].tolist() == [False]


def test_attach_weather_reaches_two_hours_and_no_further(
    make_flights: Callable[..., pd.DataFrame], make_weather: Callable[..., pd.DataFrame]
) -> None:
    flights = _timed(make_flights, {"flight": 1, "hour": 8, "minute": 0}, {"flight": 2, "hour": 7, "minute": 59})
    weather = make_weather(("EWR", 10, 40.0, 6.0, None))

    out = cleaning.attach_weather(flights, weather)

    assert out["flight"].tolist() == [1, 2]
    assert out["temp"].iloc[0] == 40.0
    assert out["weather_missing"].tolist() == [False, True]
    assert out.loc[1, cleaning.WEATHER_COLUMNS].isna().all()


def test_attach_weather_flags_flights_without_a_timestamp_and_keeps_row_order(
    make_flights: Callable[..., pd.DataFrame], make_weather: Callable[..., pd.DataFrame]
) -> None:
    flights = _timed(
        make_flights,
        {"flight": 1, "hour": 12, "minute": 0},
        {"flight": 2, "hour": 25},
        {"flight": 3, "hour": 6, "minute": 0},
    )
    weather = make_weather(("EWR", 6, 30.0, 5.0, None), ("EWR", 12, 40.0, 6.0, None))

    out = cleaning.attach_weather(flights, weather)

    assert out["flight"].tolist() == [1, 2, 3]
    assert out["weather_missing"].tolist() == [False, True, False]
    assert out["temp"].iloc[[0, 2]].tolist() == [40.0, 30.0]


def test_attach_weather_fills_missing_gust_from_wind_speed(
    make_flights: Callable[..., pd.DataFrame], make_weather: Callable[..., pd.DataFrame]
) -> None:
    flights = _timed(make_flights, {"flight": 1, "hour": 10, "minute": 0}, {"flight": 2, "hour": 14, "minute": 0})
    weather = make_weather(("EWR", 10, 40.0, 12.0, None), ("EWR", 14, 41.0, 8.0, 25.0))

    out = cleaning.attach_weather(flights, weather)

    assert out["wind_gust"].tolist() == [12.0, 25.0]


def test_clean_weather_averages_duplicate_observations(make_weather: Callable[..., pd.DataFrame]) -> None:
    weather = make_weather(("EWR", 10, 40.0, 10.0, None), ("EWR", 10, 42.0, 12.0, None), ("JFK", 10, 50.0, 5.0, 7.0))

    out = cleaning.clean_weather(weather)

    assert len(out) == 2
    assert out.set_index("origin").loc["EWR", ["temp", "wind_speed", "wind_gust"]].tolist() == [41.0, 11.0, 11.0]


# ----------------------------------------------------------------------------- plane joins
def test_attach_planes_keeps_unknown_and_missing_tail_numbers(
    make_flights: Callable[..., pd.DataFrame], planes: pd.DataFrame
) -> None:
    flights = make_flights({"flight": 1}, {"flight": 2, "tailnum": "N00000"}, {"flight": 3, "tailnum": None})

    out = cleaning.attach_planes(flights, planes)

    assert out["flight"].tolist() == [1, 2, 3]
    assert out["plane_known"].tolist() == [True, False, False]
    assert out["plane_year"].iloc[0] == 1999.0
    assert out["plane_seats"].iloc[0] == 149.0
    assert out.loc[[1, 2], ["plane_year", "plane_seats", "plane_engines"]].isna().all().all()


def test_attach_planes_does_not_multiply_rows_on_a_duplicated_registry_entry(
    make_flights: Callable[..., pd.DataFrame], planes: pd.DataFrame
) -> None:
    registry = pd.concat([planes, planes.iloc[[0]].assign(year=2005.0)], ignore_index=True)

    out = cleaning.attach_planes(make_flights({}), registry)

    assert len(out) == 1
    assert out["plane_year"].tolist() == [1999.0]


def test_attach_airlines_flags_unknown_carriers(
    make_flights: Callable[..., pd.DataFrame], airlines: pd.DataFrame
) -> None:
    out = cleaning.attach_airlines(make_flights({"carrier": "UA"}, {"carrier": "ZZ"}), airlines)

    assert out["carrier_known"].tolist() == [True, False]


# ------------------------------------------------------------------------------- transform
def _raw(
    make_flights: Callable[..., pd.DataFrame],
    make_weather: Callable[..., pd.DataFrame],
    planes: pd.DataFrame,
    airlines: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    return {
        "flights": make_flights(
            {"flight": 1},
            {"flight": 1},  # exact duplicate
            {"flight": 2, "dep_time": np.nan, "dep_delay": np.nan, "arr_time": np.nan, "arr_delay": np.nan},
            {"flight": 3, "tailnum": "N99999", "arr_delay": 30.0, "hour": 15, "minute": 0},
        ),
        "weather": make_weather(("EWR", 10, 40.0, 6.0, None), ("EWR", 15, 45.0, 7.0, 20.0)),
        "planes": planes,
        "airlines": airlines,
    }


def test_transform_output_columns_are_the_clean_contract(
    make_flights: Callable[..., pd.DataFrame],
    make_weather: Callable[..., pd.DataFrame],
    planes: pd.DataFrame,
    airlines: pd.DataFrame,
) -> None:
    out = cleaning.transform(_raw(make_flights, make_weather, planes, airlines), DAY)

    assert list(out.columns) == list(CleanFlights.to_schema().columns)


def test_transform_applies_every_rule_and_passes_the_clean_gate(
    make_flights: Callable[..., pd.DataFrame],
    make_weather: Callable[..., pd.DataFrame],
    planes: pd.DataFrame,
    airlines: pd.DataFrame,
) -> None:
    out = cleaning.transform(_raw(make_flights, make_weather, planes, airlines), DAY)
    result = apply_gate(out, CleanFlights, gate="clean", max_quarantine_share=0.0)

    assert out["flight"].tolist() == [1, 2, 3]
    assert out["is_delayed"].tolist() == [0, 1, 1]
    assert out["cancelled"].tolist() == [False, True, False]
    assert out["plane_known"].tolist() == [True, True, False]
    assert out["temp"].tolist() == [40.0, 40.0, 45.0]
    assert out["carrier_known"].all()
    assert result.report.rows_out == 3


def test_transform_leaves_impossible_values_for_the_gate_to_reject(
    make_flights: Callable[..., pd.DataFrame],
    make_weather: Callable[..., pd.DataFrame],
    planes: pd.DataFrame,
    airlines: pd.DataFrame,
) -> None:
    raw = _raw(make_flights, make_weather, planes, airlines)
    raw["flights"].loc[3, "distance"] = 0.0

    out = cleaning.transform(raw, DAY)
    result = apply_gate(out, CleanFlights, gate="clean", max_quarantine_share=0.5)

    assert out["distance"].tolist() == [1400.0, 1400.0, 0.0]
    assert result.quarantined["flight"].tolist() == [3]
    assert result.quarantined["_failed_checks"].tolist() == ["distance:greater_than(0)"]
