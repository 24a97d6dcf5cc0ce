"""Evaluation artifacts and model card per task kind: what is written, and that the tables add up.

Each kind fits a small linear pipeline (the library's own candidates) on a tiny synthetic frame and
writes its evaluation into a temporary folder; no MLflow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from include.flight_delay import PROBLEM as FLIGHTS
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.candidates import FittedCandidate, find_candidate
from include.mlpipeline.ml.evaluation import write_evaluation
from include.mlpipeline.ml.evaluation_tables import (
    classification_report_table,
    importance_metric,
    residuals_table,
)
from include.mlpipeline.ml.model_card import model_card
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.ml.window import TrainingSet, TrainingWindow
from tests.unit.conftest import synthetic_features

DAYS = [f"2013-03-{d:02d}" for d in range(1, 9)]
BINARY_FILES = [
    "roc_curve.png",
    "precision_recall_curve.png",
    "confusion_matrix.png",
    "calibration.png",
    "calibration.csv",
    "permutation_importance.png",
    "permutation_importance.csv",
    "model_card.md",
]
MULTICLASS_FILES = [
    "confusion_matrix.png",
    "classification_report.csv",
    "calibration.png",
    "calibration.csv",
    "permutation_importance.png",
    "permutation_importance.csv",
    "model_card.md",
]
REGRESSION_FILES = [
    "predicted_vs_actual.png",
    "residuals.png",
    "residuals.csv",
    "permutation_importance.png",
    "permutation_importance.csv",
    "model_card.md",
]
SPECIES = ["adelie", "chinstrap", "gentoo"]
ROW_SPLIT = {"validation": "20%", "test": "25%", "seed": 42, "group_by": None}


# ------------------------------------------------------------------------------- toy problems
def toy_problem(task: str, **overrides: object) -> ProblemSpec:
    """A problem over the toy frame of :func:`toy_frame`: two numbers and a group predict the target."""
    target = {"multiclass": "species", "regression": "body_mass"}[task]
    return dataclasses.replace(
        FLIGHTS,
        name=f"toy_{task}",
        description=f"A toy {task} problem.",
        task=task,
        target=target,
        key_columns=("id",),
        numeric_features=("x1", "x2"),
        categorical_features=("group",),
        candidates=None,
        intended_use=None,
        known_limits=(),
        **overrides,
    )


def toy_frame(rows: int, seed: int) -> pd.DataFrame:
    """``x1`` and ``group`` carry the signal; ``x2`` is noise."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    group = rng.choice(["a", "b", "c"], rows)
    score = 1.5 * x1 + 1.0 * (group == "b") + rng.normal(0, 0.4, rows)
    return pd.DataFrame(
        {
            "id": [f"{seed}-{i}" for i in range(rows)],
            "x1": x1,
            "x2": x2,
            "group": group,
            "species": np.select([score < -0.6, score < 0.9], SPECIES[:2], SPECIES[2]),
            "body_mass": 4000 + 500 * x1 + 300 * (group == "c") + rng.normal(0, 100, rows),
        }
    )


def toy_data() -> TrainingSet:
    return TrainingSet(toy_frame(240, 1), toy_frame(90, 2), toy_frame(110, 3))


def flight_data() -> TrainingSet:
    frames = [synthetic_features(day, 120) for day in DAYS]
    return TrainingSet(
        pd.concat(frames[:4], ignore_index=True),
        pd.concat(frames[4:6], ignore_index=True),
        pd.concat(frames[6:], ignore_index=True),
    )


def day_window() -> TrainingWindow:
    return TrainingWindow(DAYS[:4], DAYS[4:6], DAYS[6:], "v-days", {}, {})


def snapshot_window() -> TrainingWindow:
    day = ["2024-05-01"]
    return TrainingWindow(day, day, day, "v-snapshot", {}, {}, dict(ROW_SPLIT))


