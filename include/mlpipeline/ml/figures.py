"""Evaluation figures of a fitted candidate: ROC and precision-recall curves, confusion matrices,
calibration, predicted against actual values, residuals, permutation importance. Each function
returns a matplotlib figure; :func:`save_figure` writes and closes it.

Scores are passed as ``{"test": (y_true, predictions), "validation": (y_true, predictions)}``: the
test part is what the report is about; the validation part is drawn beside it because it costs one
more prediction and shows whether the model behaves the same on the rows that chose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    mean_squared_error,
    precision_recall_curve,
    r2_score,
    roc_auc_score,
    roc_curve,
)

from include.mlpipeline.ml.evaluation_tables import calibration_table

# Airflow workers and CI have no display: Agg renders straight to PNG. It must be chosen before
# pyplot is imported, or pyplot may pick an interactive backend that needs one. (So do not import
# this module into a notebook that should keep drawing inline.)
matplotlib.use("Agg")
import matplotlib.pyplot as plt

Scores = Mapping[str, tuple[np.ndarray, np.ndarray]]

FIGURE_SIZE = (6.0, 4.5)
DPI = 100
SCATTER_MAX_POINTS = 5000  # per part: more points only cost rendering time and hide each other


def save_figure(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG and close it (pyplot keeps every open figure alive until closed).

    Args:
        figure: A figure from one of the functions here.
        path: Target file; its folder must exist.

    Returns:
        ``path``.
    """
    try:
        figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def _marker_at_threshold(thresholds: np.ndarray, threshold: float) -> int:
    """Index of the curve point closest to the decision threshold."""
    return int(np.argmin(np.abs(thresholds - threshold)))


def roc_curve_figure(scores: Scores, threshold: float | None = None) -> Figure:
    """ROC curve of each labelled score set, with its AUC and the operating point at ``threshold``.

    Args:
        scores: Label (e.g. ``"test"``) to ``(y_true, proba)``.
        threshold: Decision threshold to mark on each curve; None marks nothing.

    Returns:
        The figure (not closed).
    """
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for label, (y_true, proba) in scores.items():
        fpr, tpr, thresholds = roc_curve(y_true, proba)
        (line,) = axes.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, proba):.3f})")
        if threshold is not None:
            point = _marker_at_threshold(thresholds, threshold)
            axes.plot(fpr[point], tpr[point], "o", color=line.get_color())
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    title = "ROC curve" if threshold is None else f"ROC curve (dot: threshold {threshold:.3f})"
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right")
    return figure


def precision_recall_figure(scores: Scores, threshold: float | None = None) -> Figure:
    """Precision-recall curve of each score set, its positive rate (the chance level) and the threshold point.

    Args:
        scores: Label to ``(y_true, proba)``.
        threshold: Decision threshold to mark on each curve; None marks nothing.

    Returns:
        The figure (not closed).
    """
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for label, (y_true, proba) in scores.items():
        precision, recall, thresholds = precision_recall_curve(y_true, proba)
        (line,) = axes.plot(recall, precision, label=f"{label} (AP {average_precision_score(y_true, proba):.3f})")
        axes.axhline(float(np.mean(y_true)), linestyle=":", color=line.get_color(), label=f"{label} positive rate")
        if threshold is not None and len(thresholds):
            point = _marker_at_threshold(thresholds, threshold)
            axes.plot(recall[point], precision[point], "o", color=line.get_color())
    title = "Precision-recall" if threshold is None else f"Precision-recall (dot: threshold {threshold:.3f})"
    axes.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="upper right")
    return figure


def confusion_matrix_figure(
    y_true: np.ndarray, proba: np.ndarray, threshold: float, labels: Sequence[str] = ("negative", "positive")
) -> Figure:
    """Confusion matrix at ``threshold`` (a probability at the threshold counts as positive, as in training).

    Args:
        y_true: 0/1 labels.
        proba: Predicted probabilities of the positive class.
        threshold: Decision threshold.
        labels: Names of class 0 and class 1.

    Returns:
        The figure (not closed); each cell shows the count and its share of the true class.
    """
    predicted = (np.asarray(proba) >= threshold).astype(int)
    matrix = confusion_matrix(y_true, predicted, labels=[0, 1])
    title = f"Confusion matrix at threshold {threshold:.3f} ({len(predicted):,} rows)"
    return _confusion_figure(matrix, [str(label) for label in labels], title, (4.8, 4.2))


