"""Deploy's human approval on the real scheduler: approve, reject and time out, through Airflow's REST API.

One small stack of its own (scheduler, dag-processor, triggerer and api-server on SQLite with the
LocalExecutor, MLflow, the prediction API), on free ports and its own state folder, with
``MLP_DEPLOY_APPROVAL_REQUIRED`` on, a 1 min approval timeout and Slack pointed at a local webhook
stub. Only ``deploy`` is unpaused. The models are real: the penguins' baseline and ridge, trained and
registered in this process with the pipeline's own code (the chain that does this under Airflow has
its own tests); v2 and v3 are that ridge again with a better test score, so that the gate promotes
them over the champion, scored on the same rows. Each version reaches deploy as an ``approved_model``
event posted through the REST API, which queues an asset-triggered run as train's event does.

1. v1, the first model: the request shows its score, no champion yet, and the model card; Slack
   links to it; Approve (as admin, with a reason) runs the verified deploy: the API serves v1, and
   v1 is tagged approved by admin.
2. v2: Reject, with a reason: ``keep_champion`` runs, ``promote`` and ``verify_live_service`` are
   skipped, the run succeeds; the alias stays on v1, which the API still serves; v2 is tagged
   rejected by admin with the reason, and Slack says so.
3. v3: nobody answers. After the timeout the scheduler answers with the default policy, Reject:
   v3 is tagged rejected by ``timeout``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack.config import StackConfig
from stack.stack import Stack

from include.mlpipeline.core.jsonable import json_safe
from tests.support import SlackStub
from tests.support.examples import PENGUINS
from tests.support.pipeline import environment, replay_and_open_run

pytestmark = pytest.mark.e2e

MODEL = "approval_e2e"
TIMEOUT_MIN = 1.0  # long enough to answer by REST on a busy machine, short enough to wait for in the timeout test
ANSWER_AFTER_S = 10  # a person reads the request first (run_deploy says why it matters)
REQUEST = "/dags/deploy/dagRuns/{run_id}/taskInstances/await_approval/-1/hitlDetails"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> tuple[StackConfig, dict[str, str]]:
    config = StackConfig.isolated(tmp_path_factory.mktemp("approval-stack"))
    return config, PENGUINS.environment(config.mlflow_url, config.lake_uri, MODEL, MLP_DVC_ENABLED="false")


@pytest.fixture(scope="module")
def stack(settings: tuple[StackConfig, dict[str, str]], slack: SlackStub) -> Iterator[Stack]:
    config, pipeline = settings
    config.extra_env.update(
        {
            **pipeline,
            "MLP_ETL_SCHEDULE": "none",
            "MLP_DEPLOY_APPROVAL_REQUIRED": "true",
            "MLP_DEPLOY_APPROVAL_TIMEOUT_MIN": str(TIMEOUT_MIN),
            "AIRFLOW_CONN_SLACK_DEFAULT": slack.connection_json(),
            # How often the scheduler looks for unanswered requests past their timeout (15 s by default).
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
        }
    )
    running = Stack(config)
    try:
        running.start()
        running.airflow.wait_for_dags(("deploy",))
        running.airflow.set_paused("deploy", False)
        yield running
    finally:
        running.stop()


@dataclass
class Candidates:
    """The training run's results in this process, and how to register another version from them."""

    window: dict[str, Any]
    parent: str
    baseline: dict[str, Any]
    ridge: dict[str, Any]
    pipeline: dict[str, str]

    def register(self, gain: float = 0.0) -> dict[str, Any]:
        """A new version: ridge, its test score raised by ``gain``; the gate's registration (the event extra)."""
        from include.mlpipeline.ml import registry

        metric = PENGUINS.primary_metric
        ridge = copy.deepcopy(self.ridge)
        ridge["test"][metric] += PENGUINS.better * gain
        with environment(**self.pipeline):
            registration = registry.register_best([self.baseline, ridge], self.window, self.parent)
        assert registration["decision"]["promote"], registration["decision"]
        return json_safe(registration)


@pytest.fixture(scope="module")
def candidates(stack: Stack, settings: tuple[StackConfig, dict[str, str]]) -> Candidates:
    from include.mlpipeline.ml.training import train_candidate

    _, pipeline = settings
    with environment(**pipeline):
        window, parent = replay_and_open_run("approval e2e", PENGUINS)
        baseline, ridge = (train_candidate(name, window, parent) for name in ("baseline", PENGUINS.cheap_model))
    return Candidates(window, parent, baseline, ridge, pipeline)


