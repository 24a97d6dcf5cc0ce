"""Training splits: part sizes in days, rows or shares; days in time order; a snapshot's seeded row split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import PROBLEM
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.core.split import PartSize, Split
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.ml.sampling import assign_parts
from include.mlpipeline.ml.window import effective_split, split_days


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 days", PartSize(5, "days")),
        ("5d", PartSize(5, "days")),
        ("1 day", PartSize(1, "days")),
        ("500 rows", PartSize(500, "rows")),
        ("500r", PartSize(500, "rows")),
        ("15%", PartSize(0.15, "share")),
        ("0.15", PartSize(0.15, "share")),
        (0.2, PartSize(0.2, "share")),
    ],
)
def test_part_sizes_are_read_in_days_rows_or_shares(text: str, expected: PartSize) -> None:
    assert PartSize.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("five days", "cannot read the part size 'five days'"),
        ("5", "needs a unit"),
        ("150%", "between 0 and 1"),
        ("0 rows", "at least 1"),
        ("2.5 days", "whole number"),
    ],
)
def test_a_part_size_that_cannot_be_read_says_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PartSize.parse(text)


def test_settings_override_the_problem_split() -> None:
    problem = dataclasses.replace(PROBLEM, split=Split(window_days=60, validation="5 days", test="5 days"))

    assert effective_split(problem, Settings()) == problem.split
    assert effective_split(problem, Settings(test_size="10%", train_window_days=30)) == Split(30, "5 days", "10%")


ROWS = {
    f"2013-03-{d:02d}": rows
    for d, rows in zip(range(1, 11), [100, 100, 100, 100, 100, 100, 100, 50, 30, 20], strict=True)
}


@pytest.mark.parametrize(
    ("validation", "test", "expected"),
    [
        ("2 days", "3 days", (5, 2, 3)),
        ("100 rows", "100 rows", (6, 1, 3)),  # the newest days holding at least 100 rows: 20+30+50
        ("20%", "10%", (5, 2, 3)),  # shares of all 800 rows: 80 for test (the last 3 days), 160 for validation
    ],
)
def test_days_split_in_time_order_by_days_rows_or_shares(validation: str, test: str, expected: tuple) -> None:
    train, held, tested = split_days(ROWS, PartSize.parse(validation), PartSize.parse(test))

    assert (len(train), len(held), len(tested)) == expected
    assert train + held + tested == list(ROWS)  # no gap, no overlap, in time order


def test_days_too_few_for_the_parts_fail_naming_the_sizes() -> None:
    with pytest.raises(DataQualityError, match=r"enough_days.*3 feature partitions available, 5 needed"):
        split_days(dict(list(ROWS.items())[:3]), PartSize.parse("2 days"), PartSize.parse("2 days"))


def _snapshot(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"row_id": np.arange(rows), "label": rng.choice(["a", "b", "c"], rows, p=[0.6, 0.3, 0.1])})


def test_a_snapshot_split_is_seeded_stratified_and_independent_of_row_order() -> None:
    frame = _snapshot()
    split = {"validation": PartSize.parse("20%"), "test": PartSize.parse("20%"), "seed": 42}

    parts = assign_parts(frame, key_columns=["row_id"], stratify=frame["label"].to_numpy(), **split)
    shuffled = frame.sample(frac=1, random_state=1)
    again = assign_parts(shuffled, key_columns=["row_id"], stratify=shuffled["label"].to_numpy(), **split)
    other_seed = assign_parts(frame, key_columns=["row_id"], stratify=frame["label"].to_numpy(), **{**split, "seed": 7})

    counts = pd.Series(parts).value_counts()
    assert counts["test"] == pytest.approx(60, abs=2) and counts["validation"] == pytest.approx(60, abs=2)
    by_row = dict(zip(shuffled["row_id"], again, strict=True))
    assert [by_row[row] for row in frame["row_id"]] == list(parts)  # the keys decide, not the order
    assert list(other_seed) != list(parts)
    shares = pd.crosstab(parts, frame["label"], normalize="index")
    assert (shares.max() - shares.min()).max() < 0.05  # every part keeps the class shares


def test_rows_of_one_group_stay_in_one_part() -> None:
    frame = pd.DataFrame({"customer": np.repeat(np.arange(50), 4), "value": np.arange(200)})

    parts = assign_parts(
        frame,
        key_columns=["customer"],
        stratify=None,
        validation=PartSize.parse("20%"),
        test=PartSize.parse("20%"),
        seed=1,
    )

    assert pd.Series(parts).groupby(frame["customer"]).nunique().max() == 1


@pytest.mark.parametrize(
    ("validation", "test", "message"),
    [
        ("5 days", "20%", "a snapshot has no days"),
        ("50 rows", "50 rows", "cannot hold a test part of 50 rows"),
    ],
)
def test_a_snapshot_split_that_cannot_be_made_says_why(validation: str, test: str, message: str) -> None:
    frame = _snapshot(60)

    with pytest.raises(DataQualityError, match=message):
        assign_parts(
            frame,
            key_columns=["row_id"],
            stratify=None,
            validation=PartSize.parse(validation),
            test=PartSize.parse(test),
            seed=0,
        )
