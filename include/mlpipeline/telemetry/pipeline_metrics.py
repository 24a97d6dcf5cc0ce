"""What each pipeline step tells the Pushgateway: one ``record_*`` function per call site.

Each takes what its caller already has (``etl.publish_summary``'s extra, ``register_best``'s result,
a deploy's outcome, the monitor's summary, an A/B evaluation, a finished DAG run), turns it into
gauges of the catalogue and pushes them with :func:`~include.mlpipeline.telemetry.pushgateway.push`.
The metrics, their labels and their jobs are listed in :mod:`~include.mlpipeline.telemetry.pushgateway`.
Off unless ``MLP_PUSHGATEWAY_URL`` is set; no function here raises or waits past the push timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from include.mlpipeline.telemetry.pushgateway import (
    JOB_AB,
    JOB_DAG_RUN,
    JOB_DATA,
    JOB_DEPLOY,
    JOB_DRIFT,
    JOB_GATE,
    JOB_SHADOW,
    JOB_TRAINING,
    Sample,
    as_number,
    push,
)

log = logging.getLogger(__name__)
_Result = TypeVar("_Result", bound=Mapping[str, Any])


def _version(value: Any) -> float | None:
    """A registry version ("3") as a number, for gauges and graphs."""
    return as_number(value) if value is not None else None


def _now() -> float:
    return time.time()


def _metrics(values: Mapping[str, Any] | None, name: str, labels: Mapping[str, str]) -> list[Sample]:
    """One sample per numeric entry of ``values``, labelled ``metric=<key>``."""
    return [
        Sample(name, number, {**labels, "metric": str(key)})
        for key, value in (values or {}).items()
        if (number := as_number(value)) is not None
    ]


# ------------------------------------------------------------------------------------------- data
def record_publish(dataset: str, extra: Mapping[str, Any], *, max_share: float | None = None) -> bool:
    """Rows, quarantine share and data version of a dataset's publish (``etl.publish_summary``'s extra).

    Also marks the dataset's gate (same name as the dataset) as passed: it published data.
    """
    try:
        if max_share is None:
            from include.mlpipeline.core.settings import get_settings

            max_share = get_settings().quarantine_max_share
        rows_in = as_number(extra.get("rows_in")) or 0.0
        quarantined = as_number(extra.get("rows_quarantined")) or 0.0
        gate = {"gate": dataset}
        samples = [
            Sample("mlp_data_rows_in", rows_in, gate),
            Sample("mlp_data_rows_out", as_number(extra.get("rows_out")) or 0.0, gate),
            Sample("mlp_data_rows_quarantined", quarantined, gate),
            Sample("mlp_data_quarantine_share", quarantined / rows_in if rows_in else 0.0, gate),
            Sample("mlp_data_quarantine_max_share", max_share, gate),
            Sample("mlp_data_partitions_published", float(len(extra.get("partitions") or []))),
            Sample("mlp_data_last_publish_timestamp_seconds", _now()),
        ]
        if extra.get("data_version"):
            samples.append(Sample("mlp_data_version_info", 1.0, {"data_version": str(extra["data_version"])}))
        pushed = push(JOB_DATA, {"dataset": dataset}, samples, replace=True)
        push(JOB_GATE, {"gate": dataset}, [Sample("mlp_quality_gate_blocked", 0.0)])
        return pushed
    except Exception as error:
        log.warning("data metrics not pushed: %s: %s", type(error).__name__, error)
        return False


def record_gate_blocked(
    gate: str, failed_checks: Mapping[str, Any], *, dag_id: str | None = None, task_id: str | None = None
) -> bool:
    """A quality gate blocked data: flag, time, failed checks and rows (pushed where the task fails)."""
    try:
        labels = {"dag_id": dag_id or "", "task_id": task_id or ""}
        rows = sum(as_number(count) or 0.0 for count in failed_checks.values())
        samples = [
            Sample("mlp_quality_gate_blocked", 1.0, labels),
            Sample("mlp_quality_gate_last_blocked_timestamp_seconds", _now(), labels),
            Sample("mlp_quality_gate_failed_checks", float(len(failed_checks)), labels),
            Sample("mlp_quality_gate_failed_rows", rows, labels),
        ]
        return push(JOB_GATE, {"gate": gate}, samples)
    except Exception as error:
        log.warning("quality gate metrics not pushed: %s: %s", type(error).__name__, error)
        return False


# ------------------------------------------------------------------------------------------ model
def record_training(registration: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> bool:
    """Each candidate's test metrics, the registered version and the promotion decision (``register_best``)."""
    try:
        name = str(registration.get("model_name") or "model")
        samples: list[Sample] = []
        for result in results:
            labels = {"candidate": str(result["name"])}
            samples += _metrics(result.get("test"), "mlp_model_candidate_test_metric", labels)
        candidate = str(registration.get("candidate") or "")
        samples += _metrics(registration.get("test"), "mlp_model_registered_test_metric", {"candidate": candidate})
        decision = registration.get("decision") or {}
        for role in ("challenger", "champion", "baseline"):
            if (score := as_number(decision.get(f"{role}_score"))) is not None:
                samples.append(Sample("mlp_model_promotion_score", score, {"role": role}))
        promote = bool(decision.get("promote"))
        decided = "promote" if promote else "keep_champion"
        samples += [
            Sample("mlp_model_promoted", float(promote)),
            Sample("mlp_model_promotion_decision_info", 1.0, {"decision": decided}),
            Sample("mlp_model_last_training_timestamp_seconds", _now()),
        ]
        if (version := _version(registration.get("version"))) is not None:
            samples.append(Sample("mlp_model_registered_version", version))
        return push(JOB_TRAINING, {"model_name": name}, samples, replace=True)
    except Exception as error:
        log.warning("training metrics not pushed: %s: %s", type(error).__name__, error)
        return False


