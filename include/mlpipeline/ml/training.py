"""Training one candidate: fit it on the window's train days, choose its threshold, score it, log it.

:func:`fit_candidate` is the modelling step alone (no MLflow); :func:`train_candidate` is what one
mapped task of the train DAG runs: load the window, fit, write the evaluation artifacts, and log the
candidate as a child run of the training run (:mod:`include.mlpipeline.ml.tracking`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.ml.candidates import FittedCandidate, build_candidate
from include.mlpipeline.ml.metrics import choose_threshold, evaluate
from include.mlpipeline.ml.window import TrainingSet, TrainingWindow, load_training_set

log = logging.getLogger(__name__)


def fit_candidate(
    name: str, data: TrainingSet, *, problem: ProblemSpec | None = None, seed: int | None = None
) -> FittedCandidate:
    """Fit one candidate on the train days, pick its threshold on validation, score validation and test."""
    problem = problem or load_problem()
    seed = get_settings().random_seed if seed is None else seed
    features = problem.feature_columns
    pipeline = build_candidate(name, problem, seed)
    pipeline.fit(data.train[features], data.train[problem.target].to_numpy())
    val_proba = pipeline.predict_proba(data.validation[features])[:, 1]
    threshold = choose_threshold(data.validation[problem.target].to_numpy(), val_proba)
    test_proba = pipeline.predict_proba(data.test[features])[:, 1]
    fitted = FittedCandidate(
        name=name,
        pipeline=pipeline,
        threshold=threshold,
        validation=evaluate(data.validation[problem.target].to_numpy(), val_proba, threshold),
        test=evaluate(data.test[problem.target].to_numpy(), test_proba, threshold),
    )
    log.info(
        "%s: validation roc_auc %.4f, test roc_auc %.4f, threshold %.3f",
        name,
        fitted.validation["roc_auc"],
        fitted.test["roc_auc"],
        threshold,
    )
    return fitted


def train_candidate(
    name: str, window: dict[str, Any], parent_run_id: str, *, evaluation_artifacts: bool = True
) -> dict[str, Any]:
    """Fit one candidate on the window and log it as a child run of ``parent_run_id``.

    Args:
        name: Candidate name (a key of ``candidates.CANDIDATES``).
        window: A :class:`TrainingWindow` as a dict.
        parent_run_id: The training run's parent MLflow run.
        evaluation_artifacts: Also log the evaluation figures, tables and model card under
            ``evaluation/`` (see :mod:`include.mlpipeline.ml.evaluation`). The train DAG always does;
            False saves their few seconds where only the metrics matter (some tests).

    Returns:
        name, run id, model URI, threshold, validation and test metrics (small: goes to XCom).
    """
    from include.mlpipeline.core.code_version import code_version
    from include.mlpipeline.ml import tracking

    settings = get_settings()
    problem = load_problem()
    tracking.configure(settings, problem)
    training_window = TrainingWindow.from_dict(window)
    data = load_training_set(training_window, problem=problem)
    fitted = fit_candidate(name, data, problem=problem, seed=settings.random_seed)
    # Written before the run opens, so a failing plot cannot leave a half-logged child run.
    folder = tempfile.TemporaryDirectory(prefix=f"evaluation-{name}-") if evaluation_artifacts else None
    try:
        if folder is not None:
            _write_evaluation(
                Path(folder.name),
                window=training_window,
                data=data,
                fitted=fitted,
                problem=problem,
                seed=settings.random_seed,
                version=code_version(),
            )
        return tracking.log_candidate_run(
            fitted,
            window=training_window,
            data=data,
            parent_run_id=parent_run_id,
            problem=problem,
            seed=settings.random_seed,
            evaluation_folder=Path(folder.name) if folder is not None else None,
        )
    finally:
        if folder is not None:
            folder.cleanup()


def _write_evaluation(
    folder: Path,
    *,
    window: TrainingWindow,
    data: TrainingSet,
    fitted: FittedCandidate,
    problem: ProblemSpec,
    seed: int,
    version: str,
) -> None:
    """The evaluation artifacts of one candidate, written into ``folder``."""
    from include.mlpipeline.ml.evaluation import write_evaluation

    started = time.perf_counter()
    write_evaluation(
        folder,
        problem=problem,
        candidate=fitted.name,
        window=window,
        data=data,
        fitted=fitted,
        seed=seed,
        code_version=version,
    )
    log.info("%s: evaluation artifacts written in %.1fs", fitted.name, time.perf_counter() - started)