def fit(problem: ProblemSpec, data: TrainingSet, candidate: str) -> FittedCandidate:
    """The candidate fitted on the train part, with its threshold (binary) and metrics, as training does."""
    kind = task_kind(problem.task)
    features, target = problem.feature_columns, problem.target
    pipeline = find_candidate(problem, candidate).pipeline(problem, seed=7)
    pipeline.fit(data.train[features], data.train[target])
    classes = kind.classes(pipeline)
    validation = kind.predict(pipeline, data.validation[features])
    threshold = kind.choose_threshold(data.validation[target].to_numpy(), validation)
    return FittedCandidate(
        candidate,
        pipeline,
        threshold,
        kind.evaluate(data.validation[target].to_numpy(), validation, threshold, classes),
        kind.evaluate(data.test[target].to_numpy(), kind.predict(pipeline, data.test[features]), threshold, classes),
        {},
        classes or None,
    )


def evaluate_into(folder: Path, problem: ProblemSpec, window: TrainingWindow, candidate: str):
    data = flight_data() if problem.task == "binary" else toy_data()
    fitted = fit(problem, data, candidate)
    written = write_evaluation(
        folder, problem=problem, candidate=candidate, window=window, data=data, fitted=fitted, seed=3, code_version="c0"
    )
    return written, data, fitted


def assert_written(folder: Path, written: list[Path], expected: list[str]) -> None:
    assert [path.name for path in written] == expected
    assert sorted(path.name for path in folder.iterdir()) == sorted(expected)
    for path in written:
        assert path.stat().st_size > 0, path.name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name
    assert plt.get_fignums() == []  # every figure closed after saving


def assert_metrics_listed(card: str, fitted: FittedCandidate) -> None:
    for name, value in fitted.test.items():
        cell = f"{value:,.0f}" if name in ("rows", "classes") else f"{value:.4f}"
        validation = fitted.validation[name]
        validation_cell = f"{validation:,.0f}" if name in ("rows", "classes") else f"{validation:.4f}"
        assert f"| {name} | {validation_cell} | {cell} |" in card, name


# ----------------------------------------------------------------------------------- binary
def test_binary_writes_the_threshold_artifacts(tmp_path: Path) -> None:
    written, data, fitted = evaluate_into(tmp_path, FLIGHTS, day_window(), "logistic_regression")

    assert_written(tmp_path, written, BINARY_FILES)
    calibration = pd.read_csv(tmp_path / "calibration.csv")
    assert calibration.groupby("part")["rows"].sum().to_dict() == {
        "test": len(data.test),
        "validation": len(data.validation),
    }
    importance = pd.read_csv(tmp_path / "permutation_importance.csv")
    assert sorted(importance["feature"]) == sorted(FLIGHTS.feature_columns)
    assert importance["feature"].iloc[0] == "dep_hour"  # the synthetic label's strongest input
    card = (tmp_path / "model_card.md").read_text()
    assert_metrics_listed(card, fitted)
    assert f"Probability >= **{fitted.threshold:.4f}** means {FLIGHTS.positive_label}" in card
    assert "| part | days | rows | positive rate |" in card
    assert (
        f"| test | {DAYS[6]}..{DAYS[7]} (2 days) | {len(data.test):,} | {data.test['is_delayed'].mean():.1%} |" in card
    )
    assert "| feature | drop in ROC AUC |" in card
    assert f"the probability that a case is {FLIGHTS.positive_label}" in card


