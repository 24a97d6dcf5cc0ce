"""Training one candidate: search its hyperparameters, fit it, choose its threshold, score it, log it.

:func:`fit_candidate` is the modelling step alone (no MLflow); :func:`train_candidate` is what one
mapped task of the train DAG runs: load the window, search (``MLP_SEARCH_TRIALS`` > 0, each trial a
nested MLflow run under the candidate's run), fit with the best parameters, write the evaluation
artifacts, and log the candidate as a child run of the training run
(:mod:`include.mlpipeline.ml.tracking`).

It times its phases (:class:`PhaseTimes`: imports, setup, load, fit, evaluate, log) and returns them
with the candidate, so the time a task spends outside its fit can be seen per phase (the train DAG's
task passes the time it began; ``bench/pipeline.py`` adds the task's start-up from Airflow's own
timestamps).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.ml.candidates import FittedCandidate, find_candidate
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.ml.window import TrainingSet, TrainingWindow, load_training_set

log = logging.getLogger(__name__)

PHASES = ("imports", "setup", "load", "fit", "evaluate", "log")
"""The phases :func:`train_candidate` times, in order (``fit`` includes a hyperparameter search)."""


@dataclass
class PhaseTimes:
    """Wall-clock seconds of consecutive phases of one task, from ``began`` (a ``time.time()``)."""

    began: float = field(default_factory=time.time)
    seconds: dict[str, float] = field(default_factory=dict)
    _last: float | None = None

    def lap(self, phase: str) -> None:
        """End ``phase``: it lasted from the end of the previous one (or ``began``) until now."""
        now = time.time()
        self.seconds[phase] = round(now - (self.began if self._last is None else self._last), 3)
        self._last = now

    def to_dict(self) -> dict[str, float]:
        """``began`` and ``ended`` (epoch seconds) and each phase's seconds."""
        return {"began": self.began, "ended": self._last or self.began, **self.seconds}


def fit_candidate(
    name: str,
    data: TrainingSet,
    *,
    problem: ProblemSpec | None = None,
    seed: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> FittedCandidate:
    """Fit one candidate on the train part, pick its threshold on validation (binary), score validation
    and test.

    Args:
        name: The candidate (one of the problem's, see ``candidates.problem_candidates``).
        data: The training set.
        problem: The problem (default: settings.problem).
        seed: Seed of the fit (default: settings.random_seed).
        params: Hyperparameters over the candidate's defaults (a search's best).
    """
    problem = problem or load_problem()
    seed = get_settings().random_seed if seed is None else seed
    kind = task_kind(problem.task)
    candidate = find_candidate(problem, name)
    features, target = problem.feature_columns, problem.target
    pipeline = candidate.pipeline(problem, seed, params)
    pipeline.fit(data.train[features], data.train[target].to_numpy())
    classes = kind.classes(pipeline)
    validation = kind.predict(pipeline, data.validation[features])
    threshold = kind.choose_threshold(data.validation[target].to_numpy(), validation)
    test = kind.predict(pipeline, data.test[features])
    fitted = FittedCandidate(
        name=name,
        pipeline=pipeline,
        threshold=threshold,
        validation=kind.evaluate(data.validation[target].to_numpy(), validation, threshold, classes),
        test=kind.evaluate(data.test[target].to_numpy(), test, threshold, classes),
        params={**candidate.params, **(params or {})},
        classes=classes or None,
    )
    metric = kind.primary_metric(problem.primary_metric)
    log.info(
        "%s: validation %s %.4f, test %s %.4f%s",
        name,
        metric,
        fitted.validation[metric],
        metric,
        fitted.test[metric],
        f", threshold {threshold:.3f}" if threshold is not None else "",
    )
    return fitted


def train_candidate(
    name: str,
    window: dict[str, Any],
    parent_run_id: str,
    *,
    evaluation_artifacts: bool = True,
    began: float | None = None,
) -> dict[str, Any]:
    """Search, fit and log one candidate as a child run of ``parent_run_id``.

    Args:
        name: Candidate name (one of the problem's candidates).
        window: A :class:`TrainingWindow` as a dict.
        parent_run_id: The training run's parent MLflow run.
        evaluation_artifacts: Also log the evaluation figures, tables and model card under
            ``evaluation/`` (see :mod:`include.mlpipeline.ml.evaluation`). The train DAG always does;
            False saves their few seconds where only the metrics matter (some tests).
        began: When the caller's task code began (``time.time()``), before it imported this module:
            the ``imports`` phase. Default: now (``imports`` is then 0).

    Returns:
        name, run id, model URI, threshold, validation and test metrics, params, and ``phases``
        (:meth:`PhaseTimes.to_dict`) (small: goes to XCom).
    """
    phases = PhaseTimes(began if began is not None else time.time())
    phases.lap("imports")
    from include.mlpipeline.core.code_version import code_version
    from include.mlpipeline.ml import tracking

    settings = get_settings()
    problem = load_problem()
    tracking.configure(settings, problem)
    phases.lap("setup")
    training_window = TrainingWindow.from_dict(window)
    data = load_training_set(training_window, problem=problem)
    candidate = find_candidate(problem, name)
    run = tracking.CandidateRun(name, parent_run_id, training_window, problem)
    phases.lap("load")
    with run.failing_on_error():
        params = None
        if settings.search_trials and candidate.search_space:
            from include.mlpipeline.ml.search import search

            found = search(
                candidate,
                data,
                problem,
                seed=settings.random_seed,
                trials=settings.search_trials,
                timeout_s=settings.search_timeout_s,
                on_trial=run.log_trial,
            )
            params, run.search = found.best_params, found
        fitted = fit_candidate(name, data, problem=problem, seed=settings.random_seed, params=params)
        phases.lap("fit")
        # Written before the model is logged, so a failing plot cannot leave a half-logged child run.
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
            phases.lap("evaluate")
            result = run.log_candidate(
                fitted, data=data, seed=settings.random_seed, evaluation_folder=Path(folder.name) if folder else None
            )
        finally:
            if folder is not None:
                folder.cleanup()
    phases.lap("log")
    log.info("%s: phases %s", name, ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in phases.seconds.items()))
    return {**result, "phases": phases.to_dict()}


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
