"""Evaluation artifacts of a fitted candidate: curves, confusion matrix, calibration, importance, model card.

Everything here works without MLflow: the figure functions return matplotlib figures (the caller
closes them, or lets :func:`save_figure` do it), the tables are pandas frames, the model card is a
markdown string, and :func:`write_evaluation` writes all of them into a folder. ``tracking`` logs
that folder into each candidate's child run under ``evaluation/``.

Scores are passed as ``{"test": (y_true, proba), "validation": (y_true, proba)}``: the test days are
what the report is about; validation curves are drawn beside them because they cost one more
prediction and show whether the model behaves the same on the days that chose it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml import training

# Airflow workers and CI have no display: Agg renders straight to PNG. It must be chosen before
# pyplot is imported, or pyplot may pick an interactive backend that needs one. (So do not import
# this module into a notebook that should keep drawing inline.)
matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)

Scores = Mapping[str, tuple[np.ndarray, np.ndarray]]

FIGURE_SIZE = (6.0, 4.5)
DPI = 100
IMPORTANCE_MAX_ROWS = 2000
IMPORTANCE_REPEATS = 3
METRIC_ORDER = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "positive_rate", "rows")


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


# ------------------------------------------------------------------------------------ curves
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


# ------------------------------------------------------------------------------- calibration
def calibration_table(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table: equal-width probability bins with their row count, mean prediction and observed rate.

    Equal-width bins (not quantiles) so that the counts show where the model puts its predictions.

    Args:
        y_true: 0/1 labels.
        proba: Predicted probabilities of the positive class.
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


# -------------------------------------------------------------------------------- importance
def permutation_importance_table(
    pipeline: Pipeline,
    features_frame: pd.DataFrame,
    y_true: np.ndarray,
    *,
    max_rows: int = IMPORTANCE_MAX_ROWS,
    n_repeats: int = IMPORTANCE_REPEATS,
    seed: int = 0,
) -> pd.DataFrame:
    """Drop in ROC AUC when one input column is shuffled, on a fixed-seed sample of at most ``max_rows`` rows.

    Columns are the pipeline's raw inputs (before encoding), so a categorical feature counts once.
    The sample and the repeats keep the cost to a few seconds per candidate; the seed makes the
    table reproducible.

    Args:
        pipeline: A fitted pipeline with ``predict_proba``.
        features_frame: Its input columns (e.g. the test days' features).
        y_true: 0/1 labels of those rows.
        max_rows: Largest sample scored.
        n_repeats: Shuffles per column.
        seed: Seed of the sample and of the shuffles.

    Returns:
        ``feature, importance_mean, importance_std``, most important first; empty if the sample has
        a single class (ROC AUC is undefined then).
    """
    y_true = np.asarray(y_true)
    rows = len(features_frame)
    if rows > max_rows:
        # Sorted so the sample keeps the frame's order; only which rows are taken is random.
        chosen = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
        features_frame, y_true = features_frame.iloc[chosen], y_true[chosen]
    columns = ["feature", "importance_mean", "importance_std"]
    if len(np.unique(y_true)) < 2:
        log.warning("permutation importance skipped: the %d sampled rows hold a single class", len(y_true))
        return pd.DataFrame(columns=columns)
    # One thread: these are dozens of small predictions, where OpenMP threads (histogram gradient
    # boosting) gain nothing and spin-wait for seconds when parallel candidates share the cores.
    with threadpool_limits(limits=1):
        result = permutation_importance(
            pipeline, features_frame, y_true, scoring="roc_auc", n_repeats=n_repeats, random_state=seed, n_jobs=1
        )
    table = pd.DataFrame(
        {
            "feature": list(features_frame.columns),
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    return table.sort_values(["importance_mean", "feature"], ascending=[False, True], ignore_index=True)[columns]


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


# -------------------------------------------------------------------------------- model card
def threshold_rule() -> str:
    """The threshold rule as the training module's doc states it, so the card never drifts from the code."""
    for paragraph in (training.__doc__ or "").split("\n\n"):
        text = " ".join(paragraph.split())
        if text.startswith("Threshold rule:"):
            return text.removeprefix("Threshold rule:").strip()
    return "see include/mlpipeline/ml/training.py"


def _metrics_table(validation: Mapping[str, float], test: Mapping[str, float]) -> list[str]:
    names = [name for name in METRIC_ORDER if name in validation or name in test]
    names += sorted((set(validation) | set(test)) - set(names))
    lines = ["| metric | validation | test |", "| --- | ---: | ---: |"]
    for name in names:
        cells = []
        for metrics in (validation, test):
            value = metrics.get(name)
            if value is None:
                cells.append("")
            else:
                cells.append(f"{value:,.0f}" if name == "rows" else f"{value:.4f}")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return lines


def _span(days: Sequence[str]) -> str:
    return f"{days[0]}..{days[-1]} ({len(days)} days)" if days else "none"


def model_card(
    *,
    problem: ProblemSpec,
    candidate: str,
    window: training.TrainingWindow,
    part_rows: Mapping[str, int],
    part_positive_rates: Mapping[str, float],
    validation: Mapping[str, float],
    test: Mapping[str, float],
    threshold: float,
    importance: pd.DataFrame | None = None,
    code_version: str | None = None,
) -> str:
    """A short markdown model card for one candidate.

    Intended use and problem-specific limits come from ``problem.extra["intended_use"]`` (a string)
    and ``problem.extra["known_limits"]`` (a list of strings) when the problem defines them; the
    limits that follow from the window itself are always listed.

    Args:
        problem: The problem the model solves.
        candidate: Candidate family name.
        window: The training window (days per part and data version).
        part_rows: Rows per part (``train``, ``validation``, ``test``).
        part_positive_rates: Positive share per part.
        validation / test: Metrics from :func:`training.evaluate`.
        threshold: The decision threshold stored with the model.
        importance: Optional permutation importance table (top five are listed).
        code_version: Commit the model was trained with.

    Returns:
        Markdown text.
    """
    positive, negative = problem.positive_label, problem.negative_label
    parts = [
        ("train", window.train_days),
        ("validation", window.validation_days),
        ("test", window.test_days),
    ]
    lines = [
        f"# Model card: {problem.name} / {candidate}",
        "",
        "## Problem",
        "",
        problem.description,
        "",
        f"Label `{problem.target}`: 1 = {positive}, 0 = {negative}. "
        f"Inputs: {len(problem.numeric_features)} numeric features ({', '.join(problem.numeric_features)}) and "
        f"{len(problem.categorical_features)} categorical ({', '.join(problem.categorical_features)}).",
        "",
        "## Data",
        "",
        f"- data version `{window.data_version}` (identifies the exact feature partition files of the window)",
        f"- window {_span(window.days)}, split by day, later days never fit earlier ones:",
        "",
        "| part | days | rows | positive rate |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, days in parts:
        rate = part_positive_rates.get(name)
        lines.append(
            f"| {name} | {_span(days)} | {part_rows.get(name, 0):,} | {'' if rate is None else f'{rate:.1%}'} |"
        )
    lines += ["", "## Metrics", "", *_metrics_table(validation, test), ""]
    lines += [
        "## Decision threshold",
        "",
        f"Probability >= **{threshold:.4f}** means {positive}. Rule: {threshold_rule()}",
        f"On the test days it flags with precision {test.get('precision', float('nan')):.3f} "
        f"and recall {test.get('recall', float('nan')):.3f}.",
        "",
    ]
    if importance is not None and not importance.empty:
        lines += [
            "## Most important inputs (permutation, test days)",
            "",
            "| feature | drop in ROC AUC |",
            "| --- | ---: |",
        ]
        lines += [f"| {row.feature} | {row.importance_mean:.4f} |" for row in importance.head(5).itertuples()]
        lines.append("")
    intended = problem.extra.get(
        "intended_use",
        f"Estimate, before the outcome is known, the probability that a case is {positive}, and flag it when that "
        "probability reaches the threshold: decision support in the setting the training data comes from. Not for "
        "automated decisions without review, nor for cases from another population or period than the window.",
    )
    limits = [
        f"Fitted on {_span(window.train_days)} only: patterns that change over "
        "longer periods (season, schedules, policy) are not learned, and scores outside this period may drift.",
        f"Test metrics come from {part_rows.get('test', 0):,} rows on {len(window.test_days)} days; "
        "short test periods give noisy estimates.",
        "The threshold was chosen on the validation days: if the positive rate shifts, precision and recall "
        "at that threshold shift with it. Check the calibration plot before reading probabilities as rates.",
        *problem.extra.get("known_limits", []),
    ]
    lines += ["## Intended use", "", intended, "", "## Known limits", "", *[f"- {item}" for item in limits], ""]
    if code_version:
        lines += ["## Lineage", "", f"- code version `{code_version}`", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ report
def write_evaluation(
    folder: Path,
    *,
    problem: ProblemSpec,
    candidate: str,
    window: training.TrainingWindow,
    data: training.TrainingSet,
    fitted: training.FittedCandidate,
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


def _parts(data: training.TrainingSet) -> dict[str, pd.DataFrame]:
    return {"train": data.train, "validation": data.validation, "test": data.test}
