"""Evaluation figures of a fitted candidate: ROC and precision-recall curves, confusion matrix,
calibration, permutation importance. Each function returns a matplotlib figure; :func:`save_figure`
writes and closes it.

Scores are passed as ``{"test": (y_true, proba), "validation": (y_true, proba)}``: the test days are
what the report is about; validation curves are drawn beside them because they cost one more
prediction and show whether the model behaves the same on the days that chose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve, roc_auc_score, roc_curve

from include.mlpipeline.ml.evaluation_tables import calibration_table

# Airflow workers and CI have no display: Agg renders straight to PNG. It must be chosen before
# pyplot is imported, or pyplot may pick an interactive backend that needs one. (So do not import
# this module into a notebook that should keep drawing inline.)
matplotlib.use("Agg")
import matplotlib.pyplot as plt

Scores = Mapping[str, tuple[np.ndarray, np.ndarray]]

FIGURE_SIZE = (6.0, 4.5)
DPI = 100


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
    per_true_class = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    axes.imshow(per_true_class, cmap="Blues", vmin=0, vmax=1)
    for row in range(2):
        for column in range(2):
            dark = per_true_class[row, column] > 0.5
            axes.text(
                column,
                row,
                f"{matrix[row, column]:,}\n{per_true_class[row, column]:.1%}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=[f"predicted {labels[0]}", f"predicted {labels[1]}"],
        yticklabels=[f"true {labels[0]}", f"true {labels[1]}"],
        title=f"Confusion matrix at threshold {threshold:.3f} ({len(predicted):,} rows)",
    )
    return figure


def calibration_figure(scores: Scores, n_bins: int = 10) -> Figure:
    """Reliability curve (observed rate against mean prediction per bin) over a bar chart of bin counts.

    Args:
        scores: Label to ``(y_true, proba)``.
        n_bins: Equal-width bins over [0, 1].

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
    curve.set(ylabel="observed positive rate", title="Calibration (reliability curve)", xlim=(0, 1), ylim=(0, 1))
    curve.legend(loc="upper left")
    counts.set(xlabel="predicted probability", ylabel="rows per bin", yscale="log")
    figure.tight_layout()
    return figure


def permutation_importance_figure(table: pd.DataFrame, top: int = 20, sample_rows: int | None = None) -> Figure:
    """Horizontal bars of the ``top`` most important features with their spread over repeats.

    Args:
        table: From :func:`permutation_importance_table`.
        top: How many features to show.
        sample_rows: Rows the importance was measured on (for the title).

    Returns:
        The figure (not closed).
    """
    shown = table.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(6.0, max(2.5, 0.3 * len(shown) + 1.2)))
    axes.barh(shown["feature"], shown["importance_mean"], xerr=shown["importance_std"], color="tab:blue")
    axes.axvline(0, color="grey", linewidth=0.8)
    on = f" on {sample_rows:,} test rows" if sample_rows else ""
    axes.set(xlabel="drop in ROC AUC when shuffled", title=f"Permutation importance{on}")
    if shown.empty:
        axes.text(0.5, 0.5, "not computed (single class in the sample)", ha="center", transform=axes.transAxes)
    figure.tight_layout()
    return figure
