"""Request records to a frame: each column typed from the request model, datetimes in UTC; and the
column-by-column check of JSON records, which must never accept what pydantic would not, or differ from it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from include.mlpipeline.core.request_frame import column_kinds, records_frame, stack_columns
from include.mlpipeline.serving import columnar
from include.mlpipeline.serving.columnar import ColumnarValidator
from include.mlpipeline.serving.prediction_log import features_hash


class Reading(BaseModel):
    station: str
    count: int
    level: float
    ok: bool
    note: str | None = None
    at: dt.datetime


KINDS = column_kinds(Reading)


def test_column_kinds_follow_the_field_types() -> None:
    assert KINDS == {
        "station": "object",
        "count": "int64",
        "level": "float64",
        "ok": "bool",
        "note": "object",
        "at": "datetime",
    }


def _validated(*bodies: dict) -> list[dict]:
    return [vars(Reading.model_validate(body)) for body in bodies]


BODIES = (
    {"station": "a", "count": 1, "level": 0.5, "ok": True, "at": "2013-06-14T21:00:00Z"},
    {"station": "b", "count": 2, "level": 1.5, "ok": False, "note": "x", "at": "2013-06-14T17:30:00.000250-04:00"},
    {"station": "c", "count": 3, "level": -2.0, "ok": True, "at": "2013-06-14T21:00:00"},  # no offset: UTC
)


def test_validated_records_become_typed_columns_in_utc() -> None:
    frame = records_frame(_validated(*BODIES), KINDS)

    assert list(frame.columns) == list(KINDS)
    assert frame.dtypes.astype(str).to_dict() == {
        "station": "object",
        "count": "int64",
        "level": "float64",
        "ok": "bool",
        "note": "object",
        "at": "datetime64[us, UTC]",
    }
    assert frame["note"].tolist() == [None, "x", None]
    assert frame["at"].tolist() == [
        pd.Timestamp("2013-06-14 21:00:00", tz="UTC"),
        pd.Timestamp("2013-06-14 21:30:00.000250", tz="UTC"),
        pd.Timestamp("2013-06-14 21:00:00", tz="UTC"),
    ]


def test_json_records_give_the_same_frame_as_validated_ones() -> None:
    as_json = [Reading.model_validate(body).model_dump(mode="json") for body in BODIES]

    pd.testing.assert_frame_equal(records_frame(as_json, KINDS), records_frame(_validated(*BODIES), KINDS))


def test_a_missing_field_is_none_and_an_unvalidated_none_is_kept() -> None:
    record = {"station": "a", "count": None, "level": 1.0, "ok": True, "at": "2013-01-01T00:00:00Z"}
    frame = records_frame([record], KINDS)

    assert frame.loc[0, "note"] is None
    assert pd.isna(frame.loc[0, "count"])


@pytest.mark.parametrize(
    ("given", "expected"), [([{"count": 3}, {"count": 4}], [3, 4]), ([{"count": 3}, {}], [3, None])]
)
def test_a_single_field_model_gets_its_column(given: list[dict], expected: list) -> None:
    frame = records_frame(given, {"count": "object"})

    assert list(frame.columns) == ["count"] and frame["count"].tolist() == expected


def test_no_records_give_an_empty_frame_with_the_columns() -> None:
    frame = records_frame([], KINDS)

    assert len(frame) == 0
    assert list(frame.columns) == list(KINDS)
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_features_hash_is_16_hex_digits_of_the_row_hash(rows: int) -> None:
    features = pd.DataFrame({"x": np.arange(rows, dtype="float64"), "c": [f"k{i}" for i in range(rows)]})

    hashes = features_hash(features)

    expected = [f"{value:016x}" for value in pd.util.hash_pandas_object(features, index=False)]
    assert hashes.tolist() == expected
    assert all(len(h) == 16 for h in hashes)


# ------------------------------------------------------------------ JSON records checked column by column
class Bounded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=2, max_length=3)
    count: int = Field(ge=0, le=100)
    level: float = Field(gt=0, lt=10)
    ok: bool
    note: str | None = Field(None, max_length=4)
    at: dt.datetime


BOUNDED = ColumnarValidator(Bounded)
GOOD = {"code": "ab", "count": 3, "level": 2.5, "ok": True, "note": None, "at": "2013-06-14T21:00:00Z"}


def _columnar_frame(validator: ColumnarValidator, records: list) -> pd.DataFrame | None:
    """The request frame the API builds from the validator's columns (stacked as for a scoring pass);
    None when the validator declines the records."""
    columns = validator.columns(records)
    return None if columns is None else stack_columns([columns])


def _pydantic_frame(records: list[dict]) -> pd.DataFrame:
    """What the API gets from the same records through pydantic (JSON mode, as /predict validates)."""
    validated = TypeAdapter(list[Bounded]).validate_json(json.dumps(records))
    return records_frame([vars(record) for record in validated], column_kinds(Bounded))


def test_valid_json_records_give_the_frame_pydantic_gives() -> None:
    records = [
        GOOD,
        {**GOOD, "code": "xyz", "count": 0, "level": 9, "ok": False, "note": "n", "at": "2013-06-14T17:30:00.25-04:00"},
        {**GOOD, "count": 100, "note": "", "at": "2013-06-14 21:00"},
    ]

    frame = _columnar_frame(BOUNDED, records)

    assert BOUNDED.enabled
    assert frame is not None
    pd.testing.assert_frame_equal(frame, _pydantic_frame(records))
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize(
    "change",
    [
        {"count": True},  # a bool is an int to Python, not to the model
        {"count": 3.0},  # pydantic accepts it (lax): its call
        {"count": "3"},
        {"count": 101},
        {"count": -1},
        {"count": 2**70},
        {"level": 0},
        {"level": 10.0},
        {"level": "2.5"},
        {"ok": 1},
        {"code": "a"},
        {"code": "abcd"},
        {"code": 12},
        {"note": "12345"},
        {"note": 5},
        {"at": "2013-06-14"},
        {"at": 1371243600},
        {"at": "2013-06-14T21:00:00+0500"},
        {"at": "2013-06-14T25:00:00Z"},
        {"at": "2013-02-30T00:00:00Z"},
        {"extra": 1},
    ],
    ids=repr,
)
def test_values_outside_the_plain_subset_are_left_to_pydantic(change: dict) -> None:
    assert _columnar_frame(BOUNDED, [GOOD, {**GOOD, **change}]) is None


@pytest.mark.parametrize(
    "text",
    [
        "2013-06-14T24:00:00Z",
        "2013-06-14T23:59:60Z",
        "2013-06-14T21:00:00.000001Z",
        "2013-06-14 21:00:00+23:59",
        "2013-06-14T21:00:00-23:59",
        "2013-06-14T21:00:00+24:00",
        "2013-06-14T21:60:00Z",
        "2013-00-14T21:00:00Z",
        "2012-02-29T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
def test_edge_datetimes_are_read_as_pydantic_reads_them_or_left_to_it(text: str) -> None:
    records = [{**GOOD, "at": text}]
    try:
        expected = _pydantic_frame(records)
    except ValidationError:
        expected = None

    frame = _columnar_frame(BOUNDED, records)

    if frame is not None:
        assert expected is not None, f"accepted {text!r}, which pydantic refuses"
        pd.testing.assert_frame_equal(frame, expected)


@pytest.mark.parametrize(
    "records",
    [[], [GOOD, "not a record"], [GOOD, {k: v for k, v in GOOD.items() if k != "note"}], [{**GOOD, "cod": "ab"}]],
    ids=["empty", "not-a-dict", "optional-field-missing", "misspelt-field"],
)
def test_odd_record_lists_are_left_to_pydantic(records: list) -> None:
    assert _columnar_frame(BOUNDED, records) is None


class WithValidator(BaseModel):
    day: int

    @field_validator("day")
    @classmethod
    def _odd(cls, value: int) -> int:
        return value


class WithPattern(BaseModel):
    code: str = Field(pattern="^[A-Z]+$")


class WithAlias(BaseModel):
    code: str = Field(alias="Code")


class WithList(BaseModel):
    codes: list[str]


class Stripping(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    code: str


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (WithValidator, "validators"),
        (WithPattern, "field code"),
        (WithAlias, "alias"),
        (WithList, "field codes"),
        (Stripping, "str_strip_whitespace"),
    ],
)
def test_models_it_cannot_check_column_by_column_turn_it_off(model: type[BaseModel], reason: str) -> None:
    validator = ColumnarValidator(model)

    assert not validator.enabled
    assert reason in validator.reason
    assert _columnar_frame(validator, [{"day": 1, "code": "A", "Code": "A", "codes": ["A"]}]) is None


_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=120),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(min_value=-20, max_value=20, allow_nan=False),
    st.text(max_size=5),
    st.sampled_from(
        [
            "2013-06-14T21:00:00Z",
            "2013-06-14T21:00:00.123456Z",
            "2013-06-14T21:00Z",
            "2013-06-14 21:00:00",
            "2013-06-14T21:00:00+05:30",
            "2013-06-14T21:00:00-00:00",
            "2013-12-31T23:59:59.999999+14:00",
            "2013-06-14T21:00:00.1234567Z",
            "2013-06-14T24:00:00Z",
            "2013-06-14T21:00:60Z",
            "2013-02-29T00:00:00Z",
            "2013-06-14",
            "2013-06-14t21:00:00z",
            "1371243600",
        ]
    ),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-4))])).map(
        lambda value: value.isoformat()
    ),
)


_ISO_TEXT = st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]))
_VALID = {
    "code": st.text(min_size=2, max_size=3),
    "count": st.integers(min_value=0, max_value=100),
    "level": st.floats(min_value=0, max_value=10, exclude_min=True, exclude_max=True),
    "ok": st.booleans(),
    "note": st.one_of(st.none(), st.text(max_size=4)),
    "at": _ISO_TEXT.map(lambda value: value.isoformat().replace("+00:00", "Z")),
}


# Valid records with at most one field set to any value, so that many pass and have their values compared.
_RECORD = st.tuples(st.fixed_dictionaries(_VALID), st.sampled_from([None, *GOOD]), _ANY_VALUE).map(
    lambda drawn: drawn[0] if drawn[1] is None else {**drawn[0], drawn[1]: drawn[2]}
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_RECORD, min_size=1, max_size=3))
def test_whatever_it_accepts_pydantic_accepts_with_the_same_values(records: list[dict]) -> None:
    try:
        records = orjson.loads(json.dumps(records))  # as the API parses a request body
    except orjson.JSONDecodeError:  # integers over 64 bits: the API leaves the whole body to pydantic
        return

    frame = _columnar_frame(BOUNDED, records)

    if frame is not None:
        ACCEPTED.append(len(records))
        pd.testing.assert_frame_equal(frame, _pydantic_frame(records))


ACCEPTED: list[int] = []


def test_the_property_test_compared_accepted_records() -> None:
    """Runs after the property test: it must have compared values, not only watched declines."""
    assert sum(ACCEPTED) > 40


@pytest.mark.parametrize(
    "values",
    [
        ["2013-06-14T21:00:00Z", "2012-02-29T00:00:00Z", "0001-01-01T00:00:00Z"],
        ["2013-06-14T24:00:00Z"],
        ["2013-06-14T23:59:60Z"],
        ["2013-02-30T10:00:00Z"],
        ["2013-06-14T21:00:00Z", "2013-06-14T21:00:00+01:00"],  # one other shape: all go the general way
        ["2013-06-14T21:00:00Z", "2013-06-14 21:00:00Z"],
        ["2013-06-14T21:00:00Z", "2013-06-14T21:00:00z"],
        ["2013-06-14T21:00:0٣Z"],  # a non-ASCII digit
        ["2013-06-14T21:00:00ZZ"],
    ],
)
def test_the_utc_shortcut_reads_timestamps_as_the_general_reader(values: list[str]) -> None:
    def read(reader):  # the timestamps, or the name of the error that declines them
        try:
            return reader(values)
        except (columnar._DeclinedError, *columnar._DECLINE) as error:
            return type(error).__name__

    general = read(columnar._any_iso_timestamps)
    shortcut = read(columnar._utc_seconds_timestamps)  # None: not its shape
    either = read(columnar._iso_timestamps)

    if shortcut is not None:
        assert all(len(v) == 20 and v.endswith("Z") for v in values), "only the one shape takes the shortcut"
    if isinstance(general, str):
        assert either == general
    else:
        pd.testing.assert_index_equal(either, general)


def test_pydantics_own_utc_text_takes_the_shortcut() -> None:
    times = [dt.datetime(2013, 6, day, 21, tzinfo=dt.UTC) for day in (1, 2)]
    text = [TypeAdapter(dt.datetime).dump_python(time, mode="json") for time in times]

    shortcut = columnar._utc_seconds_timestamps(text)

    assert shortcut is not None
    pd.testing.assert_index_equal(shortcut, columnar._any_iso_timestamps(text))
