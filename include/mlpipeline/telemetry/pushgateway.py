"""The pipeline's own metrics, pushed to a Prometheus Pushgateway (batch jobs cannot be scraped).

Off unless ``MLP_PUSHGATEWAY_URL`` is set. Every push is a few gauges for one group (the
Pushgateway's unit of replacement: a job name plus a grouping key), sent with a short timeout
(``MLP_PUSHGATEWAY_TIMEOUT_S``) from a daemon thread that is abandoned at the deadline. An
unreachable, slow or failing Pushgateway never fails or delays a task by more than that: the
first failure is logged once per process, later ones at debug level, and the pipeline goes on.
No function here raises. What each pipeline step records is in
:mod:`~include.mlpipeline.telemetry.pipeline_metrics` (one ``record_*`` function per call site).

Prometheus scrapes the Pushgateway with ``honor_labels: true``, so every series keeps the job and
grouping labels below (plus ``instance=""``, which the Pushgateway adds).

Metrics (all gauges; ``*_timestamp_seconds`` are Unix times), by job; labels in braces, the
grouping key first:

job ``mlp_data``, from ``etl.publish_summary`` (the last publish of each dataset; group replaced):
  - ``mlp_data_rows_in`` / ``mlp_data_rows_out`` / ``mlp_data_rows_quarantined`` {dataset, gate}: rows
    the dataset's gate saw, published and quarantined;
  - ``mlp_data_quarantine_share`` {dataset, gate}: quarantined / in (0 when nothing came in), and
    ``mlp_data_quarantine_max_share`` {dataset, gate}: the share the gate tolerates;
  - ``mlp_data_partitions_published`` {dataset}: day partitions in the publish;
  - ``mlp_data_version_info`` {dataset, data_version}: 1, the DVC data version of the publish;
  - ``mlp_data_last_publish_timestamp_seconds`` {dataset}.

job ``mlp_quality_gate``: a block from ``orchestration.tasks.fail_fast_on_data_errors``, a pass of
the clean/features gates from ``etl.publish_summary``:
  - ``mlp_quality_gate_blocked`` {gate[, dag_id, task_id]}: 1 if the gate's last outcome was a
    block, 0 after a pass;
  - ``mlp_quality_gate_last_blocked_timestamp_seconds``, ``mlp_quality_gate_failed_checks`` and
    ``mlp_quality_gate_failed_rows`` (0: a table-level failure) {gate, dag_id, task_id}.

job ``mlp_training``, from ``registry.register_best`` (the last training run; group replaced):
  - ``mlp_model_candidate_test_metric`` {model_name, candidate, metric}: every candidate's test
    metrics (roc_auc, pr_auc, log_loss, brier, f1, precision, recall, positive_rate, rows);
  - ``mlp_model_registered_version`` {model_name} and ``mlp_model_registered_test_metric``
    {model_name, candidate, metric}: the version registered as challenger and its test metrics;
  - ``mlp_model_promotion_score`` {model_name, role}: test ROC AUC of challenger, champion and
    baseline on the same days; ``mlp_model_promoted`` {model_name}: 1 if approved, else 0;
    ``mlp_model_promotion_decision_info`` {model_name, decision}: 1, promote or keep_champion;
  - ``mlp_model_last_training_timestamp_seconds`` {model_name}.

job ``mlp_deploy``, from ``deploy.verify_or_roll_back`` (every deploy and rollback; group replaced):
  - ``mlp_deploy_served_version`` {model_name}: the version the live API serves afterwards;
  - ``mlp_deploy_rolled_back`` {model_name}: 1 if the deploy failed and the previous was restored;
  - ``mlp_deploy_canary_max_abs_difference`` {model_name}: live vs registered on the canaries;
  - ``mlp_deploy_last_timestamp_seconds`` {model_name}.

job ``mlp_drift``, from ``monitoring.drift.monitor`` (group replaced):
  - ``mlp_drift_share`` {model_name, comparison}: share of drifted features (comparison:
    newest_days, served_inputs); ``mlp_drift_features_drifted`` and ``mlp_drift_rows`` likewise;
  - ``mlp_drift_feature_score`` {model_name, comparison, feature}: PSI per feature;
  - ``mlp_drift_share_threshold`` {model_name}: MLP_DRIFT_SHARE_THRESHOLD;
    ``mlp_drift_retrain_requested`` {model_name}: 1 if a retrain was requested;
    ``mlp_drift_champion_version`` {model_name}; ``mlp_drift_last_check_timestamp_seconds`` {model_name};
  - ``mlp_monitor_live_metric`` / ``mlp_monitor_offline_metric`` {model_name, metric}: the
    champion's metrics on served predictions with known outcomes, and its offline test metrics.

job ``mlp_ab_test``, from ``abtest.evaluate_ab`` (group replaced):
  - ``mlp_ab_live_metric`` {model_name, variant, model_version, metric}: live metrics per variant
    (predictions, log_loss, roc_auc, brier, accuracy, positive_rate, mean_probability);
  - ``mlp_ab_p_value`` {model_name}: the one-sided Welch t-test's p-value, when it ran;
  - ``mlp_ab_decision_info`` {model_name, decision}: 1; ``mlp_ab_promote`` {model_name}: 1 if the
    challenger is promoted; ``mlp_ab_last_evaluation_timestamp_seconds`` {model_name}.
job ``mlp_shadow``, from ``shadow_test.evaluate_shadow`` (group replaced):
  - ``mlp_shadow_agreement`` {model_name, champion_version, shadow_version, metric}: the day's agreement
    of champion and shadow answers (``pairs``, ``same_label_share``, ``mean_abs_probability_diff``,
    ``mean_abs_diff``, ``correlation``, by task kind);
  - ``mlp_shadow_live_metric`` {model_name, variant, model_version, metric}: live metrics of each on the
    same scored records; ``mlp_shadow_promote`` {model_name}: 1 if the shadow challenger is promoted;
    ``mlp_shadow_last_evaluation_timestamp_seconds`` {model_name}.

job ``mlp_dag_run``, from the DAG-level success/failure callback ``orchestration.alerts.DagRunMetrics``:
  - ``mlp_dag_run_duration_seconds`` {dag_id}: duration of the DAG's last finished run;
  - ``mlp_dag_run_failed`` {dag_id}: 1 if that run failed, 0 if it succeeded;
  - ``mlp_dag_run_last_state`` {dag_id, state, run_type}: 1, that run's state and type;
  - ``mlp_dag_run_end_timestamp_seconds`` {dag_id}, and ``mlp_dag_run_last_success_timestamp_seconds``
    / ``mlp_dag_run_last_failure_timestamp_seconds`` {dag_id}: when a run last succeeded / failed.

``METRICS`` below is the same list in code (a push of an unlisted name is refused, so this list
stays complete); the dashboard tests check every query against it.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from include.mlpipeline.core.bounded import call_with_deadline, log_once

log = logging.getLogger(__name__)

JOB_DATA = "mlp_data"
JOB_GATE = "mlp_quality_gate"
JOB_TRAINING = "mlp_training"
JOB_DEPLOY = "mlp_deploy"
JOB_DRIFT = "mlp_drift"
JOB_AB = "mlp_ab_test"
JOB_SHADOW = "mlp_shadow"
JOB_DAG_RUN = "mlp_dag_run"

METRICS: dict[str, str] = {
    # job mlp_data
    "mlp_data_rows_in": "Rows the dataset's quality gate saw in its last publish.",
    "mlp_data_rows_out": "Rows published in the dataset's last publish.",
    "mlp_data_rows_quarantined": "Rows quarantined in the dataset's last publish.",
    "mlp_data_quarantine_share": "Quarantined share of the rows in the dataset's last publish.",
    "mlp_data_quarantine_max_share": "Largest quarantined share the gate tolerates (MLP_QUARANTINE_MAX_SHARE).",
    "mlp_data_partitions_published": "Day partitions in the dataset's last publish.",
    "mlp_data_version_info": "1, labelled with the DVC data version of the dataset's last publish.",
    "mlp_data_last_publish_timestamp_seconds": "Unix time of the dataset's last publish.",
    # job mlp_quality_gate
    "mlp_quality_gate_blocked": "1 if the gate's last outcome was a block, 0 after a pass.",
    "mlp_quality_gate_last_blocked_timestamp_seconds": "Unix time the gate last blocked data.",
    "mlp_quality_gate_failed_checks": "Failed checks of the gate's last block.",
    "mlp_quality_gate_failed_rows": "Rows breaking row-level checks in the gate's last block (0: table-level).",
    # job mlp_training
    "mlp_model_candidate_test_metric": "Test metric of each candidate of the last training run.",
    "mlp_model_registered_version": "Model version the last training run registered (alias challenger).",
    "mlp_model_registered_test_metric": "Test metrics of the registered version.",
    "mlp_model_promotion_score": "Test ROC AUC on the same days of the challenger, the champion and the baseline.",
    "mlp_model_promoted": "1 if the promotion gate approved the registered version, else 0.",
    "mlp_model_promotion_decision_info": "1, labelled with the promotion decision of the last training run.",
    "mlp_model_last_training_timestamp_seconds": "Unix time of the last registration.",
    # job mlp_deploy
    "mlp_deploy_served_version": "Model version the live API serves after the last deploy or rollback.",
    "mlp_deploy_rolled_back": "1 if the last deploy failed its live checks and the previous version was restored.",
    "mlp_deploy_canary_max_abs_difference": "Largest live vs registered prediction difference on the canaries.",
    "mlp_deploy_last_timestamp_seconds": "Unix time the last deploy ended.",
    # job mlp_drift
    "mlp_drift_share": "Share of drifted features per comparison with the champion's training data.",
    "mlp_drift_feature_score": "Drift score (PSI) per feature and comparison.",
    "mlp_drift_features_drifted": "Drifted features per comparison.",
    "mlp_drift_rows": "Rows compared with the training reference per comparison.",
    "mlp_drift_share_threshold": "Drifted share at which the monitor requests a retrain (MLP_DRIFT_SHARE_THRESHOLD).",
    "mlp_drift_retrain_requested": "1 if the last monitor run requested a retrain.",
    "mlp_drift_champion_version": "Champion version the last monitor run checked.",
    "mlp_monitor_live_metric": "Champion's live metrics on served predictions with known outcomes.",
    "mlp_monitor_offline_metric": "Champion's offline test metrics, next to the live ones.",
    "mlp_drift_last_check_timestamp_seconds": "Unix time of the last monitor run.",
    # job mlp_ab_test
    "mlp_ab_live_metric": "Live metric per A/B variant (scored predictions with known outcomes).",
    "mlp_ab_p_value": "p-value of the one-sided Welch t-test (challenger's log loss lower).",
    "mlp_ab_decision_info": "1, labelled with the last A/B decision.",
    "mlp_ab_promote": "1 if the last A/B evaluation promotes the challenger.",
    "mlp_ab_last_evaluation_timestamp_seconds": "Unix time of the last A/B evaluation.",
    # job mlp_shadow
    "mlp_shadow_agreement": "Agreement of the champion's and the shadow challenger's answers on the day's records.",
    "mlp_shadow_live_metric": "Live metric of the champion and of the shadow on the same scored records.",
    "mlp_shadow_promote": "1 if the last shadow evaluation promotes the shadow challenger.",
    "mlp_shadow_last_evaluation_timestamp_seconds": "Unix time of the last shadow evaluation.",
    # job mlp_dag_run
    "mlp_dag_run_duration_seconds": "Duration of the DAG's last finished run.",
    "mlp_dag_run_failed": "1 if the DAG's last finished run failed, 0 if it succeeded.",
    "mlp_dag_run_last_state": "1, labelled with the state and run type of the DAG's last finished run.",
    "mlp_dag_run_end_timestamp_seconds": "Unix time the DAG's last finished run ended.",
    "mlp_dag_run_last_success_timestamp_seconds": "Unix time a run of the DAG last succeeded.",
    "mlp_dag_run_last_failure_timestamp_seconds": "Unix time a run of the DAG last failed.",
}


@dataclass
class Sample:
    """One gauge value: metric name, value, labels (besides the group's)."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def as_number(value: Any) -> float | None:
    """A finite float, or None for what is not a number (None, text, NaN, inf)."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _registry(samples: Iterable[Sample]) -> Any:
    """A registry holding one gauge family per metric name."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    families: dict[str, GaugeMetricFamily] = {}
    label_names: dict[str, list[str]] = {}
    for sample in samples:
        if sample.name not in METRICS:
            raise KeyError(f"{sample.name} is not a documented pipeline metric (add it to METRICS)")
        names = sorted(sample.labels)
        if sample.name not in families:
            families[sample.name] = GaugeMetricFamily(sample.name, METRICS[sample.name], labels=names)
            label_names[sample.name] = names
        elif names != label_names[sample.name]:
            raise ValueError(f"{sample.name}: labels {names} differ from {label_names[sample.name]}")
        families[sample.name].add_metric([str(sample.labels[n]) for n in names], sample.value)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return registry


class _Families:
    """The collector of one push: hands the registry the gauge families built for it."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return list(self.families)


def push(job: str, grouping: Mapping[str, Any], samples: Iterable[Sample], *, replace: bool = False) -> bool:
    """Send ``samples`` to the group (``job``, ``grouping``) of the Pushgateway; True if it accepted them.

    ``replace=False`` (HTTP POST) replaces only the metric names pushed now, keeping the group's
    others; ``replace=True`` (PUT) replaces the whole group, so series that are not pushed again
    (a candidate or a feature that no longer exists) disappear. Samples that are not numbers are
    left out. A no-op without ``MLP_PUSHGATEWAY_URL``. Never raises, and returns within about
    ``MLP_PUSHGATEWAY_TIMEOUT_S`` seconds whatever the Pushgateway does.
    """
    try:
        from include.mlpipeline.core.settings import get_settings

        settings = get_settings()
        url = settings.pushgateway_url
        if not url:
            return False
        timeout = float(settings.pushgateway_timeout_s)
        kept = [s for s in samples if as_number(s.value) is not None]
        if not kept:
            return False
        registry = _registry(Sample(s.name, float(s.value), s.labels) for s in kept)
        group = {str(k): str(v) for k, v in grouping.items() if v not in (None, "")}
        from prometheus_client import push_to_gateway, pushadd_to_gateway

        send = push_to_gateway if replace else pushadd_to_gateway
    except Exception as error:  # a bug in building the push must not fail a task either
        log.warning("pipeline metrics for %s not pushed: %s: %s", job, type(error).__name__, error)
        return False

    outcome = call_with_deadline(
        functools.partial(send, url, job=job, registry=registry, grouping_key=group, timeout=timeout),
        timeout + 0.5,  # past the socket timeout: a timed-out socket is then reported with its error
        f"pushgateway-{job}",
    )
    if outcome.timed_out:
        log_once(
            log,
            f"push-{url}",
            "Pushgateway %s did not answer within %.1fs; pipeline metrics (%s) not pushed. "
            "Logged once per process; the pipeline goes on.",
            url,
            timeout,
            job,
            again=logging.DEBUG,
        )
        return False
    if outcome.error is not None:
        error = outcome.error
        log_once(
            log,
            f"push-{url}",
            "Pushgateway %s refused or unreachable (%s: %s); pipeline metrics (%s) not pushed. "
            "Logged once per process; the pipeline goes on.",
            url,
            type(error).__name__,
            str(error)[:300],
            job,
            again=logging.DEBUG,
        )
        return False
    log.debug("pushed %d samples to %s group %s %s", len(kept), url, job, group)
    return True