# ------------------------------------------------------------------------------- multiclass
def test_multiclass_writes_the_class_report_and_no_threshold(tmp_path: Path) -> None:
    problem = toy_problem("multiclass")
    written, data, fitted = evaluate_into(tmp_path, problem, day_window(), "logistic_regression")

    assert_written(tmp_path, written, MULTICLASS_FILES)
    report = pd.read_csv(tmp_path / "classification_report.csv")
    assert list(report.columns) == ["class", "precision", "recall", "f1", "support"]
    per_class = report.iloc[:-2]
    assert list(per_class["class"]) == SPECIES
    assert per_class["support"].sum() == len(data.test)
    assert list(report["class"].iloc[-2:]) == ["macro avg", "weighted avg"]
    assert (report["support"].iloc[-2:] == len(data.test)).all()
    assert report["f1"].iloc[-2] == pytest.approx(fitted.test["macro_f1"])
    assert report["recall"].iloc[-1] == pytest.approx(fitted.test["accuracy"])  # weighted recall is accuracy
    calibration = pd.read_csv(tmp_path / "calibration.csv")
    assert calibration.groupby("part")["rows"].sum().to_dict() == {
        "test": len(data.test),
        "validation": len(data.validation),
    }
    # The top class's calibration: its observed rate over all rows is the accuracy.
    test_bins = calibration[calibration["part"] == "test"]
    assert (test_bins["rows"] * test_bins["observed_rate"]).sum() / len(data.test) == pytest.approx(
        fitted.test["accuracy"]
    )
    importance = pd.read_csv(tmp_path / "permutation_importance.csv")
    assert importance["feature"].iloc[0] == "x1"
    assert importance.set_index("feature").loc["x1", "importance_mean"] > 0

    card = (tmp_path / "model_card.md").read_text()
    assert_metrics_listed(card, fitted)
    assert "## Decision threshold" not in card
    assert "threshold" not in card.lower()
    assert f"one of 3 classes ({', '.join(SPECIES)})" in card
    assert "| part | days | rows | largest class |" in card
    lines = card.splitlines()
    for row in per_class.itertuples(index=False):
        line = next(line for line in lines if line.startswith(f"| {row[0]} |"))
        assert line.endswith(f"| {row.f1:.3f} |"), line
        assert f"| {int(row.support):,} |" in line
    assert "| feature | drop in one-vs-rest ROC AUC |" in card
    assert "which class a case belongs to (adelie, chinstrap, gentoo)" in card


# ------------------------------------------------------------------------------- regression
def test_regression_on_a_snapshot_writes_residuals_and_no_threshold(tmp_path: Path) -> None:
    problem = toy_problem("regression", snapshot=True)
    written, data, fitted = evaluate_into(tmp_path, problem, snapshot_window(), "ridge")

    assert_written(tmp_path, written, REGRESSION_FILES)
    residuals = pd.read_csv(tmp_path / "residuals.csv")
    assert list(residuals.columns) == [
        "bin",
        "predicted_low",
        "predicted_high",
        "rows",
        "mean_predicted",
        "mean_residual",
        "rmse",
        "part",
    ]
    assert residuals.groupby("part")["rows"].sum().to_dict() == {
        "test": len(data.test),
        "validation": len(data.validation),
    }
    test_bins = residuals[residuals["part"] == "test"]
    assert len(test_bins) == 10  # deciles of distinct predictions
    assert test_bins["predicted_low"].is_monotonic_increasing
    # The bins partition the rows: their squared errors add up to the test RMSE.
    pooled = np.sqrt((test_bins["rows"] * test_bins["rmse"] ** 2).sum() / test_bins["rows"].sum())
    assert pooled == pytest.approx(fitted.test["rmse"])
    importance = pd.read_csv(tmp_path / "permutation_importance.csv")
    assert importance["feature"].iloc[0] == "x1"

    card = (tmp_path / "model_card.md").read_text()
    assert_metrics_listed(card, fitted)
    for name in ("rmse", "mae", "r2"):
        assert f"| {name} |" in card
    assert "threshold" not in card.lower()
    assert "| part | rows | target mean | target std |" in card
    test_mass = data.test["body_mass"]
    assert f"| test | {len(data.test):,} | {test_mass.mean():,.0f} | {test_mass.std(ddof=0):.4g} |" in card
    assert "| part | days |" not in card
    assert "split at random by a hash of the key `id` seeded with 42: validation 20%, test 25%" in card
    assert "stratified" not in card  # a regression is not stratified by class
    assert "Test metrics come from 110 rows;" in card
    assert "| feature | drop in R² |" in card
    assert "Estimate the value of `body_mass`" in card


