"""Model registry: register the best candidate, decide champion vs challenger, move aliases.

No deprecated stages: the registry uses aliases only. ``challenger`` marks the newest registered
candidate; ``champion`` marks the version the API serves. The promotion gate scores the problem's
primary metric on the test part (ROC AUC for binary tasks unless the problem says otherwise; its
direction, higher or lower is better, follows from its name), and gains are counted in the better
direction:

1. floor: the challenger must beat the trivial baseline (trained on the same rows) by at least
   ``min_gain_over_baseline``;
2. no champion yet: a challenger that passes the floor becomes champion;
3. otherwise both are scored on the *same* test rows, and the challenger wins only if it is better
   by at least ``promotion_min_gain``. A tie (or a smaller gain) keeps the champion.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.ml.candidates import baseline_name
from include.mlpipeline.ml.metrics import rank_candidates
from include.mlpipeline.ml.task_kinds import greater_is_better, task_kind
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
    metric: str = "roc_auc"
    passed_floor: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_promotion(
    challenger_score: float,
    champion_score: float | None,
    baseline_score: float,
    *,
    min_gain: float,
    baseline_margin: float,
    metric: str = "roc_auc",
) -> PromotionDecision:
    """Apply the promotion gate to test scores of ``metric`` (see the module doc)."""
    sign = 1.0 if greater_is_better(metric) else -1.0

    over_baseline = sign * (challenger_score - baseline_score)
    passed_floor = over_baseline >= baseline_margin - 1e-12

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote, reason, challenger_score, champion_score, baseline_score, metric, passed_floor
        )

    if not passed_floor:
        compare, side = ("<", "+") if sign > 0 else (">", "-")
        return decision(
            False,
            f"below the floor: test {metric} {challenger_score:.4f} {compare} baseline {baseline_score:.4f} "
            f"{side} {baseline_margin}",
        )
    if champion_score is None:
        floor = baseline_score + sign * baseline_margin
        return decision(True, f"first model: test {metric} {challenger_score:.4f} passes the floor {floor:.4f}")
    gain = sign * (challenger_score - champion_score)
    if gain >= min_gain - 1e-12:  # 0.563 - 0.561 is 0.00199999... in floating point
        return decision(
            True, f"beats the champion: {challenger_score:.4f} vs {champion_score:.4f} (+{gain:.4f} >= {min_gain})"
        )
    return decision(
        False,
        f"does not beat the champion by {min_gain}: {challenger_score:.4f} vs {champion_score:.4f} ({gain:+.4f})",
    )


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


def version_tags(version: str, name: str | None = None) -> dict[str, str]:
    """The registry tags of one version (candidate, run_id, test_<metric>, decisions...)."""
    from mlflow import MlflowClient

    configure()
    return dict(MlflowClient().get_model_version(name or registered_model_name(), str(version)).tags or {})


def set_version_tags(version: str, tags: dict[str, str], name: str | None = None) -> None:
    from mlflow import MlflowClient

    configure()
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name or registered_model_name(), str(version), key, value)


MODEL_CARD_ARTIFACT = "evaluation/model_card.md"
"""Where training logs a candidate's model card in its run (see ``tracking.CandidateRun.log_candidate``)."""


def model_card_location(run_id: str) -> dict[str, str] | None:
    """The model card of a candidate run: its artifact ``uri`` and the MLflow UI ``url`` that shows it.

    Returns:
        None if the run logged no model card (training without evaluation artifacts).
    """
    from mlflow import MlflowClient

    configure()
    client = MlflowClient()
    folder = MODEL_CARD_ARTIFACT.rsplit("/", 1)[0]
    if MODEL_CARD_ARTIFACT not in {item.path for item in client.list_artifacts(run_id, folder)}:
        return None
    experiment = client.get_run(run_id).info.experiment_id
    return {
        "uri": f"runs:/{run_id}/{MODEL_CARD_ARTIFACT}",
        "url": f"{get_settings().mlflow_tracking_uri}/#/experiments/{experiment}/runs/{run_id}/artifactPath/"
        f"{MODEL_CARD_ARTIFACT}",
    }


def champion_score_on(window: TrainingWindow, champion_version: str, metric: str | None = None) -> float:
    """The current champion's test score (the primary metric) on this run's test rows (the challenger's)."""
    import mlflow

    problem = load_problem()
    kind = task_kind(problem.task)
    metric = metric or kind.primary_metric(problem.primary_metric)
    data = load_training_set(window, problem=problem)
    uri = f"models:/{registered_model_name()}/{champion_version}"
    model = mlflow.sklearn.load_model(uri)
    meta = mlflow.models.get_model_info(uri).metadata or {}
    features = meta.get("features", problem.feature_columns)
    predictions = kind.predict(model, data.test[features])
    threshold = meta.get("threshold", 0.5 if kind.name == "binary" else None)
    y = data.test[problem.target].to_numpy()
    return kind.evaluate(y, predictions, threshold, kind.classes(model))[metric]


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
    problem = load_problem()
    configure()
    name = registered_model_name()
    metric = task_kind(problem.task).primary_metric(problem.primary_metric)
    training_window = TrainingWindow.from_dict(window)
    baseline_candidate = baseline_name(problem)
    baseline = next((r for r in results if r["name"] == baseline_candidate), None)
    ranked = rank_candidates(results, metric, greater_is_better=greater_is_better(metric))
    contenders = [r for r in ranked if r["name"] != baseline_candidate]
    if baseline is None or not contenders:
        raise ValueError(f"need the baseline and at least one model; got {[r['name'] for r in results]}")
    best = contenders[0]
    client = MlflowClient()
    tags = {
        "candidate": best["name"],
        "run_id": best["run_id"],
        "data_version": training_window.data_version,
        "window": f"{training_window.days[0]}..{training_window.days[-1]}",
        "task": problem.task,
        f"test_{metric}": f"{best['test'][metric]:.6f}",
    }
    if best.get("threshold") is not None:
        tags["threshold"] = f"{best['threshold']:.6f}"
    version = mlflow.register_model(best["model_uri"], name, tags=tags).version
    set_alias(settings.challenger_alias, version, name)
    champion = alias_version(settings.champion_alias, name)
    champion_score = champion_score_on(training_window, champion, metric) if champion else None
    decision = decide_promotion(
        best["test"][metric],
        champion_score,
        baseline["test"][metric],
        min_gain=settings.promotion_min_gain,
        baseline_margin=settings.min_gain_over_baseline,
        metric=metric,
    )
    client.set_model_version_tag(
        name, version, "promotion_decision", "promote" if decision.promote else "keep_champion"
    )
    # The A/B test may promote a version later, but only one that passed the floor at registration.
    client.set_model_version_tag(name, version, "floor_passed", str(decision.passed_floor).lower())
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
                f"challenger_test_{metric}": decision.challenger_score,
                f"baseline_test_{metric}": decision.baseline_score,
                **({f"champion_test_{metric}": decision.champion_score} if decision.champion_score is not None else {}),
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
        "task": problem.task,
        "primary_metric": metric,
        "test": best["test"],
        "baseline_test": baseline["test"],
        "data_version": training_window.data_version,
        "previous_champion": champion,
        "decision": decision.to_dict(),
    }
    pipeline_metrics.record_training(registration, results)  # candidates, version, decision (if configured)
    return registration
