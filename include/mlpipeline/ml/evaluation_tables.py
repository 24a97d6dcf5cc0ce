"""Evaluation tables of a fitted candidate (pandas frames): calibration bins, the per-class report of a
classifier, residuals by predicted value, and permutation importance scored by the task's metric."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.task_kinds import TaskKind, greater_is_better, task_kind

log = logging.getLogger(__name__)

IMPORTANCE_MAX_ROWS = 2000
IMPORTANCE_REPEATS = 3

# The metrics each kind's evaluation computes from predictions alone (no threshold): what a
# permutation importance can be scored by. The first is the fallback when the primary metric is not one.
IMPORTANCE_METRICS = {
    "binary": ("roc_auc",),
    "multiclass": ("log_loss", "roc_auc_ovr", "macro_f1", "balanced_accuracy", "accuracy"),
    "regression": ("r2", "rmse", "mae"),
}
METRIC_NAMES = {
    "roc_auc": "ROC AUC",
    "roc_auc_ovr": "one-vs-rest ROC AUC",
    "log_loss": "log loss",
    "macro_f1": "macro F1",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
}
REPORT_COLUMNS = ["class", "precision", "recall", "f1", "support"]
RESIDUAL_COLUMNS = ["bin", "predicted_low", "predicted_high", "rows", "mean_predicted", "mean_residual", "rmse"]


def calibration_table(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table: equal-width probability bins with their row count, mean prediction and observed rate.

    Equal-width bins (not quantiles) so that the counts show where the model puts its predictions.

    Args:
        y_true: 0/1 outcomes (the label of a binary model; whether the top class was right for a multiclass one).
        proba: Predicted probabilities of that outcome.
        n_bins: Number of bins over [0, 1].

    Returns:
        One row per non-empty bin: ``bin_low, bin_high, rows, mean_predicted, observed_rate``.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds edges[i] <= p < edges[i+1]; the last bin also takes p == 1.
    index = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, n_bins - 1)
    frame = pd.DataFrame({"bin": index, "proba": np.asarray(proba, dtype=float), "y": np.asarray(y_true)})
    grouped = frame.groupby("bin").agg(
        rows=("y", "size"), mean_predicted=("proba", "mean"), observed_rate=("y", "mean")
    )
    grouped.insert(0, "bin_low", edges[grouped.index])
    grouped.insert(1, "bin_high", edges[grouped.index + 1])
    return grouped.reset_index(drop=True)


def plain_labels(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Labels as an array of the Python values they hold (ints or texts, not numpy objects), so that
    scikit-learn's metrics read their type and labels from the frame compare with the model's classes."""
    return np.asarray([value.item() if hasattr(value, "item") else value for value in values])


def report_labels(y_true: np.ndarray, classes: Sequence[Any]) -> list[Any]:
    """The model's classes in their order, then any class of ``y_true`` the model never saw in training
    (it has rows to count, though the model can never predict it)."""
    known = list(classes)
    unseen = sorted(set(plain_labels(y_true).tolist()) - set(known), key=str)
    return known + unseen


def classification_report_table(y_true: np.ndarray, predicted: np.ndarray, classes: Sequence[Any]) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class, then their macro and weighted averages.

    Args:
        y_true: True labels.
        predicted: Predicted labels (the most probable class).
        classes: The model's classes; a true class outside them gets a row too (see :func:`report_labels`).

    Returns:
        ``class, precision, recall, f1, support``: one row per class, then ``macro avg`` and ``weighted
        avg`` over those rows, whose support is the number of rows. A class never predicted has
        precision 0.
    """
    y, predicted = plain_labels(y_true), plain_labels(predicted)
    labels = report_labels(y, classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0, average=None
    )
    table = pd.DataFrame(
        {"class": labels, "precision": precision, "recall": recall, "f1": f1, "support": support.astype("int64")}
    )
    total = int(support.sum())
    weights = support / max(total, 1)
    averages = pd.DataFrame(
        {
            "class": ["macro avg", "weighted avg"],
            "precision": [precision.mean(), float(weights @ precision)],
            "recall": [recall.mean(), float(weights @ recall)],
            "f1": [f1.mean(), float(weights @ f1)],
            "support": [total, total],
        }
    )
    return pd.concat([table, averages], ignore_index=True)[REPORT_COLUMNS]


def residuals_table(y_true: np.ndarray, predicted: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Residuals (actual minus predicted) summarised by bins of the predicted value (deciles by default).

    Quantile bins, so each holds about the same number of rows; where predictions tie (a baseline
    predicts one value) bins merge, so there may be fewer than ``n_bins``.

    Args:
        y_true: Actual values.
        predicted: Predicted values.
        n_bins: Number of quantile bins.

    Returns:
        One row per non-empty bin, lowest predictions first: ``bin`` (from 1), ``predicted_low``,
        ``predicted_high``, ``rows``, ``mean_predicted``, ``mean_residual`` (positive: the model
        predicts too low there) and ``rmse``.
    """
    y = np.asarray(y_true, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    if len(y) == 0:
        return pd.DataFrame(columns=RESIDUAL_COLUMNS)
    edges = np.unique(np.quantile(predicted, np.linspace(0.0, 1.0, n_bins + 1)))
    if len(edges) == 1:
        edges = np.repeat(edges, 2)
    # Bin i holds edges[i] <= value < edges[i+1]; the last bin also takes the largest value.
    index = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, len(edges) - 2)
    residual = y - predicted
    frame = pd.DataFrame({"bin": index, "predicted": predicted, "residual": residual, "squared": residual**2})
    grouped = frame.groupby("bin").agg(
        rows=("residual", "size"),
        mean_predicted=("predicted", "mean"),
        mean_residual=("residual", "mean"),
        rmse=("squared", "mean"),
    )
    grouped["rmse"] = np.sqrt(grouped["rmse"])
    grouped.insert(0, "predicted_low", edges[grouped.index])
    grouped.insert(1, "predicted_high", edges[grouped.index + 1])
    grouped.insert(0, "bin", grouped.index + 1)
    return grouped.reset_index(drop=True)[RESIDUAL_COLUMNS]