def test_regression_importance_by_rmse_reads_as_a_rise(tmp_path: Path) -> None:
    problem = toy_problem("regression", primary_metric="rmse")
    _, _, fitted = evaluate_into(tmp_path, problem, day_window(), "ridge")

    importance = pd.read_csv(tmp_path / "permutation_importance.csv").set_index("feature")
    # Shuffling x1 (500 per unit of a standard normal) raises the RMSE by hundreds; noise x2 barely moves it.
    assert importance.loc["x1", "importance_mean"] > 2 * fitted.test["rmse"]
    assert abs(importance.loc["x2", "importance_mean"]) < 0.1 * fitted.test["rmse"]
    assert "| feature | rise in RMSE |" in (tmp_path / "model_card.md").read_text()


@pytest.mark.parametrize(
    ("task", "primary", "expected"),
    [
        ("multiclass", "macro_f1", "macro_f1"),
        ("multiclass", "f1", "log_loss"),  # a threshold metric: scored by log loss instead
        ("regression", "mae", "mae"),
        ("regression", None, "r2"),
    ],
)
def test_importance_follows_the_primary_metric(task: str, primary: str | None, expected: str) -> None:
    assert importance_metric(toy_problem(task, primary_metric=primary)) == expected


# ------------------------------------------------------------------------------------ tables
def test_class_report_counts_a_class_the_model_never_learned() -> None:
    report = classification_report_table(np.array([0, 1, 2, 2, 1]), np.array([0, 1, 1, 1, 1]), classes=[0, 1])

    assert list(report["class"]) == [0, 1, 2, "macro avg", "weighted avg"]
    assert report["support"].tolist() == [1, 2, 2, 5, 5]
    assert report.loc[2, ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]
    assert report.loc[1, "precision"] == pytest.approx(0.5)


def test_residuals_of_a_constant_prediction_fall_in_one_bin() -> None:
    table = residuals_table(np.array([1.0, 2.0, 3.0, 6.0]), np.full(4, 3.0))

    assert table[["rows", "mean_residual"]].to_dict("records") == [{"rows": 4, "mean_residual": 0.0}]
    assert table["rmse"].iloc[0] == pytest.approx(np.sqrt((4 + 1 + 0 + 9) / 4))


# ------------------------------------------------------------------------------------- cards
def test_a_binary_snapshot_card_lists_rows_and_the_stratified_split() -> None:
    problem = dataclasses.replace(FLIGHTS, snapshot=True)
    targets = {"train": pd.Series([0, 1, 1, 0]), "validation": pd.Series([1, 0]), "test": pd.Series([0, 1, 1])}
    card = model_card(
        problem=problem,
        candidate="baseline",
        window=snapshot_window(),
        targets=targets,
        validation={"roc_auc": 0.5},
        test={"roc_auc": 0.5, "precision": 0.6, "recall": 1.0},
        threshold=0.4,
    )

    assert "| part | rows | positive rate |" in card
    assert "| test | 3 | 66.7% |" in card
    assert "stratified by class" in card
    assert "On the test part it flags with precision 0.600" in card
    assert "loaded 2024-05-01" in card


@pytest.mark.parametrize(
    ("task", "threshold", "class_report", "message"),
    [
        ("binary", None, None, "needs the decision threshold"),
        ("multiclass", None, None, "needs the test part's class report"),
    ],
)
def test_a_card_without_what_its_task_needs_is_refused(
    task: str, threshold: float | None, class_report: pd.DataFrame | None, message: str
) -> None:
    problem = FLIGHTS if task == "binary" else toy_problem(task)
    with pytest.raises(ValueError, match=message):
        model_card(
            problem=problem,
            candidate="baseline",
            window=day_window(),
            targets={},
            validation={},
            test={},
            threshold=threshold,
            class_report=class_report,
        )


def test_a_binary_candidate_without_threshold_is_refused(tmp_path: Path) -> None:
    data = flight_data()
    fitted = dataclasses.replace(fit(FLIGHTS, data, "baseline"), threshold=None)

    with pytest.raises(ValueError, match="a binary candidate needs its decision threshold"):
        write_evaluation(tmp_path, problem=FLIGHTS, candidate="baseline", window=day_window(), data=data, fitted=fitted)
    assert list(tmp_path.iterdir()) == []
