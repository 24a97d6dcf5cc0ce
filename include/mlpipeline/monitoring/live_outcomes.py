"""Served predictions joined with what happened: the live outcomes A/B tests and monitoring score.

The API logs every prediction (``predictions/``, partitioned by the day it was made). Outcomes come
from the pipeline itself (the label in the feature partitions, once a later ETL run has landed what
really happened) and from callers (``POST /feedback``, which wins when both exist).

Each scored prediction gets its ``loss``, the task kind's per-prediction loss (lower is better):

- ``binary``: the log loss of the logged p(positive) (also kept as ``log_loss``);
- ``multiclass``: the log loss of the probability the logged class probabilities (``probabilities``,
  a JSON object {class: probability}) gave the class that happened; classes compare as text;
- ``regression``: the squared error of the logged ``value``.

Logs written before the API logged ``value`` and ``probabilities`` (binary models only) lack those
columns; a multiclass or regression prediction without them cannot be scored and is left out.

Two sources of predictions (``source``): ``api``, the API's prediction log (the A/B test reads only
this one: only the API splits traffic), and ``batch``, the batch scorer's partitions
(``batch_predictions/date=D``, one per clean partition, written by ``deployment.batch_scoring`` with
the prediction log's answer columns). Batch rows the model's training window held
(``seen_in_training``) are no live outcome and are left out. :func:`champion_outcomes` joins both
for the monitor's live-performance check, so a deployment without traffic still has live metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake, as_day
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.serving.prediction_log import CHAMPION, FEEDBACK, PREDICTIONS

log = logging.getLogger(__name__)

EPSILON = 1e-7
API, BATCH = "api", "batch"
SOURCES = (API, BATCH)
BATCH_PREDICTIONS = "batch_predictions"
"""The batch scorer's dataset: the champion's answers to a clean partition's rows, committed whole."""
SEEN_IN_TRAINING = "seen_in_training"
"""The batch column saying the model's training window held the row (so it is no live outcome)."""


def recent_days(lake: Lake, lookback_days: int, today: dt.date | None = None, source: str = API) -> list[dt.date]:
    """The days whose predictions an evaluation reads: the last ``lookback_days`` with a log (``api``:
    when the predictions were made), or with committed batch predictions (``batch``: the data's days)."""
    if _checked(source) == BATCH:
        days = lake.partitions(BATCH_PREDICTIONS)
        return [d for d in days if today is None or d <= today][-lookback_days:]
    try:
        entries = lake.fs.ls(lake.dataset_path(PREDICTIONS), detail=False)
    except FileNotFoundError:
        return []
    days = sorted(dt.date.fromisoformat(e.rstrip("/").rsplit("date=", 1)[-1]) for e in entries if "date=" in e)
    if today is not None:
        days = [d for d in days if d <= today]
    return days[-lookback_days:]


def scored_predictions(
    days: list[dt.date], *, lake: Lake, problem: ProblemSpec, label_partitions: int = 21, source: str = API
) -> pd.DataFrame:
    """Predictions of ``days`` from ``source`` (module doc) that have a known outcome, one row per prediction.

    Outcomes: the problem's label in the newest ``label_partitions`` feature partitions (where newly
    landed outcomes are; the log is partitioned by when a prediction was made, the features by the
    data's own day, so they are matched by key, not by day), overridden by ``/feedback`` outcomes.

    Returns:
        The logged columns plus ``outcome`` and ``loss`` (module doc); binary rows also carry
        ``log_loss`` (the same loss) and ``predicted_positive``.
    """
    predictions = lake.read_appended(PREDICTIONS, days) if _checked(source) == API else _batch_rows(lake, days)
    if predictions.empty:
        return predictions
    outcomes = _outcomes(days, lake=lake, problem=problem, label_partitions=label_partitions)
    scored = predictions.merge(outcomes, on="id", how="inner")
    scored = scored[scored["outcome"].notna()].reset_index(drop=True)
    if problem.task == "binary":
        return _score_binary(scored, problem)
    if problem.task == "multiclass":
        return _score_multiclass(scored)
    return _score_regression(scored)


def _checked(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"unknown source of predictions {source!r}; one of {', '.join(SOURCES)}")
    return source


