"""The shadow challenger's daily evaluation: its report, and its promotion through the verified deploy.

In shadow mode (``MLP_SHADOW_ENABLED``) the challenger answers every record the champion answers, off
the response path (serving/shadow.py). Each ``ab_test`` DAG run evaluates it here:

- the report of the newest logged day (``monitoring.shadow_report``: agreement, and each one's live
  metrics where outcomes landed), logged to MLflow (experiment ``<model>-shadow``) and pushed as
  gauges (``telemetry.pipeline_metrics.record_shadow``, the model-quality dashboard's shadow panel);
- the decision, with the A/B test's own statistic and rules (``abtest.decide``: per-prediction loss,
  one-sided Welch t-test at ``MLP_AB_ALPHA``, ``MLP_AB_MIN_SAMPLES`` each, the offline floor) on the
  last ``MLP_AB_LOOKBACK_DAYS`` of paired, scored records, the shadow's rows in the challenger's
  place. The two samples are the same records scored twice, so they are positively correlated;
  Welch's test, which ignores that, over-states the variance of the difference: it is conservative
  (a shadow win it reports is one a paired test would report too).

A win is returned with ``promote`` and ``version`` as an A/B win is; :func:`promotion` picks the one
the DAG's ``approve_challenger`` emits as ``approved_model``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.deployment.abtest import ABDecision, decide
from include.mlpipeline.monitoring.live_outcomes import recent_days, scored_predictions
from include.mlpipeline.monitoring.shadow_report import paired_outcomes, shadow_report
from include.mlpipeline.serving.prediction_log import CHALLENGER, SHADOW
from include.mlpipeline.telemetry import pipeline_metrics

log = logging.getLogger(__name__)


def decide_shadow(
    scored: pd.DataFrame, champion: str | None, challenger: str | None, *, settings: Settings, task: str,
    floor_ok: bool = True,
) -> ABDecision:  # fmt: skip
    """The A/B test's decision (``abtest.decide``) on paired scored rows, the shadow's as the challenger's."""
    pairs = paired_outcomes(scored)
    if len(pairs):
        pairs = pairs.assign(variant=pairs["variant"].where(pairs["variant"] != SHADOW, CHALLENGER))
    return decide(
        pairs, champion, challenger, alpha=settings.ab_alpha, min_samples=settings.ab_min_samples,
        challenger_passed_floor=floor_ok, task=task,
    )  # fmt: skip


def evaluate_shadow(
    *, lake: Lake | None = None, settings: Settings | None = None, today: str | dt.date | None = None
) -> dict[str, Any]:
    """Report on and decide about the shadow challenger now (module doc); skipped when shadow mode is off.

    Returns:
        ``decision``, ``reason``, ``promote`` and the ``report``; with ``promote`` also ``version`` (the
        challenger), ``model_name`` and ``previous_champion``, which the deploy DAG reads.
    """
    import mlflow
    from mlflow import MlflowClient

    from include.mlpipeline.ml.registry import alias_version
    from include.mlpipeline.ml.tracking import configure, registered_model_name

    settings = settings or get_settings()
    if not settings.shadow_enabled:
        return {"decision": "shadow_off", "reason": "shadow mode is off (MLP_SHADOW_ENABLED=false)", "promote": False}
    lake = lake or Lake.from_settings(settings)
    problem = load_problem()
    configure(settings, problem)
    name = registered_model_name(settings, problem)
    champion = alias_version(settings.champion_alias, name)
    challenger = alias_version(settings.challenger_alias, name)
    floor_ok = True
    if challenger:
        floor_ok = (MlflowClient().get_model_version(name, challenger).tags or {}).get("floor_passed", "true") == "true"
    cutoff = None if today is None else dt.date.fromisoformat(str(today)[:10])
    days = recent_days(lake, settings.ab_lookback_days, cutoff)
    if not days:
        return {"decision": "insufficient_data", "reason": "no prediction log yet", "promote": False}
    labels = settings.ab_lookback_days + 7
    report = shadow_report(days[-1], lake=lake, problem=problem, label_partitions=labels)
    scored = scored_predictions(days, lake=lake, problem=problem, label_partitions=labels)
    decision = decide_shadow(scored, champion, challenger, settings=settings, task=problem.task, floor_ok=floor_ok)
    mlflow.set_experiment(f"{name}-shadow")
    with mlflow.start_run(run_name=f"shadow {challenger} beside {champion} on {days[-1]}", tags={"stage": "shadow"}):
        mlflow.set_tags({"decision": decision.decision, "reason": decision.reason[:5000], "day": report["day"]})
        mlflow.log_params({"champion_version": champion, "shadow_version": challenger, "test": decision.test})
        mlflow.log_metrics({f"agreement_{k}": v for k, v in report["agreement"].items()})
        for side, values in report["live"].items():
            mlflow.log_metrics({f"{side}_{k}": v for k, v in values.items()})
        if decision.p_value is not None:
            mlflow.log_metric("p_value", decision.p_value)
    log.info("shadow %s beside %s: %s (%s)", challenger, champion, decision.decision, decision.reason)
    result = {**decision.to_dict(), "report": report}
    if decision.promote:
        result.update(version=str(challenger), model_name=name, previous_champion=champion)
    pipeline_metrics.record_shadow(result, name)
    return result


def promotion(ab_result: dict[str, Any], shadow_result: dict[str, Any]) -> dict[str, Any] | None:
    """The evaluation whose challenger is to be promoted (the A/B test's first), or None."""
    return next((result for result in (ab_result, shadow_result) if result.get("promote")), None)
