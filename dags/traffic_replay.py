"""
### Traffic replay (simulation): newly extracted days sent to the API as live traffic

Scheduled on **clean_data**. In the replay nobody calls the prediction API, so this DAG plays the
callers: it posts every record of each newly published day to `/predict` (only the fields a
request may carry, so no outcome leaks in). The API logs the predictions, which the `ab_test` DAG
and monitoring read. Leave it paused in production, where real callers do this.

A retry adds no prediction twice: each batch's request id comes from the run, the day and the
batch, and the API logs a request id once.
"""

from __future__ import annotations

from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.orchestration.assets import CLEAN_DATA
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import partitions_of


@pipeline_dag(
    "traffic_replay",
    schedule=[CLEAN_DATA],
    tags=["ml", "serving", "simulation"],
    doc_md=__doc__,
)
def traffic_replay():
    @task(multiple_outputs=False)
    def send_traffic() -> dict:
        from include.mlpipeline.deployment import traffic

        context = get_current_context()
        days = partitions_of(context["triggering_asset_events"][CLEAN_DATA])
        if not days:
            raise AirflowSkipException("no partitions in the triggering events")
        # The newest week at most (older days are not "live"); a retry of this run posts the same
        # request ids, which the API logs once.
        return traffic.replay_days(days[-7:], run_id=context["run_id"])

    send_traffic()


traffic_replay()
