"""Model metrics per task kind, the decision threshold and the ranking of candidates.

Threshold rule: the probability cut-off that maximizes F1 on the validation part (ties: the
highest cut-off, i.e. the fewest false alarms). It is chosen before the test part is looked at and
stored with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)


def choose_threshold(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The cut-off maximizing F1 on these labels (ties: the highest cut-off). See the module doc."""
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    if len(thresholds) == 0:
        return 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    best = np.flatnonzero(f1 == f1.max())
    return float(thresholds[best[-1]])


def evaluate(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Ranking, calibration and decision metrics of probabilities ``proba`` for labels ``y_true``."""
    predicted = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "log_loss": float(log_loss(y_true, np.clip(proba, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, proba)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "positive_rate": float(np.mean(y_true)),
        "rows": float(len(y_true)),
    }


def multiclass_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> dict[str, float]:
    """Log loss, macro F1, balanced accuracy, accuracy and macro one-vs-rest ROC AUC of class
    probabilities ``proba`` (columns in ``classes`` order) for labels ``y_true``."""
    classes = list(classes)
    proba = np.clip(np.asarray(proba, dtype="float64"), 1e-7, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    # Plain arrays (ints or texts), not object arrays: scikit-learn cannot tell an object array's type.
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    y = np.asarray([value.item() if hasattr(value, "item") else value for value in y_true])
    return {
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "macro_f1": float(f1_score(y, predicted, labels=classes, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "accuracy": float(accuracy_score(y, predicted)),
        "roc_auc_ovr": one_vs_rest_roc_auc(y, proba, classes),
        "classes": float(len(classes)),
        "rows": float(len(y)),
    }


def one_vs_rest_roc_auc(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> float:
    """The mean over classes of each class's ROC AUC against the rest, over the classes that occur and
    do not make up every row (a class absent from a short test part has no AUC; scikit-learn's own
    multiclass AUC refuses such a part instead)."""
    scores = []
    for column, value in enumerate(classes):
        hits = np.asarray(y_true == value)
        if 0 < hits.sum() < len(hits):
            scores.append(roc_auc_score(hits, proba[:, column]))
    return float(np.mean(scores)) if scores else float("nan")


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of ``predicted`` values for targets ``y_true``, with the targets' mean and spread."""
    y = np.asarray(y_true, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)) if len(y) > 1 else float("nan"),
        "target_mean": float(np.mean(y)),
        "target_std": float(np.std(y)),
        "rows": float(len(y)),
    }


def rank_candidates(
    results: Sequence[dict[str, Any]], metric: str = "roc_auc", *, greater_is_better: bool = True
) -> list[dict[str, Any]]:
    """Candidates ordered best first by their validation ``metric`` (the test part stays untouched by
    selection); ties by name."""
    sign = -1.0 if greater_is_better else 1.0
    return sorted(results, key=lambda r: (sign * r["validation"][metric], r["name"]))
