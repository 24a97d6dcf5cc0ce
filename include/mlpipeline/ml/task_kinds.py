"""What each kind of task predicts, and everything that follows from it.

A problem says its task in ``ProblemSpec.task``; :func:`task_kind` gives the object the rest of the
machinery asks: the baseline, what a fitted pipeline's predictions are, the metrics, whether there
is a decision threshold, the primary metric and its direction, and the per-prediction loss the A/B
test and the live monitor compare.

Predictions, by kind (one row per example):

- ``binary``: the positive class's probability, shape ``(n,)``; the label is positive at or above the
  decision threshold;
- ``multiclass``: every class's probability, shape ``(n, k)``, classes in the fitted pipeline's order
  (``classes_``); the label is the most probable class;
- ``regression``: the predicted value, shape ``(n,)``.

Only a binary model has a decision threshold (its rule: :mod:`include.mlpipeline.ml.metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from include.mlpipeline.ml import metrics

EPSILON = 1e-7

GREATER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "roc_auc_ovr": True,
    "f1": True,
    "macro_f1": True,
    "precision": True,
    "recall": True,
    "accuracy": True,
    "balanced_accuracy": True,
    "r2": True,
    "log_loss": False,
    "brier": False,
    "rmse": False,
    "mae": False,
}
"""Every metric a primary metric may be, and whether higher is better."""


@dataclass(frozen=True)
class TaskKind:
    """The behaviour of one task kind (see the module doc); one instance per kind."""

    name: str
    default_primary_metric: str
    classifier: bool
    target_type: str  # scikit-learn's name for the target (TargetEncoder's target_type)

    # -------------------------------------------------------------------------- predictions
    def predict(self, pipeline: Any, features: Any) -> np.ndarray:
        """The fitted pipeline's predictions for ``features`` (see the module doc for their shape)."""
        if self.name == "binary":
            return pipeline.predict_proba(features)[:, 1]
        if self.name == "multiclass":
            return pipeline.predict_proba(features)
        return np.asarray(pipeline.predict(features), dtype="float64")

    @staticmethod
    def classes(pipeline: Any) -> list[Any]:
        """The classes of a fitted classifier, in the order of its probability columns ([] for a regressor)."""
        found = getattr(pipeline, "classes_", None)
        return [] if found is None else [value.item() if hasattr(value, "item") else value for value in found]

    def labels(self, predictions: np.ndarray, threshold: float | None, classes: Sequence[Any]) -> np.ndarray | None:
        """The predicted label of each row: 1/0 at the threshold (binary), the most probable class
        (multiclass), None for a regression."""
        if self.name == "binary":
            return (predictions >= threshold).astype("int64")
        if self.name == "multiclass":
            return np.asarray(classes, dtype=object)[np.argmax(predictions, axis=1)]
        return None

    # ------------------------------------------------------------------------------ metrics
    def choose_threshold(self, y_true: np.ndarray, predictions: np.ndarray) -> float | None:
        """The decision threshold (binary; see the module doc), None for the other kinds."""
        return metrics.choose_threshold(y_true, predictions) if self.name == "binary" else None

    def evaluate(
        self, y_true: np.ndarray, predictions: np.ndarray, threshold: float | None, classes: Sequence[Any] = ()
    ) -> dict[str, float]:
        """Every metric of this kind for the predictions of one part."""
        if self.name == "binary":
            return metrics.evaluate(y_true, predictions, float(threshold if threshold is not None else 0.5))
        if self.name == "multiclass":
            return metrics.multiclass_metrics(y_true, predictions, classes)
        return metrics.regression_metrics(y_true, predictions)

    def losses(self, y_true: np.ndarray, predictions: np.ndarray, classes: Sequence[Any] = ()) -> np.ndarray:
        """Each prediction's loss: log loss (classifiers; the probability of what happened) or squared
        error (regression). Lower is better; the A/B test and the live monitor compare their means."""
        y_true = np.asarray(y_true)
        if self.name == "binary":
            p = np.clip(np.asarray(predictions, dtype="float64"), EPSILON, 1 - EPSILON)
            y = y_true.astype("int64")
            return -(y * np.log(p) + (1 - y) * np.log(1 - p))
        if self.name == "multiclass":
            index = {value: position for position, value in enumerate(classes)}
            column = np.array([index.get(_plain(value), -1) for value in y_true])
            known = column >= 0
            p = np.full(len(y_true), EPSILON)
            p[known] = np.asarray(predictions)[np.flatnonzero(known), column[known]]
            return -np.log(np.clip(p, EPSILON, 1.0))
        return (np.asarray(y_true, dtype="float64") - np.asarray(predictions, dtype="float64")) ** 2

    def primary_metric(self, problem_metric: str | None) -> str:
        """The metric that ranks candidates and gates promotions (the problem's, else this kind's)."""
        name = problem_metric or self.default_primary_metric
        if name not in GREATER_IS_BETTER:
            raise ValueError(f"unknown primary metric {name!r}; one of {sorted(GREATER_IS_BETTER)}")
        return name

    # --------------------------------------------------------------------------- the target
    def target_problems(self, y: np.ndarray, part: str) -> str | None:
        """Why ``y`` (one part's labels) cannot train or test this kind of model, or None."""
        values = np.asarray(y)
        if self.classifier:
            classes = sorted({_plain(v) for v in values}, key=str)
            if len(classes) < 2:
                return f"the {part} part holds {len(values)} rows with label values {classes}: a classifier needs two"
            if self.name == "binary" and not set(classes) <= {0, 1}:
                return f"the {part} part has label values {classes[:10]}: a binary target must be 0 or 1"
            return None
        numbers = np.asarray(values, dtype="float64")
        if not np.isfinite(numbers).all():
            return f"the {part} part has {int((~np.isfinite(numbers)).sum())} missing or infinite target values"
        if len(numbers) > 1 and np.ptp(numbers) == 0:
            return f"the {part} part's target is constant ({numbers[0]}): there is nothing to predict"
        return None


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, so labels compare and print alike."""
    return value.item() if hasattr(value, "item") else value


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better."""
    if metric not in GREATER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; one of {sorted(GREATER_IS_BETTER)}")
    return GREATER_IS_BETTER[metric]


BINARY = TaskKind("binary", "roc_auc", classifier=True, target_type="binary")
MULTICLASS = TaskKind("multiclass", "roc_auc_ovr", classifier=True, target_type="multiclass")
REGRESSION = TaskKind("regression", "r2", classifier=False, target_type="continuous")
_KINDS = {kind.name: kind for kind in (BINARY, MULTICLASS, REGRESSION)}


def task_kind(name: str) -> TaskKind:
    """The task kind called ``name`` (``ProblemSpec.task``)."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; one of {sorted(_KINDS)}") from None
