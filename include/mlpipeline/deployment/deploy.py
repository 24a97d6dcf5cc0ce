"""Deployment: move the ``champion`` alias, make the live API serve it, smoke-test, roll back on failure.

The API follows the alias by itself (it polls the registry); deploy asks it to reload at once and
then checks, with the problem's canary records, that the live answers come from the new version and
equal the registered model's own predictions on the same rows (for the task kind: the positive
class's probability, every class's probability, or the value). If they do not, the alias goes back
to the previous champion and the deploy fails, saying why.

Manual rollback: ``python -m include.mlpipeline.deployment.deploy rollback --to VERSION`` (or the deploy DAG's
``rollback_to`` param).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.ml.registry import alias_version, set_alias
from include.mlpipeline.ml.task_kinds import TaskKind, task_kind
from include.mlpipeline.ml.tracking import registered_model_name
from include.mlpipeline.telemetry import pipeline_metrics

log = logging.getLogger(__name__)

# The API serves a model as verified array code when it answers as the pipeline does to 1e-6
# (serving/scoring_form.py, TOLERANCE), so the smoke test holds the live answers to the same bound.
PREDICTION_TOLERANCE = 1e-6


class DeployError(RuntimeError):
    """The live service failed its checks for a version."""


def _headers(settings: Settings) -> dict[str, str]:
    return {"X-API-Key": settings.api_key_value} if settings.api_key_value else {}


def promote(version: str, approval: Mapping[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Point the champion alias at ``version``; returns the previous champion (None for the first).

    Args:
        version: The version to serve.
        approval: A person's (or the timeout policy's) approval, when deploy asked for one
            (:mod:`~include.mlpipeline.deployment.approval`): kept on the version's tags first.
        run_id: The deploy run, for those tags.
    """
    if approval is not None:
        from include.mlpipeline.deployment.approval import ApprovalDecision, record_decision

        decided = ApprovalDecision.from_dict(approval)
        if not decided.approved:
            raise ValueError(f"version {version} was rejected; promote moves the alias only for an approved one")
        record_decision(version, decided, run_id)
    settings = get_settings()
    previous = alias_version(settings.champion_alias)
    set_alias(settings.champion_alias, version)
    log.info("champion: %s -> %s", previous, version)
    return {"version": str(version), "previous": previous}


def wait_until_served(version: str, settings: Settings | None = None) -> dict[str, Any]:
    """Ask the API to reload, then wait until ``/model`` reports ``version``.

    Raises:
        DeployError: if the API does not serve that version within ``deploy_timeout_s``.
    """
    settings = settings or get_settings()
    deadline = time.monotonic() + settings.deploy_timeout_s
    last: Any = None
    with httpx.Client(base_url=settings.api_url, headers=_headers(settings), timeout=30) as client:
        while time.monotonic() < deadline:
            try:
                client.post("/admin/reload")
                response = client.get("/model")
                last = (
                    response.json()
                    if response.headers.get("content-type", "").startswith("application/json")
                    else response.text
                )
                if response.status_code == 200 and str(last.get("model_version")) == str(version):
                    log.info("API at %s serves version %s", settings.api_url, version)
                    return last
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            time.sleep(1.0)
    raise DeployError(
        f"API at {settings.api_url} did not serve version {version} within {settings.deploy_timeout_s:.0f}s; "
        f"last answer: {last}"
    )


def smoke_test(version: str, settings: Settings | None = None) -> dict[str, Any]:
    """Score the canary records on the live API and with the registered model; they must agree.

    Raises:
        DeployError: on a wrong version, a failed request, or any prediction that differs.
    """
    import mlflow

    settings = settings or get_settings()
    problem = load_problem()
    records = problem.canary_records()
    # The champion answers every canary (even with A/B testing on), so its answers can be compared.
    headers = {**_headers(settings), "X-Model-Variant": "champion"}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=60) as client:
        response = client.post("/predict", json={problem.request_key: records})
    if response.status_code != 200:
        raise DeployError(f"canary request failed: HTTP {response.status_code}: {response.text[:500]}")
    answer = response.json()
    if str(answer["model_version"]) != str(version):
        raise DeployError(f"canary answered by version {answer['model_version']}, expected {version}")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    uri = f"models:/{registered_model_name(settings, problem)}/{version}"
    model = mlflow.sklearn.load_model(uri)
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    kind = task_kind(metadata.get("task") or problem.task)
    features = problem.request_features(records, problem.load_serving_context())
    expected = np.asarray(kind.predict(model, features[metadata.get("features", problem.feature_columns)]))
    live = live_predictions(answer["predictions"], kind, metadata.get("classes") or kind.classes(model))
    if live.shape != expected.shape:
        raise DeployError(
            f"the live answers hold {live.shape} predictions, the registered model gives {expected.shape}"
        )
    worst = float(np.max(np.abs(live - expected), initial=0.0))
    if not worst <= PREDICTION_TOLERANCE:  # NaN too
        raise DeployError(f"live predictions differ from the registered model's by up to {worst:.3g}")
    log.info("smoke test passed: %d canary records, version %s, max difference %.1e", len(records), version, worst)
    return {"version": str(version), "canaries": len(records), "max_abs_difference": worst}


def live_predictions(predictions: list[dict[str, Any]], kind: TaskKind, classes: list[Any]) -> np.ndarray:
    """The predictions in the live answers, shaped as the task kind's model gives them: p(positive),
    every class's probability (in ``classes`` order), or the value."""
    if kind.name == "binary":
        return np.array([p["probability"] for p in predictions], dtype="float64")
    if kind.name == "regression":
        return np.array([p["value"] for p in predictions], dtype="float64")
    names = [str(value) for value in classes]
    answered = {name for p in predictions for name in p["probabilities"]}
    if any(set(p["probabilities"]) != set(names) for p in predictions):
        raise DeployError(
            f"the live answers give probabilities for {sorted(answered)}, the model's classes are {names}"
        )
    return np.array([[p["probabilities"][name] for name in names] for p in predictions], dtype="float64")


def verify_or_roll_back(version: str, previous: str | None) -> dict[str, Any]:
    """Check the live service serves ``version`` correctly; on failure restore ``previous`` and raise."""
    settings = get_settings()
    try:
        wait_until_served(version, settings)
        return pipeline_metrics.record_served(smoke_test(version, settings), registered_model_name())
    except Exception as error:
        if previous:
            set_alias(settings.champion_alias, previous)
            pipeline_metrics.record_served({"version": previous}, registered_model_name(), rolled_back_from=version)
            log.error("deploy of version %s failed; champion alias restored to %s", version, previous)
            with_reload = "; the API is reloading it"
            try:
                httpx.post(f"{settings.api_url}/admin/reload", headers=_headers(settings), timeout=30)
            except httpx.HTTPError:
                with_reload = "; the API will pick it up on its next registry check"
            raise DeployError(f"deploy of version {version} rolled back to {previous}{with_reload}: {error}") from error
        raise DeployError(f"deploy of version {version} failed and there is no previous champion: {error}") from error


def rollback(to_version: str) -> dict[str, Any]:
    """Manual rollback: make ``to_version`` the champion again and verify the live service."""
    current = promote(to_version)
    return {**verify_or_roll_back(to_version, current["previous"]), "previous": current["previous"]}


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin CLI
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    back = sub.add_parser("rollback", help="serve an earlier version again")
    back.add_argument("--to", required=True, help="registered model version to serve")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "rollback":
        log.info("%s", rollback(args.to))


if __name__ == "__main__":  # pragma: no cover
    main()
