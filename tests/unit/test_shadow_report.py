"""The daily shadow report (monitoring/shadow_report.py) and the shadow decision (deployment/shadow_test.py)
on tiny frames, for each shipped example (and a multiclass toy): pairs join on request and record id,
agreement by task kind, live metrics on the same scored records, and the A/B test's rule deciding."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.deployment.shadow_test import decide_shadow, promotion
from include.mlpipeline.monitoring.shadow_report import agreement, paired_answers, shadow_report
from include.mlpipeline.serving.prediction_log import CHAMPION, PREDICTIONS, SHADOW
from tests.support.examples import EXAMPLES, Example, example_id

DAY = dt.date(2026, 6, 2)
IDS = ["a", "b", "c", "d"]
CHAMPION_P, SHADOW_P = [0.9, 0.2, 0.6, 0.4], [0.8, 0.3, 0.4, 0.4]
CHAMPION_V, SHADOW_V = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 6.0]


def log_rows(example: Example, variant: str, answers: list[float], version: str, request: str = "r1") -> pd.DataFrame:
    """Prediction-log rows (the columns the report reads) of one variant's answers to ``IDS``."""
    problem = example.problem
    rows = {"request_id": request, "id": IDS, "variant": variant, "model_version": version}
    if problem.task == "binary":
        labels = [problem.positive_label if p >= 0.5 else problem.negative_label for p in answers]
        return pd.DataFrame({**rows, "probability": answers, "label": labels, "value": np.nan})
    return pd.DataFrame({**rows, "probability": np.nan, "label": "", "value": answers})


def pair_log(example: Example) -> pd.DataFrame:
    binary = example.problem.task == "binary"
    champion = log_rows(example, CHAMPION, CHAMPION_P if binary else CHAMPION_V, "1")
    shadow = log_rows(example, SHADOW, SHADOW_P if binary else SHADOW_V, "2")
    other = log_rows(example, CHAMPION, CHAMPION_P if binary else CHAMPION_V, "1", request="r2")  # no shadow answer
    return pd.concat([champion, shadow, other], ignore_index=True)


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_agreement_of_the_paired_answers(example: Example):
    pairs = paired_answers(pair_log(example))

    assert len(pairs) == len(IDS) and set(pairs["request_id"]) == {"r1"}
    assert set(pairs["model_version_champion"]) == {"1"} and set(pairs["model_version_shadow"]) == {"2"}
    result = agreement(pairs, example.problem.task)
    if example.problem.task == "binary":
        assert result == pytest.approx({"pairs": 4, "same_label_share": 0.75, "mean_abs_probability_diff": 0.1})
    else:
        expected = np.corrcoef(CHAMPION_V, SHADOW_V)[0, 1]
        assert result == pytest.approx({"pairs": 4, "mean_abs_diff": 0.75, "correlation": expected})


def test_multiclass_agreement_is_the_same_label_share():
    pairs = pd.DataFrame(
        {"label_champion": ["Adelie", "Gentoo", "Adelie"], "label_shadow": ["Adelie", "Adelie", "Adelie"]}
    )
    assert agreement(pairs, "multiclass") == pytest.approx({"pairs": 3, "same_label_share": 2 / 3})


