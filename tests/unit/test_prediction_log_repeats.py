"""The prediction log writes a named request once: a retry of it, in the same flush or a later one, adds nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.prediction_log import PREDICTIONS, PredictionLog, ScoredBatch, now_utc

FEATURES = ("x",)


def scored(*requests: tuple[str, int]) -> ScoredBatch:
    """A scoring pass: ``(request id, records)`` per request, one tiny feature column."""
    ids = np.repeat([request for request, _ in requests], [count for _, count in requests])
    size = len(ids)
    columns = {
        "request_id": ids,
        "id": np.array([f"k{i}" for i in range(size)], dtype=object),
        "variant": np.full(size, "champion", dtype=object),
        "model_version": np.full(size, "1", dtype=object),
        "value": np.arange(size, dtype="float64"),
        "latency_ms": np.ones(size),
    }
    return ScoredBatch(now_utc(), columns, pd.DataFrame({"x": np.arange(size, dtype="float64")}), FEATURES)


class FlakyLake(Lake):
    """A real lake whose first ``failures`` appends fail, as a storage outage would."""

    def __init__(self, root: str, failures: int):
        super().__init__(root)
        self.failures = failures

    def append(self, dataset: str, day, frame: pd.DataFrame) -> str:
        if self.failures:
            self.failures -= 1
            raise OSError("storage unavailable")
        return super().append(dataset, day, frame)


def logged(lake: Lake) -> pd.DataFrame:
    return lake.read_appended(PREDICTIONS, [now_utc().date()])


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(f"file://{tmp_path}/lake")


def test_a_request_posted_twice_before_a_flush_is_logged_once(lake: Lake):
    log = PredictionLog(lambda: lake, flush_s=60)
    log.record(scored(("r1", 3), ("r2", 2)))
    log.record(scored(("r1", 3)))

    assert log.flush() == 5
    assert logged(lake)["request_id"].tolist() == ["r1"] * 3 + ["r2"] * 2
    assert log.repeated_rows == 3


def test_a_request_posted_again_after_a_flush_adds_nothing(lake: Lake):
    log = PredictionLog(lambda: lake, flush_s=60)
    log.record(scored(("r1", 2)))
    log.flush()
    log.record(scored(("r1", 2), ("r3", 1)))

    assert log.flush() == 1
    assert sorted(logged(lake)["request_id"]) == ["r1", "r1", "r3"]


def test_two_passes_of_one_id_in_one_pass_keep_the_first(lake: Lake):
    """A caller that retries while its first request is still being scored: both land in one pass."""
    log = PredictionLog(lambda: lake, flush_s=60)
    log.record(scored(("r1", 2), ("r2", 1), ("r1", 2)))

    log.flush()
    rows = logged(lake)

    assert rows["request_id"].tolist() == ["r1", "r1", "r2"]
    assert rows["f_x"].tolist() == [0.0, 1.0, 2.0]


def test_a_failed_flush_forgets_nothing_it_did_not_write(tmp_path):
    lake = FlakyLake(f"file://{tmp_path}/lake", failures=1)
    log = PredictionLog(lambda: lake, flush_s=60)
    log.record(scored(("r1", 2)))

    assert log.flush() == 0 and log.last_error
    log.record(scored(("r1", 2)))  # the caller retried meanwhile
    assert log.flush() == 2
    assert logged(lake)["request_id"].tolist() == ["r1", "r1"]


def test_rows_without_a_request_id_are_all_logged(lake: Lake):
    log = PredictionLog(lambda: lake, flush_s=60)
    rows = pd.DataFrame({"ts": [now_utc()] * 2, "id": ["a", "a"], "value": [1.0, 1.0]})
    log.record(rows)
    log.record(rows)

    assert log.flush() == 4
