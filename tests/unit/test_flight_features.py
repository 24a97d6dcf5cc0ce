"""Features of the flight example: the contract, no leakage, holidays, and no train/serve skew."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pandas as pd
import pydantic
import pytest

from include.flight_delay import PROBLEM, cleaning, features, serving
from include.flight_delay.schemas import LEAKAGE_COLUMNS, CleanFlights, FlightFeatures
from include.mlpipeline.core.request_frame import stack_columns
from include.mlpipeline.data.etl import CLEAN
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError, apply_gate
from include.mlpipeline.serving.columnar import ColumnarValidator

SKEW_DAY = dt.date(2013, 6, 14)  # the canary flights' day
FEATURE_COLUMNS = [*features.NUMERIC_FEATURES, *features.CATEGORICAL_FEATURES]


@pytest.fixture(scope="module")
def raw_day(real_raw: Callable[[dt.date], dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    return real_raw(SKEW_DAY)


@pytest.fixture(scope="module")
def clean_day(raw_day: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One real day through cleaning and the clean gate, as the ETL publishes it."""
    transformed = cleaning.transform(raw_day, SKEW_DAY)
    return apply_gate(transformed, CleanFlights, gate="clean", max_quarantine_share=0.01).valid


@pytest.fixture(scope="module")
def etl_features(clean_day: pd.DataFrame) -> pd.DataFrame:
    return features.build_features(clean_day)


@pytest.fixture(scope="module")
def lookups() -> serving.FlightLookups:
    return serving.load_serving_context()


def _request(row: pd.Series) -> dict[str, object]:
    """A raw flight row as the API receives it: only the request fields, through the request model."""
    record = {name: row[name] for name in serving.FlightRequest.model_fields}
    if not isinstance(record["tailnum"], str):
        record["tailnum"] = None
    return serving.FlightRequest.model_validate(record).model_dump(mode="json")


def _serving_features(records: list[dict[str, object]], lookups: serving.FlightLookups) -> pd.DataFrame:
    return PROBLEM.request_features(records, lookups)


