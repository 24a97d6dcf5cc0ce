"""Request records to a frame: each column typed from the request model, datetimes in UTC."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from include.mlpipeline.serving.prediction_log import features_hash
from include.mlpipeline.serving.records import column_kinds, records_frame


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
