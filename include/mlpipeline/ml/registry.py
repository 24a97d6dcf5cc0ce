"""Model registry: register the best candidate, decide champion vs challenger, move aliases.

No deprecated stages: the registry uses aliases only. ``challenger`` marks the newest registered
candidate; ``champion`` marks the version the API serves. The promotion gate:

1. floor: the challenger's test ROC AUC must beat the trivial baseline's (trained on the same days)
   by at least ``min_gain_over_baseline``;
2. no champion yet: a challenger that passes the floor becomes champion;
3. otherwise both are scored on the *same* test days, and the challenger wins only if its ROC AUC
   is higher by at least ``promotion_min_gain``. A tie (or a smaller gain) keeps the champion.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.ml.candidates import BASELINE
from include.mlpipeline.ml.metrics import evaluate, rank_candidates
from include.mlpipeline.ml.tracking import configure, registered_model_name
from include.mlpipeline.ml.window import TrainingWindow, load_training_set
from include.mlpipeline.telemetry import pipeline_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    baseline_score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger_score: float,
    champion_score: float | None,
    baseline_score: float,
    *,
    min_gain: float,
    baseline_margin: float,
) -> PromotionDecision:
    """Apply the promotion gate to test ROC AUC scores (see the module doc)."""
    floor = baseline_score + baseline_margin
    if challenger_score < floor:
        reason = (
            f"below the floor: test roc_auc {challenger_score:.4f} < baseline {baseline_score:.4f} + {baseline_margin}"
        )
        return PromotionDecision(False, reason, challenger_score, champion_score, baseline_score)
    if champion_score is None:
        reason = f"first model: test roc_auc {challenger_score:.4f} passes the floor {floor:.4f}"
        return PromotionDecision(True, reason, challenger_score, champion_score, baseline_score)
    gain = challenger_score - champion_score
    if gain >= min_gain - 1e-12:  # 0.563 - 0.561 is 0.00199999... in floating point
        reason = f"beats the champion: {challenger_score:.4f} vs {champion_score:.4f} (+{gain:.4f} >= {min_gain})"
        return PromotionDecision(True, reason, challenger_score, champion_score, baseline_score)
    reason = f"does not beat the champion by {min_gain}: {challenger_score:.4f} vs {champion_score:.4f} ({gain:+.4f})"
    return PromotionDecision(False, reason, challenger_score, champion_score, baseline_score)


def alias_version(alias: str, name: str | None = None) -> str | None:
    """The version number an alias points at, or None if the alias (or the model) does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure()
    try:
        return MlflowClient().get_model_version_by_alias(name or registered_model_name(), alias).version
    except MlflowException as error:
        if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


def set_alias(alias: str, version: str, name: str | None = None) -> None:
    from mlflow import MlflowClient

    configure()
    MlflowClient().set_registered_model_alias(name or registered_model_name(), alias, str(version))
    log.info("alias %s -> version %s", alias, version)


def champion_score_on(window: TrainingWindow, champion_version: str) -> float:
    """The current champion's test ROC AUC on this run's test days (same rows as the challenger)."""
    import mlflow

    problem = load_problem()
    data = load_training_set(window, problem=problem)
    model = mlflow.sklearn.load_model(f"models:/{registered_model_name()}/{champion_version}")
    meta = mlflow.models.get_model_info(f"models:/{registered_model_name()}/{champion_version}").metadata or {}
    features = meta.get("features", problem.feature_columns)
    proba = model.predict_proba(data.test[features])[:, 1]
    return evaluate(data.test[problem.target].to_numpy(), proba, float(meta.get("threshold", 0.5)))["roc_auc"]


def register_best(results: list[dict[str, Any]], window: dict[str, Any], parent_run_id: str) -> dict[str, Any]:
    """Register the best candidate as a new version with alias ``challenger`` and decide its promotion.

    The decision, both scores and the reason are logged to the parent run and returned (the model
    asset event carries them). The ``champion`` alias itself is moved by deploy, after which the API
    serves the new version.

    Returns:
        version, run id, model URI, threshold, metrics, the decision and the current champion.
    """
    import mlflow
    from mlflow import MlflowClient

    settings = get_settings()
    configure()
    name = registered_model_name()
    training_window = TrainingWindow.from_dict(window)
    baseline = next((r for r in results if r["name"] == BASELINE), None)
    contenders = [r for r in rank_candidates(results) if r["name"] != BASELINE]
    if baseline is None or not contenders:
        raise ValueError(f"need the baseline and at least one model; got {[r['name'] for r in results]}")
    best = contenders[0]
    client = MlflowClient()
    version = mlflow.register_model(
        best["model_uri"],
        name,
        tags={
            "candidate": best["name"],
            "run_id": best["run_id"],
            "data_version": training_window.data_version,
            "threshold": f"{best['threshold']:.6f}",
            "window": f"{training_window.days[0]}..{training_window.days[-1]}",
            "test_roc_auc": f"{best['test']['roc_auc']:.6f}",
        },
    ).version
    set_alias(settings.challenger_alias, version, name)
    champion = alias_version(settings.champion_alias, name)
    champion_score = champion_score_on(training_window, champion) if champion else None
    decision = decide_promotion(
        best["test"]["roc_auc"],
        champion_score,
        baseline["test"]["roc_auc"],
        min_gain=settings.promotion_min_gain,
        baseline_margin=settings.min_gain_over_baseline,
    )
    client.set_model_version_tag(
        name, version, "promotion_decision", "promote" if decision.promote else "keep_champion"
    )
    # The A/B test may promote a version later, but only one that passed the floor at registration.
    passed_floor = decision.challenger_score >= decision.baseline_score + settings.min_gain_over_baseline
    client.set_model_version_tag(name, version, "floor_passed", str(passed_floor).lower())
    with mlflow.start_run(run_id=parent_run_id):
        mlflow.set_tags(
            {
                "best_candidate": best["name"],
                "registered_version": version,
                "promotion_decision": "promote" if decision.promote else "keep_champion",
                "promotion_reason": decision.reason,
            }
        )
        mlflow.log_metrics(
            {
                "challenger_test_roc_auc": decision.challenger_score,
                "baseline_test_roc_auc": decision.baseline_score,
                **({"champion_test_roc_auc": decision.champion_score} if decision.champion_score is not None else {}),
            }
        )
        mlflow.log_dict({"candidates": results, "decision": decision.to_dict()}, "candidates.json")
    log.info("registered %s version %s (%s): %s", name, version, best["name"], decision.reason)
    registration = {
        "model_name": name,
        "version": version,
        "candidate": best["name"],
        "run_id": best["run_id"],
        "threshold": best["threshold"],
        "test": best["test"],
        "baseline_test": baseline["test"],
        "data_version": training_window.data_version,
        "previous_champion": champion,
        "decision": decision.to_dict(),
    }
    pipeline_metrics.record_training(registration, results)  # candidates, version, decision (if configured)
    return registration
