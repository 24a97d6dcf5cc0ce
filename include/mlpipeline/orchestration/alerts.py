"""Slack alerts of the pipeline, sent with the Slack provider's notifier, that never fail or hold it up.

What is sent (to the Airflow connection ``MLP_SLACK_CONN_ID``, default ``slack_default``, type
``slackwebhook`` with the incoming-webhook URL as its password):

- a task failed (``on_failure_callback`` of every task, from ``default_args``): DAG, task, run, the
  first lines of the error and a link to the task's log in the Airflow UI;
- a quality gate blocked data (the same callback, when the error is a
  :class:`~include.mlpipeline.data.quality.DataQualityError`): which gate, which checks, how many rows;
- a DAG run failed for another reason than a failed task (a timeout, a deadlock):
  :class:`DagFailureAlert` as the DAG's ``on_failure_callback``;
- a model was promoted: :func:`notify_promotion`, from the deploy DAG's last task;
- data drifted: :func:`notify_drift`, for the monitoring DAG.

Guarantees, whatever Slack does: no alert raises, and none takes longer than ``MLP_ALERT_TIMEOUT_S``
(5 s). Airflow already catches a callback's exception (the task runner and the dag-processor log it
and carry on), but it does not bound a callback's time, and a task's FAILED state reaches the API
server only after its process exits, i.e. after the failure callbacks. So the HTTP call runs in a
daemon thread with a socket timeout, without the Slack SDK's retry, and is abandoned at the
deadline (:func:`~include.mlpipeline.core.bounded.call_with_deadline`); the connection itself is
resolved before, in the calling thread. Without the connection, alerts are skipped with one log line
per process.

What each message says is in :mod:`~include.mlpipeline.orchestration.slack_messages`; this module
sends them and holds the Airflow callbacks. The Sentry side of a task failure is in
:mod:`~include.mlpipeline.orchestration.sentry_hooks`.

Import cost matters: DAG files import this module at parse time, so the Slack provider, Sentry and
the pipeline's heavy modules load only when an alert is actually sent.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from include.mlpipeline.core.bounded import call_with_deadline, log_once
from include.mlpipeline.orchestration.sentry_hooks import flush_sentry
from include.mlpipeline.orchestration.slack_messages import (
    SlackMessage,
    dag_failure_message,
    drift_message,
    find_quality_error,
    gate_blocked_message,
    promotion_message,
    task_failure_message,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- sending
def send_slack(message: SlackMessage, *, conn_id: str | None = None, timeout: float | None = None) -> bool:
    """Post ``message`` with :class:`SlackWebhookNotifier`; True if Slack accepted it. Never raises.

    The HTTP call returns or is abandoned within ``timeout`` seconds (default ``MLP_ALERT_TIMEOUT_S``)
    whatever the webhook does: refused, 5xx, or no answer at all. Before it, only local work: the
    provider's import and the connection lookup.
    """
    try:
        from include.mlpipeline.core.settings import get_settings

        settings = get_settings()
        conn_id = conn_id if conn_id is not None else settings.slack_conn_id
        timeout = float(timeout if timeout is not None else settings.alert_timeout_s)
        if not conn_id:
            log_once(
                log, "slack-off", "Slack alerts are off (MLP_SLACK_CONN_ID is empty); not sending %s", message.kind
            )
            return False
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        notifier = SlackWebhookNotifier(
            slack_webhook_conn_id=conn_id,
            text=message.text,
            blocks=message.blocks or None,
            unfurl_links=False,
            unfurl_media=False,
            timeout=max(1, int(timeout)),
            retry_handlers=[],  # no retry: the deadline is ours
        )
        try:
            notifier.hook.client  # noqa: B018 - resolves the connection here, not in the sender thread
        except Exception as error:
            if type(error).__name__ == "AirflowNotFoundException":
                log_once(
                    log,
                    f"slack-missing-{conn_id}",
                    "Slack alerts skipped: no usable Airflow connection %r (type slackwebhook, webhook URL as "
                    "password); logged once per process",
                    conn_id,
                )
            else:
                log.warning("Slack alert %s not sent: connection %r unusable: %s", message.kind, conn_id, error)
            return False
    except Exception as error:  # anything unexpected while preparing: log, never raise
        log.warning("Slack alert %s not sent: %s: %s", message.kind, type(error).__name__, error)
        return False

    # The clock starts here: what came before is local (import, connection lookup); the network is not.
    outcome = call_with_deadline(functools.partial(notifier.notify, {}), timeout, f"slack-alert-{message.kind}")
    if outcome.timed_out:
        log.warning("Slack alert %s abandoned: no answer within %.1fs; the pipeline goes on", message.kind, timeout)
        return False
    if outcome.error is not None:
        error = outcome.error
        log.warning("Slack alert %s not sent (%s): %s", message.kind, type(error).__name__, str(error)[:300])
        return False
    log.info("Slack alert %s sent", message.kind)
    return True


# ----------------------------------------------------------------------------- Airflow callbacks
class _SafeNotifier(BaseNotifier):
    """A notifier whose call never raises.

    ``BaseNotifier.__call__`` renders Jinja template fields first (these notifiers have none; an error
    text with ``{{`` must not be rendered) and re-raises what ``notify`` raises: both skipped here.
    """

    def __call__(self, *args: Any) -> None:
        context = args[0] if len(args) == 1 else {"dag": args[0] if args else None}
        try:
            self.notify(context)
        except Exception as error:
            log.warning("%s failed: %s: %s", type(self).__name__, type(error).__name__, error)


class TaskFailureAlert(_SafeNotifier):
    """``on_failure_callback`` of a task: the quality-gate message for data errors, else the failure message.

    Runs after the final try only (retries have their own callback), in the task's process, or in the
    dag-processor when the task process died (then there is no exception to show).
    """

    def notify(self, context: Any) -> None:
        flush_sentry()
        error = context.get("exception")
        quality = find_quality_error(error)
        message = gate_blocked_message(context, quality) if quality is not None else task_failure_message(context)
        send_slack(message)


class DagFailureAlert(_SafeNotifier):
    """``on_failure_callback`` of a DAG: alerts when a run fails for its own reason (timeout, deadlock).

    Airflow 3.3 says which in the context's ``reason``: ``task_failure``, ``timed_out`` (the run
    passed its ``dagrun_timeout``, see :mod:`~.pipeline_dag`; the scheduler marks its unfinished
    tasks skipped, so this is the alert that says so) or ``all_tasks_deadlocked``. A run failed by a
    task is already reported by that task's :class:`TaskFailureAlert`, with the error and the log
    link; alerting again would only double the noise.
    """

    def notify(self, context: Any) -> None:
        if str(context.get("reason") or "") == "task_failure":
            log.debug("DAG run failed by a task; its task alert covers it")
            return
        send_slack(dag_failure_message(context))


class DagRunMetrics(_SafeNotifier):
    """DAG-level ``on_success_callback`` and ``on_failure_callback``: the finished run's health as metrics.

    Pushes the run's duration, state and end time to the Pushgateway (``mlp_dag_run_*``, see
    ``include/mlpipeline/telemetry/pushgateway.py``): a no-op without ``MLP_PUSHGATEWAY_URL``, bounded by
    ``MLP_PUSHGATEWAY_TIMEOUT_S``, never raising. Runs in the dag-processor, like every DAG-level callback.
    """

    def notify(self, context: Any) -> None:
        from include.mlpipeline.telemetry.pipeline_metrics import record_dag_run

        run = context.get("dag_run")
        dag_id = getattr(context.get("dag"), "dag_id", None) or getattr(run, "dag_id", None) or "unknown"
        state = str(getattr(getattr(run, "state", None), "value", getattr(run, "state", None)) or "")
        if state not in {"success", "failed"}:  # minimal context: the reason says which callback this is
            state = "success" if str(context.get("reason") or "") == "success" else "failed"
        run_type = getattr(run, "run_type", None)
        record_dag_run(
            dag_id,
            state,
            start=getattr(run, "start_date", None),
            end=getattr(run, "end_date", None),
            run_type=str(getattr(run_type, "value", run_type)) if run_type else None,
        )


# --------------------------------------------------------------------------- called by the DAGs
def _approved_extras(context: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not context:
        return []
    try:
        from include.mlpipeline.orchestration.assets import APPROVED_MODEL

        events = context["triggering_asset_events"][APPROVED_MODEL]
        return [dict(event.extra or {}) for event in sorted(events, key=lambda e: e.timestamp)]
    except Exception:  # a manual deploy or rollback has no triggering event
        return []


def notify_promotion(served: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> bool:
    """Announce a verified deploy: old vs new version and their metrics. Never raises.

    ``served`` is the deploy's ``served_model`` extra; ``context`` (the task context) provides the
    triggering ``approved_model`` event with the promotion decision and the new version's metrics.
    """
    try:
        extras = _approved_extras(context)
        approved = next((e for e in reversed(extras) if str(e.get("version")) == str(served.get("version"))), None)
        return send_slack(promotion_message(served, approved))
    except Exception as error:
        log.warning("promotion alert not sent: %s: %s", type(error).__name__, error)
        return False


def notify_drift(summary: Mapping[str, Any]) -> bool:
    """Alert on data drift. Never raises; returns whether Slack accepted the message.

    ``summary`` keys (all optional but the first):

    - ``drift_share``: share of drifted features, 0..1 (or Evidently's ``share_of_drifted_columns``);
    - ``drifted_features``: names, or ``{name: score}`` (or Evidently's ``drift_by_columns``);
    - ``n_features``: how many features were tested (or ``number_of_columns``);
    - ``report_uri``: where the full report is (a URL becomes a link; or ``report_url``);
    - ``dataset``, ``reference``, ``current`` (the compared windows), ``threshold``, ``dag_id``, ``run_id``.
    """
    try:
        return send_slack(drift_message(summary))
    except Exception as error:
        log.warning("drift alert not sent: %s: %s", type(error).__name__, error)
        return False
