"""
### Deploy: serve the approved model, verify it live, roll back on failure

Scheduled on **approved_model**. Moves the registry alias `champion` to the approved version (the
API follows that alias and hot-reloads), then checks the live API: it must answer the canary records
with that version, and its predictions must equal the registered model's own on the same rows. If
not, the alias goes back to the previous champion and the run fails, saying why.

Roll back by hand: trigger this DAG with `{"version": "<earlier version>"}`, or run
`python -m include.mlpipeline.deployment.deploy rollback --to <version>`.

Emits **served_model** with extra: version, previous version, smoke-test result.
"""

from __future__ import annotations

from airflow.sdk import Param, get_current_context, task

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
    def promote(version: str) -> dict:
        from include.mlpipeline.deployment import deploy as steps

        return steps.promote(version)

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

    verify_live_service(promote(version_to_serve()))


deploy()
