"""A/B routing, the prediction log, joining outcomes, and the decision rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from include.flight_delay import PROBLEM
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.deployment import abtest
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


def _log(lake: Lake, day: str, variant: str, version: str, *, ids: list[str], probabilities: list[float]) -> None:
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
                "label": ["delayed" if p >= 0.5 else "on_time" for p in probabilities],
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
