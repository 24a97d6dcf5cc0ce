"""Which form of a loaded model answers: its compiled array code, checked against the pipeline itself.

:func:`choose_form` compiles the pipeline (:mod:`.compiled_model`) and serves the compiled form only
if its predictions equal the pipeline's own (``predict_proba``/``predict``, through the task kind)
to :data:`TOLERANCE` on the rows it is given (the canaries and the validation rows registered with
the model) and on :func:`probe_rows` built from them, which reach every known category, an unknown
one and missing numbers. Otherwise the pipeline itself answers, and the reason is kept. The model
store calls it when it loads a version; ``/model`` shows the outcome (:meth:`ScoringForm.summary`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.ml.task_kinds import TaskKind
from include.mlpipeline.serving.compiled_model import UNKNOWN, CompiledPipeline, compile_pipeline

PIPELINE = "pipeline"  # the form's name on /model when the pipeline itself answers


def probe_rows(compiled: CompiledPipeline, base: pd.DataFrame) -> pd.DataFrame:
    """Rows that reach every part of the compiled form: ``base`` (real feature rows), then each known
    category of each column in turn, then every category unknown and every number missing."""
    categories = compiled.known_categories()
    count = max([len(base), *map(len, categories.values())])
    probe = base.iloc[np.arange(count) % len(base)].reset_index(drop=True)
    for column, values in categories.items():
        probe[column] = pd.Series([values[i % len(values)] for i in range(count)], dtype=object)
    empty = base.iloc[[0]].reset_index(drop=True).astype(object)
    for column in base.columns:
        empty[column] = UNKNOWN if column in categories else np.nan
    return pd.concat([base.reset_index(drop=True), probe, empty], ignore_index=True)


def max_difference(found: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference between the compiled form's predictions and ``expected`` (the
    pipeline's own); infinite when their shapes differ or one is missing where the other is not."""
    found, expected = np.asarray(found, dtype="float64"), np.asarray(expected, dtype="float64")
    if found.shape != expected.shape:
        return math.inf
    difference = np.abs(found - expected)
    same_missing = np.isnan(found) & np.isnan(expected)
    return float(np.where(same_missing, 0.0, np.nan_to_num(difference, nan=math.inf)).max(initial=0.0))


@dataclass(frozen=True)
class ScoringForm:
    """How a loaded model is served: its compiled form (None: the pipeline itself), the form's name,
    the largest difference from the pipeline's own answers on the rows checked, and why the pipeline
    is served when it is."""

    compiled: CompiledPipeline | None
    form: str
    max_difference: float | None
    rows_checked: int
    reason: str | None = None

    def summary(self) -> dict[str, Any]:
        """What /model shows of it."""
        return {
            "form": self.form,
            "max_difference": self.max_difference,
            "tolerance": TOLERANCE,
            "rows_checked": self.rows_checked,
            "reason": self.reason,
        }


TOLERANCE = 1e-6  # the most a compiled answer may differ from the pipeline's own to be served


def choose_form(pipeline: Any, kind: TaskKind, rows: pd.DataFrame) -> ScoringForm:
    """The compiled form of ``pipeline`` if its answers equal the pipeline's own (``kind.predict``) to
    :data:`TOLERANCE` on ``rows`` (feature rows: the model's own columns) and the :func:`probe_rows`
    built from them; else the pipeline itself, with the reason."""
    try:
        compiled = compile_pipeline(pipeline, kind.classifier)
    except Exception as error:  # any pipeline the compiler cannot read is served as it is
        return ScoringForm(None, PIPELINE, None, 0, f"no array form: {type(error).__name__}: {error}")
    checked = probe_rows(compiled, rows)
    expected = kind.predict(pipeline, checked)
    try:
        difference = max_difference(kind.predict(compiled, checked), expected)
    except Exception as error:  # a compiled form that fails on a probe is not served
        return ScoringForm(None, PIPELINE, None, len(checked), f"array form failed: {type(error).__name__}: {error}")
    if difference > TOLERANCE:
        reason = f"array form differs from the pipeline by {difference:.3g} (more than {TOLERANCE:g})"
        return ScoringForm(None, PIPELINE, difference, len(checked), reason)
    return ScoringForm(compiled, compiled.form, difference, len(checked))