def importance_metric(problem: ProblemSpec) -> str:
    """The metric the permutation importance is scored by: ROC AUC for a binary model (its ranking,
    independent of the threshold); otherwise the problem's primary metric if its evaluation computes
    it from predictions, else log loss (multiclass) or R² (regression)."""
    kind = task_kind(problem.task)
    allowed = IMPORTANCE_METRICS[kind.name]
    if kind.name == "binary":
        return allowed[0]
    primary = kind.primary_metric(problem.primary_metric)
    return primary if primary in allowed else allowed[0]


def importance_label(metric: str) -> str:
    """How the importance reads in the figure and the card: the drop of a score, the rise of a loss."""
    direction = "drop" if greater_is_better(metric) else "rise"
    return f"{direction} in {METRIC_NAMES.get(metric, metric)}"


@dataclass(frozen=True)
class MetricScorer:
    """A scorer (``scorer(estimator, X, y)`` as scikit-learn's, or :meth:`score` of predictions; higher
    is better) computing one of the task kind's own metrics, so the importance measures exactly the
    metric the card and the gate report."""

    kind: TaskKind
    metric: str
    classes: tuple[Any, ...] = ()

    def __call__(self, estimator: Any, features: pd.DataFrame, y_true: np.ndarray) -> float:
        return self.score(np.asarray(y_true), self.kind.predict(estimator, features))

    def score(self, y_true: np.ndarray, predictions: np.ndarray) -> float:
        """The metric of ``predictions`` (the kind's, see ``TaskKind.predict``), negated for a loss."""
        if self.kind.name == "binary" and self.metric == "roc_auc":  # alone: the kind's evaluation computes nine
            return float(roc_auc_score(y_true, predictions))
        value = self.kind.evaluate(y_true, predictions, None, self.classes)[self.metric]
        return value if greater_is_better(self.metric) else -value


def importance_scoring(problem: ProblemSpec, classes: Sequence[Any] = ()) -> MetricScorer:
    """What :func:`permutation_importance_table` scores by for this problem (see :func:`importance_metric`)."""
    return MetricScorer(task_kind(problem.task), importance_metric(problem), tuple(classes))


