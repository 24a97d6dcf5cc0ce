"""A/B test of champion vs challenger on live traffic, decided by a stated statistical test.

Data: the API logs every prediction with the variant and model version that answered
(``predictions/``). Outcomes come from the pipeline itself (the label in the feature partitions, once
a later ETL run has landed what really happened) and from callers (``POST /feedback``, which wins
when both exist).

Test: for the current pair of versions, each variant's predictions with a known outcome are scored
by their log loss (lower is better). The challenger wins if a one-sided Welch t-test of
"challenger's mean log loss < champion's" gives p < ``MLP_AB_ALPHA`` (0.05), with at least
``MLP_AB_MIN_SAMPLES`` scored predictions per variant, and the challenger passed the offline floor
when it was registered. Log loss is a proper scoring rule: it rewards calibrated probabilities,
which the API serves, not just a ranking. Welch's test does not assume equal variances, and the
variants see different flights (the split is by flight key), so the samples are independent.

A win is emitted as an ``approved_model`` event: the deploy DAG then promotes the challenger
through the same verified deploy (and rollback) as a model approved by training.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.etl import FEATURES
from include.mlpipeline.lake import Lake
from include.mlpipeline.monitoring import metrics as pipeline_metrics
from include.mlpipeline.problem import ProblemSpec, load_problem
from include.mlpipeline.serving.prediction_log import CHALLENGER, CHAMPION, FEEDBACK, PREDICTIONS
from include.mlpipeline.settings import Settings, get_settings

log = logging.getLogger(__name__)

EPSILON = 1e-7


@dataclass
class ABDecision:
    """The outcome of one A/B evaluation."""

    decision: str  # challenger_wins | champion_better | no_significant_difference | insufficient_data | no_challenger
    reason: str
    champion_version: str | None
    challenger_version: str | None
    p_value: float | None = None
    variants: dict[str, dict[str, float]] = field(default_factory=dict)
    test: str = "one-sided Welch t-test on per-prediction log loss"

    @property
    def promote(self) -> bool:
        return self.decision == "challenger_wins"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promote": self.promote}


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


def decide(
    scored: pd.DataFrame,
    champion_version: str | None,
    challenger_version: str | None,
    *,
    alpha: float,
    min_samples: int,
    challenger_passed_floor: bool = True,
) -> ABDecision:
    """Apply the test (module doc) to scored predictions of the current version pair."""
    from scipy import stats

    if challenger_version is None or challenger_version == champion_version:
        return ABDecision("no_challenger", "no challenger distinct from the champion", champion_version, None)
    groups = (
        {
            CHAMPION: scored[(scored["variant"] == CHAMPION) & (scored["model_version"] == str(champion_version))],
            CHALLENGER: scored[
                (scored["variant"] == CHALLENGER) & (scored["model_version"] == str(challenger_version))
            ],
        }
        if len(scored)
        else {CHAMPION: scored, CHALLENGER: scored}
    )
    variants = {name: variant_metrics(rows) for name, rows in groups.items() if len(rows)}
    counts = {name: len(rows) for name, rows in groups.items()}
    if min(counts.values()) < min_samples:
        reason = f"not enough scored predictions: {counts} (need {min_samples} per variant)"
        return ABDecision("insufficient_data", reason, champion_version, challenger_version, variants=variants)
    challenger_loss = groups[CHALLENGER]["log_loss"].to_numpy()
    champion_loss = groups[CHAMPION]["log_loss"].to_numpy()
    better = stats.ttest_ind(challenger_loss, champion_loss, equal_var=False, alternative="less").pvalue
    worse = stats.ttest_ind(challenger_loss, champion_loss, equal_var=False, alternative="greater").pvalue
    summary = (
        f"log loss challenger {challenger_loss.mean():.4f} (n={len(challenger_loss)}) vs champion "
        f"{champion_loss.mean():.4f} (n={len(champion_loss)})"
    )
    if better < alpha and challenger_passed_floor:
        return ABDecision(
            "challenger_wins",
            f"{summary}; p={better:.4g} < {alpha}",
            champion_version,
            challenger_version,
            float(better),
            variants,
        )
    if better < alpha:
        return ABDecision(
            "no_significant_difference",
            f"{summary}; p={better:.4g} but the challenger failed the offline floor when registered",
            champion_version,
            challenger_version,
            float(better),
            variants,
        )
    if worse < alpha:
        return ABDecision(
            "champion_better",
            f"{summary}; p(challenger worse)={worse:.4g} < {alpha}",
            champion_version,
            challenger_version,
            float(better),
            variants,
        )
    return ABDecision(
        "no_significant_difference",
        f"{summary}; p={better:.4g} >= {alpha}",
        champion_version,
        challenger_version,
        float(better),
        variants,
    )


def evaluate_ab(
    *, lake: Lake | None = None, settings: Settings | None = None, today: str | dt.date | None = None
) -> dict[str, Any]:
    """Evaluate the live A/B test now: join predictions with outcomes, test, log the decision to MLflow.

    Returns:
        The decision as a dict; with ``promote`` true it also carries ``version`` (the challenger),
        which is what the deploy DAG reads from an approved_model event.
    """
    import mlflow
    from mlflow import MlflowClient

    from include.mlpipeline.registry import alias_version
    from include.mlpipeline.tracking import configure, registered_model_name

    settings = settings or get_settings()
    lake = lake or Lake.from_settings()
    problem = load_problem()
    configure(settings, problem)
    name = registered_model_name(settings, problem)
    champion = alias_version(settings.champion_alias, name)
    challenger = alias_version(settings.challenger_alias, name)
    floor_ok = True
    if challenger:
        tags = MlflowClient().get_model_version(name, challenger).tags or {}
        floor_ok = tags.get("floor_passed", "true") == "true"
    cutoff = (
        None if today is None else (today if isinstance(today, dt.date) else dt.date.fromisoformat(str(today)[:10]))
    )
    days = recent_days(lake, settings.ab_lookback_days, cutoff)
    scored = (
        scored_predictions(days, lake=lake, problem=problem, label_partitions=settings.ab_lookback_days + 7)
        if days
        else pd.DataFrame()
    )
    decision = decide(
        scored,
        champion,
        challenger,
        alpha=settings.ab_alpha,
        min_samples=settings.ab_min_samples,
        challenger_passed_floor=floor_ok,
    )
    mlflow.set_experiment(f"{name}-ab-tests")
    with mlflow.start_run(run_name=f"ab {champion} vs {challenger}", tags={"stage": "ab_test"}):
        mlflow.set_tags(
            {
                "decision": decision.decision,
                "reason": decision.reason[:5000],
                "champion_version": str(champion),
                "challenger_version": str(challenger),
            }
        )
        mlflow.log_params(
            {
                "alpha": settings.ab_alpha,
                "min_samples": settings.ab_min_samples,
                "days": f"{days[0]}..{days[-1]}" if days else "none",
                "test": decision.test,
            }
        )
        for variant, values in decision.variants.items():
            mlflow.log_metrics({f"{variant}_{k}": v for k, v in values.items()})
        if decision.p_value is not None:
            mlflow.log_metric("p_value", decision.p_value)
    log.info("A/B %s vs %s: %s (%s)", champion, challenger, decision.decision, decision.reason)
    result = decision.to_dict()
    if decision.promote:
        result.update(version=str(challenger), model_name=name, previous_champion=champion)
    pipeline_metrics.record_ab(result, name)  # live metrics per variant, p-value, decision (if configured)
    return result
