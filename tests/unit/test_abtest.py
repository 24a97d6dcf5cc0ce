"""A/B routing, the prediction log, joining outcomes, and the decision rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import PROBLEM
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.deployment import abtest
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.monitoring import live_outcomes
from include.mlpipeline.serving.prediction_log import (
    FEEDBACK,
    PREDICTIONS,
    PredictionLog,
    ScoredBatch,
    assign_variants,
    bucket,
    features_hash,
)

KEYS = [f"2013-06-{d:02d}_UA_{n}_EWR" for d in range(1, 29) for n in range(100)]


def test_routing_is_sticky_and_order_independent():
    first = assign_variants(KEYS, 0.3)
    again = assign_variants(list(reversed(KEYS)), 0.3)[::-1]
    assert (first == again).all()
    assert set(first) == {"champion", "challenger"}


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_routing_share(share: float):
    variants = assign_variants(KEYS, share)
    assert abs((variants == "challenger").mean() - share) < 0.03  # 2,800 keys


def test_no_share_means_everything_to_the_champion():
    assert set(assign_variants(KEYS, 0.0)) == {"champion"}
    assert 0 <= bucket("x") < 1


def test_prediction_log_appends_by_day_and_keeps_rows_on_failure(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    broken = {"fail": True}

    def factory():
        if broken["fail"]:
            raise OSError("disk unplugged")
        return lake

    plog = PredictionLog(factory, flush_s=60)
    rows = pd.DataFrame({"ts": pd.to_datetime(["2026-06-01 10:00", "2026-06-02 11:00"], utc=True), "id": ["a", "b"]})
    plog.record(rows)
    assert plog.flush() == 0 and "disk unplugged" in plog.last_error
    broken["fail"] = False
    assert plog.flush() == 2
    assert list(lake.read_appended(PREDICTIONS, ["2026-06-01"])["id"]) == ["a"]
    assert list(lake.read_appended(PREDICTIONS, ["2026-06-01", "2026-06-02"])["id"]) == ["a", "b"]
    assert plog.flush() == 0  # nothing left


def _pass(ts: str, ids: list[str], distance: list[float]) -> ScoredBatch:
    features = pd.DataFrame(
        {"flight_id": ids, "distance": distance, "carrier": ["UA"] * len(ids)}, index=[7] * len(ids)
    )
    columns = {"id": np.array(ids, dtype=object), "probability": np.linspace(0.1, 0.9, len(ids))}
    return ScoredBatch(pd.Timestamp(ts, tz="UTC"), columns, features, ("distance", "carrier"))


def test_scored_batches_become_the_rows_logged_per_pass(tmp_path):
    """Passes queued as arrays are flushed as the rows each would have logged, in queue order."""
    lake = Lake(f"file://{tmp_path}/lake")
    plog = PredictionLog(lambda: lake, flush_s=60)
    first, second = (
        _pass("2026-06-01 10:00", ["a", "b"], [100.0, 200.0]),
        _pass("2026-06-01 10:01", ["c"], [np.nan]),
    )
    plog.record(first)
    plog.record(pd.DataFrame({"ts": [pd.Timestamp("2026-06-01 10:00:30", tz="UTC")], "id": ["direct"]}))
    plog.record(second)
    plog.record(_pass("2026-06-01 10:02", [], []))  # an empty pass logs nothing

    assert plog.flush() == 4
    logged = lake.read_appended(PREDICTIONS, ["2026-06-01"])
    assert list(logged["id"]) == ["a", "b", "direct", "c"]
    assert list(logged["ts"].dt.strftime("%H:%M:%S")) == ["10:00:00", "10:00:00", "10:00:30", "10:01:00"]
    scored = logged[logged["id"] != "direct"].reset_index(drop=True)
    assert list(scored["f_distance"].fillna(-1)) == [100.0, 200.0, -1]
    assert list(scored["f_carrier"]) == ["UA"] * 3
    assert "f_flight_id" not in logged  # only the feature columns are logged
    expected = pd.concat([b.features[["distance", "carrier"]] for b in (first, second)], ignore_index=True)
    assert list(scored["features_hash"]) == list(features_hash(expected))
    assert list(scored["probability"]) == [*first.columns["probability"], *second.columns["probability"]]


def test_passes_whose_rows_cannot_be_built_are_kept(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    plog = PredictionLog(lambda: lake, flush_s=60)
    broken = _pass("2026-06-01 10:00", ["a"], [1.0])
    plog.record(ScoredBatch(broken.ts, {"id": np.array(["a", "b"], dtype=object)}, broken.features, ("missing",)))

    assert plog.flush() == 0 and "missing" in plog.last_error
    assert plog.flush() == 0  # still queued, still failing; the API goes on


def _log(
    lake: Lake,
    day: str,
    variant: str,
    version: str,
    *,
    ids: list[str],
    probabilities: list[float],
    labels: list[str] | None = None,
    **extra: list,
) -> None:
    """Log predictions as the API does; ``extra`` adds columns (``value``, ``class_probabilities`` as
    ``probabilities``); without them the rows look like a log from before those columns existed."""
    if "class_probabilities" in extra:
        extra["probabilities"] = extra.pop("class_probabilities")
    lake.append(
        PREDICTIONS,
        day,
        pd.DataFrame(
            {
                "request_id": "r",
                "ts": pd.Timestamp(day, tz="UTC"),
                "id": ids,
                "variant": variant,
                "model_version": version,
                "probability": probabilities,
                "label": labels or ["delayed" if p >= 0.5 else "on_time" for p in probabilities],
                **extra,
            }
        ),
    )


def test_scored_predictions_join_labels_and_feedback_wins(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    day = "2026-06-01"
    lake.write("features", day, pd.DataFrame({"flight_id": ["a", "b", "c"], "is_delayed": [1, 0, 0]}))
    _log(lake, day, "champion", "1", ids=["a", "b", "c", "zz"], probabilities=[0.9, 0.2, 0.3, 0.5])
    lake.append(FEEDBACK, day, pd.DataFrame({"id": ["c"], "outcome": [1], "received_at": pd.Timestamp(day, tz="UTC")}))

    scored = live_outcomes.scored_predictions([dt.date(2026, 6, 1)], lake=lake, problem=PROBLEM)
    outcomes = dict(zip(scored["id"], scored["outcome"], strict=True))
    assert outcomes == {"a": 1, "b": 0, "c": 1}  # "zz" has no outcome yet; feedback overrides c
    assert scored.loc[scored["id"] == "a", "log_loss"].item() == pytest.approx(-np.log(0.9))
    assert list(scored["loss"]) == list(scored["log_loss"])


def test_binary_logs_with_the_new_columns_score_alike(tmp_path):
    """Logs written since ``value``/``probabilities`` exist (NaN and "" for a binary model), next to older ones."""
    lake = Lake(f"file://{tmp_path}/lake")
    day = "2026-06-01"
    lake.write("features", day, pd.DataFrame({"flight_id": ["a", "b"], "is_delayed": [1, 0]}))
    _log(lake, day, "champion", "1", ids=["a"], probabilities=[0.9])
    _log(lake, day, "champion", "1", ids=["b"], probabilities=[0.2], value=[np.nan], class_probabilities=[""])

    scored = live_outcomes.scored_predictions([dt.date(2026, 6, 1)], lake=lake, problem=PROBLEM).set_index("id")
    assert scored["loss"].to_dict() == pytest.approx({"a": -np.log(0.9), "b": -np.log(0.8)})


def _scored(n_each: int, champion_noise: float, challenger_noise: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for variant, version, noise in (("champion", "1", champion_noise), ("challenger", "2", challenger_noise)):
        outcome = rng.integers(0, 2, n_each)
        probability = np.clip(np.where(outcome == 1, 0.7, 0.3) + rng.normal(0, noise, n_each), 0.01, 0.99)
        loss = -(outcome * np.log(probability) + (1 - outcome) * np.log(1 - probability))
        frames.append(
            pd.DataFrame(
                {
                    "variant": variant,
                    "model_version": version,
                    "outcome": outcome,
                    "probability": probability,
                    "log_loss": loss,
                    "loss": loss,
                    "predicted_positive": probability >= 0.5,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    ("champion_noise", "challenger_noise", "floor", "expected"),
    [
        (0.25, 0.05, True, "challenger_wins"),
        (0.05, 0.25, True, "champion_better"),
        (0.1, 0.1, True, "no_significant_difference"),
        (0.25, 0.05, False, "no_significant_difference"),
    ],
    ids=["challenger-better", "champion-better", "same", "better-but-failed-floor"],
)
def test_decision(champion_noise, challenger_noise, floor, expected):
    decision = abtest.decide(
        _scored(800, champion_noise, challenger_noise),
        "1",
        "2",
        alpha=0.05,
        min_samples=300,
        challenger_passed_floor=floor,
    )
    assert decision.decision == expected
    assert decision.promote is (expected == "challenger_wins")
    assert decision.variants["champion"]["predictions"] == 800
    assert "log loss challenger" in decision.reason


def test_too_few_samples_decides_nothing():
    decision = abtest.decide(_scored(100, 0.25, 0.05), "1", "2", alpha=0.05, min_samples=300)
    assert decision.decision == "insufficient_data"
    assert "need 300 per variant" in decision.reason


def test_only_the_current_pair_counts():
    scored = _scored(400, 0.25, 0.05)
    scored.loc[scored["variant"] == "challenger", "model_version"] = "3"  # an older challenger's traffic
    assert abtest.decide(scored, "1", "2", alpha=0.05, min_samples=300).decision == "insufficient_data"


def test_no_challenger():
    assert abtest.decide(_scored(10, 0.1, 0.1), "1", None, alpha=0.05, min_samples=1).decision == "no_challenger"
    assert abtest.decide(_scored(10, 0.1, 0.1), "1", "1", alpha=0.05, min_samples=1).decision == "no_challenger"


# ------------------------------------------------------------------------- multiclass, regression
PENGUINS = dataclasses.replace(PROBLEM, task="multiclass", target="species", key_columns=("penguin_id",))
MASSES = dataclasses.replace(PROBLEM, task="regression", target="body_mass_g", key_columns=("penguin_id",))


def _classes(**probabilities: float) -> str:
    return json.dumps(probabilities)


def test_multiclass_scores_the_probability_of_what_happened(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    day = "2026-06-01"
    species = ["Adelie", "Gentoo", "Chinstrap", "Adelie"]
    lake.write("features", day, pd.DataFrame({"penguin_id": ["a", "b", "c", "d"], "species": species}))
    _log(
        lake, day, "champion", "1", ids=["a", "b", "d", "zz"], probabilities=[0.7, 0.5, 0.6, 0.9],
        labels=["Adelie", "Adelie", "Chinstrap", "Gentoo"], value=[np.nan] * 4,
        class_probabilities=[
            _classes(Adelie=0.7, Gentoo=0.2, Chinstrap=0.1),
            _classes(Adelie=0.5, Gentoo=0.4, Chinstrap=0.1),
            _classes(Adelie=0.1, Gentoo=0.3, Chinstrap=0.6),
            _classes(Adelie=0.05, Gentoo=0.9, Chinstrap=0.05),
        ],
    )  # fmt: skip
    _log(lake, day, "champion", "1", ids=["c"], probabilities=[0.8], labels=["Chinstrap"])  # no probabilities logged
    lake.append(FEEDBACK, day, pd.DataFrame({"id": ["d"], "outcome": ["Gentoo"], "received_at": pd.Timestamp(day)}))

    scored = live_outcomes.scored_predictions([dt.date(2026, 6, 1)], lake=lake, problem=PENGUINS).set_index("id")

    assert scored["outcome"].to_dict() == {"a": "Adelie", "b": "Gentoo", "d": "Gentoo"}  # feedback overrides d
    assert scored["loss"].to_dict() == pytest.approx({"a": -np.log(0.7), "b": -np.log(0.4), "d": -np.log(0.3)})
    metrics = live_outcomes.variant_metrics(scored, "multiclass")
    assert metrics["accuracy"] == pytest.approx(1 / 3) and metrics["predictions"] == 3


def test_multiclass_codes_match_however_they_were_stored(tmp_path):
    """Class codes: an integer label column, JSON keys as text, a class posted to /feedback as a float."""
    lake = Lake(f"file://{tmp_path}/lake")
    day = "2026-06-01"
    lake.write("features", day, pd.DataFrame({"penguin_id": ["a", "b"], "species": [2, 1]}))
    _log(
        lake, day, "champion", "1", ids=["a", "b"], probabilities=[0.6, 0.6], labels=["2", "1"],
        class_probabilities=[_classes(**{"1": 0.3, "2": 0.6, "3": 0.1}), _classes(**{"1": 0.6, "2": 0.2, "3": 0.2})],
    )  # fmt: skip
    lake.append(FEEDBACK, day, pd.DataFrame({"id": ["b"], "outcome": [3.0], "received_at": pd.Timestamp(day)}))

    scored = live_outcomes.scored_predictions([dt.date(2026, 6, 1)], lake=lake, problem=PENGUINS).set_index("id")

    assert scored["outcome"].to_dict() == {"a": "2", "b": "3"}
    assert scored["loss"].to_dict() == pytest.approx({"a": -np.log(0.6), "b": -np.log(0.2)})


@pytest.mark.parametrize(
    ("stored", "text"),
    [(2, "2"), (2.0, "2"), ("2.0", "2"), (np.int64(2), "2"), (" Adelie", "Adelie"), (2.5, "2.5"), ("nan", "nan")],
)
def test_class_text(stored, text):
    assert live_outcomes.class_text(stored) == text


def test_regression_scores_the_squared_error_of_the_value(tmp_path):
    lake = Lake(f"file://{tmp_path}/lake")
    day = "2026-06-01"
    lake.write("features", day, pd.DataFrame({"penguin_id": ["a", "b", "c"], "body_mass_g": [3700.0, 4200.0, 5000.0]}))
    _log(
        lake, day, "champion", "1", ids=["a", "b", "zz"], probabilities=[np.nan] * 3, labels=[""] * 3,
        value=[3600.0, 4500.0, 4000.0], class_probabilities=[""] * 3,
    )  # fmt: skip
    _log(lake, day, "champion", "1", ids=["c"], probabilities=[0.4], labels=["x"])  # a log without `value`
    lake.append(FEEDBACK, day, pd.DataFrame({"id": ["b"], "outcome": [4400.0], "received_at": pd.Timestamp(day)}))

    scored = live_outcomes.scored_predictions([dt.date(2026, 6, 1)], lake=lake, problem=MASSES).set_index("id")

    assert scored["outcome"].to_dict() == {"a": 3700.0, "b": 4400.0}
    assert scored["loss"].to_dict() == pytest.approx({"a": 100.0**2, "b": 100.0**2})
    assert live_outcomes.variant_metrics(scored, "regression") == pytest.approx(
        {"predictions": 2.0, "rmse": 100.0, "mae": 100.0, "mean_value": 4050.0, "mean_outcome": 4050.0}
    )


def test_multiclass_metrics():
    scored = pd.DataFrame(
        {"outcome": ["A", "B", "A", "C"], "label": ["A", "B", "B", "C"], "loss": [0.1, 0.2, 1.5, 0.2]}
    )
    metrics = live_outcomes.variant_metrics(scored, "multiclass")
    # F1 of A: precision 1, recall 1/2; of B: precision 1/2, recall 1; of C: 1.
    assert metrics == pytest.approx({"predictions": 4.0, "log_loss": 0.5, "accuracy": 0.75, "macro_f1": 7 / 9})


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        live_outcomes.variant_metrics(pd.DataFrame({"loss": [1.0]}), "ranking")


def _scored_task(task: str, n_each: int, champion_noise: float, challenger_noise: float, seed: int = 0) -> pd.DataFrame:
    """Scored predictions of two variants of a multiclass or regression model; more noise, more loss."""
    rng = np.random.default_rng(seed)
    kind, frames = task_kind(task), []
    for variant, version, noise in (("champion", "1", champion_noise), ("challenger", "2", challenger_noise)):
        if task == "multiclass":
            classes = ["Adelie", "Chinstrap", "Gentoo"]
            outcome = rng.choice(classes, n_each)
            logits = np.where(np.array(classes) == outcome[:, None], 2.0, 0.0) + rng.normal(0, 4 * noise, (n_each, 3))
            proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            columns = {"label": np.array(classes)[proba.argmax(axis=1)], "loss": kind.losses(outcome, proba, classes)}
        else:
            outcome = rng.normal(4200, 800, n_each)
            value = outcome + rng.normal(0, 1000 * noise, n_each)
            columns = {"value": value, "loss": kind.losses(outcome, value)}
        frames.append(pd.DataFrame({"variant": variant, "model_version": version, "outcome": outcome, **columns}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("kind", [("multiclass", "log loss"), ("regression", "squared error")], ids=lambda k: k[0])
@pytest.mark.parametrize(
    ("n_each", "champion_noise", "challenger_noise", "expected"),
    [
        (800, 0.5, 0.1, "challenger_wins"),
        (800, 0.1, 0.5, "champion_better"),
        (800, 0.3, 0.3, "no_significant_difference"),
        (100, 0.5, 0.1, "insufficient_data"),
    ],
    ids=["challenger-better", "champion-better", "same", "too-few"],
)
def test_decision_per_task(kind, n_each, champion_noise, challenger_noise, expected):
    task, statistic = kind
    scored = _scored_task(task, n_each, champion_noise, challenger_noise)

    decision = abtest.decide(scored, "1", "2", alpha=0.05, min_samples=300, task=task)

    assert decision.decision == expected
    assert decision.promote is (expected == "challenger_wins")
    assert decision.test == f"one-sided Welch t-test on per-prediction {statistic}"
    expected_metrics = (
        {"predictions", "log_loss", "accuracy", "macro_f1"}
        if task == "multiclass"
        else {"predictions", "rmse", "mae", "mean_value", "mean_outcome"}
    )
    assert set(decision.variants["challenger"]) == expected_metrics
    assert decision.variants["champion"]["predictions"] == n_each
    if expected != "insufficient_data":
        assert f"{statistic} challenger" in decision.reason


def test_binary_decision_names_its_statistic():
    decision = abtest.decide(_scored(400, 0.25, 0.05), "1", "2", alpha=0.05, min_samples=300)
    assert decision.test == "one-sided Welch t-test on per-prediction log loss"
    assert decision.to_dict()["test"] == decision.test


def test_decide_refuses_an_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        abtest.decide(_scored(10, 0.1, 0.1), "1", "2", alpha=0.05, min_samples=1, task="ranking")
