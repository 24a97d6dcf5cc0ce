"""The pipeline's Slack messages: what each alert says, as text and as Block Kit blocks.

Pure formatting, no sending (see :mod:`~include.mlpipeline.orchestration.alerts`): each builder takes
what its callback or task has (the Airflow context, the error, a deploy's or the monitor's result) and
returns a :class:`SlackMessage`. Messages are for people on call, so they name the DAG, task and run,
keep only the first lines of an error (with known secrets replaced) and link to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

ERROR_LINES = 6
ERROR_CHARS = 1500
MAX_CHECKS = 25


@dataclass
class SlackMessage:
    """What goes to the webhook: ``text`` (notifications, fallback) and Block Kit ``blocks``."""

    kind: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------------------- helpers
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


def _duration(delta: Any) -> str:
    """A timedelta as on-call reads it: ``4 h``, ``1 h 30 min``, ``30 min``, ``45 s``."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    if not hours and not minutes:
        parts.append(f"{secs} s")
    return " ".join(part for part in parts if part)


def _started(run: Any) -> str:
    start = getattr(run, "start_date", None)
    return f", started {start:%Y-%m-%d %H:%M} UTC" if start is not None and hasattr(start, "strftime") else ""


def dag_failure_message(context: Mapping[str, Any]) -> SlackMessage:
    """A DAG run failed for a reason of its own: it timed out, or its tasks deadlocked.

    ``context`` is what the dag-processor passes the DAG's ``on_failure_callback``: ``dag``, ``run_id``
    and ``reason`` (``timed_out`` when ``dagrun_timeout`` passed, ``all_tasks_deadlocked``), plus, when
    the scheduler names one, the template context of the run's last unfinished task (``ti``, ``dag_run``).
    """
    ref = TaskRef.from_context({k: v for k, v in context.items() if k not in {"ti", "task_instance"}})
    reason = str(context.get("reason") or "unknown")
    last = context.get("ti") or context.get("task_instance")
    last_task = getattr(last, "task_id", None)
    last_text = f" (last task {last_task})" if last_task else ""
    timeout = getattr(context.get("dag"), "dagrun_timeout", None)
    if reason == "timed_out":
        bound = f"its dagrun_timeout of {_duration(timeout)}" if timeout else "its dagrun_timeout"
        title = f"DAG run timed out: {ref.dag_id}"
        stuck = f"; the last of them to start was {last_task}" if last_task else ""
        why = (
            f"still running after {bound}{_started(context.get('dag_run'))}. Airflow failed the run and "
            f"marked its unfinished tasks skipped{stuck}"
        )
        icon = ":hourglass:"
    elif reason == "all_tasks_deadlocked":
        title = f"DAG run deadlocked: {ref.dag_id}"
        why = f"no task can run (their upstream states never satisfy their trigger rules){last_text}"
        icon = ":red_circle:"
    else:
        title = f"DAG run failed: {ref.dag_id}"
        why = f"{reason}{last_text}"
        icon = ":red_circle:"
    text = f"{icon} {title}, run {ref.run_id}: {why}.\nRun: {ref.log_url}"
    pairs = [("DAG", f"`{_esc(ref.dag_id)}`"), ("Run", f"`{_esc(ref.run_id)}`"), ("Reason", f"`{_esc(reason)}`")]
    if reason == "timed_out" and timeout:
        pairs.append(("dagrun_timeout", _esc(_duration(timeout))))
    if last_task:
        pairs.append(("Last unfinished task", f"`{_esc(last_task)}`"))
    blocks = [
        _header(title),
        _fields(pairs),
        _section(f"{_esc(why[:1].upper() + why[1:])}. " + _link(ref.log_url, "Open the run in Airflow")),
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
