"""Drift and live performance: should the champion be retrained?

Compared with the **training reference** of the current champion (the feature partitions of its
training and validation days, read back from the lake by the window recorded in its MLflow run):

1. the **newest days**: the last ``MLP_DRIFT_WINDOW_DAYS`` (7) clean partitions up to the one an
   ETL run just published, as features built with the problem's own code (one day alone is no
   distribution: a day has one weekday and nearly one weather), and
2. the **served inputs**: the feature values the API logged for recent predictions.

Per-feature drift comes from Evidently's data drift preset with the population stability index
(PSI) for every column, and a column counts as drifted at PSI >= 0.25, the usual "significant
shift" level. Weather is never stationary, so some weather columns drift most weeks (pressure,
temperature and dew point almost every week). Measured on the 2013 replay (``bench/drift_year.py``,
7-day windows against the champion's reference), 14-38% of the features drift, median 24%; the
default share threshold of 30% flags 13 of 47 weeks: the February blizzard, the March nor'easter,
the December snow, and several spring and autumn temperature swings. Short summer thunderstorms
barely move a week's distributions: drift alone misses them, the live-performance check is there
for that. Calendar features that shift by construction (the problem lists them in
``ProblemSpec.drift_exclude``, e.g. month) are not tested. **Live performance** is the champion's
metrics on its predictions whose outcome is known, served by the API or written by the batch scorer
(``live_outcomes.champion_outcomes``; ``live_source`` says which), by ``live_outcomes.variant_metrics``
of the champion's task (its registered model's metadata), next to its offline test metrics.

A retrain is requested when the share of drifted features reaches ``MLP_DRIFT_SHARE_THRESHOLD``, or
when live performance fell by more than sampling noise (1.645 standard errors, so a few hundred
outcomes cannot trigger a retrain by chance), on at least 100 outcomes:

- binary: live ROC AUC ``MLP_LIVE_AUC_DROP`` or more below the offline test ROC AUC (standard error:
  Hanley and McNeil);
- multiclass and regression: the live mean per-prediction loss (log loss; squared error) more than
  ``MLP_LIVE_LOSS_RISE`` (relative) above the offline test loss (test log loss; test RMSE squared),
  standard error ``std / sqrt(n)`` of the live mean.

The Evidently HTML report is kept in the lake (``monitoring/date=D/``) and in MLflow (experiment
``<model>-monitoring``).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.etl import CLEAN, FEATURES
from include.mlpipeline.data.lake import Lake, as_day
from include.mlpipeline.monitoring.live_outcomes import (
    champion_outcomes,
    live_source,
    recent_days,
    source_counts,
    variant_metrics,
)
from include.mlpipeline.serving.prediction_log import PREDICTIONS, SHADOW
from include.mlpipeline.telemetry import pipeline_metrics

log = logging.getLogger(__name__)

MONITORING = "monitoring"
REFERENCE_ROWS = 20_000
SEED = 7
DRIFT_METHOD = "psi"
DRIFT_THRESHOLD = 0.25


def monitored_features(problem: ProblemSpec) -> list[str]:
    excluded = set(problem.drift_exclude)
    return [c for c in problem.feature_columns if c not in excluded]


def reference_frame(champion_version: str, *, lake: Lake, problem: ProblemSpec, name: str) -> pd.DataFrame:
    """The champion's training reference: feature partitions from its window start to its test start."""
    from mlflow import MlflowClient

    client = MlflowClient()
    version = client.get_model_version(name, champion_version)
    params = client.get_run(version.run_id).data.params
    end = params.get("window_end")
    return window_reference(params["window_start"], params["test_start"], end, lake=lake, problem=problem)


def window_reference(
    start: str | dt.date,
    test_start: str | dt.date,
    end: str | dt.date | None = None,
    *,
    lake: Lake,
    problem: ProblemSpec,
) -> pd.DataFrame:
    """A training window's reference: its feature partitions from ``start`` up to (not including)
    ``test_start`` (train and validation days; the held-out test days are not part of it), a fixed
    sample of at most ``REFERENCE_ROWS`` rows. A window split by rows (a snapshot: train, validation
    and test share its one load) has ``test_start == start``: then its partitions up to ``end``.
    Also used without MLflow by ``bench/drift_year.py``.
    """
    start, test_start = as_day(start), as_day(test_start)
    last = as_day(end) if end is not None else test_start
    partitions = lake.partitions(FEATURES)
    if test_start > start:
        days = [d for d in partitions if start <= d < test_start]
    else:
        days = [d for d in partitions if start <= d <= last]
    if not days:
        raise FileNotFoundError(f"no feature partitions of the champion's window {start}..{test_start} in the lake")
    frame = lake.read_many(FEATURES, days, columns=problem.feature_columns)
    return frame.sample(min(len(frame), REFERENCE_ROWS), random_state=SEED)


