"""Deploy's human approval: what the request shows, what an answer (or none) means, what Slack says.

Tiny inputs: the ``approved_model`` extras train and the A/B test emit, registry tags as the registry
holds them, and the answer events Airflow resumes the HITL task with. For each shipped example (its
primary metric names the scores). The real scheduler answers them in tests/e2e/test_production_stack.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from include.mlpipeline.core.settings import Settings
from include.mlpipeline.deployment.approval import (
    ApprovalDecision,
    build_request,
    decide,
    duration_text,
    timeout_option,
)
from include.mlpipeline.orchestration.approval_messages import approval_request_message, rejection_message
from tests.support.examples import EXAMPLES, Example, example_id

CARD = {"uri": "runs:/r9/evaluation/model_card.md", "url": "http://mlflow:5000/#/experiments/1/runs/r9/artifactPath/x"}
SETTINGS = Settings(deploy_approval_timeout_min=90)


def gate_extra(metric: str) -> dict:
    """What train's ``approve`` task emits: a registration whose decision holds the gate's scores."""
    return {
        "model_name": "m",
        "version": "3",
        "candidate": "ridge",
        "run_id": "r9",
        "primary_metric": metric,
        "test": {metric: 0.71},
        "data_version": "md5-ab12",
        "decision": {
            "promote": True,
            "reason": "beats the champion: 0.7100 vs 0.6900 (+0.0200 >= 0.002)",
            "challenger_score": 0.71,
            "champion_score": 0.69,
            "baseline_score": 0.5,
            "metric": metric,
        },
    }


def request_for(example: Example, approved: dict | None, champion: str | None = "2", **tags: dict):
    metric = example.primary_metric
    return build_request(
        "3",
        approved,
        model_name="m",
        metric=metric,
        champion=champion,
        candidate_tags=tags.get("candidate", {f"test_{metric}": "0.7", "candidate": "ridge"}),
        champion_tags=tags.get("champion", {f"test_{metric}": "0.6"}),
        card=CARD,
        settings=SETTINGS,
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_a_gate_request_shows_both_scores_on_the_same_rows_and_the_card(example: Example) -> None:
    request = request_for(example, gate_extra(example.primary_metric))
    body = request.markdown()

    assert request.subject == "Deploy m v3, replacing v2?"
    metric = example.primary_metric
    assert f"- test {metric}: v3 0.7100, champion v2 0.6900 (same test rows), baseline 0.5000" in body
    assert "- promotion gate: beats the champion: 0.7100 vs 0.6900 (+0.0200 >= 0.002)" in body
    assert f"- model card: [{CARD['uri']}]({CARD['url']})" in body
    assert "data version: md5-ab12" in body
    assert "No answer within 1 h 30 min: **reject**" in body


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_a_first_model_has_no_champion_to_compare(example: Example) -> None:
    extra = gate_extra(example.primary_metric)
    extra["decision"] |= {"champion_score": None, "reason": "first model: passes the floor"}
    request = request_for(example, extra, champion=None)

    assert request.subject == "Deploy m v3?"
    assert "v3 0.7100, no champion yet, baseline 0.5000" in request.markdown()
    assert "nothing changes, no model is served" in request.markdown()


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_without_the_gates_scores_the_registry_gives_each_versions_own(example: Example) -> None:
    """A manual deploy has no event; an A/B win has its own numbers: then the registry's test scores."""
    manual = request_for(example, None)
    ab = request_for(
        example,
        {
            "version": "3",
            "decision": {"reason": "log loss lower; p=0.01 < 0.05", "variants": {"champion": {"log_loss": 0.41}}},
        },
    )

    assert manual.source == "manual deploy" and ab.source == "A/B test"
    for request in (manual, ab):
        assert (request.candidate_score, request.champion_score, request.same_rows) == (0.7, 0.6, False)
        assert "champion v2 0.6000 (each on its own test days)" in request.markdown()
    assert "- A/B test: log loss lower; p=0.01 < 0.05" in ab.markdown()
    assert "- live champion: log_loss 0.4100" in ab.markdown()


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_an_earlier_rejection_of_the_version_is_shown(example: Example) -> None:
    tags = {"deploy_approval": "rejected", "deploy_approval_by": "alice", "deploy_approval_reason": "worse on Adelie"}
    request = request_for(example, gate_extra(example.primary_metric), candidate=tags)

    assert "- earlier decision: rejected by alice at ?: worse on Adelie" in request.markdown()


def test_no_logged_card_is_said() -> None:
    request = build_request("3", None, model_name="m", metric="r2", champion=None, card=None, settings=SETTINGS)

    assert "- model card: none logged for this version" in request.markdown()


NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
ALICE = {"id": "alice", "name": "Alice"}


REJECTED_BY_TIMEOUT = ApprovalDecision(False, None, None, True, NOW.isoformat())


@pytest.mark.parametrize(
    ("answer", "expected", "said"),
    [
        (
            (["Approve"], ALICE, {"reason": ""}, False),
            ApprovalDecision(True, "Alice", None, False, NOW.isoformat()),
            "approved by Alice",
        ),
        (
            (["Reject"], ALICE, {"reason": " worse on Adelie "}, False),
            ApprovalDecision(False, "Alice", "worse on Adelie", False, NOW.isoformat()),
            "rejected by Alice: worse on Adelie",
        ),
        (
            (["Reject"], None, {"reason": ""}, True),
            REJECTED_BY_TIMEOUT,
            "not answered in time: rejected by the timeout policy",
        ),
        (
            (["Approve"], None, {}, True),
            ApprovalDecision(True, None, None, True, NOW.isoformat()),
            "not answered in time: approved by the timeout policy",
        ),
        ((["Reject"], None, None, False), REJECTED_BY_TIMEOUT, "not answered in time: rejected by the timeout policy"),
    ],
    ids=["approved", "rejected-with-reason", "timeout-reject", "timeout-approve", "no-user-is-a-timeout"],
)
def test_what_an_answer_means(answer: tuple, expected: ApprovalDecision, said: str) -> None:
    """An answer event (chosen options, user, form, Airflow's timeout flag) and what it decides."""
    chosen, user, form, timed_out = answer
    decision = decide(chosen, user, form, timed_out=timed_out, responded_at=NOW)

    assert decision == expected
    assert decision.describe() == said


