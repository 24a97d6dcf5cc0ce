"""What the conformance checks of one problem share: the sample, the serving context, the served sample.

Each is built once, when a check first asks for it, so a check that needs none of them (the canaries
need only the context) runs even when the sample cannot be built, and no frame is built twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd
from pydantic import ValidationError

from include.mlpipeline.authoring.problem_sample import Sample, build_sample
from include.mlpipeline.authoring.result import Finding, brief
from include.mlpipeline.core.problem import ProblemSpec

log = logging.getLogger(__name__)

SKEW_ROWS = 1000  # clean rows sent as requests: enough for every category a few days hold, still fast
FIT_ROWS = 2000  # rows each candidate fits on: a fit that works on them works on the window


@dataclass(frozen=True)
class Served:
    """A sample of clean rows, their features as training builds them, and as the API builds them.

    Attributes:
        rows: Up to ``skew_rows`` clean rows, in the clean table's order (a seeded sample if more).
        trained: ``build_features(rows)``.
        records: ``requests_for(rows)``: the requests the rows stand for.
        served: ``request_features(records, context)``: their features as the API builds them.
        finding: Why one of them could not be built (the later ones are then None).
    """

    rows: pd.DataFrame
    trained: pd.DataFrame | None = None
    records: list[dict[str, Any]] | None = None
    served: pd.DataFrame | None = None
    finding: Finding | None = None


def validation_errors(error: ValidationError, limit: int = 3) -> str:
    """A pydantic error as ``field: message`` pairs, the first ``limit`` of them."""
    parts = [f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in error.errors()[:limit]]
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class Run:
    """One conformance run of a problem on a sample of days (see ``conformance.run_checks``)."""

    def __init__(
        self,
        problem: ProblemSpec,
        days: Sequence[dt.date],
        *,
        seed: int,
        max_quarantine_share: float,
        skew_rows: int = SKEW_ROWS,
        fit_rows: int = FIT_ROWS,
    ) -> None:
        self.problem = problem
        self.days = list(days)
        self.seed = seed
        self.max_quarantine_share = max_quarantine_share
        self.skew_rows = skew_rows
        self.fit_rows = fit_rows

    @cached_property
    def sample(self) -> Sample:
        return build_sample(self.problem, self.days, max_quarantine_share=self.max_quarantine_share)

    @cached_property
    def context(self) -> tuple[Any, Finding | None]:
        """The serving context, or the finding of why ``load_serving_context`` failed."""
        try:
            return self.problem.load_serving_context(), None
        except Exception as error:  # the package's code: a finding, not a crash of the checks
            return None, Finding(
                f"load_serving_context() raised {brief(error)}",
                "make load_serving_context load the reference data the API needs (or return None if none)",
            )

    @cached_property
    def served(self) -> Served | None:
        """The served sample; None when there are no clean rows to send."""
        clean = self.sample.clean
        if clean is None:
            return None
        rows = clean if len(clean) <= self.skew_rows else clean.sample(self.skew_rows, random_state=self.seed)
        return serve(self.problem, rows.sort_index().reset_index(drop=True), *self.context)


def serve(problem: ProblemSpec, rows: pd.DataFrame, context: Any, context_finding: Finding | None) -> Served:
    """Build ``rows``' features both ways: ``build_features`` (training) and as API requests (serving)."""
    try:
        trained = problem.build_features(rows)
    except Exception as error:  # the package's code: a finding
        return Served(rows, finding=Finding(f"build_features(clean) raised {brief(error)}", "fix build_features"))
    model = problem.request_model.__name__
    try:
        records = problem.requests_for(rows)
    except ValidationError as error:
        return Served(
            rows,
            trained,
            finding=Finding(
                f"requests_for(clean) builds requests the request model {model} refuses: {validation_errors(error)}",
                "make request_records build a valid request from every clean row, or make the request model's "
                "bounds cover the clean contract's",
            ),
        )
    except Exception as error:  # the package's code: a finding
        return Served(
            rows,
            trained,
            finding=Finding(
                f"requests_for(clean) raised {brief(error)}",
                "give the problem a request_records(clean) that builds the request each clean row stands for",
            ),
        )
    if context_finding is not None:
        return Served(rows, trained, records, finding=context_finding)
    try:
        served = problem.request_features(records, context)
    except Exception as error:  # the package's code: a finding
        return Served(
            rows,
            trained,
            records,
            finding=Finding(
                f"request_features(requests, context) raised {brief(error)}",
                "make serving_frame give build_features every clean column it reads, from the request and the "
                "serving context",
            ),
        )
    return Served(rows, trained, records, served)
