"""MLflow experiment tracking: one parent run per training run, one child run per candidate, one nested run
per search trial."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from include.mlpipeline.core.code_version import code_version
from include.mlpipeline.core.jsonable import json_safe
from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.ml.candidates import FittedCandidate
from include.mlpipeline.ml.window import TrainingSet, TrainingWindow

log = logging.getLogger(__name__)

# Pinned instead of inferred: inference starts a subprocess and adds seconds to every log_model.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_EXPERIMENT = "custom_model_development"  # the UI's value for "model training": it opens the runs
MODEL_PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "pandas==2.3.3", "numpy==2.4.6", "cloudpickle"]


def configure(settings: Settings | None = None, problem: ProblemSpec | None = None) -> str:
    """Point MLflow at the tracking server and the experiment; returns the experiment id."""
    import mlflow

    settings = settings or get_settings()
    problem = problem or load_problem()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.set_experiment(settings.experiment_name or problem.name)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != TRAINING_EXPERIMENT:
        # MLflow's UI opens an experiment on its GenAI overview unless the experiment says it trains models.
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT)
    return experiment.experiment_id


def registered_model_name(settings: Settings | None = None, problem: ProblemSpec | None = None) -> str:
    settings = settings or get_settings()
    return settings.registered_model_name or (problem or load_problem()).name


def start_parent_run(window: dict[str, Any], run_name: str, tags: dict[str, str] | None = None) -> str:
    """Open the parent run of a training run and log the window; returns its run id.

    Args:
        window: A :class:`TrainingWindow` as a dict.
        run_name: Shown in the MLflow UI (the orchestrator's run id makes a good one).
        tags: Extra tags (for example the orchestrator's dag and run ids).
    """
    import mlflow

    configure()
    training_window = TrainingWindow.from_dict(window)
    with mlflow.start_run(run_name=run_name, tags={"stage": "training", **(tags or {})}) as run:
        mlflow.log_params(_window_params(training_window))
        mlflow.set_tags({"data_version": training_window.data_version, "code_version": code_version()})
        mlflow.log_dict(training_window.to_dict(), "training_window.json")
    log.info("parent run %s opened for data version %s", run.info.run_id, training_window.data_version)
    return run.info.run_id


def _window_params(window: TrainingWindow) -> dict[str, Any]:
    return {
        "window_start": window.days[0],
        "window_end": window.days[-1],
        "train_days": len(window.train_days),
        "validation_days": len(window.validation_days),
        "test_days": len(window.test_days),
        "test_start": window.test_days[0],
        "data_version": window.data_version,
    }


def _sample_params(data: TrainingSet) -> dict[str, Any]:
    # A window over train_max_rows is fitted on a sample: the run says so, and how big both were.
    return {
        "train_max_rows": data.max_rows,
        "window_rows": data.window_rows,
        "window_sampled": data.sampled,
        "train_rows": len(data.train),
    }


class CandidateRun:
    """The child run of one candidate under the training run, and the nested runs of its search trials.

    The run is created when it is first needed: at the first search trial, or when the fitted
    candidate is logged (then all at once, as before the search existed).
    """

    def __init__(self, name: str, parent_run_id: str, window: TrainingWindow, problem: ProblemSpec):
        self.name = name
        self.parent_run_id = parent_run_id
        self.window = window
        self.problem = problem
        self.run_id: str | None = None
        self.search: Any = None  # the search's result, logged with the candidate

    def _tags(self) -> dict[str, str]:
        return {"candidate": self.name, "data_version": self.window.data_version, "code_version": code_version()}

    def _create(self) -> str:
        if self.run_id is None:
            import mlflow
            from mlflow import MlflowClient

            experiment = mlflow.get_experiment(mlflow.get_run(self.parent_run_id).info.experiment_id)
            tags = {**self._tags(), "mlflow.parentRunId": self.parent_run_id, "mlflow.runName": self.name}
            self.run_id = MlflowClient().create_run(experiment.experiment_id, tags=tags).info.run_id
        return self.run_id

    def log_trial(self, trial: Any) -> None:
        """One search trial as a finished run nested under the candidate's run."""
        from mlflow import MlflowClient

        client = MlflowClient()
        parent = self._create()
        experiment = client.get_run(parent).info.experiment_id
        tags = {
            "mlflow.parentRunId": parent,
            "mlflow.runName": f"{self.name} trial {trial.number}",
            "candidate": self.name,
            "search_trial": str(trial.number),
        }
        run = client.create_run(experiment, tags=tags)
        params = [mlflow_param(name, value) for name, value in trial.params.items()]
        metrics = [
            mlflow_metric(f"validation_{trial.metric}", trial.score),
            mlflow_metric("trial_seconds", trial.seconds),
        ]
        client.log_batch(run.info.run_id, params=params, metrics=metrics)
        client.set_terminated(run.info.run_id, "FINISHED")

    @contextlib.contextmanager
    def failing_on_error(self) -> Iterator[None]:
        """Mark the candidate's run FAILED if what happens inside raises (the task then fails or retries)."""
        try:
            yield
        except BaseException:
            if self.run_id is not None:
                from mlflow import MlflowClient

                with contextlib.suppress(Exception):  # the original error matters more
                    MlflowClient().set_terminated(self.run_id, "FAILED")
            raise

    def log_candidate(
        self, fitted: FittedCandidate, *, data: TrainingSet, seed: int, evaluation_folder: Path | None = None
    ) -> dict[str, Any]:
        """Log a fitted candidate: parameters, metrics, the input dataset, the feature list, its
        evaluation folder (under ``evaluation/``) and the model with signature and input example.

        Returns:
            name, run id, model URI, threshold, validation and test metrics, params (small: XCom).
        """
        import mlflow
        from mlflow.models import infer_signature

        from include.mlpipeline.ml.candidates import trusted_types
        from include.mlpipeline.ml.task_kinds import task_kind

        problem, window = self.problem, self.window
        kind = task_kind(problem.task)
        example = data.validation[problem.feature_columns].head(5)
        signature = infer_signature(example, kind.predict(fitted.pipeline, example))
        if self.run_id is None:
            started = mlflow.start_run(
                run_name=fitted.name, parent_run_id=self.parent_run_id, nested=True, tags=self._tags()
            )
        else:
            started = mlflow.start_run(run_id=self.run_id)
        with started as run:
            mlflow.log_params(
                {
                    "candidate": fitted.name,
                    "task": problem.task,
                    "seed": seed,
                    **({"threshold": round(fitted.threshold, 6)} if fitted.threshold is not None else {}),
                    **_window_params(window),
                    **_sample_params(data),
                    **_search_params(self.search),
                    **{
                        f"model__{k}": v
                        for k, v in fitted.pipeline.named_steps["model"].get_params().items()
                        if isinstance(v, int | float | str | bool) or v is None
                    },
                }
            )
            mlflow.log_metrics({f"validation_{k}": v for k, v in fitted.validation.items()})
            mlflow.log_metrics({f"test_{k}": v for k, v in fitted.test.items()})
            mlflow.log_input(_training_dataset(data, window, problem), context="training")
            mlflow.log_dict({"features": problem.feature_columns, "target": problem.target}, "feature_list.json")
            if evaluation_folder is not None:
                mlflow.log_artifacts(str(evaluation_folder), artifact_path="evaluation")
            info = mlflow.sklearn.log_model(
                fitted.pipeline,
                name="model",
                signature=signature,
                input_example=example,
                pip_requirements=MODEL_PIP_REQUIREMENTS,
                pyfunc_predict_fn="predict_proba" if kind.classifier else "predict",
                skops_trusted_types=trusted_types(problem),
                metadata={
                    "threshold": fitted.threshold,
                    "data_version": window.data_version,
                    "features": problem.feature_columns,
                    "problem": problem.name,
                    "task": problem.task,
                    "classes": fitted.classes,
                },
            )
        return {
            "name": fitted.name,
            "run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "threshold": fitted.threshold,
            "validation": fitted.validation,
            "test": fitted.test,
            "params": json_safe(fitted.params or {}),
        }


def _search_params(search: Any) -> dict[str, Any]:
    if search is None:
        return {"search_trials": 0}
    return {"search_trials": len(search.trials), "search_seconds": round(search.seconds, 1)}


def _training_dataset(data: TrainingSet, window: TrainingWindow, problem: ProblemSpec) -> Any:
    """The training rows as an MLflow dataset: named by the data version, sourced from the lake."""
    import mlflow.data

    from include.mlpipeline.core.settings import get_settings
    from include.mlpipeline.data.etl import FEATURES

    source = f"{get_settings().lake_uri}/{FEATURES}"
    return mlflow.data.from_pandas(
        data.train, source=source, name=f"{FEATURES}@{window.data_version}", targets=problem.target
    )


def mlflow_param(name: str, value: Any) -> Any:
    from mlflow.entities import Param

    return Param(name, str(value))


def mlflow_metric(name: str, value: float) -> Any:
    import time

    from mlflow.entities import Metric

    return Metric(name, float(value), int(time.time() * 1000), 0)
