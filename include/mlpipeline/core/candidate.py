"""A candidate model family as a problem declares it: how to build it, its defaults, where to search.

A problem lists its candidates in ``ProblemSpec.candidates`` (or leaves it None and takes the
library's defaults for its task kind, :mod:`include.mlpipeline.ml.candidates`). Each candidate is a
function that builds a scikit-learn ``Pipeline`` (preprocessing and estimator) from the problem,
a dict of hyperparameters and a seed; ``params`` are the values used without a search, and
``search_space`` the ranges the hyperparameter search (Optuna) draws from. Keys of ``params`` and
``search_space`` are the build function's own names, so a space may cover a preprocessing option
as well as an estimator's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IntRange:
    """Whole numbers from ``low`` to ``high`` (both included), on a log scale if ``log``."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    """Real numbers from ``low`` to ``high``, on a log scale if ``log`` (for learning rates, penalties)."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (numbers, text, booleans or None)."""

    options: tuple[Any, ...]


Distribution = IntRange | FloatRange | Choice


@dataclass(frozen=True)
class Candidate:
    """One model family.

    Attributes:
        name: Shown in MLflow and the registry; unique among the problem's candidates.
        build: ``build(problem, params, seed) -> Pipeline``: the preprocessing and the estimator,
            unfitted. ``params`` holds ``params`` below, overridden by a search trial's values.
        params: The hyperparameters used when no search runs, and the search's first trial.
        search_space: Hyperparameter ranges for the search; empty: never searched.
        trusted_types: Types beyond numpy's and scikit-learn's that the fitted pipeline stores;
            models are saved with skops, which loads only trusted types.
        baseline: The trivial model the promotion gate compares with (exactly one candidate is).
    """

    name: str
    build: Callable[[Any, Mapping[str, Any], int], Any]  # (ProblemSpec, params, seed) -> Pipeline
    params: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, Distribution] = field(default_factory=dict)
    trusted_types: tuple[str, ...] = ()
    baseline: bool = False

    def pipeline(self, problem: Any, seed: int, overrides: Mapping[str, Any] | None = None) -> Any:
        """The unfitted pipeline with the default params, updated by ``overrides``."""
        return self.build(problem, {**self.params, **(overrides or {})}, seed)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.search_space) - set(self.params))
        if unknown:
            raise ValueError(
                f"candidate {self.name!r}: search space names {unknown} without a default in params; "
                "give each searched hyperparameter a default value"
            )
        outside = [name for name, space in self.search_space.items() if not _within(self.params[name], space)]
        if outside:
            raise ValueError(
                f"candidate {self.name!r}: the defaults of {outside} lie outside their search space; the search "
                "starts from the defaults, so widen the space or change the default"
            )


def _within(value: Any, space: Any) -> bool:
    """Whether a default value lies in its search distribution (a search's first trial is the defaults)."""
    if isinstance(space, Choice):
        return value in space.options
    if isinstance(space, IntRange | FloatRange):
        return isinstance(value, int | float) and space.low <= value <= space.high
    return False
