"""The conformance checks of the model side: the task kind fits the target, and the candidates fit the sample.

The sample's feature table is what training would read (``Sample.training_features``). The fits are
quick, on at most ``Run.fit_rows`` rows, without MLflow: they show that each candidate's pipeline
takes the problem's feature columns and target, not how good it is.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from include.mlpipeline.authoring.result import CheckResult, Finding, brief, skipped, verdict
from include.mlpipeline.authoring.run import Run
from include.mlpipeline.ml.candidates import problem_candidates
from include.mlpipeline.ml.task_kinds import task_kind

log = logging.getLogger(__name__)

HANDFUL = 5  # a regression target with this many distinct values or fewer is classes in disguise
MANY_CLASSES = 50  # a multiclass target with more distinct numbers than this is a quantity


def check_task(run: Run) -> CheckResult:
    """6. The target's values are what the task kind predicts: 0/1 (both), 3 or more classes, or many numbers."""
    problem, frame = run.problem, run.sample.training_features
    name = "task_matches_target"
    if frame is None:
        return skipped(name, "no feature table was built (see contracts_match_frames)")
    if problem.target not in frame.columns:
        finding = Finding(
            f"the feature table has no target column {problem.target}",
            f"make build_features keep {problem.target} when the clean rows have it",
        )
        return verdict(name, [finding], "")
    values = frame[problem.target]
    finding = target_problem(problem.task, problem.target, values)
    return verdict(name, [finding] if finding else [], f"{problem.task} target {problem.target}: {_describe(values)}")


def target_problem(task: str, target: str, values: pd.Series) -> Finding | None:
    """Why ``values`` (the sample's target) cannot be the target of ``task``, saying which task they fit;
    None if they can."""
    missing = int(values.isna().sum())
    if missing:
        return Finding(
            f"{missing} of {len(values)} rows have no {target}",
            f"quarantine rows without a target in the clean contract (no nullable=True on {target})",
        )
    by_task = {"binary": _binary_problem, "multiclass": _multiclass_problem, "regression": _regression_problem}
    finding = by_task[task](target, values, sorted(pd.unique(values).tolist(), key=str))
    if finding is None:
        problem = task_kind(task).target_problems(values.to_numpy(), "sample")
        if problem:
            return Finding(
                f"{target}: {problem}", "pick --days whose rows hold every class, or check the target's rule"
            )
    return finding


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _fractional(values: pd.Series) -> bool:
    return _numeric(values) and not np.allclose(values.to_numpy(dtype="float64") % 1, 0)


def _binary_problem(target: str, values: pd.Series, distinct: list) -> Finding | None:
    if len(distinct) > 2:
        quantity = _numeric(values) and (_fractional(values) or len(distinct) > HANDFUL)
        fix = "declare task='regression'" if quantity else "declare task='multiclass'"
        return Finding(f"the binary target {target} has {len(distinct)} distinct values (e.g. {distinct[:10]})", fix)
    if not set(distinct) <= {0, 1}:
        return Finding(
            f"the binary target {target} has values {distinct}, not 0 and 1",
            f"encode {target} as 0/1 in build_features (1 = the positive class)",
        )
    return None  # one class only: task_kind's target_problems says so


def _multiclass_problem(target: str, values: pd.Series, distinct: list) -> Finding | None:
    if _numeric(values) and (_fractional(values) or len(distinct) > MANY_CLASSES):
        return Finding(
            f"the multiclass target {target} has {len(distinct)} distinct numbers (e.g. {distinct[:10]})",
            "declare task='regression'",
        )
    if len(distinct) == 2:
        return Finding(
            f"the multiclass target {target} has 2 classes {distinct}",
            f"declare task='binary' (and encode {target} as 0/1, 1 = the positive class)",
        )
    return None


def _regression_problem(target: str, values: pd.Series, distinct: list) -> Finding | None:
    if not _numeric(values):
        return Finding(
            f"the regression target {target} is not numeric ({values.dtype}, e.g. {distinct[:10]})",
            "declare task='multiclass' (or task='binary' for two classes), or make the target a number",
        )
    if len(distinct) <= HANDFUL:
        fix = "declare task='binary'" if len(distinct) == 2 else "declare task='multiclass' if they are classes"
        return Finding(f"the regression target {target} has only {len(distinct)} distinct values {distinct}", fix)
    return None


def _describe(values: pd.Series) -> str:
    """The target in a few words: its class counts, or the range of its numbers."""
    counts = values.value_counts()
    if len(counts) <= 10:
        return "classes " + ", ".join(f"{value!r} ({count})" for value, count in sorted(counts.items(), key=str))
    return f"{len(counts)} distinct values from {values.min()} to {values.max()}"


def check_candidates(run: Run) -> CheckResult:
    """7. Every candidate builds, exactly one is the baseline, and each fits on the sample's features."""
    problem, frame = run.problem, run.sample.training_features
    name = "candidates_fit"
    fix_build = "fix the candidate's build function, or leave out a family that does not fit the task kind"
    try:
        candidates = problem_candidates(problem)
    except Exception as error:  # the package's code: a finding
        return verdict(name, [Finding(f"the candidates cannot be listed: {brief(error)}", fix_build)], "")
    findings = []
    baselines = [candidate.name for candidate in candidates.values() if candidate.baseline]
    if len(baselines) != 1:
        findings.append(
            Finding(
                f"{len(baselines)} candidates are the baseline {baselines}",
                "mark exactly one candidate baseline=True (ml.candidates.baseline())",
            )
        )
    if frame is None:
        return verdict(name, findings, "") if findings else skipped(name, "no feature table (contracts_match_frames)")
    rows = frame.dropna(subset=[problem.target]) if problem.target in frame.columns else frame
    if len(rows) > run.fit_rows:
        rows = rows.sample(run.fit_rows, random_state=run.seed)
    kind = task_kind(problem.task)
    timings = []
    # One thread: a fit on a few thousand rows gains nothing from more, and on a busy machine OpenMP's
    # waiting threads made boosting fifty times slower.
    with threadpool_limits(1):
        for candidate in candidates.values():
            started = time.perf_counter()
            try:
                pipeline = candidate.pipeline(problem, run.seed)
            except Exception as error:  # the package's code: a finding
                findings.append(Finding(f"candidate {candidate.name} does not build: {brief(error)}", fix_build))
                continue
            try:
                pipeline.fit(rows[problem.feature_columns], rows[problem.target].to_numpy())
                predictions = np.asarray(kind.predict(pipeline, rows[problem.feature_columns]), dtype="float64")
            except Exception as error:  # the package's code: a finding
                findings.append(
                    Finding(
                        f"candidate {candidate.name} fails on {len(rows)} sample rows: {brief(error)}",
                        f"make {candidate.name}'s pipeline take the feature columns as build_features gives them",
                    )
                )
                continue
            if not np.isfinite(predictions).all():
                findings.append(
                    Finding(
                        f"candidate {candidate.name} predicts missing or infinite values on the sample",
                        f"make {candidate.name}'s pipeline impute missing feature values",
                    )
                )
            timings.append(f"{candidate.name} {time.perf_counter() - started:.2f}s")
    return verdict(
        name,
        findings,
        f"{len(candidates)} candidates build, one baseline ({baselines[0] if baselines else '-'}), each fits "
        f"{len(rows)} sample rows: {', '.join(timings)}",
    )
