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
deadline; the connection itself is resolved before, in the calling thread. Without the connection,
alerts are skipped with one log line per process.

Import cost matters: DAG files import this module at parse time, so the Slack provider, Sentry and
the pipeline's heavy modules load only when an alert is actually sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

ERROR_LINES = 6
ERROR_CHARS = 1500
MAX_CHECKS = 25
_logged_once: set[str] = set()
_once_lock = threading.Lock()


@dataclass
class SlackMessage:
    """What goes to the webhook: ``text`` (notifications, fallback) and Block Kit ``blocks``."""

    kind: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------------------- helpers
def _log_once(key: str, message: str, *args: Any) -> None:
    with _once_lock:
        if key in _logged_once:
            return
        _logged_once.add(key)
    log.warning(message, *args)


def _esc(value: object) -> str:
    """Text safe for Slack mrkdwn (``&``, ``<`` and ``>`` are control characters there)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, label: str) -> str:
    return f"<{url}|{_esc(label)}>" if url else ""


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _fields(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"[:2000]} for name, value in pairs[:10]],
    }


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _base_url() -> str:
    try:
        from airflow.sdk.configuration import conf

        return str(conf.get("api", "base_url", fallback="http://localhost:8080")).rstrip("/")
    except Exception:  # no Airflow configuration in this process
        return "http://localhost:8080"


def error_summary(error: BaseException | str | None, lines: int = ERROR_LINES, chars: int = ERROR_CHARS) -> str:
    """The first ``lines`` lines (at most ``chars`` characters) of an error, with its type.

    Known secret values (the API key, connection passwords, ...) are replaced, as in Sentry events.
    """
    if error is None:
        return "(no error details: the task process may have been killed; see the log)"
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    try:
        from include.mlpipeline.telemetry.sentry import redact_text

        text = redact_text(text)
    except Exception as problem:  # never lose the alert over the redaction
        log.debug("could not redact the error text: %s", problem)
    kept = text.strip().splitlines()[:lines]
    summary = "\n".join(kept)
    if len(summary) > chars:
        summary = summary[: chars - 1] + "…"
    elif len(text.strip().splitlines()) > lines:
        summary += "\n…"
    return summary


def find_quality_error(error: BaseException | None) -> Any:
    """The :class:`DataQualityError` behind ``error`` (itself, or in its cause/context chain), else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if hasattr(error, "gate") and hasattr(error, "failed_checks"):
            return error
        error = error.__cause__ or error.__context__
    return None


@dataclass
class TaskRef:
    """Where a callback comes from: DAG, task, run, try, and the link to the task's log."""

    dag_id: str
    task_id: str | None
    run_id: str | None
    map_index: int | None = None
    map_label: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    log_url: str | None = None

    @property
    def task_label(self) -> str:
        if not self.task_id:
            return "-"
        if self.map_label:
            return f"{self.task_id} [{self.map_label}]"
        if self.map_index is not None and self.map_index >= 0:
            return f"{self.task_id} [{self.map_index}]"
        return self.task_id

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskRef:
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?"
        run_id = context.get("run_id") or getattr(ti, "run_id", None)
        task_id = getattr(ti, "task_id", None)
        map_index = getattr(ti, "map_index", None)
        map_label = getattr(ti, "rendered_map_index", None)
        try_number = getattr(ti, "try_number", None)
        max_tries = getattr(ti, "max_tries", None)
        url = None
        if ti is not None and task_id:
            # Airflow 3.3: [api] base_url + /dags/<dag>/runs/<run>/tasks/<task>[/mapped/<i>]?try_number=<n>
            try:
                url = ti.log_url
            except Exception:
                url = None
            if not url:
                mapped = f"/mapped/{map_index}" if isinstance(map_index, int) and map_index >= 0 else ""
                tried = f"?try_number={try_number}" if try_number else ""
                url = f"{_base_url()}/dags/{dag_id}/runs/{quote(str(run_id))}/tasks/{task_id}{mapped}{tried}"
        elif run_id:
            url = f"{_base_url()}/dags/{dag_id}/runs/{quote(str(run_id))}"
        return cls(
            dag_id=str(dag_id),
            task_id=task_id,
            run_id=str(run_id) if run_id else None,
            map_index=map_index if isinstance(map_index, int) else None,
            map_label=str(map_label) if map_label not in (None, "") else None,
            try_number=try_number if isinstance(try_number, int) else None,
            max_tries=max_tries if isinstance(max_tries, int) else None,
            log_url=url,
        )