@pytest.mark.parametrize("chosen", [[], ["Maybe"], ["Approve", "Reject"]])
def test_an_answer_is_exactly_one_option(chosen) -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        decide(chosen, ALICE)


@pytest.mark.parametrize(("policy", "option"), [("reject", "Reject"), ("approve", "Approve")])
def test_the_timeout_policy_is_the_option_airflow_answers_with(policy: str, option: str) -> None:
    assert timeout_option(policy) == option


@pytest.mark.parametrize("policy", ["Reject", "deploy", ""])
def test_an_unknown_policy_says_what_to_set(policy: str) -> None:
    with pytest.raises(ValueError, match="MLP_DEPLOY_APPROVAL_ON_TIMEOUT to reject or approve"):
        timeout_option(policy)


@pytest.mark.parametrize(("value", "expected"), [(" Approve ", "approve"), ("REJECT", "reject")])
def test_the_policy_setting_ignores_case(value: str, expected: str) -> None:
    assert Settings(deploy_approval_on_timeout=value).deploy_approval_on_timeout == expected


def test_approval_is_off_by_default_and_rejects_on_timeout() -> None:
    settings = Settings()
    assert (settings.deploy_approval_required, settings.deploy_approval_on_timeout) == (False, "reject")


def test_a_bad_policy_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="'reject' or 'approve'"):
        Settings(deploy_approval_on_timeout="maybe")


@pytest.mark.parametrize(("minutes", "text"), [(1440, "24 h"), (90, "1 h 30 min"), (0.75, "45 s"), (0.001, "0 s")])
def test_durations_read_as_people_say_them(minutes: float, text: str) -> None:
    assert duration_text(minutes) == text


@pytest.mark.parametrize(
    ("decision", "tags"),
    [
        (
            ApprovalDecision(False, "Alice", "worse on Adelie", False, "2026-07-01T12:00:00+00:00"),
            {
                "deploy_approval": "rejected",
                "deploy_approval_by": "Alice",
                "deploy_approval_reason": "worse on Adelie",
                "deploy_approval_at": "2026-07-01T12:00:00+00:00",
                "deploy_approval_run": "run-1",
            },
        ),
        (
            ApprovalDecision(True, None, None, True, None),
            {"deploy_approval": "approved", "deploy_approval_by": "timeout", "deploy_approval_run": "run-1"},
        ),
    ],
    ids=["rejected", "timeout-approved"],
)
def test_the_decision_is_kept_as_registry_tags(decision: ApprovalDecision, tags: dict) -> None:
    assert decision.tags("run-1") == tags
    assert ApprovalDecision.from_dict(decision.to_dict()) == decision


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_slack_says_an_approval_waits_with_the_link(example: Example) -> None:
    link = "http://airflow:8080/dags/deploy/runs/r1/tasks/await_approval/required_actions?map_index=-1"
    message = approval_request_message(request_for(example, gate_extra(example.primary_metric)), link)

    assert message.text.startswith(":raising_hand: Approval needed: deploy m v3 (champion v2)?\n")
    assert f"test {example.primary_metric}: v3 0.7100, champion v2 0.6900 (same test rows)" in message.text
    assert message.text.endswith(f"No answer within 1 h 30 min: reject.\nApprove or reject: {link}")
    assert message.blocks[-1]["text"]["text"] == f"<{link}|Approve or reject in Airflow>"
    assert any(CARD["url"] in block.get("text", {}).get("text", "") for block in message.blocks)


@pytest.mark.parametrize(
    ("decision", "start"),
    [
        (
            ApprovalDecision(False, "Alice", "worse <on> Adelie"),
            ":no_entry_sign: Deploy rejected: m v3: rejected by Alice: worse <on> Adelie.",
        ),
        (
            ApprovalDecision(False, None, None, True),
            ":hourglass: Deploy not approved in time: m v3: no answer within 1 h 30 min: rejected by policy.",
        ),
    ],
    ids=["person", "timeout"],
)
def test_slack_says_a_version_was_rejected_and_the_champion_stays(decision: ApprovalDecision, start: str) -> None:
    message = rejection_message(
        {"model_name": "m", "version": "3", "champion": "2", "decision": decision.to_dict(), "timeout_min": 90}
    )

    assert message.text == f"{start} v2 stays champion; v3 is tagged rejected in the registry."
    if decision.reason:
        assert message.blocks[-1]["text"]["text"] == "*Why:* worse &lt;on&gt; Adelie"


@pytest.mark.parametrize("policy", ["reject", "approve"])
def test_a_request_asked_again_rejects_when_unanswered(policy: str) -> None:
    """A retry asks again and the earlier answer may be lost: the approve policy must not overrule it."""
    settings = Settings(deploy_approval_timeout_min=90, deploy_approval_on_timeout=policy)
    request = build_request("3", None, model_name="m", metric="r2", champion="2", settings=settings, asked_before=True)

    assert request.on_timeout == "reject"
    assert "- asked again: an answer to the earlier request, if any, was lost" in request.markdown()
    assert "No answer within 1 h 30 min: **reject**" in request.markdown()
