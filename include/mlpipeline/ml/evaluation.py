"""Evaluation artifacts of a fitted candidate: curves, confusion matrix, calibration, importance, model card.

Everything here works without MLflow: :func:`write_evaluation` writes the figures
(:mod:`~include.mlpipeline.ml.figures`), the tables (:mod:`~include.mlpipeline.ml.evaluation_tables`)
and the model card (:mod:`~include.mlpipeline.ml.model_card`) into a folder, which
``training.train_candidate`` logs into each candidate's child run under ``evaluation/``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.candidates import FittedCandidate
from include.mlpipeline.ml.evaluation_tables import IMPORTANCE_MAX_ROWS, calibration_table, permutation_importance_table
from include.mlpipeline.ml.figures import (
    calibration_figure,
    confusion_matrix_figure,
    permutation_importance_figure,
    precision_recall_figure,
    roc_curve_figure,
    save_figure,
)
from include.mlpipeline.ml.model_card import model_card
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
    """Write every evaluation artifact of one fitted candidate into ``folder``.

    Figures and tables are computed on the test days (the curves and the calibration also show the
    validation days).

    Args:
        folder: Existing output folder.
        problem: The problem (feature columns, target, labels, description).
        candidate: Candidate name.
        window: The training window.
        data: The training set the candidate was fitted on.
        fitted: The fitted candidate with its threshold and metrics.
        seed: Seed of the importance sample and shuffles.
        code_version: Commit, for the model card.

    Returns:
        The files written: ``roc_curve.png``, ``precision_recall_curve.png``, ``confusion_matrix.png``,
        ``calibration.png``, ``calibration.csv``, ``permutation_importance.png``,
        ``permutation_importance.csv``, ``model_card.md``.
    """
    features, target = problem.feature_columns, problem.target
    y_test = data.test[target].to_numpy()
    y_validation = data.validation[target].to_numpy()
    proba_test = fitted.pipeline.predict_proba(data.test[features])[:, 1]
    proba_validation = fitted.pipeline.predict_proba(data.validation[features])[:, 1]
    scores = {"test": (y_test, proba_test), "validation": (y_validation, proba_validation)}
    threshold = fitted.threshold
    written = [
        save_figure(roc_curve_figure(scores, threshold), folder / "roc_curve.png"),
        save_figure(precision_recall_figure(scores, threshold), folder / "precision_recall_curve.png"),
        save_figure(
            confusion_matrix_figure(y_test, proba_test, threshold, (problem.negative_label, problem.positive_label)),
            folder / "confusion_matrix.png",
        ),
        save_figure(calibration_figure(scores), folder / "calibration.png"),
    ]
    calibration = pd.concat(
        [calibration_table(y, p).assign(part=name) for name, (y, p) in scores.items()], ignore_index=True
    )
    calibration.to_csv(folder / "calibration.csv", index=False)
    written.append(folder / "calibration.csv")
    importance = permutation_importance_table(fitted.pipeline, data.test[features], y_test, seed=seed)
    importance.to_csv(folder / "permutation_importance.csv", index=False)
    sample_rows = min(len(y_test), IMPORTANCE_MAX_ROWS)
    written += [
        save_figure(
            permutation_importance_figure(importance, sample_rows=sample_rows), folder / "permutation_importance.png"
        ),
        folder / "permutation_importance.csv",
    ]
    card = model_card(
        problem=problem,
        candidate=candidate,
        window=window,
        part_rows={name: len(part) for name, part in _parts(data).items()},
        part_positive_rates={name: float(part[target].mean()) for name, part in _parts(data).items()},
        validation=fitted.validation,
        test=fitted.test,
        threshold=threshold,
        importance=importance,
        code_version=code_version,
    )
    (folder / "model_card.md").write_text(card, encoding="utf-8")
    written.append(folder / "model_card.md")
    return written


def _parts(data: TrainingSet) -> dict[str, pd.DataFrame]:
    return {"train": data.train, "validation": data.validation, "test": data.test}
