"""Drift detection on frames with and without a real shift (Evidently, PSI per feature)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import PROBLEM
from include.mlpipeline.monitoring import drift


def frame(n: int, *, temp_shift: float = 0.0, wind_shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {c: rng.normal(10, 3, n) for c in PROBLEM.numeric_features}
    data["temp"] = rng.normal(60 + temp_shift, 10, n)
    data["wind_speed"] = rng.normal(10 + wind_shift, 4, n)
    data["wind_gust"] = data["wind_speed"] + rng.normal(2, 1, n)
    for column in PROBLEM.categorical_features:
        data[column] = rng.choice(["A", "B", "C", "D"], n)
    return pd.DataFrame(data)


def test_calendar_features_are_not_monitored():
    monitored = drift.monitored_features(PROBLEM)
    assert "month" not in monitored and "days_to_holiday" not in monitored
    assert "temp" in monitored and "carrier" in monitored


def test_no_shift_no_drift():
    features = drift.monitored_features(PROBLEM)
    _, scores, drifted, share = drift.drift_report(frame(5000), frame(2000, seed=1), features, PROBLEM)
    assert set(scores) == set(features)
    assert drifted == [] and share == 0.0


def test_shifted_weather_is_caught():
    features = drift.monitored_features(PROBLEM)
    _, scores, drifted, share = drift.drift_report(
        frame(5000), frame(2000, temp_shift=25, wind_shift=8, seed=1), features, PROBLEM
    )
    assert {"temp", "wind_speed", "wind_gust"} <= set(drifted)
    assert scores["temp"] >= drift.DRIFT_THRESHOLD > scores["distance"]
    assert share == pytest.approx(len(drifted) / len(features))


def test_window_reference_reads_train_and_validation_days_only(lake, make_features, monkeypatch):
    from include.mlpipeline.data.etl import FEATURES
    from include.mlpipeline.data.lake import PARTITION_COLUMN

    days = pd.date_range("2013-02-01", periods=6).date
    for day in days:
        lake.write(FEATURES, day, make_features(day, rows=50))
    reference = drift.window_reference(days[1], days[4], lake=lake, problem=PROBLEM)  # test days start at days[4]
    assert set(reference[PARTITION_COLUMN].dt.date) == set(days[1:4])
    assert len(reference) == 150 and set(PROBLEM.feature_columns) <= set(reference.columns)

    monkeypatch.setattr(drift, "REFERENCE_ROWS", 40)  # a fixed sample: the same rows every time
    first = drift.window_reference(days[0], days[4].isoformat(), lake=lake, problem=PROBLEM)
    again = drift.window_reference(days[0].isoformat(), days[4], lake=lake, problem=PROBLEM)
    assert len(first) == 40 and first.equals(again)

    with pytest.raises(FileNotFoundError, match="no feature partitions"):
        drift.window_reference("2013-03-01", "2013-03-10", lake=lake, problem=PROBLEM)


def test_auc_standard_error_matches_a_bootstrap():
    """Hanley and McNeil's formula against the spread of AUC over bootstrap resamples of one sample."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    outcome = (rng.random(400) < 0.25).astype(int)
    score = rng.normal(outcome * 0.8, 1.0)
    aucs = []
    for _ in range(400):
        rows = rng.integers(0, len(outcome), len(outcome))
        aucs.append(roc_auc_score(outcome[rows], score[rows]))
    positives = int(outcome.sum())

    error = drift.auc_standard_error(roc_auc_score(outcome, score), positives, len(outcome) - positives)

    assert error == pytest.approx(np.std(aucs), rel=0.2)
    assert drift.auc_standard_error(0.7, 2000, 8000) < drift.auc_standard_error(0.7, 20, 80) / 8


def _summary(live_auc: float, predictions: int, positive_rate: float = 0.2) -> dict:
    live = {"roc_auc": live_auc, "predictions": float(predictions), "positive_rate": positive_rate}
    return {"live": live, "offline": {"roc_auc": 0.72}}


@pytest.mark.parametrize(
    ("live_auc", "predictions", "retrain"),
    [
        (0.60, 5000, True),  # 0.12 below, standard error ~0.01
        (0.69, 5000, False),  # 0.03 below: under the 0.05 limit
        (0.64, 150, False),  # 0.08 below, but standard error ~0.06: could be chance
        (0.50, 150, True),  # 0.22 below: more than 1.645 standard errors even on 150 outcomes
        (0.40, 99, False),  # too few outcomes to judge
    ],
)
def test_live_auc_drop_requests_a_retrain_only_beyond_its_noise(live_auc, predictions, retrain):
    from include.mlpipeline.core.settings import Settings

    summary = _summary(live_auc, predictions)

    reason = drift._live_check(summary, Settings())

    assert (reason is not None) is retrain
    if retrain:
        assert f"live ROC AUC {live_auc:.3f} is" in reason and "standard error" in reason
