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

import pandas as pd

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.monitoring.live_outcomes import recent_days, scored_predictions, variant_metrics
from include.mlpipeline.serving.prediction_log import CHALLENGER, CHAMPION
from include.mlpipeline.telemetry import pipeline_metrics

log = logging.getLogger(__name__)


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

    from include.mlpipeline.ml.registry import alias_version
    from include.mlpipeline.ml.tracking import configure, registered_model_name

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
