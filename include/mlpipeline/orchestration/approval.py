"""Deploy's approval step: Airflow's human-in-the-loop branch operator asks a person before a model goes live.

With ``MLP_DEPLOY_APPROVAL_REQUIRED`` on, the deploy DAG runs :class:`DeployApproval` (task
``await_approval``) between ``version_to_serve`` and ``promote``. It builds the request
(:func:`~include.mlpipeline.deployment.approval.gather_request`: the candidate's and the
champion's primary metric, the gate's numbers, the model card), writes it to Airflow, posts it to
Slack with the link to it, and waits in the ``awaiting input`` state, without holding a worker
slot. The request is answered in the UI (Browse > Required Actions, or the task's Required Actions
tab) or through the REST API (``PATCH .../taskInstances/await_approval/-1/hitlDetails``):

- Approve: ``promote`` runs (it tags the version approved, then moves the alias) and the verified
  deploy follows, as without approval; ``keep_champion`` is skipped.
- Reject: ``keep_champion`` runs: it tags the version rejected, with who and the reason typed in the
  form, moves nothing, and says so on Slack. ``promote`` and ``verify_live_service`` are skipped, no
  ``served_model`` event is emitted, and the run succeeds: a rejection is an answer, not an error.
- No answer within ``MLP_DEPLOY_APPROVAL_TIMEOUT_MIN``: Airflow's scheduler answers with the option
  of ``MLP_DEPLOY_APPROVAL_ON_TIMEOUT`` (reject by default, see the deployment module for why), and
  the run goes on as if a person had chosen it; the tags say ``timeout``.

Why a branch operator and not ``ApprovalOperator``: on Reject, ``ApprovalOperator`` skips every task
after it, so no task could record the rejection, and the run would look the same as one whose
deploy was skipped for any other reason. The branch runs exactly one of ``promote`` and
``keep_champion``, and the graph shows which.

Why the step is absent, not skipped, when approval is off: the DAG is then the DAG without the
feature, task for task (3 tasks, no wait, no skipped box in every run's grid that looks like a
decision someone made). The setting is read when the DAG file is parsed, like the other settings
that shape a DAG.

A manual deploy or rollback (the ``version`` param) asks too: the step is a gate on what reaches
the API, whoever proposes it. In an incident, answer it yourself, or use the command-line rollback,
which does not go through Airflow. While a request waits, the deploy run is running: later
``approved_model`` events wait for it (one deploy run at a time), and its ``dagrun_timeout`` grows
by the approval timeout (see ``pipeline_dag.dagrun_timeout``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import Param
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.definitions.param import ParamsDict

from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.deployment.approval import APPROVE, OPTIONS, REJECT, timeout_option
from include.mlpipeline.orchestration.alerts import _SafeNotifier, send_slack
from include.mlpipeline.orchestration.approval_messages import approval_request_message, rejection_message
from include.mlpipeline.orchestration.tasks import events_extra

log = logging.getLogger(__name__)


def approved_extra(context: Mapping[str, Any], version: str) -> dict[str, Any] | None:
    """The triggering ``approved_model`` event extra of ``version``; None for a manual deploy."""
    from include.mlpipeline.orchestration.assets import APPROVED_MODEL

    try:
        extras = events_extra(context["triggering_asset_events"][APPROVED_MODEL])
    except (KeyError, TypeError):  # a manual run has no triggering event
        return None
    return next((extra for extra in reversed(extras) if str(extra.get("version")) == str(version)), None)


class ApprovalRequestAlert(_SafeNotifier):
    """Posts the request that :class:`DeployApproval` just opened to Slack, with the link to it. Never raises."""

    def notify(self, context: Any) -> None:
        task = context["task"]
        request = getattr(task, "approval_request", None)
        if request is None:
            log.warning("no approval request on %s; nothing posted to Slack", getattr(task, "task_id", task))
            return
        try:
            link = HITLBranchOperator.generate_link_to_ui_from_context(context=context)
        except ValueError as error:  # no [api] base_url
            log.warning("no link to the approval: %s", error)
            link = None
        send_slack(approval_request_message(request, link))


def approval_form(params: Any = None) -> ParamsDict:
    """The request's form: one optional ``reason`` field, beside ``params`` (the DAG's own, which the
    HITL operator leaves out of the form)."""
    form = params if isinstance(params, ParamsDict) else ParamsDict(params or {})
    form["reason"] = Param(
        "", type="string", title="Reason", description="Why (optional): kept with your answer on the version's tags."
    )
    return form


class DeployApproval(HITLBranchOperator):
    """Ask a person whether to deploy ``version``; Approve runs ``on_approve``, Reject runs ``on_reject``.

    The subject and body are the version's own (:meth:`execute`); the form has one optional field,
    ``reason``. The task's result (XCom) is the
    :class:`~include.mlpipeline.deployment.approval.ApprovalDecision` as a dict.

    A retry asks again, and Airflow drops the earlier try's answer when it does; a worker cannot read
    it back (in 3.3 only the triggerer may fetch a response). An answered try can be retried: with
    Airflow 3.3.2 an answer that lands before the scheduler has processed the executor's report of
    the task parking (seconds on a busy machine) makes the scheduler see "state changed externally"
    and retry the task. So a request asked again rejects when nobody answers, whatever
    ``MLP_DEPLOY_APPROVAL_ON_TIMEOUT`` says: the timeout policy must not overrule a lost rejection.
    """

    template_fields = (*HITLBranchOperator.template_fields, "version")

    def __init__(
        self, *, version: Any, on_approve: str, on_reject: str, settings: Settings | None = None, **kwargs: Any
    ) -> None:
        settings = settings or get_settings()
        super().__init__(
            subject="Deploy a new model version?",  # replaced by the version's own in execute
            options=list(OPTIONS),
            options_mapping={APPROVE: on_approve, REJECT: on_reject},
            defaults=[timeout_option(settings.deploy_approval_on_timeout)],
            multiple=False,
            params=approval_form(kwargs.pop("params", None)),
            response_timeout=dt.timedelta(minutes=settings.deploy_approval_timeout_min),
            notifiers=[ApprovalRequestAlert()],
            **kwargs,
        )
        self.version = version
        self.approval_request: Any = None

    def execute(self, context: Any) -> Any:
        from include.mlpipeline.deployment.approval import gather_request

        version = str(self.version)
        asked_before = (getattr(context["ti"], "try_number", 1) or 1) > 1
        if asked_before:  # an answer to the earlier try may be lost (class doc): no answer now rejects
            log.warning("asking again: the answer to an earlier try, if any, is gone; no answer rejects")
            self.defaults = [REJECT]
        self.approval_request = gather_request(version, approved_extra(context, version), asked_before=asked_before)
        self.subject, self.body = self.approval_request.subject, self.approval_request.markdown()
        log.info("asking for approval: %s\n%s", self.subject, self.body)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from include.mlpipeline.deployment.approval import decide

        decision = decide(
            event["chosen_options"],
            event.get("responded_by_user"),
            event.get("params_input"),
            timed_out=bool(event.get("timedout")),
            responded_at=event.get("responded_at"),
        )
        log.info("version %s %s", self.version, decision.describe())
        # Pushed here: skipping the branch not taken ends the task with an exception (DownstreamTasksSkipped),
        # after which Airflow pushes no return value.
        context["ti"].xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=decision.to_dict())
        super().execute_complete(context, event)  # validates the answer and skips the branch not taken
        return decision.to_dict()


def notify_rejection(result: Mapping[str, Any]) -> bool:
    """Tell Slack a version was not deployed (:func:`~include.mlpipeline.deployment.approval.keep_champion`'s
    result). Never raises."""
    try:
        return send_slack(rejection_message(result))
    except Exception as error:
        log.warning("rejection alert not sent: %s: %s", type(error).__name__, error)
        return False
