"""Model metrics, the decision threshold and the ranking of candidates.

Threshold rule: the probability cut-off that maximizes F1 on the validation days (ties: the
highest cut-off, i.e. the fewest false alarms). It is chosen before the test days are looked at and
stored with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
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


def rank_candidates(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates ordered best first by validation ROC AUC (the test days stay untouched by selection)."""
    return sorted(results, key=lambda r: (-r["validation"]["roc_auc"], r["name"]))
