"""
### Train: candidate models in parallel, tracked in MLflow, the best registered and gated

Scheduled on **feature_data | retrain_requested** (new features, or the monitor found drift; a
drift retrain uses the shorter `MLP_RETRAIN_WINDOW_DAYS` window). Selects the training window (the
problem's split, `MLP_TRAIN_WINDOW_DAYS`, `MLP_VALIDATION_SIZE`, `MLP_TEST_SIZE`): the newest feature
days split by day into train, validation and test, or a snapshot's newest load split by a seeded
hash of its rows. A parent MLflow run holds one child run per candidate; the problem's candidates
(a trivial baseline and several model families) train in parallel, each after a hyperparameter
search when `MLP_SEARCH_TRIALS` > 0. The best on validation (by the problem's primary metric) is
registered as a new version with alias `challenger`; it is approved for deploy only if it passes the
floor (beats the baseline) and beats the current champion on the same test rows by
`MLP_PROMOTION_MIN_GAIN`.

Trigger it by hand with a run conf to retrain on another window or candidate list, e.g.
`{"window_days": 30, "candidates": ["baseline", "logistic_regression"]}`.

Emits **approved_model** (only when the gate approves) with extra: version, metrics, decision.
"""

from __future__ import annotations

import time

from airflow.sdk import Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.orchestration.assets import APPROVED_MODEL, FEATURE_DATA, RETRAIN_REQUESTED
from include.mlpipeline.orchestration.pipeline_dag import pipeline_dag
from include.mlpipeline.orchestration.tasks import (
    emit,
    events_extra,
    fail_fast_on_data_errors,
    partitions_of,
)


@pipeline_dag(
    "train",
    schedule=(FEATURE_DATA | RETRAIN_REQUESTED),
    params={
        "window_days": Param(None, type=["null", "integer"], minimum=3, description="Days in the window."),
        "candidates": Param([], type="array", items={"type": "string"}, description="Candidates (empty: all)."),
    },
    tags=["ml", "training", "mlflow"],
    doc_md=__doc__,
)
def train():
    @task(multiple_outputs=False)
    def select_window() -> dict:
        from include.mlpipeline.ml import window as training_window

        context = get_current_context()
        events = context["triggering_asset_events"]
        newest = max(partitions_of(events[FEATURE_DATA]), default=None)
        window_days = context["params"].get("window_days")
        if not window_days and events[RETRAIN_REQUESTED]:  # a drift retrain follows the change: shorter window
            window_days = events_extra(events[RETRAIN_REQUESTED])[-1].get("retrain_window_days")
        with fail_fast_on_data_errors():
            return training_window.select_window(newest, window_days=window_days).to_dict()

    @task
    def open_parent_run(window: dict) -> str:
        from include.mlpipeline.ml import tracking

        context = get_current_context()
        tags = {"airflow_dag_id": context["dag"].dag_id, "airflow_run_id": context["run_id"]}
        return tracking.start_parent_run(window, run_name=f"train {context['run_id']}", tags=tags)

    @task
    def list_candidates() -> list[str]:
        from include.mlpipeline.core.problem import load_problem
        from include.mlpipeline.ml.candidates import chosen_candidates

        return chosen_candidates(load_problem(), get_current_context()["params"].get("candidates"))

    # Its own queue under Celery (MLP_TRAINING_QUEUE), so training scales with its own workers.
    @task(multiple_outputs=False, map_index_template="{{ candidate }}", queue=get_settings().training_queue)
    def train_candidate(name: str, window: dict, parent_run_id: str) -> dict:
        began = time.time()  # before the imports: the candidate's phases start here
        from include.mlpipeline.ml import training

        get_current_context()["candidate"] = name
        with fail_fast_on_data_errors():
            return training.train_candidate(name, window, parent_run_id, began=began)

    @task(multiple_outputs=False)
    def register_best(results: list[dict], window: dict, parent_run_id: str) -> dict:
        from include.mlpipeline.ml import registry

        return registry.register_best(list(results), window, parent_run_id)

    @task(multiple_outputs=False, outlets=[APPROVED_MODEL])
    def approve(registration: dict) -> dict:
        decision = registration["decision"]
        if not decision["promote"]:
            raise AirflowSkipException(f"version {registration['version']} stays challenger: {decision['reason']}")
        return emit(APPROVED_MODEL, registration)

    window = select_window()
    parent = open_parent_run(window)
    results = train_candidate.partial(window=window, parent_run_id=parent).expand(name=list_candidates())
    approve(register_best(results, window, parent))


train()