def _batch_rows(lake: Lake, days: list[dt.date]) -> pd.DataFrame:
    """The committed batch predictions of ``days``, without the rows the model's training window held."""
    committed = set(lake.partitions(BATCH_PREDICTIONS))
    frames = [lake.read(BATCH_PREDICTIONS, day) for day in sorted({as_day(d) for d in days}) if day in committed]
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    return rows[~rows[SEEN_IN_TRAINING].astype(bool)].reset_index(drop=True)


def champion_outcomes(
    lake: Lake, problem: ProblemSpec, version: str, lookback_days: int, sources: tuple[str, ...] = SOURCES
) -> pd.DataFrame:
    """The scored predictions (:func:`scored_predictions`) of champion ``version`` over each source's
    last ``lookback_days``, with a ``source`` column (``api`` or ``batch``): its champion answers in the
    API's log, as the log has them, and its batch predictions of the ids the log has none of (a caller
    got the API's answer), each id once (its newest partition's: a snapshot's loads repeat ids)."""
    parts: list[pd.DataFrame] = []
    for source in sources:
        days = recent_days(lake, lookback_days, source=source)
        scored = (
            scored_predictions(days, lake=lake, problem=problem, label_partitions=lookback_days + 7, source=source)
            if days
            else pd.DataFrame()
        )
        if scored.empty:
            continue
        mine = scored["model_version"].astype(str) == str(version)
        if source == API:
            scored = scored[mine & (scored["variant"] == CHAMPION)]
        else:
            scored = scored[mine].drop_duplicates("id", keep="last")
            scored = scored[~scored["id"].isin(set().union(*(part["id"] for part in parts)))]
        parts.append(scored.assign(source=source))
    if len(parts) < 2:
        return parts[0].reset_index(drop=True) if parts else pd.DataFrame()
    shared = [c for c in parts[0].columns if all(c in part.columns for part in parts)]
    return pd.concat([part[shared] for part in parts], ignore_index=True)


def source_counts(scored: pd.DataFrame) -> dict[str, float]:
    """How many of :func:`champion_outcomes`' rows came from each source: ``predictions_<source>``."""
    return {f"predictions_{source}": float((scored["source"] == source).sum()) for source in SOURCES}


def live_source(metrics: dict[str, Any]) -> str:
    """Which sources live metrics (with :func:`source_counts`) came from: ``api``, ``batch``, ``api+batch``
    or ``none``."""
    return "+".join(source for source in SOURCES if metrics.get(f"predictions_{source}", 0) > 0) or "none"


def _outcomes(days: list[dt.date], *, lake: Lake, problem: ProblemSpec, label_partitions: int) -> pd.DataFrame:
    """What happened, by prediction id: the feature partitions' label, overridden by ``/feedback``."""
    key = problem.key_columns[0]
    labels = [
        lake.read(FEATURES, day, columns=[key, problem.target]) for day in lake.partitions(FEATURES)[-label_partitions:]
    ]
    outcomes = (
        pd.concat(labels).drop_duplicates(key, keep="last").rename(columns={key: "id", problem.target: "outcome"})
        if labels
        else pd.DataFrame(columns=["id", "outcome"])
    )
    feedback = lake.read_appended(FEEDBACK, days)
    if not feedback.empty:
        latest = feedback.sort_values("received_at").drop_duplicates("id", keep="last")[["id", "outcome"]]
        outcomes = pd.concat([outcomes[~outcomes["id"].isin(latest["id"])], latest])
    return outcomes.astype({"id": str})


def _score_binary(scored: pd.DataFrame, problem: ProblemSpec) -> pd.DataFrame:
    outcome = scored["outcome"].astype(int)
    loss = task_kind("binary").losses(outcome.to_numpy(), scored["probability"].to_numpy(dtype="float64"))
    return scored.assign(
        outcome=outcome, loss=loss, log_loss=loss, predicted_positive=scored["label"] == problem.positive_label
    )


def _score_multiclass(scored: pd.DataFrame) -> pd.DataFrame:
    logged = scored["probabilities"] if "probabilities" in scored else pd.Series("", index=scored.index)
    parsed = [class_probabilities(text) for text in logged]
    known = np.array([row is not None for row in parsed], dtype=bool)
    _warn_unscorable(int((~known).sum()), len(scored), "no class probabilities (`probabilities`) logged")
    scored = scored[known].reset_index(drop=True)
    rows = [row for row in parsed if row is not None]
    if not rows:
        return scored.assign(outcome=pd.Series(dtype=object), loss=pd.Series(dtype="float64"))
    classes = list(dict.fromkeys(name for row in rows for name in row))
    matrix = np.array([[row.get(name, 0.0) for name in classes] for row in rows], dtype="float64")
    outcome = scored["outcome"].map(class_text)
    loss = task_kind("multiclass").losses(outcome.to_numpy(dtype=object), matrix, classes)
    return scored.assign(outcome=outcome, label=scored["label"].map(class_text), loss=loss)


