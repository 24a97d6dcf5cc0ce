"""Evaluation tables of a fitted candidate: calibration bins and permutation importance (pandas frames)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

IMPORTANCE_MAX_ROWS = 2000
IMPORTANCE_REPEATS = 3


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