@pytest.mark.parametrize(
    ("frame", "task", "match"),
    [
        (pd.DataFrame({"id": ["a"], "variant": [CHAMPION]}), "binary", r"lack \['label', 'model_version'"),
        (pd.DataFrame({"label_champion": ["x"], "label_shadow": ["x"]}), "ranking", "unknown task 'ranking'"),
    ],
)
def test_bad_input_says_what_to_fix(frame: pd.DataFrame, task: str, match: str):
    with pytest.raises(ValueError, match=match):
        agreement(paired_answers(frame), task) if "variant" in frame else agreement(frame, task)


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_report_of_a_day_with_live_metrics_where_outcomes_landed(example: Example, tmp_path):
    problem = example.problem
    lake = Lake(f"file://{tmp_path}")
    lake.append(PREDICTIONS, DAY, pair_log(example))
    binary = problem.task == "binary"
    outcomes = [1, 0, 0] if binary else [1.5, 2.0, 3.5]  # "d" has no outcome yet
    lake.write(FEATURES, DAY, pd.DataFrame({problem.key_columns[0]: IDS[:3], problem.target: outcomes}))

    report = shadow_report(DAY, lake=lake, problem=problem)

    assert (report["day"], report["champion_version"], report["shadow_version"]) == (DAY.isoformat(), "1", "2")
    assert report["agreement"]["pairs"] == 4
    assert set(report["live"]) == {"champion", "shadow"}
    for side in ("champion", "shadow"):
        assert report["live"][side]["predictions"] == 3  # the paired records with an outcome, once each
    if binary:  # outcome 0 for "c": the shadow's 0.4 beats the champion's 0.6
        assert report["live"]["shadow"]["accuracy"] == 1.0 > report["live"]["champion"]["accuracy"]
    else:
        assert report["live"]["shadow"]["mae"] == pytest.approx((0.5 + 0 + 0.5) / 3)
        assert report["live"]["champion"]["mae"] == pytest.approx((0.5 + 0 + 0.5) / 3)


def scored_pairs(task: str, count: int, shadow_error: float) -> pd.DataFrame:
    """Scored rows (``scored_predictions``' columns) of ``count`` paired records: the champion's answers
    off by about 0.25 (binary: in probability) or 1 (regression), the shadow's by ``shadow_error`` times that."""
    rng = np.random.default_rng(7)
    ids = [f"k{i}" for i in range(count)]
    outcome = rng.integers(0, 2, count) if task == "binary" else rng.normal(0, 1, count)
    sides = []
    for variant, version, error in ((CHAMPION, "1", 1.0), (SHADOW, "2", shadow_error)):
        rows = {"request_id": "r", "id": ids, "variant": variant, "model_version": version, "outcome": outcome}
        if task == "binary":
            off = np.clip(rng.normal(0.25 * error, 0.05, count), 0.01, 0.49)
            probability = np.where(outcome == 1, 1 - off, off)
            loss = -np.log(np.where(outcome == 1, probability, 1 - probability))
            rows |= {
                "probability": probability,
                "loss": loss,
                "log_loss": loss,
                "predicted_positive": probability >= 0.5,
            }
        else:
            value = outcome + rng.normal(0, error, count)
            rows |= {"value": value, "loss": (value - outcome) ** 2}
        sides.append(pd.DataFrame(rows))
    return pd.concat(sides, ignore_index=True)


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
@pytest.mark.parametrize(
    ("shadow_loss", "min_samples", "decision"),
    [(0.5, 20, "challenger_wins"), (1.5, 20, "champion_better"), (0.5, 500, "insufficient_data")],
)
def test_the_shadow_is_decided_by_the_ab_rule(example: Example, shadow_loss: float, min_samples: int, decision: str):
    scored = scored_pairs(example.problem.task, 60, shadow_loss)
    settings = Settings(ab_min_samples=min_samples, ab_alpha=0.05)

    result = decide_shadow(scored, "1", "2", settings=settings, task=example.problem.task)

    assert result.decision == decision
    assert promotion({"promote": False}, {**result.to_dict(), "version": "2"}) == (
        {**result.to_dict(), "version": "2"} if decision == "challenger_wins" else None
    )


def test_a_shadow_that_failed_the_offline_floor_is_not_promoted():
    scored = scored_pairs("binary", 60, 0.5)
    settings = Settings(ab_min_samples=20)
    assert not decide_shadow(scored, "1", "2", settings=settings, task="binary", floor_ok=False).promote


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_drift_counts_each_served_record_once_not_its_shadow_answer(example: Example, tmp_path):
    from include.mlpipeline.monitoring.drift import served_inputs

    problem = example.problem
    lake = Lake(f"file://{tmp_path}")
    rows = pair_log(example)
    features = {f"f_{name}": np.arange(len(rows), dtype="float64") for name in problem.feature_columns}
    lake.append(PREDICTIONS, dt.date.today(), rows.assign(**features))

    served = served_inputs(lake, problem, lookback_days=1)

    assert len(served) == (rows["variant"] == CHAMPION).sum() == 2 * len(IDS)
    assert list(served.columns) == list(problem.feature_columns)
