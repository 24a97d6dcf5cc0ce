"""The model card: a short markdown page per candidate (data, metrics, threshold, intended use, limits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml import metrics as metric_definitions
from include.mlpipeline.ml.window import TrainingWindow

METRIC_ORDER = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "positive_rate", "rows")


def threshold_rule() -> str:
    """The threshold rule as the metrics module's doc states it, so the card never drifts from the code."""
    for paragraph in (metric_definitions.__doc__ or "").split("\n\n"):
        text = " ".join(paragraph.split())
        if text.startswith("Threshold rule:"):
            return text.removeprefix("Threshold rule:").strip()
    return "see include/mlpipeline/ml/metrics.py"


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
    window: TrainingWindow,
    part_rows: Mapping[str, int],
    part_positive_rates: Mapping[str, float],
    validation: Mapping[str, float],
    test: Mapping[str, float],
    threshold: float,
    importance: pd.DataFrame | None = None,
    code_version: str | None = None,
) -> str:
    """A short markdown model card for one candidate.

    Intended use and problem-specific limits come from ``problem.intended_use`` and
    ``problem.known_limits`` when the problem defines them; the
    limits that follow from the window itself are always listed.

    Args:
        problem: The problem the model solves.
        candidate: Candidate family name.
        window: The training window (days per part and data version).
        part_rows: Rows per part (``train``, ``validation``, ``test``).
        part_positive_rates: Positive share per part.
        validation / test: Metrics from :func:`metrics.evaluate`.
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
    intended = problem.intended_use or (
        f"Estimate, before the outcome is known, the probability that a case is {positive}, and flag it when that "
        "probability reaches the threshold: decision support in the setting the training data comes from. Not for "
        "automated decisions without review, nor for cases from another population or period than the window."
    )
    limits = [
        f"Fitted on {_span(window.train_days)} only: patterns that change over "
        "longer periods (season, schedules, policy) are not learned, and scores outside this period may drift.",
        f"Test metrics come from {part_rows.get('test', 0):,} rows on {len(window.test_days)} days; "
        "short test periods give noisy estimates.",
        "The threshold was chosen on the validation days: if the positive rate shifts, precision and recall "
        "at that threshold shift with it. Check the calibration plot before reading probabilities as rates.",
        *problem.known_limits,
    ]
    lines += ["## Intended use", "", intended, "", "## Known limits", "", *[f"- {item}" for item in limits], ""]
    if code_version:
        lines += ["## Lineage", "", f"- code version `{code_version}`", ""]
    return "\n".join(lines)
