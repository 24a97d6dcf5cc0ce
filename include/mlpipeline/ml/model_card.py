"""The model card: a short markdown page per candidate (data, metrics, threshold or classes, intended use, limits).

What it shows follows the problem's task: a binary model's decision threshold, a multiclass model's
classes with their test F1, a regression's target mean and spread per part. Its "Data" section
lists the days of each part, or, for a snapshot (data without a time axis), how its rows were split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml import metrics as metric_definitions
from include.mlpipeline.ml.evaluation_tables import plain_labels
from include.mlpipeline.ml.window import TrainingWindow

METRIC_ORDER = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "positive_rate", "rows")
METRIC_ORDERS = {
    "binary": METRIC_ORDER,
    "multiclass": ("roc_auc_ovr", "log_loss", "macro_f1", "balanced_accuracy", "accuracy", "classes", "rows"),
    "regression": ("rmse", "mae", "r2", "target_mean", "target_std", "rows"),
}
COUNT_METRICS = {"rows", "classes"}
PARTS = ("train", "validation", "test")
SUMMARY_COLUMNS = {
    "binary": {"positive rate": "---:"},
    "multiclass": {"largest class": "---"},
    "regression": {"target mean": "---:", "target std": "---:"},
}
"""The target's columns in the data table, with their markdown alignment."""


def threshold_rule() -> str:
    """The threshold rule as the metrics module's doc states it, so the card never drifts from the code."""
    for paragraph in (metric_definitions.__doc__ or "").split("\n\n"):
        text = " ".join(paragraph.split())
        if text.startswith("Threshold rule:"):
            return text.removeprefix("Threshold rule:").strip()
    return "see include/mlpipeline/ml/metrics.py"


def _metrics_table(task: str, validation: Mapping[str, float], test: Mapping[str, float]) -> list[str]:
    names = [name for name in METRIC_ORDERS[task] if name in validation or name in test]
    names += sorted((set(validation) | set(test)) - set(names))
    lines = ["| metric | validation | test |", "| --- | ---: | ---: |"]
    for name in names:
        cells = []
        for metrics in (validation, test):
            value = metrics.get(name)
            if value is None:
                cells.append("")
            else:
                cells.append(f"{value:,.0f}" if name in COUNT_METRICS else f"{value:.4f}")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return lines


def _span(days: Sequence[str]) -> str:
    return f"{days[0]}..{days[-1]} ({len(days)} days)" if days else "none"


def _loaded(window: TrainingWindow) -> str:
    """The day of a snapshot's load (its window's single partition)."""
    return window.days[-1] if window.days else "unknown"


def _number(value: float) -> str:
    """A target statistic: whole units when large, four significant digits otherwise."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _part_summary(task: str, target: pd.Series) -> list[str]:
    """The target columns of a part's row in the data table (:data:`SUMMARY_COLUMNS`)."""
    if task == "binary":
        return [f"{float(target.mean()):.1%}" if len(target) else ""]
    if task == "multiclass":
        if not len(target):
            return [""]
        shares = pd.Series(plain_labels(target)).value_counts(normalize=True)
        return [f"{shares.index[0]} ({shares.iloc[0]:.1%})"]
    values = target.astype("float64")
    return [_number(float(values.mean())), _number(float(values.std(ddof=0)))] if len(values) else ["", ""]


