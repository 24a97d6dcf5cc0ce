"""Quality gates: row-level failures go to quarantine, table-level failures (or too many bad rows) raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from include.flight_delay import cleaning
from include.flight_delay.schemas import CleanFlights
from include.mlpipeline.data.quality import FAILED_CHECKS_COLUMN, DataQualityError, apply_gate


class Orders(pa.DataFrameModel):
    order_id: Series[int] = pa.Field(unique=True)
    qty: Series[int] = pa.Field(ge=1)
    price: Series[float] = pa.Field(gt=0)
    sku: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")

    class Config:
        coerce = True
        strict = True


def _orders(rows: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": range(rows),
            "qty": [1 + i % 3 for i in range(rows)],
            "price": [2.5] * rows,
            "sku": ["ABC"] * rows,
        }
    )


def _gate(frame: pd.DataFrame, share: float = 0.2, **kwargs: object) -> object:
    return apply_gate(frame, Orders, gate="orders", max_quarantine_share=share, **kwargs)


def test_passing_frame_goes_through_whole_and_coerced() -> None:
    frame = _orders().astype({"qty": str})

    result = _gate(frame)

    assert result.report.to_dict() == {
        "gate": "orders",
        "rows_in": 10,
        "rows_out": 10,
        "rows_quarantined": 0,
        "failed_checks": {},
        "quarantined_share": 0.0,
    }
    assert result.valid["qty"].dtype == "int64"
    assert result.valid["qty"].tolist() == _orders()["qty"].tolist()
    assert result.quarantined.empty
    assert FAILED_CHECKS_COLUMN in result.quarantined.columns


def test_row_level_failure_is_quarantined_with_the_check_name() -> None:
    frame = _orders()
    frame.loc[3, "qty"] = 0

    result = _gate(frame)

    assert result.valid["order_id"].tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert result.valid.index.tolist() == list(range(9))
    assert result.quarantined["order_id"].tolist() == [3]
    assert result.quarantined[FAILED_CHECKS_COLUMN].tolist() == ["qty:greater_than_or_equal_to(1)"]
    assert result.report.failed_checks == {"qty:greater_than_or_equal_to(1)": 1}
    assert result.report.quarantined_share == pytest.approx(0.1)


def test_a_row_failing_several_checks_names_them_all_once() -> None:
    frame = _orders()
    frame.loc[3, ["qty", "sku"]] = [0, "ab"]

    result = _gate(frame)

    assert result.quarantined[FAILED_CHECKS_COLUMN].tolist() == [
        "qty:greater_than_or_equal_to(1);sku:str_matches('^[A-Z]{3}$')"
    ]
    assert result.report.rows_quarantined == 1


@pytest.mark.parametrize(
    ("column", "value", "check", "quarantined_ids"),
    [
        ("price", None, "price:not_nullable", [2]),
        ("price", -1.0, "price:greater_than(0)", [2]),
        ("qty", "many", "qty:coerce_dtype('int64')", [2]),
        ("sku", "abc", "sku:str_matches('^[A-Z]{3}$')", [2]),
        ("order_id", 5, "order_id:field_uniqueness", [5, 5]),
    ],
)
def test_row_level_failures_are_named_column_colon_check(
    column: str, value: object, check: str, quarantined_ids: list[int]
) -> None:
    frame = _orders().astype({column: object})
    frame.loc[2, column] = value

    result = _gate(frame, share=0.5)

    assert result.quarantined["order_id"].tolist() == quarantined_ids
    assert all(check in names.split(";") for names in result.quarantined[FAILED_CHECKS_COLUMN])
    assert result.report.rows_in == result.report.rows_out + result.report.rows_quarantined == 10


def test_too_many_bad_rows_raise_naming_the_check_and_the_share() -> None:
    frame = _orders()
    frame.loc[[1, 2, 3], "qty"] = 0

    with pytest.raises(DataQualityError, match=r"qty:greater_than_or_equal_to\(1\) \(3 rows\)") as raised:
        _gate(frame, share=0.2)

    assert "3 of 10 rows (30.00%)" in str(raised.value)
    assert "the limit is 20.00%" in str(raised.value)
    assert raised.value.gate == "orders"
    assert raised.value.failed_checks == {"qty:greater_than_or_equal_to(1)": 3}


def test_share_equal_to_the_limit_passes() -> None:
    frame = _orders()
    frame.loc[[1, 2], "qty"] = 0

    assert _gate(frame, share=0.2).report.rows_quarantined == 2


@pytest.mark.parametrize(
    ("broken", "checks"),
    [
        pytest.param(lambda f: f.drop(columns=["price"]), ["column_in_dataframe:price"], id="missing-column"),
        pytest.param(
            lambda f: f.rename(columns={"price": "unit_price"}),
            ["column_in_dataframe:price", "column_in_schema:unit_price"],
            id="renamed-column",
        ),
        pytest.param(lambda f: f.assign(note="x"), ["column_in_schema:note"], id="extra-column-strict"),
        pytest.param(
            lambda f: f.assign(qty="many"),
            ["qty:coerce_dtype('int64') (10 rows)", "10 of 10 rows (100.00%)"],
            id="dtype-not-coercible-for-every-row",
        ),
        pytest.param(lambda f: f.iloc[0:0], ["not_empty", "empty where data was expected"], id="empty-frame"),
    ],
)
def test_table_level_failures_raise_naming_the_checks(
    broken: Callable[[pd.DataFrame], pd.DataFrame], checks: list[str]
) -> None:
    with pytest.raises(DataQualityError, match="quality gate 'orders' failed") as raised:
        _gate(broken(_orders()), share=0.5)

    for check in checks:
        assert check in str(raised.value)


def test_table_level_failure_also_reports_rows_already_quarantined() -> None:
    frame = _orders().drop(columns=["price"])
    frame.loc[4, "qty"] = 0

    with pytest.raises(DataQualityError) as raised:
        _gate(frame)

    assert raised.value.failed_checks == {"column_in_dataframe:price": 0, "qty:greater_than_or_equal_to(1)": 1}


def test_empty_frame_passes_when_allowed() -> None:
    result = _gate(_orders().iloc[0:0], allow_empty=True)

    assert result.report.rows_in == 0
    assert result.valid.empty


def test_no_valid_rows_left_raises_even_under_the_share_limit() -> None:
    frame = _orders(rows=2)
    frame["qty"] = 0

    with pytest.raises(DataQualityError, match=r"not_empty; qty:greater_than_or_equal_to\(1\) \(2 rows\)"):
        _gate(frame, share=1.0)


def test_error_is_deterministic_text_without_detail() -> None:
    error = DataQualityError("g", {"b": 2, "a": 0})

    assert str(error) == "quality gate 'g' failed: a; b (2 rows)"


# ------------------------------------------------------------- the real clean contract, real rows
@pytest.fixture(scope="module")
def clean_day(real_raw: Callable[[dt.date], dict[str, pd.DataFrame]]) -> pd.DataFrame:
    day = dt.date(2013, 3, 1)
    return cleaning.transform(real_raw(day), day)


def _break_distance(frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, int]:
    broken = frame.copy()
    count = max(1, round(len(frame) * share))
    broken.loc[broken.index[:count], "distance"] = -1
    return broken, count


def test_clean_gate_quarantines_half_a_percent_and_continues(clean_day: pd.DataFrame) -> None:
    broken, count = _break_distance(clean_day, 0.005)

    result = apply_gate(broken, CleanFlights, gate="clean", max_quarantine_share=0.01)

    assert result.report.rows_quarantined == count
    assert result.report.rows_out == len(clean_day) - count
    assert set(result.quarantined[FAILED_CHECKS_COLUMN]) == {"distance:greater_than(0)"}
    assert (result.valid["distance"] > 0).all()


def test_clean_gate_fails_at_five_percent(clean_day: pd.DataFrame) -> None:
    broken, count = _break_distance(clean_day, 0.05)

    with pytest.raises(DataQualityError, match=rf"distance:greater_than\(0\) \({count} rows\)") as raised:
        apply_gate(broken, CleanFlights, gate="clean", max_quarantine_share=0.01)

    assert f"{100 * count / len(clean_day):.2f}%" in str(raised.value)


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("hour", 25, "hour:less_than_or_equal_to(23)"),
        ("sched_dep_time", 1275, "sched_dep_time:clock_hhmm"),
        ("carrier", "u1a", "carrier:str_matches('^[A-Z0-9]{2}$')"),
        ("dest", None, "dest:not_nullable"),
        ("sched_dep_ts", pd.NaT, "sched_dep_ts:not_nullable"),
    ],
)
def test_clean_contract_row_checks(clean_day: pd.DataFrame, column: str, value: object, check: str) -> None:
    broken = clean_day.copy()
    broken[column] = broken[column].astype(object)
    broken.loc[0, column] = value

    result = apply_gate(broken, CleanFlights, gate="clean", max_quarantine_share=0.01)

    assert result.quarantined[FAILED_CHECKS_COLUMN].tolist() == [check]


def test_clean_contract_rejects_duplicate_flight_keys(clean_day: pd.DataFrame) -> None:
    broken = pd.concat([clean_day, clean_day.iloc[[0]]], ignore_index=True)

    result = apply_gate(broken, CleanFlights, gate="clean", max_quarantine_share=0.01)

    assert set(result.quarantined[FAILED_CHECKS_COLUMN]) == {"multiple_fields_uniqueness"}


def test_clean_contract_rejects_a_renamed_column(clean_day: pd.DataFrame) -> None:
    with pytest.raises(DataQualityError, match=r"column_in_dataframe:distance; column_in_schema:miles"):
        apply_gate(
            clean_day.rename(columns={"distance": "miles"}), CleanFlights, gate="clean", max_quarantine_share=0.01
        )
