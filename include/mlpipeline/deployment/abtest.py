"""A/B test of champion vs challenger on live traffic, decided by a stated statistical test.

Data: the API logs every prediction with the variant and model version that answered
(``predictions/``). Outcomes come from the pipeline itself (the label in the feature partitions, once
a later ETL run has landed what really happened) and from callers (``POST /feedback``, which wins
when both exist).

Test: for the current pair of versions, each variant's predictions with a known outcome are scored
by their per-prediction loss (lower is better; :mod:`~include.mlpipeline.monitoring.live_outcomes`):
log loss for a classifier (binary or multiclass), squared error for a regression. The challenger
wins if a one-sided Welch t-test of "challenger's mean loss < champion's" gives p < ``MLP_AB_ALPHA``
(0.05), with at least ``MLP_AB_MIN_SAMPLES`` scored predictions per variant, and the challenger
passed the offline floor when it was registered. Log loss is a proper scoring rule: it rewards
calibrated probabilities, which the API serves, not just a ranking; squared error is the one the
mean prediction minimises, what a regression serves. Welch's test does not assume equal variances,
and the variants see different records (the split is by record key), so the samples are independent.

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


STATISTICS = {"binary": "log loss", "multiclass": "log loss", "regression": "squared error"}
"""The per-prediction loss the test compares, by task kind."""


def stated_test(task: str) -> str:
    """The stated test for a task kind (what an ABDecision's ``test`` says)."""
    if task not in STATISTICS:
        raise ValueError(f"unknown task {task!r}; one of {sorted(STATISTICS)}")
    return f"one-sided Welch t-test on per-prediction {STATISTICS[task]}"


@dataclass
class ABDecision:
    """The outcome of one A/B evaluation."""

    decision: str  # challenger_wins | champion_better | no_significant_difference | insufficient_data | no_challenger
    reason: str
    champion_version: str | None
    challenger_version: str | None
    p_value: float | None = None
    variants: dict[str, dict[str, float]] = field(default_factory=dict)
    test: str = stated_test("binary")

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
    task: str = "binary",
) -> ABDecision:
    """Apply the test (module doc) to scored predictions of the current version pair.

    Args:
        scored: ``live_outcomes.scored_predictions`` rows (``variant``, ``model_version``, ``loss``, ...).
        task: The problem's task kind: which metrics each variant reports and what the loss is.
    """
    from scipy import stats

    test = stated_test(task)
    if challenger_version is None or challenger_version == champion_version:
        return ABDecision(
            "no_challenger", "no challenger distinct from the champion", champion_version, None, test=test
        )
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
    variants = {name: variant_metrics(rows, task) for name, rows in groups.items() if len(rows)}
    counts = {name: len(rows) for name, rows in groups.items()}
    if min(counts.values()) < min_samples:
        reason = f"not enough scored predictions: {counts} (need {min_samples} per variant)"
        return ABDecision(
            "insufficient_data", reason, champion_version, challenger_version, variants=variants, test=test
        )
    challenger_loss = groups[CHALLENGER]["loss"].to_numpy(dtype="float64")
    champion_loss = groups[CHAMPION]["loss"].to_numpy(dtype="float64")
    better = stats.ttest_ind(challenger_loss, champion_loss, equal_var=False, alternative="less").pvalue
    worse = stats.ttest_ind(challenger_loss, champion_loss, equal_var=False, alternative="greater").pvalue
    summary = (
        f"{STATISTICS[task]} challenger {challenger_loss.mean():.4f} (n={len(challenger_loss)}) vs champion "
        f"{champion_loss.mean():.4f} (n={len(champion_loss)})"
    )
    if better < alpha and challenger_passed_floor:
        decision, reason = "challenger_wins", f"{summary}; p={better:.4g} < {alpha}"
    elif better < alpha:
        decision = "no_significant_difference"
        reason = f"{summary}; p={better:.4g} but the challenger failed the offline floor when registered"
    elif worse < alpha:
        decision, reason = "champion_better", f"{summary}; p(challenger worse)={worse:.4g} < {alpha}"
    else:
        decision, reason = "no_significant_difference", f"{summary}; p={better:.4g} >= {alpha}"
    return ABDecision(decision, reason, champion_version, challenger_version, float(better), variants, test)


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
        task=problem.task,
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