def current_window(days: list[str], window_days: int, *, lake: Lake, problem: ProblemSpec) -> pd.DataFrame:
    """Features of the last ``window_days`` clean partitions up to the newest of ``days``."""
    if not days:
        return pd.DataFrame()
    newest = max(as_day(d) for d in days)
    window = [d for d in lake.partitions(CLEAN) if d <= newest][-window_days:]
    frames = [problem.build_features(lake.read(CLEAN, day)) for day in window]
    return pd.concat(frames, ignore_index=True)[problem.feature_columns] if frames else pd.DataFrame()


def served_inputs(lake: Lake, problem: ProblemSpec, lookback_days: int) -> pd.DataFrame:
    """Feature values the API logged for its recent predictions (the log's ``f_`` columns)."""
    days = recent_days(lake, lookback_days)
    logged = lake.read_appended(PREDICTIONS, days) if days else pd.DataFrame()
    columns = [f"f_{c}" for c in problem.feature_columns]
    if logged.empty or not set(columns) <= set(logged.columns):
        return pd.DataFrame()
    if "variant" in logged.columns:  # a shadow answer repeats its request's features: count each request once
        logged = logged[logged["variant"] != SHADOW]
    return logged[columns].rename(columns=lambda c: c[2:])


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], problem: ProblemSpec):
    """Run Evidently's data drift preset; returns (snapshot, {feature: score}, drifted features, share)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in features if c in problem.numeric_features]
    categorical = [c for c in features if c in problem.categorical_features]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(columns=features, method=DRIFT_METHOD, threshold=DRIFT_THRESHOLD)
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current[features], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[features], data_definition=definition),
    )
    scores, drifted = {}, []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            column, score = config["column"], float(metric["value"])
            scores[column] = score
            if score >= float(config.get("threshold", DRIFT_THRESHOLD)):
                drifted.append(column)
    share = len(drifted) / len(scores) if scores else 0.0
    return snapshot, scores, sorted(drifted), share


def live_performance(
    lake: Lake, problem: ProblemSpec, champion_version: str, lookback_days: int, task: str | None = None
) -> dict[str, float]:
    """The champion's metrics on its recent predictions with a known outcome ({} if none): those the API
    served and those the batch scorer wrote (``live_outcomes.champion_outcomes``), counted per source in
    ``predictions_api`` and ``predictions_batch``.

    ``task`` is the champion's (its registered metadata; default the problem's). For multiclass and
    regression the metrics also carry ``mean_loss`` and ``loss_std`` (of the per-prediction loss),
    which the live check compares with the offline loss.
    """
    task = task or problem.task
    if task != problem.task:
        message = "champion %s predicts %s, the problem %s: live performance not compared"
        log.warning(message, champion_version, task, problem.task)
        return {}
    mine = champion_outcomes(lake, problem, champion_version, lookback_days)
    if not len(mine):
        return {}
    metrics = variant_metrics(mine, task)
    metrics.update(source_counts(mine))
    if task != "binary":
        metrics["mean_loss"] = float(mine["loss"].mean())
        metrics["loss_std"] = float(mine["loss"].std(ddof=1)) if len(mine) > 1 else 0.0
    return metrics


OFFLINE_METRICS = {
    "binary": ("roc_auc", "log_loss"),
    "multiclass": ("log_loss", "macro_f1", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}
"""The champion's offline test metrics the summary shows next to the live ones, by task kind."""


def offline_metrics(run_metrics: dict[str, float], task: str) -> dict[str, float]:
    """The champion's offline test metrics (its training run's ``test_*`` metrics) of ``task``."""
    return {k: run_metrics[f"test_{k}"] for k in OFFLINE_METRICS[task] if f"test_{k}" in run_metrics}


def champion_task(name: str, version: str, problem: ProblemSpec) -> str:
    """The task a registered version was trained for (its model metadata; older versions: the problem's)."""
    import mlflow

    metadata = mlflow.models.get_model_info(f"models:/{name}/{version}").metadata or {}
    return str(metadata.get("task") or problem.task)


