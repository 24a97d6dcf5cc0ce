"""MLflow experiment tracking: one parent run per training run, one child run per candidate."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from include.mlpipeline.core.code_version import code_version
from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.ml.candidates import SKOPS_TRUSTED_TYPES, FittedCandidate
from include.mlpipeline.ml.window import TrainingSet, TrainingWindow

log = logging.getLogger(__name__)

# Pinned instead of inferred: inference starts a subprocess and adds seconds to every log_model.
MODEL_PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "pandas==2.3.3", "numpy==2.4.6", "cloudpickle"]


def configure(settings: Settings | None = None, problem: ProblemSpec | None = None) -> str:
    """Point MLflow at the tracking server and the experiment; returns the experiment id."""
    import mlflow

    settings = settings or get_settings()
    problem = problem or load_problem()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.set_experiment(settings.experiment_name or problem.name)
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


def log_candidate_run(
    fitted: FittedCandidate,
    *,
    window: TrainingWindow,
    data: TrainingSet,
    parent_run_id: str,
    problem: ProblemSpec,
    seed: int,
    evaluation_folder: Path | None = None,
) -> dict[str, Any]:
    """Log a fitted candidate as a child run of ``parent_run_id``: parameters, metrics, the feature
    list, its evaluation folder (under ``evaluation/``) and the model with signature and input example.

    Returns:
        name, run id, model URI, threshold, validation and test metrics (small: goes to XCom).
    """
    import mlflow
    from mlflow.models import infer_signature

    example = data.validation[problem.feature_columns].head(5)
    signature = infer_signature(example, fitted.pipeline.predict_proba(example))
    tags = {"candidate": fitted.name, "data_version": window.data_version, "code_version": code_version()}
    with mlflow.start_run(run_name=fitted.name, parent_run_id=parent_run_id, nested=True, tags=tags) as run:
        mlflow.log_params(
            {
                "candidate": fitted.name,
                "threshold": round(fitted.threshold, 6),
                "seed": seed,
                **_window_params(window),
                **_sample_params(data),
                **{
                    f"model__{k}": v
                    for k, v in fitted.pipeline.named_steps["model"].get_params().items()
                    if isinstance(v, int | float | str | bool) or v is None
                },
            }
        )
        mlflow.log_metrics({f"validation_{k}": v for k, v in fitted.validation.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in fitted.test.items()})
        mlflow.log_dict({"features": problem.feature_columns, "target": problem.target}, "feature_list.json")
        if evaluation_folder is not None:
            mlflow.log_artifacts(str(evaluation_folder), artifact_path="evaluation")
        info = mlflow.sklearn.log_model(
            fitted.pipeline,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            metadata={
                "threshold": fitted.threshold,
                "data_version": window.data_version,
                "features": problem.feature_columns,
                "problem": problem.name,
            },
        )
    return {
        "name": fitted.name,
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "threshold": fitted.threshold,
        "validation": fitted.validation,
        "test": fitted.test,
    }
