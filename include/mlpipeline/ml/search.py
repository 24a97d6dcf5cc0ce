"""Hyperparameter search for one candidate, with Optuna: the best trial becomes the candidate.

Each trial fits the candidate on the train part with hyperparameters drawn from its search space
and scores it, by the problem's primary metric, on the validation part: the days after the train
days for data with a time axis, so a trial never learns from the future it is scored on. The first
trial is the candidate's default parameters, so a search never picks something that scored worse
on validation than no search. The sampler (TPE) is seeded: the same data, space and number of trials
give the same trials. With a time budget the trials started before the deadline finish, so how many
run, and hence the result, may vary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.mlpipeline.core.candidate import Candidate, Choice, Distribution, FloatRange, IntRange
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.task_kinds import greater_is_better, task_kind
from include.mlpipeline.ml.window import TrainingSet

log = logging.getLogger(__name__)

TrialCallback = Callable[["Trial"], None]


@dataclass(frozen=True)
class Trial:
    """One trial: its number, the hyperparameters it tried, its validation score and how long it took."""

    number: int
    params: dict[str, Any]
    score: float
    seconds: float
    metric: str


@dataclass
class SearchResult:
    """The best hyperparameters found (the candidate's defaults updated), and every trial."""

    best_params: dict[str, Any]
    best_score: float
    metric: str
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0


def suggest(trial: Any, name: str, distribution: Distribution) -> Any:
    """One hyperparameter drawn by an Optuna trial from ``distribution``."""
    if isinstance(distribution, IntRange):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
    if isinstance(distribution, FloatRange):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
    if isinstance(distribution, Choice):
        # Optuna stores categorical choices as given; None and mixed types are fine as choices.
        return trial.suggest_categorical(name, list(distribution.options))
    raise TypeError(f"{name}: unknown search distribution {distribution!r}")


class TrialObjective:
    """Fits the candidate with one trial's hyperparameters and scores it on the validation part."""

    def __init__(self, candidate: Candidate, data: TrainingSet, problem: ProblemSpec, seed: int, metric: str):
        self.candidate = candidate
        self.problem = problem
        self.seed = seed
        self.metric = metric
        self.kind = task_kind(problem.task)
        features = problem.feature_columns
        self.x_train, self.y_train = data.train[features], data.train[problem.target].to_numpy()
        self.x_validation, self.y_validation = data.validation[features], data.validation[problem.target].to_numpy()

    def score(self, params: Mapping[str, Any]) -> float:
        """The validation ``metric`` of the candidate fitted with ``params`` over its defaults."""
        pipeline = self.candidate.pipeline(self.problem, self.seed, params)
        pipeline.fit(self.x_train, self.y_train)
        predictions = self.kind.predict(pipeline, self.x_validation)
        classes = self.kind.classes(pipeline)
        threshold = self.kind.choose_threshold(self.y_validation, predictions)
        value = self.kind.evaluate(self.y_validation, predictions, threshold, classes)[self.metric]
        if not np.isfinite(value):
            raise ValueError(f"validation {self.metric} is {value} for {dict(params)}")
        return float(value)

    def __call__(self, trial: Any) -> float:
        params = {name: suggest(trial, name, space) for name, space in self.candidate.search_space.items()}
        return self.score(params)


class TrialRecorder:
    """Optuna callback: keeps every finished trial, logs it, and hands it to ``on_trial``."""

    def __init__(self, candidate: str, metric: str, on_trial: TrialCallback | None):
        self.candidate = candidate
        self.metric = metric
        self.on_trial = on_trial
        self.trials: list[Trial] = []

    def __call__(self, study: Any, frozen: Any) -> None:
        if frozen.value is None:  # a failed trial (its error is in Optuna's log)
            return
        seconds = frozen.duration.total_seconds() if frozen.duration else 0.0
        trial = Trial(frozen.number, dict(frozen.params), float(frozen.value), seconds, self.metric)
        self.trials.append(trial)
        log.info(
            "%s trial %d: validation %s %.4f with %s",
            self.candidate,
            trial.number,
            self.metric,
            trial.score,
            trial.params,
        )
        if self.on_trial is not None:
            self.on_trial(trial)


def search(
    candidate: Candidate,
    data: TrainingSet,
    problem: ProblemSpec,
    *,
    seed: int,
    trials: int,
    timeout_s: float | None,
    on_trial: TrialCallback | None = None,
) -> SearchResult:
    """Search ``candidate``'s space for the hyperparameters with the best validation score.

    Args:
        candidate: The candidate (its ``search_space`` must not be empty).
        data: The training set: trials fit on its train part and score on its validation part.
        problem: The problem (features, target, task, primary metric).
        seed: Seeds the sampler and every fit.
        trials: Most trials, the first being the defaults.
        timeout_s: Time budget in seconds (None: no limit).
        on_trial: Called after each finished trial (e.g. to log it as a nested MLflow run).

    Returns:
        The best hyperparameters (defaults updated) and every trial.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial from us, not two
    kind = task_kind(problem.task)
    metric = kind.primary_metric(problem.primary_metric)
    objective = TrialObjective(candidate, data, problem, seed, metric)
    study = optuna.create_study(
        direction="maximize" if greater_is_better(metric) else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    study.enqueue_trial({name: candidate.params[name] for name in candidate.search_space})
    recorder = TrialRecorder(candidate.name, metric, on_trial)
    started = time.perf_counter()
    study.optimize(
        objective, n_trials=trials, timeout=timeout_s, callbacks=[recorder], catch=(ValueError, ArithmeticError)
    )
    found = recorder.trials
    best = study.best_trial
    result = SearchResult(
        best_params={**candidate.params, **best.params},
        best_score=float(best.value),
        metric=metric,
        trials=found,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "%s: best of %d trials in %.1fs: validation %s %.4f (defaults %.4f) with %s",
        candidate.name,
        len(found),
        result.seconds,
        metric,
        result.best_score,
        found[0].score if found else float("nan"),
        best.params,
    )
    return result
