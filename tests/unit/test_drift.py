"""Drift detection on frames with and without a real shift (Evidently, PSI per feature)."""

from __future__ import annotations

import dataclasses
import json

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


def _loss_summary(task: str, offline: float, live_loss: float, loss_std: float, predictions: int) -> dict:
    """A monitor summary of a multiclass (offline test log loss) or regression (offline test RMSE) champion."""
    live = {"predictions": float(predictions), "mean_loss": live_loss, "loss_std": loss_std}
    return {"task": task, "live": live, "offline": {"log_loss": offline} if task == "multiclass" else {"rmse": offline}}


@pytest.mark.parametrize(
    ("task", "offline", "live", "retrain"),  # live: mean loss, its standard deviation, outcomes
    [
        ("multiclass", 0.50, (0.70, 0.8, 2000), True),  # 40% above, standard error 0.018
        ("multiclass", 0.50, (0.58, 0.9, 150), False),  # 16% above, but 1.645 standard errors are 0.12: noise
        ("multiclass", 0.50, (0.53, 0.8, 100_000), False),  # beyond its noise, but under the 10% limit
        ("multiclass", 0.50, (2.00, 0.8, 99), False),  # too few outcomes to judge
        ("regression", 300.0, (150_000.0, 200_000.0, 1000), True),  # MSE 90,000 offline; standard error 6,300
        ("regression", 300.0, (100_000.0, 200_000.0, 200), False),  # 11% above; 1.645 standard errors: 23,000
        ("regression", 300.0, (95_000.0, 200_000.0, 1_000_000), False),  # 5.6% above: under the limit
    ],
)
def test_live_loss_rise_requests_a_retrain_only_beyond_its_noise(task, offline, live, retrain):
    from include.mlpipeline.core.settings import Settings

    live_loss, loss_std, predictions = live
    summary = _loss_summary(task, offline, live_loss, loss_std, predictions)

    reason = drift._live_check(summary, Settings())

    assert (reason is not None) is retrain
    if predictions >= 100:
        offline_loss = offline if task == "multiclass" else offline**2
        assert summary["offline_loss"] == pytest.approx(offline_loss)
        assert summary["live_loss"] == live_loss
        assert summary["loss_rise"] == pytest.approx(live_loss / offline_loss - 1)
    if retrain:
        statistic = "log loss" if task == "multiclass" else "squared error"
        assert f"live mean {statistic} {live_loss:.4g} is" in reason and "standard error" in reason


def test_live_loss_rise_limit_is_a_setting():
    from types import SimpleNamespace

    summary = _loss_summary("multiclass", 0.50, 0.70, 0.8, 2000)  # 40% above offline

    assert drift._live_check(summary, SimpleNamespace(live_loss_rise=0.5)) is None
    assert drift._live_check(summary, SimpleNamespace(live_loss_rise=0.3)) is not None


def test_binary_champion_keeps_the_auc_check():
    from include.mlpipeline.core.settings import Settings

    summary = {**_summary(0.60, 5000), "task": "binary"}
    assert "live ROC AUC 0.600 is" in drift._live_check(summary, Settings())
    assert "live_loss" not in summary


@pytest.mark.parametrize(
    ("task", "values", "outcomes"),
    [
        ("multiclass", [0.7, 0.4], ["A", "B"]),  # probability of the true class, per prediction
        ("regression", [4100.0, 3500.0], [4000.0, 3900.0]),
    ],
)
def test_offline_metrics_and_loss_per_task(task, values, outcomes):
    run = {"test_log_loss": 0.6, "test_macro_f1": 0.8, "test_accuracy": 0.9, "test_rmse": 250.0, "test_r2": 0.7}
    run |= {"test_roc_auc": 0.7, "test_mae": 200.0}
    offline = drift.offline_metrics(run, task)
    expected = {"multiclass": {"log_loss", "macro_f1", "accuracy"}, "regression": {"rmse", "mae", "r2"}}[task]
    assert set(offline) == expected
    assert drift.offline_loss(offline, task) == pytest.approx(0.6 if task == "multiclass" else 250.0**2)
    assert set(drift.offline_metrics(run, "binary")) == {"roc_auc", "log_loss"}


def _served(lake, task: str, *, n: int, error: float, seed: int = 0) -> None:
    """``n`` logged champion predictions of ``task`` with known outcomes; ``error`` sets how wrong they are."""
    from include.mlpipeline.data.etl import FEATURES
    from include.mlpipeline.serving.prediction_log import PREDICTIONS

    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    if task == "multiclass":
        classes = np.array(["Adelie", "Chinstrap", "Gentoo"])
        truth = rng.choice(classes, n)
        right = rng.random(n) >= error  # the model is sure of the true class, or sure of a wrong one
        predicted = np.where(right, truth, classes[(np.searchsorted(classes, truth) + 1) % 3])
        columns = {
            "label": predicted,
            "probability": 0.8,
            "value": np.nan,
            "probabilities": [json.dumps({c: 0.8 if c == p else 0.1 for c in classes}) for p in predicted],
        }
    else:
        truth = rng.normal(4200, 800, n)
        columns = {"label": "", "probability": np.nan, "value": truth + rng.normal(0, error, n), "probabilities": ""}
    frame = pd.DataFrame({"request_id": "r", "id": ids, "variant": "champion", "model_version": "1", **columns})
    lake.append(PREDICTIONS, "2026-06-01", frame)
    lake.write(FEATURES, "2026-06-01", pd.DataFrame({"penguin_id": ids, "target": truth}))


@pytest.mark.parametrize(
    ("task", "offline", "error", "retrain"),
    [
        # offline log loss 0.33: 5% wrong, -(0.95 log 0.8 + 0.05 log 0.1); live 20% wrong gives 0.64
        ("multiclass", {"log_loss": 0.33}, 0.20, True),
        ("multiclass", {"log_loss": 0.33}, 0.05, False),  # as offline, up to sampling noise
        ("regression", {"rmse": 300.0}, 450.0, True),  # live RMSE 450: MSE 2.25 times the offline one
        ("regression", {"rmse": 300.0}, 300.0, False),
    ],
)
def test_live_performance_from_the_log_feeds_the_check(lake, task, offline, error, retrain):
    from include.mlpipeline.core.settings import Settings

    problem = dataclasses.replace(PROBLEM, task=task, target="target", key_columns=("penguin_id",))
    _served(lake, task, n=400, error=error)

    live = drift.live_performance(lake, problem, "1", lookback_days=14, task=task)
    summary = {"task": task, "live": live, "offline": offline}

    assert live["predictions"] == 400
    assert (drift._live_check(summary, Settings()) is not None) is retrain
    assert drift.live_performance(lake, problem, "2", lookback_days=14, task=task) == {}  # another version's log