# -------------------------------------------------------------------------------------- messages
def task_failure_message(context: Mapping[str, Any], error: BaseException | None = None) -> SlackMessage:
    """A task failed: DAG, task, run, try, the first lines of the error, the log link."""
    ref = TaskRef.from_context(context)
    error = error if error is not None else context.get("exception")
    summary = error_summary(error)
    tries = f" (try {ref.try_number})" if ref.try_number else ""
    text = (
        f":red_circle: Task failed: {ref.dag_id}.{ref.task_label}{tries}, run {ref.run_id}\n"
        f"{summary}\n"
        f"Log: {ref.log_url}"
    )
    blocks = [
        _header(f"Task failed: {ref.dag_id}.{ref.task_label}"),
        _fields(
            [
                ("DAG", f"`{_esc(ref.dag_id)}`"),
                ("Task", f"`{_esc(ref.task_label)}`{_esc(tries)}"),
                ("Run", f"`{_esc(ref.run_id)}`"),
            ]
        ),
        _section(f"```{_esc(summary)}```"),
        _section(_link(ref.log_url, "Open the task log in Airflow")),
    ]
    return SlackMessage("task_failure", text, blocks)


def format_checks(failed_checks: Mapping[str, int]) -> list[str]:
    """``name: N rows`` per failed check (``table-level`` when the check is about the whole table)."""
    lines = [
        f"{name}: {count} rows" if count else f"{name} (table-level)" for name, count in sorted(failed_checks.items())
    ]
    if len(lines) > MAX_CHECKS:
        lines = [*lines[:MAX_CHECKS], f"… and {len(lines) - MAX_CHECKS} more"]
    return lines


def gate_blocked_message(context: Mapping[str, Any], error: Any) -> SlackMessage:
    """A quality gate blocked data: which gate, which checks and how many rows, where; nothing went downstream."""
    ref = TaskRef.from_context(context)
    checks = format_checks(error.failed_checks)
    rows = sum(int(count or 0) for count in error.failed_checks.values())
    rows_text = f"{rows} rows broke row-level checks" if rows else "table-level failure (structure, type or empty)"
    text = (
        f":no_entry: Quality gate '{error.gate}' blocked {ref.dag_id}.{ref.task_label}, run {ref.run_id}: "
        f"{len(error.failed_checks)} failed checks, {rows_text}. "
        "No asset event: nothing downstream runs on this data.\n"
        + "\n".join(f"• {line}" for line in checks)
        + f"\nLog: {ref.log_url}"
    )
    blocks = [
        _header(f"Quality gate '{error.gate}' blocked data"),
        _fields(
            [
                ("Gate", f"`{_esc(error.gate)}`"),
                ("Rows", _esc(rows_text)),
                ("DAG / task", f"`{_esc(ref.dag_id)}.{_esc(ref.task_label)}`"),
                ("Run", f"`{_esc(ref.run_id)}`"),
            ]
        ),
        _section("*Failed checks*\n" + "\n".join(f"• `{_esc(line)}`" for line in checks)),
        _section(
            "Failed without retry (retrying cannot fix data); no asset event, so nothing downstream runs. "
            + _link(ref.log_url, "Open the task log")
        ),
    ]
    return SlackMessage("quality_gate", text, blocks)


def dag_failure_message(context: Mapping[str, Any]) -> SlackMessage:
    """A DAG run failed for a reason of its own (timed out, deadlocked)."""
    ref = TaskRef.from_context({k: v for k, v in context.items() if k not in {"ti", "task_instance"}})
    reason = str(context.get("reason") or "unknown")
    last = context.get("ti") or context.get("task_instance")
    last_task = getattr(last, "task_id", None)
    text = f":red_circle: DAG run failed: {ref.dag_id}, run {ref.run_id}: {reason}" + (
        f" (last task {last_task})" if last_task else ""
    )
    text += f"\nRun: {ref.log_url}"
    blocks = [
        _header(f"DAG run failed: {ref.dag_id}"),
        _fields([("DAG", f"`{_esc(ref.dag_id)}`"), ("Run", f"`{_esc(ref.run_id)}`"), ("Reason", _esc(reason))]),
        _section(_link(ref.log_url, "Open the run in Airflow")),
    ]
    return SlackMessage("dag_failure", text, blocks)


def _metric(value: Any, digits: int = 4) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "n/a"


