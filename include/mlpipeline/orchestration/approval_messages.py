"""The Slack messages of deploy's approval step: a request is waiting; a version was rejected.

Pure formatting, like :mod:`~include.mlpipeline.orchestration.slack_messages` (whose helpers these
use); :mod:`~include.mlpipeline.orchestration.approval` sends them. A request is announced once,
when it opens, with the link to it in Airflow's UI. A rejection (or a timeout that rejects) is
announced, since nothing else would say it; an approval is not, as the promotion message of the
verified deploy follows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.mlpipeline.deployment.approval import ApprovalDecision, ApprovalRequest, duration_text, timeout_option
from include.mlpipeline.orchestration.slack_messages import SlackMessage, _esc, _fields, _header, _link, _section


def approval_request_message(request: ApprovalRequest, link: str | None) -> SlackMessage:
    """An approval is waiting: the candidate against the champion, the gate's reason, the model card, the link."""
    policy = timeout_option(request.on_timeout).lower()
    champion = f"v{request.champion}" if request.champion else "none yet"
    card = request.card_url or request.card_uri
    text = (
        f":raising_hand: Approval needed: deploy {request.model_name} v{request.version} (champion {champion})?\n"
        f"{request.scores_text()}.\n"
        + (f"{request.source}: {request.reason}.\n" if request.reason else "")
        + (f"Model card: {card}\n" if card else "")
        + f"No answer within {request.timeout_text}: {policy}.\n"
        f"Approve or reject: {link or '(no link: Airflow has no [api] base_url)'}"
    )
    pairs = [
        ("Candidate", f"`v{_esc(request.version)}`" + (f" ({_esc(request.candidate)})" if request.candidate else "")),
        ("Champion", f"`{_esc(champion)}`"),
        (f"Test {request.metric}", _esc(request.comparison())),
        ("From", _esc(request.source)),
        ("No answer within", f"{_esc(request.timeout_text)}: *{policy}*"),
    ]
    blocks = [_header(f"Approval needed: {request.model_name} v{request.version}"), _fields(pairs)]
    if request.reason:
        blocks.append(_section(f"*Why it was proposed:* {_esc(request.reason)}"))
    if request.card_url:
        blocks.append(_section(_link(request.card_url, "Open the model card in MLflow")))
    elif request.card_uri:
        blocks.append(_section(f"Model card: `{_esc(request.card_uri)}`"))
    blocks.append(_section(_link(link, "Approve or reject in Airflow") if link else "Approve or reject in Airflow"))
    return SlackMessage("approval_request", text, blocks)


def rejection_message(result: Mapping[str, Any]) -> SlackMessage:
    """A version was not deployed: who rejected it and why, or the timeout policy; the champion stays.

    ``result`` is :func:`~include.mlpipeline.deployment.approval.keep_champion`'s.
    """
    decision = ApprovalDecision.from_dict(result["decision"])
    name, version, champion = result.get("model_name") or "model", result["version"], result.get("champion")
    stays = f"v{champion} stays champion" if champion else "no model is served yet"
    if decision.timed_out:
        waited = duration_text(float(result.get("timeout_min") or 0))
        title, why = f"Deploy not approved in time: {name} v{version}", f"no answer within {waited}: rejected by policy"
        icon = ":hourglass:"
    else:
        title, why = f"Deploy rejected: {name} v{version}", decision.describe()
        icon = ":no_entry_sign:"
    text = f"{icon} {title}: {why}. {stays}; v{version} is tagged rejected in the registry."
    pairs = [
        ("Version", f"`v{_esc(version)}`"),
        ("Decision", _esc("timeout" if decision.timed_out else f"rejected by {decision.by}")),
        ("Champion", _esc(stays)),
    ]
    blocks = [_header(title), _fields(pairs)]
    if decision.reason:
        blocks.append(_section(f"*Why:* {_esc(decision.reason)}"))
    return SlackMessage("approval_rejected", text, blocks)
