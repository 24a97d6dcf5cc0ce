"""Task kinds: metrics, losses, targets and fitting for binary, multiclass and regression problems."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from include.flight_delay import PROBLEM
from include.mlpipeline.core.candidate import Candidate, IntRange
from include.mlpipeline.ml import search, training
from include.mlpipeline.ml.candidates import problem_candidates
from include.mlpipeline.ml.task_kinds import greater_is_better, task_kind
from include.mlpipeline.ml.window import TrainingSet


def toy_problem(task: str, **changes: object):
    """A problem over a synthetic frame: two numbers and a category predict ``y``."""
    fields = {
        "name": f"toy_{task}",
        "task": task,
        "target": "y",
        "key_columns": ("row_id",),
        "numeric_features": ("x1", "x2"),
        "categorical_features": ("group",),
        "candidates": None,
    }
    return dataclasses.replace(PROBLEM, **{**fields, **changes})


def toy_frame(task: str, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    group = rng.choice(["a", "b", "c"], rows)
    signal = 1.5 * x1 - x2 + (group == "a")
    if task == "regression":
        y: object = 10 + 3 * signal + rng.normal(scale=0.5, size=rows)
    elif task == "multiclass":
        y = np.where(signal > 1, "high", np.where(signal < -1, "low", "mid"))
    else:
        y = (signal + rng.normal(scale=0.5, size=rows) > 0.5).astype(int)
    return pd.DataFrame({"row_id": np.arange(rows) + seed * 10_000, "x1": x1, "x2": x2, "group": group, "y": y})


def toy_set(task: str) -> TrainingSet:
    return TrainingSet(train=toy_frame(task, 600, 1), validation=toy_frame(task, 200, 2), test=toy_frame(task, 200, 3))


# ------------------------------------------------------------------------------------ metrics
def test_multiclass_metrics_of_a_perfect_and_a_uniform_model() -> None:
    kind = task_kind("multiclass")
    y = np.array(["a", "b", "c", "a", "b", "c"])
    perfect = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    uniform = np.full((6, 3), 1 / 3)

    best, flat = kind.evaluate(y, perfect, None, ["a", "b", "c"]), kind.evaluate(y, uniform, None, ["a", "b", "c"])

    assert (best["macro_f1"], best["balanced_accuracy"], best["roc_auc_ovr"]) == (1.0, 1.0, 1.0)
    assert best["log_loss"] < 1e-6
    assert flat["log_loss"] == pytest.approx(np.log(3))
    assert flat["roc_auc_ovr"] == 0.5


def test_multiclass_metrics_read_integer_class_codes_like_names() -> None:
    kind, proba = task_kind("multiclass"), np.eye(3)[[0, 1, 2, 1]]

    codes = kind.evaluate(np.array([0, 1, 2, 0]), proba, None, [0, 1, 2])
    names = kind.evaluate(np.array(["a", "b", "c", "a"], dtype=object), proba, None, ["a", "b", "c"])

    assert codes == names
    assert codes["accuracy"] == 0.75


def test_a_class_missing_from_a_short_part_leaves_it_out_of_the_auc() -> None:
    kind = task_kind("multiclass")
    y = np.array(["a", "b", "a", "b"])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1]])

    assert kind.evaluate(y, proba, None, ["a", "b", "c"])["roc_auc_ovr"] == 1.0


def test_regression_metrics() -> None:
    metrics = task_kind("regression").evaluate(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]), None)

    assert metrics["rmse"] == pytest.approx(1.0)
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)


@pytest.mark.parametrize(
    ("task", "y", "predictions", "classes", "expected"),
    [
        ("binary", [1, 0], [0.8, 0.2], [], [-np.log(0.8), -np.log(0.8)]),
        (
            "multiclass",
            ["b", "a"],
            [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]],
            ["a", "b", "c"],
            [-np.log(0.25), -np.log(0.5)],
        ),
        ("regression", [3.0, 1.0], [1.0, 1.5], [], [4.0, 0.25]),
    ],
)
def test_per_prediction_losses(task: str, y: list, predictions: list, classes: list, expected: list) -> None:
    losses = task_kind(task).losses(
        np.array(y, dtype=object if task == "multiclass" else None), np.array(predictions), classes
    )

    np.testing.assert_allclose(losses, expected)


@pytest.mark.parametrize(
    ("task", "y", "message"),
    [
        ("binary", [1, 1, 1], "a classifier needs two"),
        ("binary", [0, 1, 2], "a binary target must be 0 or 1"),
        ("multiclass", ["a", "a"], "a classifier needs two"),
        ("regression", [1.0, float("nan")], "missing or infinite"),
        ("regression", [2.0, 2.0, 2.0], "constant"),
    ],
)
def test_targets_a_task_cannot_learn_are_named(task: str, y: list, message: str) -> None:
    assert message in task_kind(task).target_problems(np.array(y), "train")


def test_metric_directions() -> None:
    assert greater_is_better("r2") and greater_is_better("roc_auc_ovr")
    assert not greater_is_better("rmse") and not greater_is_better("log_loss")
    with pytest.raises(ValueError, match="unknown metric 'accuracyy'"):
        greater_is_better("accuracyy")


# ------------------------------------------------------------------------------------ fitting
@pytest.mark.parametrize(
    ("task", "metric", "better_than"),
    [("binary", "roc_auc", 0.8), ("multiclass", "roc_auc_ovr", 0.8), ("regression", "r2", 0.8)],
)
def test_every_default_candidate_fits_every_task_and_beats_its_baseline(
    task: str, metric: str, better_than: float
) -> None:
    problem, data = toy_problem(task), toy_set(task)

    with threadpool_limits(limits=1):
        fitted = {
            name: training.fit_candidate(name, data, problem=problem, seed=0) for name in problem_candidates(problem)
        }

    assert fitted["hist_gradient_boosting"].test[metric] > better_than
    assert fitted["baseline"].test[metric] < 0.55 if metric != "r2" else fitted["baseline"].test[metric] < 0.05
    for candidate in fitted.values():
        assert (candidate.threshold is not None) == (task == "binary")
        assert bool(candidate.classes) == (task != "regression")


def test_a_classifier_refuses_a_regression_problem() -> None:
    problem = toy_problem("regression", candidates=(*problem_candidates(toy_problem("binary")).values(),))

    with pytest.raises(ValueError, match="candidate logistic_regression is for classification"):
        training.fit_candidate("logistic_regression", toy_set("regression"), problem=problem, seed=0)


def test_a_problem_needs_exactly_one_baseline() -> None:
    only = problem_candidates(toy_problem("binary"))["random_forest"]

    with pytest.raises(ValueError, match="exactly one candidate must be the baseline"):
        toy_problem("binary", candidates=(only,))
    with pytest.raises(ValueError, match="search space names \\['depth'\\] without a default"):
        Candidate("odd", only.build, params={}, search_space={"depth": IntRange(1, 5)})
    with pytest.raises(ValueError, match="the defaults of \\['depth'\\] lie outside their search space"):
        Candidate("odd", only.build, params={"depth": 9}, search_space={"depth": IntRange(1, 5)})


# ------------------------------------------------------------------------------------- search
def test_search_is_seeded_starts_from_the_defaults_and_keeps_the_best(tmp_path) -> None:
    problem, data = toy_problem("regression"), toy_set("regression")
    candidate = problem_candidates(problem)["hist_gradient_boosting"]
    seen: list[search.Trial] = []

    with threadpool_limits(limits=1):
        first = search.search(candidate, data, problem, seed=3, trials=5, timeout_s=None, on_trial=seen.append)
        second = search.search(candidate, data, problem, seed=3, trials=5, timeout_s=None)

    assert [t.params for t in first.trials] == [t.params for t in second.trials]  # seeded
    assert first.trials[0].params == {name: candidate.params[name] for name in candidate.search_space}
    assert first.best_score == max(t.score for t in first.trials)  # r2: higher is better
    assert first.best_score >= first.trials[0].score
    assert seen == first.trials
    assert set(first.best_params) == set(candidate.params)