def promotion_message(served: Mapping[str, Any], approved: Mapping[str, Any] | None = None) -> SlackMessage:
    """A new champion is served: old vs new version, their test ROC AUC on the same days, the new one's metrics.

    ``served`` is the deploy's result (version, previous, canaries, max_abs_difference); ``approved``
    the ``approved_model`` event extra of that version (test metrics, decision with the challenger,
    champion and baseline scores), None for a manual deploy or rollback.
    """
    approved = approved or {}
    decision = approved.get("decision") or {}
    new = str(served.get("version") or approved.get("version"))
    old = served.get("previous") or approved.get("previous_champion")
    name = approved.get("model_name") or "model"
    candidate = approved.get("candidate")
    old_text = f"v{old}" if old else "none (first model)"
    challenger, champion = decision.get("challenger_score"), decision.get("champion_score")
    baseline = decision.get("baseline_score")
    if challenger is not None:
        gain = f" ({float(challenger) - float(champion):+.4f})" if champion is not None else ""
        scores = (
            f"v{new} {_metric(challenger)} vs "
            + (f"v{old} {_metric(champion)}{gain}" if champion is not None else "no champion")
            + f", baseline {_metric(baseline)}"
        )
    else:
        scores = "n/a (manual deploy or rollback: no promotion decision)"
    test = approved.get("test") or {}
    metrics = ", ".join(
        f"{key} {_metric(test[key], 3)}" for key in ("roc_auc", "pr_auc", "log_loss", "brier", "f1") if key in test
    )
    smoke = (
        f"{served.get('canaries')} canary records, max |difference| {float(served['max_abs_difference']):.1e}"
        if served.get("max_abs_difference") is not None
        else "n/a"
    )
    text = (
        f":rocket: Model promoted: {name} v{new} is now champion (was {old_text}).\n"
        f"Test ROC AUC on the same test days: {scores}.\n"
        + (f"v{new} test metrics: {metrics}.\n" if metrics else "")
        + (f"Why: {decision['reason']}.\n" if decision.get("reason") else "")
        + f"Live smoke test: {smoke}."
    )
    pairs = [
        ("New champion", f"`v{_esc(new)}`" + (f" ({_esc(candidate)})" if candidate else "")),
        ("Previous", f"`{_esc(old_text)}`"),
        ("Test ROC AUC (same days)", _esc(scores)),
    ]
    if metrics:
        pairs.append((f"v{new} test metrics", _esc(metrics)))
    if approved.get("data_version"):
        pairs.append(("Data version", f"`{_esc(approved['data_version'])}`"))
    pairs.append(("Live smoke test", _esc(smoke)))
    blocks = [_header(f"Model promoted: {name} v{new}"), _fields(pairs)]
    if decision.get("reason"):
        blocks.append(_section(f"*Why:* {_esc(decision['reason'])}"))
    return SlackMessage("promotion", text, blocks)


def _drifted_features(summary: Mapping[str, Any]) -> list[str]:
    drifted = summary.get("drifted_features")
    scores = summary.get("scores") if isinstance(summary.get("scores"), Mapping) else {}
    if drifted is None and isinstance(summary.get("drift_by_columns"), Mapping):  # Evidently-style report
        drifted = {
            column: result.get("drift_score")
            for column, result in summary["drift_by_columns"].items()
            if isinstance(result, Mapping) and result.get("drift_detected")
        }
    if not isinstance(drifted, Mapping):
        drifted = {name: scores.get(name) for name in drifted or []}
    return [f"{name} ({_metric(score, 3)})" if score is not None else str(name) for name, score in drifted.items()]