# ------------------------------------------------------------------------------------- helpers
def post_approved(stack: Stack, extra: dict[str, Any], timeout: float = 120) -> str:
    """Post an approved_model event through the REST API; the id of the deploy run it queues."""
    client = stack.airflow
    known = {run["dag_run_id"] for run in client.runs("deploy")}
    (asset,) = client.request("GET", "/assets", params={"name_pattern": "approved_model"})["assets"]
    client.request("POST", "/assets/events", json={"asset_id": asset["id"], "extra": extra})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [run for run in client.runs("deploy") if run["dag_run_id"] not in known]
        if new:
            assert new[0]["run_type"] == "asset_triggered"
            return new[0]["dag_run_id"]
        time.sleep(1)
    raise TimeoutError(f"no deploy run within {timeout:.0f}s of the approved_model event")


def waiting_request(stack: Stack, run_id: str, timeout: float = 180) -> dict[str, Any]:
    """The run's approval request, once its task waits for an answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = stack.airflow.request("GET", REQUEST.format(run_id=run_id))
        except RuntimeError as error:  # 404 until the task has written it
            if "HTTP 404" not in str(error):
                raise
        else:
            if request["task_instance"]["state"] == "awaiting_input":
                return request
        time.sleep(0.5)
    raise TimeoutError(f"deploy run {run_id} asked for no approval within {timeout:.0f}s: {states(stack, run_id)}")


def answer(stack: Stack, run_id: str, option: str, reason: str) -> dict[str, Any]:
    body = {"chosen_options": [option], "params_input": {"reason": reason}}
    return stack.airflow.request("PATCH", REQUEST.format(run_id=run_id), json=body)


def finished(stack: Stack, run_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.airflow.request("GET", f"/dags/deploy/dagRuns/{run_id}")
        if run["state"] in {"success", "failed"}:
            return run
        time.sleep(1)
    raise TimeoutError(f"deploy run {run_id} not finished within {timeout:.0f}s: {states(stack, run_id)}")


def states(stack: Stack, run_id: str) -> dict[str, str]:
    return {t["task_id"]: t["state"] for t in stack.airflow.task_instances("deploy", run_id)}


def version_tags(stack: Stack, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return MlflowClient(stack.config.mlflow_url).get_model_version(MODEL, version).tags


def champion(stack: Stack) -> str:
    from mlflow import MlflowClient

    return MlflowClient(stack.config.mlflow_url).get_model_version_by_alias(MODEL, "champion").version


def served(stack: Stack) -> str:
    return str(httpx.get(f"{stack.config.api_url}/model", timeout=30).json()["model_version"])


def slack_texts(slack: SlackStub, start: str) -> list[str]:
    return [post.text for post in slack.posts if post.text.startswith(start)]


@dataclass
class Outcome:
    run_id: str
    request: dict[str, Any]  # the request as the REST API showed it while the task waited
    run: dict[str, Any]  # the finished run
    states: dict[str, str]
    detail: dict[str, Any]  # the request with its answer, after the run
    asked: int  # how many times the run asked (more than once: Airflow retried an answered try)


def asked_again(stack: Stack, run_id: str, try_number: int, timeout: float = 300) -> dict[str, Any] | None:
    """After an answer: None once the run finishes; the new request if Airflow retried the task and asks again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.airflow.request("GET", f"/dags/deploy/dagRuns/{run_id}")["state"] in {"success", "failed"}:
            return None
        request = stack.airflow.request("GET", REQUEST.format(run_id=run_id))
        task = request["task_instance"]
        if task["try_number"] > try_number and task["state"] == "awaiting_input" and not request["response_received"]:
            return request
        time.sleep(1)
    raise TimeoutError(f"deploy run {run_id} neither finished nor asked again within {timeout:.0f}s")


def run_deploy(stack: Stack, extra: dict[str, Any], option: str | None, reason: str = "") -> Outcome:
    """One deploy run of ``extra``'s version: wait for its request, answer ``option`` (None: nobody does).

    Answered as a person would, a moment after the request opens. An answer that lands before the
    scheduler has processed the executor's report of the task parking makes Airflow 3.3.2 retry the
    task, which asks again (orchestration/approval.py); then the request is answered again.
    """
    run_id = post_approved(stack, extra)
    first = request = waiting_request(stack, run_id)
    asked = 1
    while option is not None and request is not None:
        time.sleep(ANSWER_AFTER_S)
        answer(stack, run_id, option, reason)
        request = asked_again(stack, run_id, request["task_instance"]["try_number"])
        if request is not None:
            asked += 1
            assert "- asked again: an answer to the earlier request, if any, was lost" in request["body"]
            assert asked <= 3, f"deploy run {run_id} keeps asking"
    run = finished(stack, run_id, timeout=300)
    detail = stack.airflow.request("GET", REQUEST.format(run_id=run_id))
    return Outcome(run_id, first, run, states(stack, run_id), detail, asked)


# ------------------------------------------------------------------------------------ scenarios
@pytest.fixture(scope="module")
def approved(stack: Stack, candidates: Candidates) -> Outcome:
    return run_deploy(stack, candidates.register(), "Approve", "e2e: first model, the gate passed")