def _assert_same_features(served: pd.DataFrame, trained: pd.DataFrame) -> None:
    expected = trained.set_index("flight_id").loc[served["flight_id"], FEATURE_COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(served[FEATURE_COLUMNS].reset_index(drop=True), expected)


# ------------------------------------------------------------------------------ the contract
def test_build_features_output_passes_the_feature_contract(etl_features: pd.DataFrame) -> None:
    result = apply_gate(etl_features, FlightFeatures, gate="features", max_quarantine_share=0.0)

    assert result.report.rows_quarantined == 0
    assert result.report.rows_out == len(etl_features) > 900
    assert list(etl_features.columns) == list(FlightFeatures.to_schema().columns)


def test_build_features_drops_every_leakage_column(clean_day: pd.DataFrame, etl_features: pd.DataFrame) -> None:
    assert {"dep_delay", "arr_delay"} <= set(clean_day.columns)

    assert not set(LEAKAGE_COLUMNS) & set(etl_features.columns)


@pytest.mark.parametrize("leak", LEAKAGE_COLUMNS)
def test_feature_contract_rejects_a_leakage_column(etl_features: pd.DataFrame, leak: str) -> None:
    leaking = etl_features.head(20).assign(**{leak: 1.0})

    with pytest.raises(DataQualityError, match=rf"column_in_schema:{leak}") as raised:
        apply_gate(leaking, FlightFeatures, gate="features", max_quarantine_share=0.0)

    assert "no_leakage_columns" in str(raised.value)


def test_build_features_of_hand_made_rows() -> None:
    clean = pd.DataFrame(
        {
            "sched_dep_ts": pd.to_datetime(["2013-07-04 23:59", "2013-01-02 06:00"]),
            "carrier": ["UA", "B6"],
            "flight": [1545, 7],
            "origin": ["EWR", "JFK"],
            "dest": ["IAH", "BOS"],
            "sched_arr_time": [2400, 715],
            "distance": [1400, 187],
            "is_delayed": [1, 0],
            "weather_missing": [False, True],
            "plane_year": [2015.0, float("nan")],
            "plane_seats": [149.0, float("nan")],
            "plane_engines": [2.0, float("nan")],
            "plane_known": [True, False],
            **{c: [1.0, float("nan")] for c in ("temp", "dewp", "humid", "wind_speed", "wind_gust")},
            **{c: [0.0, float("nan")] for c in ("precip", "pressure", "visib")},
        }
    )

    out = features.build_features(clean)

    assert out["flight_id"].tolist() == ["2013-07-04_UA_1545_EWR", "2013-01-02_B6_7_JFK"]
    assert out["dep_hour"].tolist() == [23, 6]
    assert out["arr_hour"].tolist() == [24, 7]
    assert out["weekday"].tolist() == [3, 2]
    assert out["month"].tolist() == [7, 1]
    assert out["days_to_holiday"].tolist() == [0, 1]
    assert out["plane_age"].iloc[0] == 0.0  # built after the flight year: clipped, never negative
    assert pd.isna(out["plane_age"].iloc[1])
    assert out["weather_missing"].tolist() == [0, 1]
    assert out["plane_known"].tolist() == [1, 0]
    assert out["route"].tolist() == ["EWR-IAH", "JFK-BOS"]
    assert out["is_delayed"].tolist() == [1, 0]
    assert apply_gate(out, FlightFeatures, gate="features", max_quarantine_share=0.0).report.rows_out == 2


def test_build_features_without_label_serves_requests(clean_day: pd.DataFrame) -> None:
    out = features.build_features(clean_day.drop(columns=[features.TARGET]).head(5))

    assert features.TARGET not in out.columns
    assert list(out.columns) == [c for c in FlightFeatures.to_schema().columns if c != features.TARGET]


# ------------------------------------------------------------------------------- holidays
@pytest.mark.parametrize(
    ("day", "distance"),
    [
        ("2013-07-04", 0),  # Independence Day
        ("2013-07-06", 2),
        ("2013-12-24", 1),  # Christmas eve
        ("2013-12-31", 1),  # New Year's Day of the next year
        ("2013-01-01", 0),
        ("2013-11-28", 0),  # Thanksgiving
        ("2013-06-14", 18),  # Memorial Day was 27 May (18 days before), Independence Day is 20 days after
    ],
)
def test_days_to_nearest_holiday(day: str, distance: int) -> None:
    stamps = pd.Series(pd.to_datetime([f"{day} 17:30"]), index=[7])

    out = features.days_to_nearest_holiday(stamps)

    assert out.tolist() == [distance]
    assert out.index.tolist() == [7]


def test_days_to_nearest_holiday_of_no_rows_is_empty() -> None:
    out = features.days_to_nearest_holiday(pd.Series([], dtype="datetime64[ns]"))

    assert out.empty
    assert out.dtype == "int64"


# ------------------------------------------------------------------------------- serving
@pytest.mark.parametrize("leak", LEAKAGE_COLUMNS)
def test_request_model_refuses_outcome_fields(leak: str) -> None:
    example = serving.FlightRequest.model_config["json_schema_extra"]["example"]

    with pytest.raises(pydantic.ValidationError, match=leak):
        serving.FlightRequest.model_validate({**example, leak: 10})


def test_canary_records_are_valid_requests_from_all_three_origins() -> None:
    records = serving.canary_records()

    assert len(records) == 8
    assert {r["origin"] for r in records} == {"EWR", "JFK", "LGA"}
    assert {(r["year"], r["month"], r["day"]) for r in records} == {(2013, 6, 14)}
    assert all(serving.FlightRequest.model_validate(r) for r in records)


def test_serving_frame_normalises_case_of_codes(lookups: serving.FlightLookups) -> None:
    record = serving.canary_records()[1]
    lower = {**record, "dest": record["dest"].lower(), "carrier": "b6"}  # open codes; origin is an enum (exact)

    served = _serving_features([lower], lookups)

    pd.testing.assert_frame_equal(served, _serving_features([{**record, "carrier": "B6"}], lookups))


def test_no_train_serve_skew_for_flights_away_from_midnight(
    raw_day: dict[str, pd.DataFrame], etl_features: pd.DataFrame, lookups: serving.FlightLookups
) -> None:
    """The API must compute the same features as the ETL for the same flights.

    Flights scheduled 02:00-21:59 have every weather observation within 2 hours on their own day.
    """
    flights = raw_day["flights"]
    records = [_request(row) for _, row in flights[flights["hour"].between(2, 21)].iterrows()]

    served = _serving_features(records, lookups)

    assert len(served) == len(records) > 800
    _assert_same_features(served, etl_features)


def test_no_train_serve_skew_for_the_canary_flights(etl_features: pd.DataFrame, lookups: serving.FlightLookups) -> None:
    served = _serving_features(serving.canary_records(), lookups)

    assert len(served) == 8
    _assert_same_features(served, etl_features)


def test_validated_requests_give_the_features_their_json_gives(lookups: serving.FlightLookups) -> None:
    """The API passes validated records (pydantic's values); tests and deploy pass their JSON form."""
    as_json = serving.canary_records()
    validated = [vars(serving.FlightRequest.model_validate(record)) for record in as_json]

    served = serving.serving_frame(PROBLEM.request_frame(validated), lookups)

    pd.testing.assert_frame_equal(served, serving.serving_frame(PROBLEM.request_frame(as_json), lookups))
    pd.testing.assert_frame_equal(_serving_features(validated, lookups), _serving_features(as_json, lookups))


def test_serving_frame_leaves_the_request_frame_as_it_was(lookups: serving.FlightLookups) -> None:
    requests = PROBLEM.request_frame([{**serving.canary_records()[0], "carrier": "ua"}])
    before = requests.copy()

    serving.serving_frame(requests, lookups)

    pd.testing.assert_frame_equal(requests, before)


def test_the_json_fast_path_covers_the_flight_request_model() -> None:
    """The request model stays simple enough to be checked column by column (no pydantic validators)."""
    validator = ColumnarValidator(serving.FlightRequest)
    records = serving.canary_records()

    assert validator.enabled, validator.reason
    columns = validator.columns(records)
    assert columns is not None
    pd.testing.assert_frame_equal(stack_columns([columns]), PROBLEM.request_frame(records))


@pytest.mark.parametrize(
    ("date", "reason"),
    [
        ((2013, 2, 29), "2013-02-29 is not a calendar date"),
        ((2012, 2, 29), None),
        ((2013, 4, 31), "2013-04-31 is not a calendar date"),
        ((2013, 12, 31), None),
        ((1900, 2, 29), "1900-02-29 is not a calendar date"),
        ((2000, 2, 29), None),
    ],
)
def test_impossible_dates_are_named_and_real_ones_pass(date: tuple[int, int, int], reason: str | None) -> None:
    record = dict(zip(("year", "month", "day"), date, strict=True))
    requests = PROBLEM.request_frame([serving.canary_records()[0], {**serving.canary_records()[0], **record}])

    assert serving.impossible_dates(requests).tolist() == [None, reason]


@pytest.mark.parametrize(
    "day",
    [SKEW_DAY, dt.date(2013, 3, 10), dt.date(2013, 11, 3)],
    ids=["june", "clocks-go-forward", "clocks-go-back"],
)
def test_clean_rows_give_back_the_requests_their_raw_rows_were(
    real_raw: Callable[[dt.date], dict[str, pd.DataFrame]], lake: Lake, day: dt.date
) -> None:
    """The traffic replay sends the requests of a day's clean partition: exactly those the day's raw
    flights were (the request fields, time_hour in UTC), in the same order."""
    raw = real_raw(day)
    clean = apply_gate(cleaning.transform(raw, day), CleanFlights, gate="clean", max_quarantine_share=0.01).valid
    lake.write(CLEAN, day, clean)  # read back as the replay reads it
    problem = dataclasses.replace(PROBLEM, request_records=serving.request_records)

    rebuilt = problem.requests_for(lake.read(CLEAN, day))

    sent_before = [_request(row) for _, row in raw["flights"].iterrows()]  # from the raw partition
    assert len(rebuilt) == len(sent_before) > 800
    assert rebuilt == sent_before