def drift_message(summary: Mapping[str, Any]) -> SlackMessage:
    """Data drift: share of drifted features, which ones, where the report is (see :func:`notify_drift`)."""
    share = summary.get("drift_share", summary.get("share_of_drifted_columns"))
    features = _drifted_features(summary)
    total = summary.get("n_features", summary.get("number_of_columns"))
    if total is None and isinstance(summary.get("scores"), Mapping):
        total = len(summary["scores"])
    dataset = summary.get("dataset") or "features"
    report = summary.get("report_uri") or summary.get("report_url")
    share_text = f"{float(share):.0%}" if share is not None else "n/a"
    count_text = f"{len(features)} of {total}" if total is not None else str(len(features))
    window = ""
    if summary.get("reference") or summary.get("current"):
        window = f"reference {summary.get('reference', '?')} vs current {summary.get('current', '?')}"
    threshold = summary.get("threshold")
    shown = features[:MAX_CHECKS] + ([f"… and {len(features) - MAX_CHECKS} more"] if len(features) > MAX_CHECKS else [])
    reasons = [str(r) for r in summary.get("reasons") or []]
    text = (
        f":warning: Data drift in {dataset}: {share_text} of features drifted ({count_text})"
        + (f", threshold {_metric(threshold, 2)}" if threshold is not None else "")
        + (f"; {window}" if window else "")
        + ".\n"
        + ("Drifted: " + ", ".join(shown) + "\n" if shown else "")
        + "".join(f"Reason: {reason}\n" for reason in reasons)
        + (f"Report: {report}" if report else "Report: n/a")
    )
    pairs = [("Drift share", share_text), ("Drifted features", count_text)]
    if summary.get("rows") is not None:
        pairs.append(("Rows compared", str(summary["rows"])))
    if window:
        pairs.append(("Window", _esc(window)))
    if summary.get("dag_id") or summary.get("run_id"):
        pairs.append(("Run", " ".join(f"`{_esc(summary[k])}`" for k in ("dag_id", "run_id") if summary.get(k))))
    blocks = [_header(f"Data drift in {dataset}: {share_text} of features"), _fields(pairs)]
    if shown:
        blocks.append(_section("*Drifted*\n" + "\n".join(f"• `{_esc(name)}`" for name in shown)))
    if reasons:
        blocks.append(_section("*Why*\n" + "\n".join(f"• {_esc(reason)}" for reason in reasons)))
    if report:
        url = str(report)
        linkable = url.startswith(("http://", "https://"))
        blocks.append(_section(_link(url, "Open the drift report") if linkable else f"Report: `{_esc(url)}`"))
    return SlackMessage("drift", text, blocks)


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
            _log_once("slack-off", "Slack alerts are off (MLP_SLACK_CONN_ID is empty); not sending %s", message.kind)
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
                _log_once(
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

    outcome: dict[str, BaseException | bool] = {}

    def post() -> None:
        try:
            notifier.notify({})
            outcome["ok"] = True
        except BaseException as error:
            outcome["error"] = error

    # The clock starts here: what came before is local (import, connection lookup); the network is not.
    sender = threading.Thread(target=post, name=f"slack-alert-{message.kind}", daemon=True)
    sender.start()
    sender.join(timeout)
    if sender.is_alive():
        log.warning("Slack alert %s abandoned: no answer within %.1fs; the pipeline goes on", message.kind, timeout)
        return False
    if "error" in outcome:
        error = outcome["error"]
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
        _flush_sentry()
        error = context.get("exception")
        quality = find_quality_error(error)
        message = gate_blocked_message(context, quality) if quality is not None else task_failure_message(context)
        send_slack(message)


class DagFailureAlert(_SafeNotifier):
    """``on_failure_callback`` of a DAG: alerts when a run fails for its own reason (timeout, deadlock).

    A run failed by a task is already reported by that task's :class:`TaskFailureAlert`, with the
    error and the log link; alerting again would only double the noise.
    """

    def notify(self, context: Any) -> None:
        if str(context.get("reason") or "") == "task_failure":
            log.debug("DAG run failed by a task; its task alert covers it")
            return
        send_slack(dag_failure_message(context))


class DagRunMetrics(_SafeNotifier):
    """DAG-level ``on_success_callback`` and ``on_failure_callback``: the finished run's health as metrics.

    Pushes the run's duration, state and end time to the Pushgateway (``mlp_dag_run_*``, see
    ``include/mlpipeline/telemetry/pipeline_metrics.py``): a no-op without ``MLP_PUSHGATEWAY_URL``, bounded by
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


def protect_sentry_events(context: Any = None) -> None:
    """``on_execute_callback``: add secret scrubbing to Airflow's Sentry client (a no-op without Sentry)."""
    try:
        from include.mlpipeline.telemetry.sentry import protect_active_client

        protect_active_client()
    except Exception as error:
        log.warning("could not add secret scrubbing to Sentry: %s: %s", type(error).__name__, error)


def tag_quality_failure(error: Any) -> None:
    """Tag the Sentry event of a blocked quality gate with the gate and its checks (no-op without Sentry)."""
    import sys

    if "sentry_sdk" not in sys.modules:
        return
    try:
        import sentry_sdk

        if sentry_sdk.get_client().is_active():
            sentry_sdk.set_tag("quality_gate", error.gate)
            sentry_sdk.set_context("quality_gate", {"gate": error.gate, "failed_checks": dict(error.failed_checks)})
    except Exception as problem:
        log.debug("could not tag the Sentry scope: %s", problem)


def _flush_sentry(timeout: float = 2.0) -> None:
    """Deliver the task's Sentry event (captured just before the failure callbacks) before the process exits."""
    import sys

    if "sentry_sdk" not in sys.modules:
        return
    try:
        import sentry_sdk

        if sentry_sdk.get_client().is_active():
            sentry_sdk.flush(timeout=timeout)
    except Exception as error:
        log.debug("Sentry flush failed: %s", error)


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