def record_served(result: _Result, model_name: str, *, rolled_back_from: str | None = None) -> _Result:
    """The version the live API serves after a deploy (or after a rollback to it); returns ``result``.

    ``result`` is deploy's outcome (``version``, and on success ``max_abs_difference``);
    ``rolled_back_from`` the version whose deploy failed, when ``result`` is the restored one.
    """
    try:
        samples = [
            Sample("mlp_deploy_rolled_back", float(rolled_back_from is not None)),
            Sample("mlp_deploy_last_timestamp_seconds", _now()),
        ]
        if (version := _version(result.get("version"))) is not None:
            samples.append(Sample("mlp_deploy_served_version", version))
        if (difference := as_number(result.get("max_abs_difference"))) is not None:
            samples.append(Sample("mlp_deploy_canary_max_abs_difference", difference))
        push(JOB_DEPLOY, {"model_name": model_name}, samples, replace=True)
    except Exception as error:
        log.warning("deploy metrics not pushed: %s: %s", type(error).__name__, error)
    return result


# ------------------------------------------------------------------------------ drift, A/B test
def record_drift(summary: Mapping[str, Any], model_name: str, *, threshold: float | None = None) -> bool:
    """Drift share and per-feature scores per comparison, live vs offline metrics (``drift.monitor``)."""
    try:
        if summary.get("champion_version") is None:  # no champion yet: nothing was compared
            return False
        if threshold is None:
            from include.mlpipeline.core.settings import get_settings

            threshold = get_settings().drift_share_threshold
        samples = [
            Sample("mlp_drift_share_threshold", threshold),
            Sample("mlp_drift_retrain_requested", float(bool(summary.get("retrain")))),
            Sample("mlp_drift_last_check_timestamp_seconds", _now()),
        ]
        if (champion := _version(summary.get("champion_version"))) is not None:
            samples.append(Sample("mlp_drift_champion_version", champion))
        for comparison in ("newest_days", "served_inputs"):
            part = summary.get(comparison) or {}
            labels = {"comparison": comparison}
            if "rows" in part:
                samples.append(Sample("mlp_drift_rows", as_number(part["rows"]) or 0.0, labels))
            if "drift_share" not in part:
                continue
            samples.append(Sample("mlp_drift_share", part["drift_share"], labels))
            samples.append(Sample("mlp_drift_features_drifted", float(len(part.get("drifted_features") or [])), labels))
            for feature, score in (part.get("scores") or {}).items():
                samples.append(Sample("mlp_drift_feature_score", score, {**labels, "feature": str(feature)}))
        samples += _metrics(summary.get("live"), "mlp_monitor_live_metric", {})
        samples += _metrics(summary.get("offline"), "mlp_monitor_offline_metric", {})
        return push(JOB_DRIFT, {"model_name": model_name}, samples, replace=True)
    except Exception as error:
        log.warning("drift metrics not pushed: %s: %s", type(error).__name__, error)
        return False


