"""Evaluation artifacts of a fitted candidate, by task kind: figures, tables, permutation importance, model card.

Everything here works without MLflow: :func:`write_evaluation` writes the figures
(:mod:`~include.mlpipeline.ml.figures`), the tables (:mod:`~include.mlpipeline.ml.evaluation_tables`)
and the model card (:mod:`~include.mlpipeline.ml.model_card`) into a folder, which
``training.train_candidate`` logs into each candidate's child run under ``evaluation/``.

What is written follows ``ProblemSpec.task``:

- ``binary``: ``roc_curve.png``, ``precision_recall_curve.png``, ``confusion_matrix.png`` (at the
  decision threshold), ``calibration.png`` and ``calibration.csv``;
- ``multiclass``: ``confusion_matrix.png`` (k-by-k, most probable class), ``classification_report.csv``
  (per class precision, recall, F1 and support, then the macro and weighted averages), and the
  calibration of the most probable class (``calibration.png``, ``calibration.csv``: how often the
  top class is right against its probability);
- ``regression``: ``predicted_vs_actual.png``, ``residuals.png`` and ``residuals.csv`` (residuals
  by decile of the predicted value);

then, for every kind, ``permutation_importance.png`` and ``.csv`` (scored by
``evaluation_tables.importance_metric``) and ``model_card.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.candidates import FittedCandidate
from include.mlpipeline.ml.evaluation_tables import (
    IMPORTANCE_MAX_ROWS,
    calibration_table,
    classification_report_table,
    importance_label,
    importance_metric,
    importance_scoring,
    permutation_importance_table,
    plain_labels,
    report_labels,
    residuals_table,
)
from include.mlpipeline.ml.figures import (
    Scores,
    calibration_figure,
    class_confusion_figure,
    confusion_matrix_figure,
    permutation_importance_figure,
    precision_recall_figure,
    predicted_vs_actual_figure,
    residuals_figure,
    roc_curve_figure,
    save_figure,
)
from include.mlpipeline.ml.model_card import model_card
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.ml.window import TrainingSet, TrainingWindow


def write_evaluation(
    folder: Path,
    *,
    problem: ProblemSpec,
    candidate: str,
    window: TrainingWindow,
    data: TrainingSet,
    fitted: FittedCandidate,
    seed: int = 0,
    code_version: str | None = None,
) -> list[Path]:
    """Write every evaluation artifact of one fitted candidate into ``folder`` (see the module doc).

    Figures and tables are computed on the test part (curves, calibration and residuals also show
    the validation part).

    Args:
        folder: Existing output folder.
        problem: The problem (task, feature columns, target, labels, description).
        candidate: Candidate name.
        window: The training window.
        data: The training set the candidate was fitted on.
        fitted: The fitted candidate with its threshold (binary), classes (classifiers) and metrics.
        seed: Seed of the importance sample and shuffles.
        code_version: Commit, for the model card.

    Returns:
        The files written, in the order of the module doc.

    Raises:
        ValueError: a binary candidate without a decision threshold.
    """
    kind = task_kind(problem.task)
    features, target = problem.feature_columns, problem.target
    scores: Scores = {
        name: (part[target].to_numpy(), kind.predict(fitted.pipeline, part[features]))
        for name, part in (("test", data.test), ("validation", data.validation))
    }
    classes = list(fitted.classes or kind.classes(fitted.pipeline)) if kind.classifier else []
    class_report = None
    if kind.name == "binary":
        if fitted.threshold is None:
            raise ValueError(f"{problem.name}/{candidate}: a binary candidate needs its decision threshold")
        written = _binary_artifacts(folder, problem, scores, fitted.threshold)
    elif kind.name == "multiclass":
        written, class_report = _multiclass_artifacts(folder, scores, classes)
    else:
        written = _regression_artifacts(folder, scores)
    y_test = scores["test"][0]
    metric = importance_metric(problem)
    importance = permutation_importance_table(
        fitted.pipeline, data.test[features], y_test, scoring=importance_scoring(problem, classes), seed=seed
    )
    importance.to_csv(folder / "permutation_importance.csv", index=False)
    figure = permutation_importance_figure(
        importance,
        sample_rows=min(len(y_test), IMPORTANCE_MAX_ROWS),
        label=importance_label(metric),
        empty_reason="single class in the sample" if kind.classifier else "constant target in the sample",
    )
    written += [
        save_figure(figure, folder / "permutation_importance.png"),
        folder / "permutation_importance.csv",
    ]
    card = model_card(
        problem=problem,
        candidate=candidate,
        window=window,
        targets={"train": data.train[target], "validation": data.validation[target], "test": data.test[target]},
        validation=fitted.validation,
        test=fitted.test,
        threshold=fitted.threshold if kind.name == "binary" else None,
        classes=classes,
        class_report=class_report,
        importance=importance,
        importance_label=importance_label(metric),
        code_version=code_version,
    )
    (folder / "model_card.md").write_text(card, encoding="utf-8")
    written.append(folder / "model_card.md")
    return written


def _binary_artifacts(folder: Path, problem: ProblemSpec, scores: Scores, threshold: float) -> list[Path]:
    """ROC and precision-recall curves, the confusion matrix at the threshold, the calibration."""
    y_test, proba_test = scores["test"]
    written = [
        save_figure(roc_curve_figure(scores, threshold), folder / "roc_curve.png"),
        save_figure(precision_recall_figure(scores, threshold), folder / "precision_recall_curve.png"),
        save_figure(
            confusion_matrix_figure(y_test, proba_test, threshold, (problem.negative_label, problem.positive_label)),
            folder / "confusion_matrix.png",
        ),
        save_figure(calibration_figure(scores), folder / "calibration.png"),
    ]
    return [*written, _write_calibration(folder, scores)]


def _multiclass_artifacts(folder: Path, scores: Scores, classes: list[Any]) -> tuple[list[Path], pd.DataFrame]:
    """The k-by-k confusion matrix, the per-class report of the test part, the top class's calibration."""
    y_test, proba_test = scores["test"]
    y_test = plain_labels(y_test)
    predicted = plain_labels(np.asarray(classes, dtype=object)[np.argmax(proba_test, axis=1)])
    report = classification_report_table(y_test, predicted, classes)
    report.to_csv(folder / "classification_report.csv", index=False)
    # The most probable class's probability against whether it was right: the calibration a user
    # reading "90% Adelie" relies on, drawn and tabled like a binary model's.
    top_class = {name: _top_class_outcome(y, proba, classes) for name, (y, proba) in scores.items()}
    written = [
        save_figure(
            class_confusion_figure(y_test, predicted, report_labels(y_test, classes)), folder / "confusion_matrix.png"
        ),
        folder / "classification_report.csv",
        save_figure(
            calibration_figure(top_class, outcome="share correct", prediction="probability of the most probable class"),
            folder / "calibration.png",
        ),
        _write_calibration(folder, top_class),
    ]
    return written, report


def _top_class_outcome(y_true: np.ndarray, proba: np.ndarray, classes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(1 where the most probable class is the true one, that class's probability), per row."""
    predicted = plain_labels(np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)])
    return (predicted == plain_labels(y_true)).astype("int64"), np.asarray(proba, dtype="float64").max(axis=1)


def _regression_artifacts(folder: Path, scores: Scores) -> list[Path]:
    """Predicted against actual values, residuals against predicted values, residuals by decile."""
    residuals = pd.concat(
        [residuals_table(y, predicted).assign(part=name) for name, (y, predicted) in scores.items()],
        ignore_index=True,
    )
    residuals.to_csv(folder / "residuals.csv", index=False)
    return [
        save_figure(predicted_vs_actual_figure(scores), folder / "predicted_vs_actual.png"),
        save_figure(residuals_figure(scores), folder / "residuals.png"),
        folder / "residuals.csv",
    ]


def _write_calibration(folder: Path, scores: Scores) -> Path:
    calibration = pd.concat(
        [calibration_table(y, p).assign(part=name) for name, (y, p) in scores.items()], ignore_index=True
    )
    calibration.to_csv(folder / "calibration.csv", index=False)
    return folder / "calibration.csv"
