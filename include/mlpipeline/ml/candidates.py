"""The candidate model families: each a scikit-learn Pipeline of preprocessing and an estimator.

Every candidate is one function ``(problem, seed) -> Pipeline`` in :data:`CANDIDATES`; the train DAG
fits them in parallel, one mapped task each, and the baseline always runs beside them (the promotion
gate compares with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

from include.mlpipeline.core.problem import ProblemSpec

CLIP_Z = 5.0


def _linear_preprocessing(problem: ProblemSpec) -> ColumnTransformer:
    # Clipping standardized values keeps a linear model sane on test days outside the training range
    # (a calendar feature one step past what a short window saw would otherwise dominate the logit).
    numeric = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
        # np.clip itself (not a function of ours) so the pickled model needs no project code to load.
        FunctionTransformer(np.clip, kw_args={"a_min": -CLIP_Z, "a_max": CLIP_Z}, feature_names_out="one-to-one"),
    )
    # Categories seen fewer than 20 times, and categories never seen in training, share one
    # "infrequent" column: an unknown carrier is answered like a rare one, never with an error.
    categorical = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False)
    return ColumnTransformer(
        [
            ("numeric", numeric, list(problem.numeric_features)),
            ("categorical", categorical, list(problem.categorical_features)),
        ]
    )


def _tree_preprocessing(problem: ProblemSpec, seed: int, impute: bool) -> ColumnTransformer:
    # Target encoding = the delay rate of each carrier, route, airport in the training window,
    # cross-fitted so a row never sees its own label. Unknown categories get the overall rate.
    numeric: Any = SimpleImputer(strategy="median", add_indicator=True) if impute else "passthrough"
    return ColumnTransformer(
        [
            ("numeric", numeric, list(problem.numeric_features)),
            (
                "categorical",
                TargetEncoder(target_type="binary", cv=StratifiedKFold(5, shuffle=True, random_state=seed)),
                list(problem.categorical_features),
            ),
        ]
    )


def _baseline(problem: ProblemSpec, seed: int) -> Pipeline:
    return Pipeline([("preprocess", _linear_preprocessing(problem)), ("model", DummyClassifier(strategy="prior"))])


def _logistic_regression(problem: ProblemSpec, seed: int) -> Pipeline:
    model = LogisticRegression(C=0.5, max_iter=2000, random_state=seed)
    return Pipeline([("preprocess", _linear_preprocessing(problem)), ("model", model)])


def _hist_gradient_boosting(problem: ProblemSpec, seed: int) -> Pipeline:
    model = HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=100,
        max_leaf_nodes=15,
        min_samples_leaf=100,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("preprocess", _tree_preprocessing(problem, seed, impute=False)), ("model", model)])


def _random_forest(problem: ProblemSpec, seed: int) -> Pipeline:
    model = RandomForestClassifier(
        n_estimators=150, max_depth=12, min_samples_leaf=20, max_features="sqrt", n_jobs=1, random_state=seed
    )
    return Pipeline([("preprocess", _tree_preprocessing(problem, seed, impute=True)), ("model", model)])


CANDIDATES: dict[str, Callable[[ProblemSpec, int], Pipeline]] = {
    "baseline": _baseline,
    "logistic_regression": _logistic_regression,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "random_forest": _random_forest,
}
BASELINE = "baseline"

# Models are saved with skops, which refuses to load any type not explicitly trusted. These are the
# types our candidate families store (all from numpy and scikit-learn); add yours for a new family.
SKOPS_TRUSTED_TYPES = [
    "numpy.clip",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.tree._tree.Tree",
]


def build_candidate(name: str, problem: ProblemSpec, seed: int) -> Pipeline:
    if name not in CANDIDATES:
        raise KeyError(f"unknown candidate {name!r}; known: {sorted(CANDIDATES)}")
    return CANDIDATES[name](problem, seed)


@dataclass
class FittedCandidate:
    """A candidate fitted on the train days, with its threshold and its validation and test metrics."""

    name: str
    pipeline: Pipeline
    threshold: float
    validation: dict[str, float]
    test: dict[str, float]