def record_ab(result: Mapping[str, Any], model_name: str) -> bool:
    """Live metrics per variant, the p-value and the decision of an A/B evaluation (``evaluate_ab``)."""
    try:
        versions = {"champion": result.get("champion_version"), "challenger": result.get("challenger_version")}
        samples: list[Sample] = []
        for variant, values in (result.get("variants") or {}).items():
            labels = {"variant": str(variant), "model_version": str(versions.get(variant) or "")}
            samples += _metrics(values, "mlp_ab_live_metric", labels)
        if result.get("p_value") is not None:
            samples.append(Sample("mlp_ab_p_value", result["p_value"]))
        samples += [
            Sample("mlp_ab_decision_info", 1.0, {"decision": str(result.get("decision") or "unknown")}),
            Sample("mlp_ab_promote", float(bool(result.get("promote")))),
            Sample("mlp_ab_last_evaluation_timestamp_seconds", _now()),
        ]
        return push(JOB_AB, {"model_name": model_name}, samples, replace=True)
    except Exception as error:
        log.warning("A/B metrics not pushed: %s: %s", type(error).__name__, error)
        return False


def record_shadow(result: Mapping[str, Any], model_name: str) -> bool:
    """A shadow evaluation (``shadow_test.evaluate_shadow``): the day's agreement, live metrics, promotion."""
    try:
        report = result.get("report") or {}
        versions = {"champion": report.get("champion_version"), "shadow": report.get("shadow_version")}
        pair = {f"{side}_version": str(version or "") for side, version in versions.items()}
        samples = _metrics(report.get("agreement"), "mlp_shadow_agreement", pair)
        for variant, values in (report.get("live") or {}).items():
            labels = {"variant": str(variant), "model_version": str(versions.get(variant) or "")}
            samples += _metrics(values, "mlp_shadow_live_metric", labels)
        samples += [
            Sample("mlp_shadow_promote", float(bool(result.get("promote")))),
            Sample("mlp_shadow_last_evaluation_timestamp_seconds", _now()),
        ]
        return push(JOB_SHADOW, {"model_name": model_name}, samples, replace=True)
    except Exception as error:
        log.warning("shadow metrics not pushed: %s: %s", type(error).__name__, error)
        return False


# ----------------------------------------------------------------------------------- DAG runs
def _timestamp(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return as_number(value)


def record_dag_run(
    dag_id: str,
    state: str,
    *,
    start: dt.datetime | float | None = None,
    end: dt.datetime | float | None = None,
    run_type: str | None = None,
) -> bool:
    """Health of a finished DAG run: duration, state, end time (from the DAG-level callbacks)."""
    try:
        ended = _timestamp(end) or _now()
        failed = state != "success"
        samples = [
            Sample("mlp_dag_run_failed", float(failed)),
            Sample("mlp_dag_run_last_state", 1.0, {"state": state, "run_type": run_type or "unknown"}),
            Sample("mlp_dag_run_end_timestamp_seconds", ended),
            Sample(f"mlp_dag_run_last_{'failure' if failed else 'success'}_timestamp_seconds", ended),
        ]
        if (started := _timestamp(start)) is not None:
            samples.append(Sample("mlp_dag_run_duration_seconds", max(0.0, ended - started)))
        return push(JOB_DAG_RUN, {"dag_id": dag_id}, samples)
    except Exception as error:
        log.warning("DAG run metrics not pushed: %s: %s", type(error).__name__, error)
        return False