def _compare(
    label: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    lake: Lake,
    problem: ProblemSpec,
    day: dt.date,
    folder: Path,
) -> dict[str, Any]:
    """One drift comparison; the HTML report goes to the lake (and ``folder``, for MLflow)."""
    if current.empty:
        return {"rows": 0}
    snapshot, scores, drifted, share = drift_report(reference, current, monitored_features(problem), problem)
    path = folder / f"drift-{label}.html"
    snapshot.save_html(str(path))
    target = f"{lake.partition_path(MONITORING, day)}/drift-{label}.html"
    lake.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    lake.fs.put_file(str(path), target)
    return {
        "rows": len(current),
        "drift_share": share,
        "drifted_features": drifted,
        "scores": scores,
        "report_uri": lake.uri(target),
    }


LIVE_AUC_Z = 1.645  # one-sided 5%: a drop smaller than this many standard errors may be sampling noise


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Standard error of a ROC AUC measured on ``positives`` and ``negatives`` (Hanley and McNeil, 1982).

    Args:
        auc: The measured ROC AUC.
        positives: Outcomes of the positive class it was measured on.
        negatives: Outcomes of the negative class.

    Returns:
        The standard error; it shrinks as the rarer class grows.
    """
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return float(max(variance, 0.0) / (positives * negatives)) ** 0.5


LIVE_MIN_OUTCOMES = 100  # fewer outcomes than this say too little about live performance to act on


def _live_check(summary: dict[str, Any], settings: Settings) -> str | None:
    """A reason to retrain if live performance fell too far below the offline one, by more than its noise."""
    if summary.get("task", "binary") == "binary":
        return _live_auc_check(summary, settings)
    return _live_loss_check(summary, settings)


def _live_auc_check(summary: dict[str, Any], settings: Settings) -> str | None:
    """Binary: live ROC AUC fell too far below the offline one, by more than its noise.

    Live AUC comes from the outcomes known so far, often a few hundred: with 100 outcomes, 20 of
    them late, and an AUC of 0.70, its standard error is 0.07, more than the default limit. So a drop
    counts only when it reaches ``MLP_LIVE_AUC_DROP`` and is also larger than ``LIVE_AUC_Z`` standard
    errors of the live AUC (the offline test set is far larger; its own error is left out).
    """
    live, offline = summary["live"], summary["offline"]
    if live.get("roc_auc") is None or "roc_auc" not in offline or live["predictions"] < LIVE_MIN_OUTCOMES:
        return None
    positives = round(live["positive_rate"] * live["predictions"])
    error = auc_standard_error(live["roc_auc"], positives, int(live["predictions"]) - positives)
    drop = offline["roc_auc"] - live["roc_auc"]
    summary["live_auc_drop"], summary["live_auc_standard_error"] = drop, error
    if drop < settings.live_auc_drop or drop <= LIVE_AUC_Z * error:
        return None
    return (
        f"live ROC AUC {live['roc_auc']:.3f} is {drop:.3f} below offline {offline['roc_auc']:.3f} "
        f"(limit {settings.live_auc_drop}; standard error of the live AUC {error:.3f}, "
        f"{live['predictions']:.0f} outcomes)"
    )


def offline_loss(offline: dict[str, float], task: str) -> float | None:
    """The offline mean per-prediction loss: test log loss (multiclass), test RMSE squared (regression)."""
    if task == "multiclass":
        return offline.get("log_loss")
    return offline["rmse"] ** 2 if "rmse" in offline else None


def _live_loss_check(summary: dict[str, Any], settings: Settings) -> str | None:
    """Multiclass and regression: the live mean loss rose too far above the offline one, beyond its noise.

    A rise counts when the live mean loss is more than ``MLP_LIVE_LOSS_RISE`` (relative) above the
    offline test loss and the excess is also larger than ``LIVE_AUC_Z`` standard errors of the live
    mean (``std / sqrt(n)``; the offline test set is far larger, its own error is left out).
    """
    task, live = summary["task"], summary["live"]
    offline = offline_loss(summary["offline"], task)
    if offline is None or "mean_loss" not in live or live["predictions"] < LIVE_MIN_OUTCOMES:
        return None
    limit = settings.live_loss_rise
    loss, error = live["mean_loss"], live["loss_std"] / live["predictions"] ** 0.5
    excess = loss - offline
    summary["live_loss"], summary["offline_loss"] = loss, offline
    summary["loss_rise"] = excess / offline if offline > 0 else float("nan")
    summary["live_loss_standard_error"] = error
    if excess <= limit * offline or excess <= LIVE_AUC_Z * error:
        return None
    statistic = "log loss" if task == "multiclass" else "squared error"
    return (
        f"live mean {statistic} {loss:.4g} is {excess:.4g} above offline {offline:.4g} "
        f"({summary['loss_rise']:+.1%}; limit +{limit:.0%}; standard error of the live mean {error:.4g}, "
        f"{live['predictions']:.0f} outcomes)"
    )


def _log_run(summary: dict[str, Any], name: str, day: dt.date, folder: Path) -> None:
    import mlflow

    mlflow.set_experiment(f"{name}-monitoring")
    with mlflow.start_run(run_name=f"monitor {day}", tags={"stage": "monitoring"}):
        mlflow.set_tags(
            {
                "retrain": str(summary["retrain"]).lower(),
                "champion_version": summary["champion_version"],
                "live_source": summary["live_source"],
                "reasons": " | ".join(summary["reasons"])[:5000],
            }
        )
        for label in COMPARISONS:
            part = summary.get(label, {})
            if "drift_share" in part:
                mlflow.log_metric(f"{label}_drift_share", part["drift_share"])
                mlflow.log_metrics({f"{label}_drift_{k}": v for k, v in part["scores"].items()})
        mlflow.log_metrics({f"live_{k}": v for k, v in summary["live"].items()})
        mlflow.log_metrics({k: summary[k] for k in LIVE_CHECK_KEYS if k in summary})
        for path in folder.glob("*.html"):
            mlflow.log_artifact(str(path), artifact_path="drift")


COMPARISONS = ("newest_days", "served_inputs")
LIVE_CHECK_KEYS = (
    "live_auc_drop",
    "live_auc_standard_error",
    "live_loss",
    "offline_loss",
    "loss_rise",
    "live_loss_standard_error",
)


def monitor(days: list[str], *, lake: Lake | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Check new partitions and served inputs for drift, and live performance; decide on a retrain.

    Args:
        days: The partitions the triggering ETL run(s) published.

    Returns:
        A summary for the asset event and alerts: drift share and scores per comparison, drifted
        features, live and offline metrics, report locations, ``retrain`` and its reasons.
    """
    from mlflow import MlflowClient

    from include.mlpipeline.ml.registry import alias_version
    from include.mlpipeline.ml.tracking import configure, registered_model_name

    settings = settings or get_settings()
    lake = lake or Lake.from_settings()
    problem = load_problem()
    configure(settings, problem)
    name = registered_model_name(settings, problem)
    champion = alias_version(settings.champion_alias, name)
    if champion is None:
        return {"retrain": False, "reasons": [], "status": "no champion yet: nothing to compare with"}
    reference = reference_frame(champion, lake=lake, problem=problem, name=name)
    day = max(as_day(d) for d in days) if days else dt.datetime.now(dt.UTC).date()
    currents = {
        "newest_days": current_window(days, settings.drift_window_days, lake=lake, problem=problem),
        "served_inputs": served_inputs(lake, problem, settings.ab_lookback_days),
    }
    summary: dict[str, Any] = {
        "champion_version": champion,
        "partitions": days,
        "features_tested": len(monitored_features(problem)),
        "retrain_window_days": settings.retrain_window_days,
    }
    reasons: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, current in currents.items():
            summary[label] = _compare(label, reference, current, lake=lake, problem=problem, day=day, folder=Path(tmp))
            share = summary[label].get("drift_share", 0.0)
            if share >= settings.drift_share_threshold:
                drifted = summary[label]["drifted_features"]
                reasons.append(
                    f"{label}: {len(drifted)} of {len(summary[label]['scores'])} features drifted "
                    f"({share:.0%} >= {settings.drift_share_threshold:.0%}): {', '.join(drifted)}"
                )
        offline = MlflowClient().get_run(MlflowClient().get_model_version(name, champion).run_id).data.metrics
        summary["task"] = champion_task(name, champion, problem)
        summary["offline"] = offline_metrics(offline, summary["task"])
        summary["live"] = live_performance(lake, problem, champion, settings.ab_lookback_days, summary["task"])
        summary["live_source"] = live_source(summary["live"])
        if reason := _live_check(summary, settings):
            reasons.append(reason)
        summary["retrain"], summary["reasons"] = bool(reasons), reasons
        _log_run(summary, name, day, Path(tmp))
    log.info("monitor %s: retrain=%s %s", days, summary["retrain"], reasons)
    pipeline_metrics.record_drift(summary, name)  # drift share and scores, live metrics (if configured)
    return summary
