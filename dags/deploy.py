"""
### Deploy: serve the approved model, verify it live, roll back on failure

Scheduled on **approved_model**. Moves the registry alias `champion` to the approved version (the
API follows that alias and hot-reloads), then checks the live API: it must answer the canary records
with that version, and its predictions must equal the registered model's own on the same rows. If
not, the alias goes back to the previous champion and the run fails, saying why.

With `MLP_DEPLOY_APPROVAL_REQUIRED=true`, `await_approval` first asks a person in Airflow's UI
(Required Actions), showing the candidate's and the champion's primary metric, the gate's numbers
and the model card; Slack gets a link to it. Approve: the deploy above. Reject: `keep_champion`
tags the version rejected (who, why) and moves nothing; the run succeeds. No answer within
`MLP_DEPLOY_APPROVAL_TIMEOUT_MIN`: `MLP_DEPLOY_APPROVAL_ON_TIMEOUT` decides (reject by default).
With the setting off (the default) that step does not exist.

Roll back by hand: trigger this DAG with `{"version": "<earlier version>"}`, or run
`python -m include.mlpipeline.deployment.deploy rollback --to <version>`.

Emits **served_model** with extra: version, previous version, smoke-test result.
"""

from __future__ import annotations

from airflow.sdk import Param, get_current_context, task

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.orchestration.alerts import notify_promotion
from include.mlpipeline.orchestration.assets import APPROVED_MODEL, SERVED_MODEL
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import emit, events_extra


@pipeline_dag(
    "deploy",
    schedule=[APPROVED_MODEL],
    params={
        "version": Param(None, type=["null", "string"], description="Version to serve (manual deploy or rollback).")
    },
    tags=["ml", "deploy", "serving"],
    doc_md=__doc__,
)
def deploy():
    @task
    def version_to_serve() -> str:
        context = get_current_context()
        if context["params"].get("version"):
            return str(context["params"]["version"])
        approved = events_extra(context["triggering_asset_events"][APPROVED_MODEL])
        if not approved:
            raise ValueError("no approved model in the triggering events and no version param")
        return str(approved[-1]["version"])

    @task(multiple_outputs=False)
    def promote(version: str, approval: dict | None = None) -> dict:
        from include.mlpipeline.deployment import deploy as steps

        return steps.promote(version, approval, get_current_context()["run_id"])

    # No retries: a failed check has already rolled the alias back; retrying would test the old version.
    @task(multiple_outputs=False, outlets=[SERVED_MODEL], retries=0)
    def verify_live_service(promotion: dict) -> dict:
        from include.mlpipeline.deployment import deploy as steps

        result = {
            **steps.verify_or_roll_back(promotion["version"], promotion["previous"]),
            "previous": promotion["previous"],
        }
        served = emit(SERVED_MODEL, result)
        notify_promotion(served, get_current_context())  # Slack: old vs new; never fails or delays the deploy
        return served

    @task(multiple_outputs=False)
    def keep_champion(version: str, approval: dict) -> dict:
        from include.mlpipeline.deployment import approval as approvals
        from include.mlpipeline.orchestration.approval import notify_rejection

        result = approvals.keep_champion(version, approval, get_current_context()["run_id"])
        notify_rejection(result)  # Slack: who rejected it, or the timeout; never fails the run
        return result

    version = version_to_serve()
    if not get_settings().deploy_approval_required:
        verify_live_service(promote(version))
        return
    # Imported only when used: the HITL operator costs the DAG's parse about 60 ms.
    from include.mlpipeline.orchestration.approval import DeployApproval

    approval = DeployApproval(
        task_id="await_approval", version=version, on_approve="promote", on_reject="keep_champion"
    ).output
    keep_champion(version, approval)
    verify_live_service(promote(version, approval))


deploy()
