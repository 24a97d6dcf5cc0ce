"""Served predictions joined with what happened: the live outcomes A/B tests and monitoring score.

The API logs every prediction (``predictions/``, partitioned by the day it was made). Outcomes come
from the pipeline itself (the label in the feature partitions, once a later ETL run has landed what
really happened) and from callers (``POST /feedback``, which wins when both exist).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.prediction_log import FEEDBACK, PREDICTIONS

EPSILON = 1e-7


def recent_days(lake: Lake, lookback_days: int, today: dt.date | None = None) -> list[dt.date]:
    """The days whose predictions an evaluation reads: the last ``lookback_days`` with a log."""
    try:
        entries = lake.fs.ls(lake.dataset_path(PREDICTIONS), detail=False)
    except FileNotFoundError:
        return []
    days = sorted(dt.date.fromisoformat(e.rstrip("/").rsplit("date=", 1)[-1]) for e in entries if "date=" in e)
    if today is not None:
        days = [d for d in days if d <= today]
    return days[-lookback_days:]


def scored_predictions(
    days: list[dt.date], *, lake: Lake, problem: ProblemSpec, label_partitions: int = 21
) -> pd.DataFrame:
    """Logged predictions of ``days`` that have a known outcome, one row per prediction.

    Outcomes: the problem's label in the newest ``label_partitions`` feature partitions (where newly
    landed outcomes are; the log is partitioned by when a prediction was made, the features by the
    data's own day, so they are matched by key, not by day), overridden by ``/feedback`` outcomes.
    """
    predictions = lake.read_appended(PREDICTIONS, days)
    if predictions.empty:
        return predictions
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
    scored = predictions.merge(outcomes.astype({"id": str}), on="id", how="inner")
    probability = scored["probability"].clip(EPSILON, 1 - EPSILON)
    outcome = scored["outcome"].astype(int)
    scored["log_loss"] = -(outcome * np.log(probability) + (1 - outcome) * np.log(1 - probability))
    scored["outcome"] = outcome
    scored["predicted_positive"] = scored["label"] == problem.positive_label
    return scored


def variant_metrics(scored: pd.DataFrame) -> dict[str, float]:
    """Live metrics of one variant's scored predictions."""
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