def class_confusion_figure(y_true: np.ndarray, predicted: np.ndarray, labels: Sequence[Any]) -> Figure:
    """The k-by-k confusion matrix of a multiclass model's labels (its most probable class).

    Args:
        y_true: True labels.
        predicted: Predicted labels.
        labels: The classes, in the order of the rows and columns.

    Returns:
        The figure (not closed); each cell shows the count and its share of the true class.
    """
    matrix = confusion_matrix(y_true, predicted, labels=list(labels))
    side = max(4.8, 0.9 * len(labels) + 2.4)
    title = f"Confusion matrix, most probable class ({len(predicted):,} rows)"
    return _confusion_figure(matrix, [str(label) for label in labels], title, (side, side - 0.6))


def _confusion_figure(matrix: np.ndarray, names: Sequence[str], title: str, size: tuple[float, float]) -> Figure:
    """Cells coloured by their share of the true class (row), annotated with count and share."""
    per_true_class = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    count = len(names)
    figure, axes = plt.subplots(figsize=size)
    axes.imshow(per_true_class, cmap="Blues", vmin=0, vmax=1)
    small = {"fontsize": 8} if count > 6 else {}
    for row in range(count):
        for column in range(count):
            dark = per_true_class[row, column] > 0.5
            axes.text(
                column,
                row,
                f"{matrix[row, column]:,}\n{per_true_class[row, column]:.1%}",
                ha="center",
                va="center",
                color="white" if dark else "black",
                **small,
            )
    axes.set(
        xticks=list(range(count)),
        yticks=list(range(count)),
        xticklabels=[f"predicted {name}" for name in names],
        yticklabels=[f"true {name}" for name in names],
        title=title,
    )
    if count > 2:  # longer than two labels side by side: slanted, or they overlap
        plt.setp(axes.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    return figure


def calibration_figure(
    scores: Scores,
    n_bins: int = 10,
    *,
    outcome: str = "observed positive rate",
    prediction: str = "predicted probability",
) -> Figure:
    """Reliability curve (observed rate against mean prediction per bin) over a bar chart of bin counts.

    Args:
        scores: Label to ``(y_true, proba)``: 0/1 outcomes and their predicted probabilities.
        n_bins: Equal-width bins over [0, 1].
        outcome: Axis name of the observed rate (e.g. ``"share correct"`` for a top class).
        prediction: Axis name of the probability.

    Returns:
        The figure (not closed).
    """
    figure, (curve, counts) = plt.subplots(
        2, 1, figsize=(6.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    width = 1.0 / n_bins / max(len(scores), 1)
    for position, (label, (y_true, proba)) in enumerate(scores.items()):
        table = calibration_table(y_true, proba, n_bins)
        (line,) = curve.plot(table["mean_predicted"], table["observed_rate"], "o-", label=label)
        counts.bar(
            table["bin_low"] + width * (position + 0.5), table["rows"], width=width, color=line.get_color(), label=label
        )
    curve.set(ylabel=outcome, title="Calibration (reliability curve)", xlim=(0, 1), ylim=(0, 1))
    curve.legend(loc="upper left")
    counts.set(xlabel=prediction, ylabel="rows per bin", yscale="log")
    figure.tight_layout()
    return figure


def _scatter_sample(y_true: np.ndarray, predicted: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`SCATTER_MAX_POINTS` of the points, chosen with a fixed seed (a reproducible figure)."""
    y_true, predicted = np.asarray(y_true, dtype="float64"), np.asarray(predicted, dtype="float64")
    if len(y_true) <= SCATTER_MAX_POINTS:
        return y_true, predicted
    chosen = np.sort(np.random.default_rng(seed).choice(len(y_true), size=SCATTER_MAX_POINTS, replace=False))
    return y_true[chosen], predicted[chosen]


def predicted_vs_actual_figure(scores: Scores) -> Figure:
    """Actual against predicted values of each part, with the identity line (a perfect model's points).

    Args:
        scores: Label to ``(y_true, predicted)``.

    Returns:
        The figure (not closed); the legend gives each part's R² and RMSE over all its rows.
    """
    figure, axes = plt.subplots(figsize=(5.5, 5.0))
    low, high = np.inf, -np.inf
    for label, (y_true, predicted) in scores.items():
        r2 = r2_score(y_true, predicted) if len(y_true) > 1 else float("nan")
        rmse = float(np.sqrt(mean_squared_error(y_true, predicted)))
        shown_y, shown_p = _scatter_sample(y_true, predicted)
        axes.scatter(shown_p, shown_y, s=8, alpha=0.5, label=f"{label} (R² {r2:.3f}, RMSE {rmse:.4g})")
        low, high = min(low, shown_y.min(), shown_p.min()), max(high, shown_y.max(), shown_p.max())
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="predicted = actual")
    axes.set(xlabel="predicted", ylabel="actual", title="Predicted vs actual")
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def residuals_figure(scores: Scores) -> Figure:
    """Residuals (actual minus predicted) against the predicted value, beside their histogram.

    Args:
        scores: Label to ``(y_true, predicted)``.

    Returns:
        The figure (not closed): a trend or a funnel on the left means errors depend on the predicted
        value; the histogram on the right shares its residual axis.
    """
    figure, (spread, histogram) = plt.subplots(
        1, 2, figsize=(9.0, 4.5), sharey=True, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    residuals = {
        label: np.asarray(y_true, dtype="float64") - np.asarray(predicted, dtype="float64")
        for label, (y_true, predicted) in scores.items()
    }
    # One set of bins for every part, so their bars compare.
    bins = np.histogram_bin_edges(np.concatenate(list(residuals.values())), bins=30)
    for label, (y_true, predicted) in scores.items():
        shown_y, shown_p = _scatter_sample(y_true, predicted)
        (points,) = spread.plot(shown_p, shown_y - shown_p, ".", markersize=3, alpha=0.5, label=label)
        histogram.hist(
            residuals[label], bins=bins, orientation="horizontal", alpha=0.5, color=points.get_color(), label=label
        )
    for axes in (spread, histogram):
        axes.axhline(0, color="grey", linewidth=0.8)
    spread.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals")
    spread.legend(loc="upper right")
    histogram.set(xlabel="rows", title="Distribution")
    figure.tight_layout()
    return figure


def permutation_importance_figure(
    table: pd.DataFrame,
    top: int = 20,
    sample_rows: int | None = None,
    *,
    label: str = "drop in ROC AUC",
    empty_reason: str = "single class in the sample",
) -> Figure:
    """Horizontal bars of the ``top`` most important features with their spread over repeats.

    Args:
        table: From :func:`permutation_importance_table`.
        top: How many features to show.
        sample_rows: Rows the importance was measured on (for the title).
        label: What the importance measures (``evaluation_tables.importance_label``).
        empty_reason: Shown when the table is empty.

    Returns:
        The figure (not closed).
    """
    shown = table.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(6.0, max(2.5, 0.3 * len(shown) + 1.2)))
    axes.barh(shown["feature"], shown["importance_mean"], xerr=shown["importance_std"], color="tab:blue")
    axes.axvline(0, color="grey", linewidth=0.8)
    on = f" on {sample_rows:,} test rows" if sample_rows else ""
    axes.set(xlabel=f"{label} when shuffled", title=f"Permutation importance{on}")
    if shown.empty:
        axes.text(0.5, 0.5, f"not computed ({empty_reason})", ha="center", transform=axes.transAxes)
    figure.tight_layout()
    return figure