def permutation_importance_table(
    pipeline: Pipeline,
    features_frame: pd.DataFrame,
    y_true: np.ndarray,
    *,
    scoring: MetricScorer,
    max_rows: int = IMPORTANCE_MAX_ROWS,
    n_repeats: int = IMPORTANCE_REPEATS,
    seed: int = 0,
) -> pd.DataFrame:
    """How much the score drops when one input column is shuffled, on a fixed-seed sample of at most
    ``max_rows`` rows.

    Columns are the pipeline's raw inputs (before encoding), so a categorical feature counts once.
    The sample and the repeats keep the cost to a few seconds per candidate; the seed makes the
    table reproducible. A loss is scored negated, so a positive importance always means the model
    needs the column. The shuffles are scikit-learn's ``permutation_importance``'s (the same seed
    gives the same table), but the shuffled copies are stacked and predicted in a few large calls
    instead of one call per column and repeat: a forest pays its per-tree overhead per call, which
    made this table cost a random forest more than its own fit.

    Args:
        pipeline: A fitted pipeline.
        features_frame: Its input columns (e.g. the test part's features).
        y_true: Targets of those rows.
        scoring: The metric (see :func:`importance_scoring`).
        max_rows: Largest sample scored.
        n_repeats: Shuffles per column.
        seed: Seed of the sample and of the shuffles.

    Returns:
        ``feature, importance_mean, importance_std``, most important first; empty if the sample has
        a single target value (a ranking or R² is undefined then).
    """
    y_true = np.asarray(y_true)
    rows = len(features_frame)
    if rows > max_rows:
        # Sorted so the sample keeps the frame's order; only which rows are taken is random.
        chosen = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
        features_frame, y_true = features_frame.iloc[chosen], y_true[chosen]
    columns = ["feature", "importance_mean", "importance_std"]
    if len(pd.unique(y_true)) < 2:
        log.warning("permutation importance skipped: the %d sampled rows hold a single target value", len(y_true))
        return pd.DataFrame(columns=columns)
    features_frame = features_frame.reset_index(drop=True)
    # One thread: these predictions are small, and OpenMP threads (histogram gradient boosting) gain
    # nothing and spin-wait for seconds when parallel candidates share the cores.
    with threadpool_limits(limits=1):
        baseline = scoring.score(y_true, scoring.kind.predict(pipeline, features_frame))
        drops = np.array([
            [baseline - score for score in scores]
            for scores in _shuffled_scores(pipeline, features_frame, y_true, scoring, n_repeats=n_repeats, seed=seed)
        ])  # fmt: skip
    table = pd.DataFrame(
        {
            "feature": list(features_frame.columns),
            "importance_mean": drops.mean(axis=1),
            "importance_std": drops.std(axis=1),
        }
    )
    return table.sort_values(["importance_mean", "feature"], ascending=[False, True], ignore_index=True)[columns]


IMPORTANCE_BATCH_ROWS = 10_000
"""Most shuffled rows predicted in one call: enough to pay a forest's per-call overhead a few times, not
per copy; few enough that a wide dense encoding (one-hot routes) of the copies stays small."""


def _shuffled_scores(
    pipeline: Pipeline, frame: pd.DataFrame, y_true: np.ndarray, scoring: MetricScorer, *, n_repeats: int, seed: int
) -> list[list[float]]:
    """The score with each column shuffled, ``n_repeats`` times per column (one list per column).

    The shuffles are scikit-learn's ``permutation_importance(random_state=seed)``'s: one seed drawn
    from ``seed`` gives every column the same sequence, and each repeat shuffles the column of the
    repeat before. The copies are predicted stacked, as many columns at a time as fit in
    :data:`IMPORTANCE_BATCH_ROWS` rows.
    """
    column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    shuffler = np.random.RandomState(column_seed)
    order, positions, shuffles = np.arange(len(frame)), np.arange(len(frame)), []
    for _ in range(n_repeats):
        shuffler.shuffle(order)
        positions = positions[order]  # this repeat's row i holds the original row positions[i]
        shuffles.append(positions)
    per_call = max(1, IMPORTANCE_BATCH_ROWS // (len(frame) * n_repeats))
    names = list(frame.columns)
    scores: list[list[float]] = []
    for first in range(0, len(names), per_call):
        shuffled = names[first : first + per_call]
        copies = len(shuffled) * n_repeats
        predictions = scoring.kind.predict(pipeline, _stacked_copies(frame, shuffled, shuffles))
        blocks = np.split(predictions, copies)
        for start in range(0, copies, n_repeats):
            scores.append([scoring.score(y_true, block) for block in blocks[start : start + n_repeats]])
    return scores


def _stacked_copies(frame: pd.DataFrame, shuffled: Sequence[str], shuffles: Sequence[np.ndarray]) -> pd.DataFrame:
    """``frame`` once per (column of ``shuffled``, shuffle), stacked in that order, with that column's
    rows in that shuffle's order in its copy; built column by column (one array each, not a frame a copy)."""
    rows, copies = len(frame), len(shuffled) * len(shuffles)
    stacked = {}
    for name in frame.columns:
        original = frame[name].to_numpy()
        values = np.tile(original, copies)
        if name in shuffled:
            first = list(shuffled).index(name) * len(shuffles)
            for offset, shuffle in enumerate(shuffles):
                start = (first + offset) * rows
                values[start : start + rows] = original[shuffle]
        stacked[name] = pd.array(values, dtype=frame[name].dtype)
    return pd.DataFrame(stacked)