def _score_regression(scored: pd.DataFrame) -> pd.DataFrame:
    value = pd.to_numeric(scored["value"], errors="coerce") if "value" in scored else pd.Series(np.nan, scored.index)
    outcome = pd.to_numeric(scored["outcome"], errors="coerce")
    _warn_unscorable(int(value.isna().sum()), len(scored), "no predicted `value` logged")
    _warn_unscorable(int((value.notna() & outcome.isna()).sum()), len(scored), "an outcome that is not a number")
    known = (value.notna() & outcome.notna()).to_numpy()
    scored = scored[known].assign(value=value[known], outcome=outcome[known]).reset_index(drop=True)
    loss = task_kind("regression").losses(scored["outcome"].to_numpy(), scored["value"].to_numpy())
    return scored.assign(loss=loss)


def _warn_unscorable(count: int, total: int, why: str) -> None:
    if count:
        log.warning("%d of %d logged predictions with a known outcome have %s: left out of scoring", count, total, why)


def class_text(value: Any) -> str:
    """A class as text, the same whichever way it was stored: 2, 2.0, "2" and "2.0" are all "2"
    (a label column read back as floats, a class posted to ``/feedback`` as a number)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text
        return str(int(number)) if math.isfinite(number) and number.is_integer() else text
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def class_probabilities(text: Any) -> dict[str, float] | None:
    """The logged JSON object {class: probability}, classes as :func:`class_text`; None if absent or unreadable."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = json.loads(text)
        if not isinstance(parsed, dict) or not parsed:
            return None
        return {class_text(name): float(probability) for name, probability in parsed.items()}
    except (ValueError, TypeError):
        return None


def variant_metrics(scored: pd.DataFrame, task: str = "binary") -> dict[str, float]:
    """Live metrics of one variant's scored predictions (:func:`scored_predictions`) of a ``task``.

    binary: predictions, positive_rate, mean_probability, log_loss, brier, accuracy, roc_auc (with both
    outcomes); multiclass: predictions, log_loss, accuracy, macro_f1; regression: predictions, rmse,
    mae, mean_value, mean_outcome.
    """
    if task == "binary":
        return _binary_metrics(scored)
    if task == "multiclass":
        return _multiclass_metrics(scored)
    if task == "regression":
        return _regression_metrics(scored)
    raise ValueError(f"unknown task {task!r}; one of binary, multiclass, regression")


def _binary_metrics(scored: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    metrics = {
        "predictions": float(len(scored)),
        "positive_rate": float(scored["outcome"].mean()),
        "mean_probability": float(scored["probability"].mean()),
        "log_loss": float(scored["log_loss"].mean()),
        "brier": float(((scored["probability"] - scored["outcome"]) ** 2).mean()),
        "accuracy": float((scored["predicted_positive"].astype(int) == scored["outcome"]).mean()),
    }
    if scored["outcome"].nunique() == 2:
        metrics["roc_auc"] = float(roc_auc_score(scored["outcome"], scored["probability"]))
    return metrics


def _multiclass_metrics(scored: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import f1_score

    outcome, predicted = scored["outcome"].astype(str), scored["label"].astype(str)
    # Classes that neither happened nor were predicted in this window have no F1: leave them out of the mean.
    labels = sorted(set(outcome) | set(predicted))
    return {
        "predictions": float(len(scored)),
        "log_loss": float(scored["loss"].mean()),
        "accuracy": float((outcome == predicted).mean()),
        "macro_f1": float(f1_score(outcome, predicted, labels=labels, average="macro", zero_division=0)),
    }


def _regression_metrics(scored: pd.DataFrame) -> dict[str, float]:
    return {
        "predictions": float(len(scored)),
        "rmse": float(np.sqrt(scored["loss"].mean())),
        "mae": float((scored["value"] - scored["outcome"]).abs().mean()),
        "mean_value": float(scored["value"].mean()),
        "mean_outcome": float(scored["outcome"].mean()),
    }
