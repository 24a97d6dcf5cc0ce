"""The library's candidate model families, for any task kind, and how a problem's candidates are found.

A problem declares its candidates in ``ProblemSpec.candidates`` (see
:class:`include.mlpipeline.core.candidate.Candidate`), usually by calling the factories here with
its own parameters (``hist_gradient_boosting(params={"min_samples_leaf": 100})``) or by writing its
own build function; without them it
gets :func:`default_candidates` for its task: a trivial baseline, a linear model, histogram
gradient boosting and a random forest. Their defaults are scikit-learn's own, or shares of the
training rows, never counts sized for one dataset; their search spaces span what the defaults
leave open. The train DAG fits the candidates in parallel, one mapped task each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

from include.mlpipeline.core.candidate import Candidate, Choice, FloatRange, IntRange
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.task_kinds import task_kind

CLIP_Z = 5.0
BASELINE = "baseline"

# Models are saved with skops, which refuses to load any type not explicitly trusted. These are the
# types the library's families store (all from numpy and scikit-learn); a candidate adds its own.
SKOPS_TRUSTED_TYPES = [
    "numpy.clip",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.tree._tree.Tree",
]


# ----------------------------------------------------------------------------- preprocessing
def linear_preprocessing(problem: ProblemSpec, min_frequency: float) -> ColumnTransformer:
    """Median imputation (with missing-value indicators), standardization clipped at ±5, one-hot codes.

    Clipping standardized values keeps a linear model sane on rows outside the training range (a
    calendar feature one step past what a short window saw would otherwise dominate it). Categories
    rarer than ``min_frequency`` (a count, or a share of the training rows), and categories never
    seen in training, share one "infrequent" column: an unknown value is answered like a rare one,
    never with an error.
    """
    numeric = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
        # np.clip itself (not a function of ours) so the saved model needs no project code to load.
        FunctionTransformer(np.clip, kw_args={"a_min": -CLIP_Z, "a_max": CLIP_Z}, feature_names_out="one-to-one"),
    )
    categorical = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=min_frequency, sparse_output=False)
    return ColumnTransformer(
        [
            ("numeric", numeric, list(problem.numeric_features)),
            ("categorical", categorical, list(problem.categorical_features)),
        ]
    )


def tree_preprocessing(problem: ProblemSpec, seed: int, impute: bool) -> ColumnTransformer:
    """Numbers as they are (imputed if the estimator needs it) and target-encoded categories.

    Target encoding replaces a category by the target's mean (per class for multiclass) in the
    training rows, cross-fitted so a row never sees its own label; an unknown category gets the
    overall mean.
    """
    kind = task_kind(problem.task)
    folds = (
        StratifiedKFold(5, shuffle=True, random_state=seed)
        if kind.classifier
        else KFold(5, shuffle=True, random_state=seed)
    )
    numeric: Any = SimpleImputer(strategy="median", add_indicator=True) if impute else "passthrough"
    return ColumnTransformer(
        [
            ("numeric", numeric, list(problem.numeric_features)),
            ("categorical", TargetEncoder(target_type=kind.target_type, cv=folds), list(problem.categorical_features)),
        ]
    )


# -------------------------------------------------------------------------------- estimators
def _build_baseline(problem: ProblemSpec, params: Mapping[str, Any], seed: int) -> Pipeline:
    model = DummyClassifier(strategy="prior") if task_kind(problem.task).classifier else DummyRegressor(strategy="mean")
    return Pipeline([("preprocess", linear_preprocessing(problem, params["min_frequency"])), ("model", model)])


def _build_logistic_regression(problem: ProblemSpec, params: Mapping[str, Any], seed: int) -> Pipeline:
    _require_kind(problem, classifier=True, candidate="logistic_regression")
    model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed)
    return Pipeline([("preprocess", linear_preprocessing(problem, params["min_frequency"])), ("model", model)])


def _build_ridge(problem: ProblemSpec, params: Mapping[str, Any], seed: int) -> Pipeline:
    _require_kind(problem, classifier=False, candidate="ridge")
    model = Ridge(alpha=params["alpha"])
    return Pipeline([("preprocess", linear_preprocessing(problem, params["min_frequency"])), ("model", model)])


def _require_kind(problem: ProblemSpec, *, classifier: bool, candidate: str) -> None:
    if task_kind(problem.task).classifier != classifier:
        wanted = "classification" if classifier else "regression"
        raise ValueError(f"candidate {candidate} is for {wanted}; problem {problem.name} is a {problem.task} task")


def _build_hist_gradient_boosting(problem: ProblemSpec, params: Mapping[str, Any], seed: int) -> Pipeline:
    estimator = HistGradientBoostingClassifier if task_kind(problem.task).classifier else HistGradientBoostingRegressor
    model = estimator(
        learning_rate=params["learning_rate"],
        max_iter=params["max_iter"],
        max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"],
        l2_regularization=params["l2_regularization"],
        early_stopping=False,  # the validation part decides; an inner random split would not respect time
        random_state=seed,
    )
    return Pipeline([("preprocess", tree_preprocessing(problem, seed, impute=False)), ("model", model)])


def _build_random_forest(problem: ProblemSpec, params: Mapping[str, Any], seed: int) -> Pipeline:
    estimator = RandomForestClassifier if task_kind(problem.task).classifier else RandomForestRegressor
    model = estimator(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        min_samples_leaf=params["min_samples_leaf"],
        max_features=params["max_features"],
        n_jobs=1,  # the DAG runs candidates in parallel; each one's own threads would only compete
        random_state=seed,
    )
    return Pipeline([("preprocess", tree_preprocessing(problem, seed, impute=True)), ("model", model)])


# --------------------------------------------------------------------------------- factories
def baseline(params: Mapping[str, Any] | None = None) -> Candidate:
    """The trivial model the gate compares with: the class prior, or the mean (no search)."""
    return Candidate(BASELINE, _build_baseline, {"min_frequency": 0.001, **(params or {})}, baseline=True)


def logistic_regression(
    params: Mapping[str, Any] | None = None, search_space: Mapping[str, Any] | None = None
) -> Candidate:
    """Logistic regression on one-hot codes (classifiers): its penalty ``C`` is searched."""
    defaults = {"C": 1.0, "max_iter": 2000, "min_frequency": 0.001}
    space = {"C": FloatRange(1e-3, 100.0, log=True)}
    return Candidate(
        "logistic_regression", _build_logistic_regression, {**defaults, **(params or {})}, dict(search_space or space)
    )


def ridge(params: Mapping[str, Any] | None = None, search_space: Mapping[str, Any] | None = None) -> Candidate:
    """Ridge regression on one-hot codes (regression): its penalty ``alpha`` is searched."""
    defaults = {"alpha": 1.0, "min_frequency": 0.001}
    space = {"alpha": FloatRange(1e-3, 1000.0, log=True)}
    return Candidate("ridge", _build_ridge, {**defaults, **(params or {})}, dict(search_space or space))


def hist_gradient_boosting(
    params: Mapping[str, Any] | None = None, search_space: Mapping[str, Any] | None = None
) -> Candidate:
    """Histogram gradient boosting on target-encoded categories (scikit-learn's defaults)."""
    defaults = {
        "learning_rate": 0.1,
        "max_iter": 100,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
    }
    space = {
        "learning_rate": FloatRange(0.02, 0.3, log=True),
        "max_iter": IntRange(50, 400, log=True),
        "max_leaf_nodes": IntRange(7, 63, log=True),
        "min_samples_leaf": IntRange(5, 300, log=True),
        "l2_regularization": Choice((0.0, 0.01, 0.1, 1.0, 10.0)),  # 0 is the default, off any log scale
    }
    return Candidate(
        "hist_gradient_boosting",
        _build_hist_gradient_boosting,
        {**defaults, **(params or {})},
        dict(search_space or space),
    )


def random_forest(params: Mapping[str, Any] | None = None, search_space: Mapping[str, Any] | None = None) -> Candidate:
    """A random forest on target-encoded categories (scikit-learn's defaults, 200 trees)."""
    defaults = {"n_estimators": 200, "max_depth": None, "min_samples_leaf": 1, "max_features": "sqrt"}
    space = {
        "n_estimators": IntRange(50, 300, log=True),
        "max_depth": Choice((None, 6, 12, 24)),
        "min_samples_leaf": IntRange(1, 100, log=True),
        "max_features": Choice(("sqrt", 0.5, 1.0)),
    }
    return Candidate("random_forest", _build_random_forest, {**defaults, **(params or {})}, dict(search_space or space))


def default_candidates(task: str) -> tuple[Candidate, ...]:
    """The library's candidates for a task kind: the baseline, a linear model (logistic regression for
    classifiers, ridge for regression), histogram gradient boosting and a random forest."""
    linear_model = logistic_regression() if task_kind(task).classifier else ridge()
    return (baseline(), linear_model, hist_gradient_boosting(), random_forest())


def problem_candidates(problem: ProblemSpec) -> dict[str, Candidate]:
    """The problem's candidates by name: its own, or the library's defaults for its task."""
    return {candidate.name: candidate for candidate in (problem.candidates or default_candidates(problem.task))}


def baseline_name(problem: ProblemSpec) -> str:
    """The name of the problem's baseline candidate."""
    return next(name for name, candidate in problem_candidates(problem).items() if candidate.baseline)


def find_candidate(problem: ProblemSpec, name: str) -> Candidate:
    """The problem's candidate called ``name``.

    Raises:
        KeyError: naming the known candidates.
    """
    candidates = problem_candidates(problem)
    if name not in candidates:
        raise KeyError(f"unknown candidate {name!r}; {problem.name} has {sorted(candidates)}")
    return candidates[name]


def chosen_candidates(problem: ProblemSpec, requested: list[str] | None = None) -> list[str]:
    """The candidates a training run fits: ``requested`` (all when empty), always with the baseline.

    Raises:
        ValueError: naming the unknown candidates and the known ones.
    """
    known = problem_candidates(problem)
    chosen = list(requested or known)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; {problem.name} has {sorted(known)}")
    return chosen if baseline_name(problem) in chosen else [baseline_name(problem), *chosen]


def trusted_types(problem: ProblemSpec) -> list[str]:
    """Every type skops may load for the problem's models: the library's and its candidates' own."""
    extra = {t for candidate in problem_candidates(problem).values() for t in candidate.trusted_types}
    return sorted(set(SKOPS_TRUSTED_TYPES) | extra)


@dataclass
class FittedCandidate:
    """A candidate fitted on the train part, with its threshold (binary only) and its validation and
    test metrics, the hyperparameters it was fitted with and, for classifiers, its classes."""

    name: str
    pipeline: Pipeline
    threshold: float | None
    validation: dict[str, float]
    test: dict[str, float]
    params: dict[str, Any] | None = None
    classes: list[Any] | None = None
