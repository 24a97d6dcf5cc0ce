"""Human approval before a model goes live: what the approver sees, what the answer means, where it is kept.

With ``MLP_DEPLOY_APPROVAL_REQUIRED`` on, the deploy DAG asks a person before it moves the
``champion`` alias, with Airflow's human-in-the-loop operator
(:mod:`~include.mlpipeline.orchestration.approval`). This module is the part without Airflow:

- :func:`gather_request` collects what is known about the candidate into an :class:`ApprovalRequest`
  (pure part: :func:`build_request`). From the ``approved_model`` event: the promotion gate's test
  scores of the candidate, of the champion on the same rows and of the baseline, with the gate's
  reason; or the A/B test's reason and live metrics. Else (a manual deploy) from the registry: each
  version's own test score. Plus where the candidate's model card is. :meth:`ApprovalRequest.markdown`
  is the body Airflow's UI shows.
- :func:`decide` turns the answer, or its absence, into an :class:`ApprovalDecision`.
- :func:`record_decision` keeps it on the version's registry tags (``deploy_approval``: approved or
  rejected, ``deploy_approval_by``, ``deploy_approval_reason``, ``deploy_approval_at``,
  ``deploy_approval_run``); deploy calls it before it moves the alias, :func:`keep_champion` on a
  rejection, which moves nothing.

The timeout policy (``MLP_DEPLOY_APPROVAL_ON_TIMEOUT``) is ``reject`` by default. No answer means
nobody looked at the candidate, and an approval that deploys by default is a delay, not a gate.
Rejecting costs little and can be undone: the champion, which passed its own checks, keeps serving,
and the candidate stays registered (as ``challenger``), so a manual deploy can serve it later. A
wrong model served costs more. ``approve`` suits a team that wants a veto window instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from include.mlpipeline.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

APPROVE = "Approve"
REJECT = "Reject"
OPTIONS = (APPROVE, REJECT)
TIMEOUT_OPTION = {"reject": REJECT, "approve": APPROVE}
"""The answer the timeout policy gives (the HITL operator's ``defaults``)."""
TAG = "deploy_approval"
REASON_CHARS = 5000  # an MLflow tag value holds at most 5000 characters


def timeout_option(policy: str) -> str:
    """The option an unanswered request takes under ``policy`` (``reject`` or ``approve``).

    Raises:
        ValueError: for any other policy.
    """
    if policy not in TIMEOUT_OPTION:
        raise ValueError(
            f"unknown approval timeout policy {policy!r}: set MLP_DEPLOY_APPROVAL_ON_TIMEOUT to reject or approve"
        )
    return TIMEOUT_OPTION[policy]


def duration_text(minutes: float) -> str:
    """A wait as people read it: ``24 h``, ``1 h 30 min``, ``45 s``."""
    seconds = round(minutes * 60)
    hours, rest = divmod(seconds, 3600)
    mins, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{mins} min" if mins else "", f"{secs} s" if secs else ""]
    return " ".join(part for part in parts if part) or "0 s"


def _score(value: Any) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return "n/a"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ApprovalRequest:
    """What the approver is shown: the candidate against the champion, and what each answer does.

    ``same_rows`` says whether the scores come from the promotion gate, which scores candidate and
    champion on the same test rows; registry scores are each version's own test days.
    """

    model_name: str
    version: str
    champion: str | None
    source: str  # promotion gate | A/B test | manual deploy
    metric: str
    candidate_score: float | None
    champion_score: float | None
    baseline_score: float | None = None
    same_rows: bool = False
    reason: str | None = None
    candidate: str | None = None
    details: tuple[str, ...] = ()
    card_uri: str | None = None
    card_url: str | None = None
    timeout_min: float = 1440.0
    on_timeout: str = "reject"

    @property
    def subject(self) -> str:
        replacing = f", replacing v{self.champion}" if self.champion and self.champion != self.version else ""
        return f"Deploy {self.model_name} v{self.version}{replacing}?"

    @property
    def timeout_text(self) -> str:
        return duration_text(self.timeout_min)

    def comparison(self) -> str:
        """``v3 0.8734, champion v2 0.8601 (same test rows), baseline 0.0000``: the primary metric's scores."""
        if not self.champion:
            champion = "no champion yet"
        else:
            rows = "same test rows" if self.same_rows else "each on its own test days"
            champion = f"champion v{self.champion} {_score(self.champion_score)} ({rows})"
        baseline = f", baseline {_score(self.baseline_score)}" if self.baseline_score is not None else ""
        return f"v{self.version} {_score(self.candidate_score)}, {champion}{baseline}"

    def scores_text(self) -> str:
        return f"test {self.metric}: {self.comparison()}"

    def markdown(self) -> str:
        """The body of the request in Airflow's UI (Markdown)."""
        kept = f"v{self.champion} keeps serving" if self.champion else "no model is served"
        lines = [
            f"**Candidate** v{self.version}"
            + (f" ({self.candidate})" if self.candidate else "")
            + f" · **champion** {f'v{self.champion}' if self.champion else 'none yet'} · from the {self.source}",
            "",
            f"- {self.scores_text()}",
        ]
        if self.reason:
            lines.append(f"- {self.source}: {self.reason}")
        lines += [f"- {line}" for line in self.details]
        if self.card_url:
            lines.append(f"- model card: [{self.card_uri}]({self.card_url})")
        elif self.card_uri:
            lines.append(f"- model card: `{self.card_uri}`")
        else:
            lines.append("- model card: none logged for this version")
        lines += [
            "",
            f"**{APPROVE}**: `champion` moves to v{self.version}; deploy waits for the API to serve it, checks "
            "its canary answers and rolls back if they are wrong.",
            f"**{REJECT}**: nothing changes, {kept}; v{self.version} is tagged rejected, with your reason.",
            f"No answer within {self.timeout_text}: **{timeout_option(self.on_timeout).lower()}** "
            "(MLP_DEPLOY_APPROVAL_ON_TIMEOUT).",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "details": list(self.details), "subject": self.subject}


def _source(approved: Mapping[str, Any] | None) -> str:
    if not approved:
        return "manual deploy"
    decision = approved.get("decision") or {}
    return "promotion gate" if "challenger_score" in decision else "A/B test"


def _ab_details(decision: Mapping[str, Any]) -> list[str]:
    """One line per A/B variant: its live metrics (``variants`` of an A/B decision)."""
    lines = []
    for variant, metrics in (decision.get("variants") or {}).items():
        shown = ", ".join(f"{name} {_score(value)}" for name, value in metrics.items())
        lines.append(f"live {variant}: {shown}")
    if decision.get("test"):
        lines.append(f"test: {decision['test']}")
    return lines


def _earlier(tags: Mapping[str, str]) -> list[str]:
    """A decision an earlier deploy run already recorded for this version, if any."""
    if not tags.get(TAG):
        return []
    reason = f": {tags['deploy_approval_reason']}" if tags.get("deploy_approval_reason") else ""
    return [
        f"earlier decision: {tags[TAG]} by {tags.get('deploy_approval_by', '?')} at "
        f"{tags.get('deploy_approval_at', '?')}{reason}"
    ]


def build_request(
    version: str,
    approved: Mapping[str, Any] | None,
    *,
    model_name: str,
    metric: str,
    champion: str | None,
    candidate_tags: Mapping[str, str] | None = None,
    champion_tags: Mapping[str, str] | None = None,
    card: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    asked_before: bool = False,
) -> ApprovalRequest:
    """The request for ``version``, from its ``approved_model`` event extra (None: a manual deploy).

    Args:
        version: The version to deploy.
        approved: The event extra of that version: a training registration (its ``decision`` holds
            the gate's scores) or an A/B win (its ``decision`` holds the reason and live metrics).
        model_name: The registered model.
        metric: The primary metric (what the registry tags ``test_<metric>``).
        champion: The version the champion alias points at now (None: no model is served yet).
        candidate_tags: The candidate version's registry tags; champion_tags: the champion's.
        card: ``uri`` (and ``url``) of the candidate's model card (None: none logged).
        settings: For the timeout and its policy.
        asked_before: This is a retry of a request that may have been answered (the answer is lost):
            then no answer rejects, whatever the policy.

    Returns:
        The request; the gate's scores when the event has them, else the registry's.
    """
    settings = settings or get_settings()
    approved = approved or {}
    tags, champion_tags = dict(candidate_tags or {}), dict(champion_tags or {})
    decision = approved.get("decision") or {}
    source = _source(approved)
    metric = approved.get("primary_metric") or decision.get("metric") or metric
    details: list[str] = []
    if source == "promotion gate":
        scores = (decision.get("challenger_score"), decision.get("champion_score"), decision.get("baseline_score"))
        test = approved.get("test") or {}
        if test:
            details.append("candidate test metrics: " + ", ".join(f"{k} {_score(v)}" for k, v in test.items()))
    else:
        scores = (tags.get(f"test_{metric}"), champion_tags.get(f"test_{metric}") if champion else None, None)
        details += _ab_details(decision)
    data_version = approved.get("data_version") or tags.get("data_version")
    if data_version:
        details.append(f"data version: {data_version}")
    details += _earlier(tags)
    if asked_before:
        details.append("asked again: an answer to the earlier request, if any, was lost; no answer now rejects")
    candidate_score, champion_score, baseline_score = (_float(value) for value in scores)
    return ApprovalRequest(
        model_name=str(approved.get("model_name") or model_name),
        version=str(version),
        champion=str(champion) if champion else None,
        source=source,
        metric=str(metric),
        candidate_score=candidate_score,
        champion_score=champion_score,
        baseline_score=baseline_score,
        same_rows=source == "promotion gate" and champion_score is not None,
        reason=decision.get("reason"),
        candidate=approved.get("candidate") or tags.get("candidate"),
        details=tuple(details),
        card_uri=(card or {}).get("uri"),
        card_url=(card or {}).get("url"),
        timeout_min=settings.deploy_approval_timeout_min,
        on_timeout="reject" if asked_before else settings.deploy_approval_on_timeout,
    )


def gather_request(
    version: str, approved: Mapping[str, Any] | None, settings: Settings | None = None, *, asked_before: bool = False
) -> ApprovalRequest:
    """:func:`build_request` with what the registry knows: the champion, both versions' tags, the model card.

    Raises:
        mlflow.exceptions.MlflowException: the version is not in the registry (nothing to approve).
    """
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.ml import registry
    from include.mlpipeline.ml.task_kinds import task_kind
    from include.mlpipeline.ml.tracking import registered_model_name

    settings = settings or get_settings()
    problem = load_problem()
    name = registered_model_name(settings, problem)
    tags = registry.version_tags(version, name)
    champion = registry.alias_version(settings.champion_alias, name)
    run_id = (approved or {}).get("run_id") or tags.get("run_id")
    return build_request(
        version,
        approved,
        model_name=name,
        metric=task_kind(problem.task).primary_metric(problem.primary_metric),
        champion=champion,
        candidate_tags=tags,
        champion_tags=registry.version_tags(champion, name) if champion and champion != str(version) else {},
        card=registry.model_card_location(run_id) if run_id else None,
        settings=settings,
        asked_before=asked_before,
    )


@dataclass(frozen=True)
class ApprovalDecision:
    """The answer to a request: approved or not, by whom (None: the timeout decided), why, when."""

    approved: bool
    by: str | None = None
    reason: str | None = None
    timed_out: bool = False
    at: str | None = None

    @property
    def outcome(self) -> str:
        return "approved" if self.approved else "rejected"

    def describe(self) -> str:
        """``rejected by alice: worse on Adelie`` or ``not answered in time: rejected by the timeout policy``."""
        if self.timed_out:
            return f"not answered in time: {self.outcome} by the timeout policy"
        return f"{self.outcome} by {self.by}" + (f": {self.reason}" if self.reason else "")

    def tags(self, run_id: str | None = None) -> dict[str, str]:
        """The registry tags that keep this decision on the version."""
        tags = {TAG: self.outcome, f"{TAG}_by": self.by if not self.timed_out else "timeout"}
        if self.reason:
            tags[f"{TAG}_reason"] = self.reason[:REASON_CHARS]
        if self.at:
            tags[f"{TAG}_at"] = self.at
        if run_id:
            tags[f"{TAG}_run"] = str(run_id)
        return tags

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalDecision:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def decide(
    chosen_options: Sequence[str],
    responded_by: Mapping[str, Any] | None,
    params_input: Mapping[str, Any] | None = None,
    *,
    timed_out: bool = False,
    responded_at: dt.datetime | str | None = None,
) -> ApprovalDecision:
    """What an answer means. On a timeout Airflow answers with the policy's option and no user.

    Args:
        chosen_options: The chosen option: ``["Approve"]`` or ``["Reject"]``.
        responded_by: Airflow's user who answered (``{"id", "name"}``); None when the timeout answered.
        params_input: The form's fields: ``reason``, optional.
        timed_out: Airflow's flag that the timeout answered.
        responded_at: When.

    Raises:
        ValueError: anything but exactly one of Approve and Reject.
    """
    if len(chosen_options) != 1 or chosen_options[0] not in OPTIONS:
        raise ValueError(f"an approval answer is exactly one of {list(OPTIONS)}; got {list(chosen_options)}")
    timed_out = timed_out or not responded_by
    by = None if timed_out else str(responded_by.get("name") or responded_by.get("id"))  # type: ignore[union-attr]
    reason = str((params_input or {}).get("reason") or "").strip() or None
    at = responded_at.isoformat() if isinstance(responded_at, dt.datetime) else responded_at
    return ApprovalDecision(chosen_options[0] == APPROVE, by, reason, timed_out, at)


def record_decision(
    version: str, decision: Mapping[str, Any] | ApprovalDecision, run_id: str | None = None
) -> ApprovalDecision:
    """Keep ``decision`` on the version's registry tags; returns it."""
    from include.mlpipeline.ml import registry

    decided = decision if isinstance(decision, ApprovalDecision) else ApprovalDecision.from_dict(decision)
    registry.set_version_tags(version, decided.tags(run_id))
    log.info("version %s %s", version, decided.describe())
    return decided


def keep_champion(version: str, decision: Mapping[str, Any], run_id: str | None = None) -> dict[str, Any]:
    """A rejected version: tag it rejected, move no alias; returns what happened, for the log and Slack.

    Raises:
        ValueError: if ``decision`` approved the version (deploy, not this, handles that).
    """
    from include.mlpipeline.ml import registry
    from include.mlpipeline.ml.tracking import registered_model_name

    decided = ApprovalDecision.from_dict(decision)
    if decided.approved:
        raise ValueError(f"version {version} was approved; keep_champion handles rejections only")
    record_decision(version, decided, run_id)
    settings = get_settings()
    champion = registry.alias_version(settings.champion_alias)
    log.info("version %s not deployed (%s); champion stays %s", version, decided.describe(), champion)
    return {
        "model_name": registered_model_name(settings),
        "version": str(version),
        "champion": champion,
        "decision": decided.to_dict(),
        "timeout_min": settings.deploy_approval_timeout_min,
    }
