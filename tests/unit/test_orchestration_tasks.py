"""Helpers the DAG files share: chunking days, run days, JSON-safe extras, failing fast on bad data."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from include.mlpipeline.core.jsonable import json_safe
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.orchestration import tasks

DAYS = [f"2013-03-{d:02d}" for d in range(1, 11)]


# ------------------------------------------------------------------------------- chunk_days
@pytest.mark.parametrize(
    ("days", "max_chunks", "sizes"),
    [
        pytest.param(DAYS, 4, [3, 3, 2, 2], id="10-days-4-chunks"),
        pytest.param(DAYS, 5, [2, 2, 2, 2, 2], id="even"),
        pytest.param(DAYS, 1, [10], id="one-chunk"),
        pytest.param(DAYS[:3], 4, [1, 1, 1], id="fewer-days-than-chunks"),
        pytest.param(DAYS[:1], 4, [1], id="daily-run"),
        pytest.param(DAYS, 0, [10], id="zero-max-means-one"),
        pytest.param(DAYS * 4, 3, [14, 13, 13], id="forty-days"),
    ],
)
def test_chunk_days_sizes(days: list[str], max_chunks: int, sizes: list[int]) -> None:
    chunks = tasks.chunk_days(days, max_chunks)

    assert [len(c) for c in chunks] == sizes
    assert [day for chunk in chunks for day in chunk] == list(days)


@pytest.mark.parametrize("max_chunks", range(1, 13))
@pytest.mark.parametrize("count", [1, 2, 7, 10])
def test_chunk_days_never_exceeds_max_chunks_and_loses_nothing(count: int, max_chunks: int) -> None:
    chunks = tasks.chunk_days(DAYS[:count], max_chunks)

    assert 1 <= len(chunks) <= max_chunks
    assert all(chunks)
    assert max(map(len, chunks)) - min(map(len, chunks)) <= 1
    assert [day for chunk in chunks for day in chunk] == DAYS[:count]


def test_chunk_days_of_nothing_is_no_chunk() -> None:
    assert tasks.chunk_days([], 4) == []


def test_chunk_days_accepts_any_sequence() -> None:
    assert tasks.chunk_days(tuple(DAYS[:2]), 2) == [[DAYS[0]], [DAYS[1]]]


@pytest.mark.parametrize(
    ("days", "label"),
    [(["2013-03-01"], "2013-03-01"), (DAYS[:3], "2013-03-01..2013-03-03 (3 days)")],
)
def test_chunk_label(days: list[str], label: str) -> None:
    assert tasks.chunk_label(days) == label


# --------------------------------------------------------------------------------- run_day
def test_run_day_prefers_the_date_param() -> None:
    context = {"params": {"date": "2013-03-05T10:00:00"}, "logical_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}

    assert tasks.run_day(context) == "2013-03-05"


def test_run_day_falls_back_to_logical_date_then_run_after() -> None:
    assert tasks.run_day({"params": {}, "logical_date": dt.datetime(2026, 1, 2, 23, tzinfo=dt.UTC)}) == "2026-01-02"
    run = SimpleNamespace(run_after=dt.datetime(2026, 1, 3, 1, tzinfo=dt.UTC))
    assert tasks.run_day({"params": {"date": None}, "logical_date": None, "dag_run": run}) == "2026-01-03"


# ------------------------------------------------------------------------------- json_safe
def test_json_safe_turns_numpy_and_dates_into_json_values() -> None:
    value = {
        "rows": np.int64(3),
        "share": np.float32(0.5),
        "ok": np.bool_(True),
        "day": dt.date(2013, 3, 1),
        "at": pd.Timestamp("2013-03-01 10:00"),
        "nested": [{"n": np.int32(2)}, (1, 2)],
        "other": {1, 2} - {2},
    }

    safe = json_safe(value)

    assert safe == {
        "rows": 3,
        "share": 0.5,
        "ok": True,
        "day": "2013-03-01",
        "at": "2013-03-01T10:00:00",
        "nested": [{"n": 2}, [1, 2]],
        "other": "{1}",
    }
    assert type(safe["rows"]) is int
    assert json.loads(json.dumps(safe)) == safe


def test_json_safe_keeps_numpy_timestamps_readable() -> None:
    stamp = pd.Series(pd.to_datetime(["2013-03-01"])).to_numpy()[0]

    assert json_safe({"at": stamp}) == {"at": "2013-03-01T00:00:00"}


# ------------------------------------------------------------------------------- events
def _event(minute: int, extra: dict | None) -> SimpleNamespace:
    return SimpleNamespace(timestamp=dt.datetime(2026, 1, 1, 0, minute, tzinfo=dt.UTC), extra=extra)


def test_events_extra_is_oldest_first_and_tolerates_missing_extras() -> None:
    events = [_event(5, {"partitions": ["b"]}), _event(1, {"partitions": ["a"]}), _event(3, None)]

    assert tasks.events_extra(events) == [{"partitions": ["a"]}, {}, {"partitions": ["b"]}]


def test_partitions_of_batched_events_are_unique_and_sorted() -> None:
    events = [
        _event(2, {"partitions": ["2013-03-03", "2013-03-01"]}),
        _event(1, {"partitions": ["2013-03-01", "2013-03-02"], "no_data": ["2013-02-29"]}),
        _event(3, {}),
    ]

    assert tasks.partitions_of(events) == ["2013-03-01", "2013-03-02", "2013-03-03"]


def test_partitions_of_no_events_is_empty() -> None:
    assert tasks.partitions_of([]) == []


# ------------------------------------------------------------------------------ fail fast
def test_data_errors_fail_the_task_without_retries() -> None:
    expected = r"quality gate 'clean' failed: distance:greater_than\(0\) \(12 rows\)"
    with pytest.raises(tasks.AirflowFailException, match=expected) as raised, tasks.fail_fast_on_data_errors():
        raise DataQualityError("clean", {"distance:greater_than(0)": 12})

    assert isinstance(raised.value.__cause__, DataQualityError)


def test_other_errors_keep_their_type_so_they_are_retried() -> None:
    with pytest.raises(ConnectionError), tasks.fail_fast_on_data_errors():
        raise ConnectionError("s3 hiccup")


def test_default_args_retry_with_backoff_and_accept_overrides() -> None:
    args = tasks.default_args(retries=0)

    assert args["retries"] == 0
    assert args["retry_exponential_backoff"] == 2.0
    assert args["execution_timeout"] == dt.timedelta(minutes=30)
    assert tasks.default_args()["retries"] == 3