@pytest.fixture(scope="module")
def rejected(stack: Stack, candidates: Candidates, approved: Outcome) -> Outcome:
    return run_deploy(stack, candidates.register(gain=0.01), "Reject", "e2e: worse on one island")


@pytest.fixture(scope="module")
def timed_out(stack: Stack, candidates: Candidates, rejected: Outcome) -> Outcome:
    return run_deploy(stack, candidates.register(gain=0.02), None)


def test_approve_runs_the_verified_deploy(stack: Stack, slack: SlackStub, approved: Outcome) -> None:
    from mlflow.artifacts import download_artifacts

    metric = PENGUINS.primary_metric
    request = approved.request
    assert request["subject"] == f"Deploy {MODEL} v1?"
    assert (request["options"], request["defaults"]) == (["Approve", "Reject"], ["Reject"])
    assert f"- test {metric}: v1 " in request["body"] and "no champion yet" in request["body"]
    assert "- promotion gate: first model" in request["body"]
    assert "No answer within 1 min: **reject**" in request["body"]
    card = request["body"].split("- model card: [", 1)[1].split("]", 1)[0]
    assert card.startswith("runs:/") and card.endswith("/evaluation/model_card.md")
    assert "# " in Path(download_artifacts(card, tracking_uri=stack.config.mlflow_url)).read_text()

    assert approved.run["state"] == "success"
    assert approved.states == {
        "version_to_serve": "success",
        "await_approval": "success",
        "promote": "success",
        "verify_live_service": "success",
        "keep_champion": "skipped",
    }
    assert (champion(stack), served(stack)) == ("1", "1")
    tags = version_tags(stack, "1")
    assert (tags["deploy_approval"], tags["deploy_approval_by"], tags["deploy_approval_reason"]) == (
        "approved",
        "admin",
        "e2e: first model, the gate passed",
    )
    assert tags["deploy_approval_run"] == approved.run_id

    (asked,) = [t for t in slack_texts(slack, ":raising_hand:") if f"{MODEL} v1 " in t]
    link = f"{stack.config.airflow_url}/dags/deploy/runs/{approved.run_id}/tasks/await_approval/required_actions"
    assert f"Approve or reject: {link}?map_index=-1" in asked
    assert slack_texts(slack, f":rocket: Model promoted: {MODEL} v1 is now champion")


def test_reject_moves_nothing_and_tags_the_version(stack: Stack, slack: SlackStub, rejected: Outcome) -> None:
    request = rejected.request
    assert request["subject"] == f"Deploy {MODEL} v2, replacing v1?"
    assert "champion v1 " in request["body"] and "(same test rows)" in request["body"]
    assert "- promotion gate: beats the champion" in request["body"]

    assert rejected.run["state"] == "success", "a rejection is an answer, not an error"
    assert rejected.states == {
        "version_to_serve": "success",
        "await_approval": "success",
        "promote": "skipped",
        "verify_live_service": "skipped",
        "keep_champion": "success",
    }
    assert (rejected.detail["chosen_options"], rejected.detail["responded_by_user"]["name"]) == (["Reject"], "admin")
    assert (champion(stack), served(stack)) == ("1", "1")
    tags = version_tags(stack, "2")
    assert (tags["deploy_approval"], tags["deploy_approval_by"], tags["deploy_approval_reason"]) == (
        "rejected",
        "admin",
        "e2e: worse on one island",
    )
    events = stack.airflow.request("GET", "/assets/events", params={"source_dag_id": "deploy"})["asset_events"]
    assert [str(e["extra"]["version"]) for e in events] == ["1"], "only the approved version was served"
    assert slack_texts(
        slack, f":no_entry_sign: Deploy rejected: {MODEL} v2: rejected by admin: e2e: worse on one island."
    )


def test_no_answer_becomes_the_timeout_policy(stack: Stack, slack: SlackStub, timed_out: Outcome) -> None:
    assert timed_out.run["state"] == "success"
    assert timed_out.states["keep_champion"] == "success"
    assert timed_out.states["promote"] == "skipped"
    assert timed_out.detail["chosen_options"] == ["Reject"]
    assert timed_out.detail["responded_by_user"] is None, "Airflow answered, not a person"
    waited = time_between(timed_out.request["created_at"], timed_out.detail["responded_at"])
    assert waited >= TIMEOUT_MIN * 60, f"answered after {waited:.0f}s, before the timeout"
    assert champion(stack) == "1"
    tags = version_tags(stack, "3")
    assert (tags["deploy_approval"], tags["deploy_approval_by"]) == ("rejected", "timeout")
    assert "deploy_approval_reason" not in tags
    assert slack_texts(slack, f":hourglass: Deploy not approved in time: {MODEL} v3: no answer within 1 min")


def time_between(start: str, end: str) -> float:
    import datetime as dt

    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