def _data_section(
    problem: ProblemSpec, window: TrainingWindow, targets: Mapping[str, pd.Series], classifier: bool
) -> list[str]:
    lines = [
        "## Data",
        "",
        f"- data version `{window.data_version}` (identifies the exact feature partition files of the window)",
    ]
    summary = SUMMARY_COLUMNS[problem.task]
    snapshot = window.row_split is not None
    if snapshot:
        split = window.row_split or {}
        group = split.get("group_by")
        by = (
            f"`{group}` (rows of one {group} stay in one part)"
            if group
            else "the key " + ", ".join(f"`{column}`" for column in problem.key_columns)
        )
        stratified = ", stratified by class so each part keeps the class shares" if classifier and not group else ""
        lines += [
            f"- one snapshot (loaded {_loaded(window)}), without a time axis: its rows were split "
            f"at random by a hash of {by} seeded with {split.get('seed')}: validation {split.get('validation')}, "
            f"test {split.get('test')}, the rest to train{stratified}:",
            "",
            "| part | rows | " + " | ".join(summary) + " |",
            "| --- | ---: | " + " | ".join(summary.values()) + " |",
        ]
    else:
        lines += [
            f"- window {_span(window.days)}, split by day, later days never fit earlier ones:",
            "",
            "| part | days | rows | " + " | ".join(summary) + " |",
            "| --- | --- | ---: | " + " | ".join(summary.values()) + " |",
        ]
    part_days = {"train": window.train_days, "validation": window.validation_days, "test": window.test_days}
    for name in PARTS:
        target = pd.Series(targets.get(name, []))
        days = [] if snapshot else [_span(part_days[name])]
        cells = [name, *days, f"{len(target):,}", *_part_summary(problem.task, target)]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _classes_section(targets: Mapping[str, pd.Series], class_report: pd.DataFrame) -> list[str]:
    """Rows per part and the test part's precision, recall and F1 of each class (the report's class rows)."""
    counts = {name: pd.Series(plain_labels(pd.Series(targets.get(name, [])))).value_counts() for name in PARTS}
    lines = [
        "## Classes",
        "",
        "| class | train rows | validation rows | test rows | test precision | test recall | test F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in class_report.iloc[:-2].itertuples(index=False):  # the last two rows are the averages
        rows = [f"{int(counts[name].get(row[0], 0)):,}" for name in PARTS]
        lines.append(f"| {row[0]} | {' | '.join(rows)} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} |")
    return [*lines, ""]


def _threshold_section(problem: ProblemSpec, threshold: float, test: Mapping[str, float], snapshot: bool) -> list[str]:
    return [
        "## Decision threshold",
        "",
        f"Probability >= **{threshold:.4f}** means {problem.positive_label}. Rule: {threshold_rule()}",
        f"On the test {'part' if snapshot else 'days'} it flags with precision "
        f"{test.get('precision', float('nan')):.3f} and recall {test.get('recall', float('nan')):.3f}.",
        "",
    ]


def _intended_use(problem: ProblemSpec, classes: Sequence[Any], snapshot: bool) -> str:
    if problem.intended_use:
        return problem.intended_use
    scope = "the training data" if snapshot else "the window"
    caution = (
        "decision support in the setting the training data comes from. Not for automated decisions without "
        f"review, nor for cases from another population or period than {scope}."
    )
    if problem.task == "binary":
        return (
            f"Estimate, before the outcome is known, the probability that a case is {problem.positive_label}, and "
            f"flag it when that probability reaches the threshold: {caution}"
        )
    if problem.task == "multiclass":
        names = ", ".join(str(name) for name in classes)
        return (
            f"Estimate, before the outcome is known, which class a case belongs to ({names}) and how likely each "
            f"class is: {caution}"
        )
    return f"Estimate the value of `{problem.target}` for a case before it is known: {caution}"


def _limits(
    problem: ProblemSpec, window: TrainingWindow, targets: Mapping[str, pd.Series], test_rows: int
) -> list[str]:
    snapshot = window.row_split is not None
    if snapshot:
        limits = [
            f"Fitted on one snapshot (loaded {_loaded(window)}) split at random: the "
            "test rows come from the same population and time as the training rows, so the test metrics do not "
            "show how the model ages; cases from another population or a later time may score worse.",
            f"Test metrics come from {test_rows:,} rows; a small test part gives noisy estimates.",
        ]
    else:
        limits = [
            f"Fitted on {_span(window.train_days)} only: patterns that change over "
            "longer periods (season, schedules, policy) are not learned, and scores outside this period may drift.",
            f"Test metrics come from {test_rows:,} rows on {len(window.test_days)} days; "
            "short test periods give noisy estimates.",
        ]
    if problem.task == "binary":
        part = "rows" if snapshot else "days"
        limits.append(
            f"The threshold was chosen on the validation {part}: if the positive rate shifts, precision and recall "
            "at that threshold shift with it. Check the calibration plot before reading probabilities as rates."
        )
    elif problem.task == "multiclass":
        limits.append(
            "Classes with few rows have noisy per-class metrics (see the support in classification_report.csv). "
            "Check the calibration plot (of the most probable class) before reading probabilities as rates."
        )
    else:
        train = np.asarray(targets.get("train", []), dtype="float64")
        seen = f" ({_number(train.min())} to {_number(train.max())})" if len(train) else ""
        limits.append(
            "The error metrics are averages: residuals.csv and the residual plot show for which predicted values "
            f"the model is biased or less precise. Values outside the training targets' range{seen} are rarely "
            "predicted well."
        )
    return [*limits, *problem.known_limits]


def model_card(
    *,
    problem: ProblemSpec,
    candidate: str,
    window: TrainingWindow,
    targets: Mapping[str, pd.Series],
    validation: Mapping[str, float],
    test: Mapping[str, float],
    threshold: float | None = None,
    classes: Sequence[Any] = (),
    class_report: pd.DataFrame | None = None,
    importance: pd.DataFrame | None = None,
    importance_label: str = "drop in ROC AUC",
    code_version: str | None = None,
) -> str:
    """A short markdown model card for one candidate.

    Intended use and problem-specific limits come from ``problem.intended_use`` and
    ``problem.known_limits`` when the problem defines them; the limits that follow from the window
    and the task are always listed.

    Args:
        problem: The problem the model solves (its task decides the sections).
        candidate: Candidate family name.
        window: The training window (days per part, or a snapshot's row split, and the data version).
        targets: Each part's target column (``train``, ``validation``, ``test``).
        validation / test: The task's metrics (:meth:`TaskKind.evaluate`).
        threshold: The decision threshold stored with a binary model (required for binary).
        classes: A classifier's classes, in the order of its probability columns.
        class_report: A multiclass model's ``classification_report_table`` of the test part.
        importance: Optional permutation importance table (top five are listed).
        importance_label: What the importance measures (``evaluation_tables.importance_label``).
        code_version: Commit the model was trained with.

    Returns:
        Markdown text.

    Raises:
        ValueError: a binary card without a threshold, or a multiclass card without its class report.
    """
    if problem.task == "binary" and threshold is None:
        raise ValueError(f"{problem.name}/{candidate}: a binary model card needs the decision threshold")
    if problem.task == "multiclass" and class_report is None:
        raise ValueError(f"{problem.name}/{candidate}: a multiclass model card needs the test part's class report")
    snapshot = window.row_split is not None
    if problem.task == "binary":
        label = f"Label `{problem.target}`: 1 = {problem.positive_label}, 0 = {problem.negative_label}."
    elif problem.task == "multiclass":
        label = f"Label `{problem.target}`: one of {len(classes)} classes ({', '.join(str(c) for c in classes)})."
    else:
        label = f"Target `{problem.target}`: a number."
    lines = [
        f"# Model card: {problem.name} / {candidate}",
        "",
        "## Problem",
        "",
        problem.description,
        "",
        f"{label} "
        f"Inputs: {len(problem.numeric_features)} numeric features ({', '.join(problem.numeric_features)}) and "
        f"{len(problem.categorical_features)} categorical ({', '.join(problem.categorical_features)}).",
        "",
        *_data_section(problem, window, targets, classifier=problem.task != "regression"),
        "## Metrics",
        "",
        *_metrics_table(problem.task, validation, test),
        "",
    ]
    if problem.task == "binary" and threshold is not None:
        lines += _threshold_section(problem, threshold, test, snapshot)
    if problem.task == "multiclass" and class_report is not None:
        lines += _classes_section(targets, class_report)
    if importance is not None and not importance.empty:
        lines += [
            f"## Most important inputs (permutation, test {'part' if snapshot else 'days'})",
            "",
            f"| feature | {importance_label} |",
            "| --- | ---: |",
        ]
        lines += [f"| {row.feature} | {row.importance_mean:.4f} |" for row in importance.head(5).itertuples()]
        lines.append("")
    limits = _limits(problem, window, targets, len(targets.get("test", [])))
    lines += [
        "## Intended use",
        "",
        _intended_use(problem, classes, snapshot),
        "",
        "## Known limits",
        "",
        *[f"- {item}" for item in limits],
        "",
    ]
    if code_version:
        lines += ["## Lineage", "", f"- code version `{code_version}`", ""]
    return "\n".join(lines)
