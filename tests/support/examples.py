"""The two shipped examples, as the machinery tests see them.

The machinery (lake, training, registry, serving, deploy, A/B test, monitor) must not care which
problem it runs, so its tests run once per example: ``include.flight_delay`` (binary, data by day)
and ``include.penguins`` (regression, one snapshot table). Each :class:`Example` says what such a
test needs and the problem itself does not: how to fill a small lake, the split of a small
pipeline, which cheap models to train, a few request fields to break, what an answer looks like.
Everything else comes from the problem (``example.problem``): request key, canaries, labels, metrics.

A module-scoped (or package-scoped) fixture with ``params=EXAMPLES, ids=example_id`` sets up its
servers and models once per example; pytest orders the tests so that each is built once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.ml.task_kinds import TaskKind, greater_is_better, task_kind

ANSWER_FIELDS = {
    "binary": ("probability", "label", "positive"),
    "multiclass": ("label", "probability", "probabilities"),
    "regression": ("value",),
}
"""The answer fields of one prediction in /predict, by task kind (besides id, variant, model_version)."""

CONSTANT_SCORE = {"roc_auc": 0.5, "r2": 0.0}
"""What a constant prediction scores on the primary metric: exactly 0.5 ROC AUC; at most 0 R² (on rows
other than those it was fitted on)."""

OUTCOMES = {"binary": (1, 2), "regression": (4200.0, "4200 g")}
"""A /feedback outcome the API accepts and one of the wrong type or value, by task kind."""


def _flight_id(record: Mapping[str, Any]) -> str:
    day = f"{record['year']}-{record['month']:02d}-{record['day']:02d}"
    return f"{day}_{record['carrier']}_{record['flight']}_{record['origin']}"


def _penguin_id(record: Mapping[str, Any]) -> str:
    return str(record["penguin_id"])


@dataclass(frozen=True)
class Example:
    """One shipped example problem and what a machinery test needs to run it small.

    Attributes:
        name: The test id ("flights", "penguins").
        module: The problem's module (``MLP_PROBLEM``).
        days: The partitions of a small lake: replayed days, or the one day a snapshot is loaded on.
        split: ``MLP_*`` split settings of a small pipeline on :attr:`days` (None: the problem's own).
        cheap_model: A quick learner the gate promotes over the baseline.
        other_model: A learner of another family (its answers differ from :attr:`cheap_model`'s).
        numeric_field: A number in the request that is also a feature.
        optional_field: A request field that may be left out.
        record_id: The id the API answers a request record with (the problem's key, as it builds it).
    """

    name: str
    module: str
    days: tuple[str, ...]
    split: Mapping[str, str] | None
    cheap_model: str
    other_model: str
    numeric_field: str
    optional_field: str
    record_id: Callable[[Mapping[str, Any]], str] = field(repr=False)

    @property
    def problem(self) -> ProblemSpec:
        return load_problem(self.module)

    @property
    def kind(self) -> TaskKind:
        return task_kind(self.problem.task)

    @property
    def binary(self) -> bool:
        return self.problem.task == "binary"

    @property
    def primary_metric(self) -> str:
        return self.kind.primary_metric(self.problem.primary_metric)

    @property
    def better(self) -> float:
        """+1 if a higher primary metric is better, -1 if lower is."""
        return 1.0 if greater_is_better(self.primary_metric) else -1.0

    @property
    def constant_score(self) -> float:
        """The primary metric of a constant prediction (:data:`CONSTANT_SCORE`)."""
        return CONSTANT_SCORE[self.primary_metric]

    @property
    def answer_fields(self) -> tuple[str, ...]:
        return ANSWER_FIELDS[self.problem.task]

    @property
    def answer_field(self) -> str:
        """The answer column holding the prediction itself: p(positive), or the value."""
        return "value" if self.problem.task == "regression" else "probability"

    @property
    def outcomes(self) -> tuple[Any, Any]:
        """(a valid /feedback outcome, an invalid one)."""
        return OUTCOMES[self.problem.task]

    def split_settings(self) -> dict[str, str]:
        """``MLP_VALIDATION_SIZE`` and ``MLP_TEST_SIZE`` of a small pipeline (set either way, so no
        developer setting leaks in)."""
        if self.split is not None:
            return dict(self.split)
        split = self.problem.split
        return {"MLP_VALIDATION_SIZE": split.validation, "MLP_TEST_SIZE": split.test}

    def canaries(self) -> list[dict[str, Any]]:
        """The problem's canary records (valid requests of real rows)."""
        return self.problem.canary_records()

    def body(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A /predict body holding ``records``."""
        return {self.problem.request_key: list(records)}

    def environment(self, tracking_uri: str, lake_uri: str, name: str, **more: str) -> dict[str, str]:
        """The ``MLP_*`` variables of a small pipeline of this example: problem, server, lake, model and
        experiment name, split."""
        return {
            "MLP_PROBLEM": self.module,
            "MLP_MLFLOW_TRACKING_URI": tracking_uri,
            "MLP_LAKE_URI": lake_uri,
            "MLP_REGISTERED_MODEL_NAME": name,
            "MLP_EXPERIMENT_NAME": name,
            **self.split_settings(),
            **more,
        }

    def fill_lake(self) -> list[dict[str, Any]]:
        """Load :attr:`days` into the lake of the current settings (every ETL step, in this process)."""
        from include.mlpipeline.data import etl

        return etl.replay_days(list(self.days))

    def check_answer(self, prediction: Mapping[str, Any], threshold: float | None = None) -> None:
        """Assert that one /predict answer is one of this task kind's: its fields, and values in range."""
        assert set(self.answer_fields) <= set(prediction), prediction
        if self.binary:
            problem = self.problem
            assert 0.0 <= prediction["probability"] <= 1.0
            assert prediction["label"] == (problem.positive_label if prediction["positive"] else problem.negative_label)
            if threshold is not None:
                assert prediction["positive"] == (prediction["probability"] >= threshold)
        else:
            assert isinstance(prediction["value"], float) and math.isfinite(prediction["value"]), prediction


REPLAY_DAYS = tuple(f"2013-06-{day:02d}" for day in range(1, 13))

FLIGHTS = Example(
    name="flights",
    module="include.flight_delay",
    days=REPLAY_DAYS,  # 12 June days: 6 train, 3 validation, 3 test
    split={"MLP_VALIDATION_SIZE": "3 days", "MLP_TEST_SIZE": "3 days"},
    cheap_model="logistic_regression",
    other_model="hist_gradient_boosting",
    numeric_field="distance",
    optional_field="tailnum",
    record_id=_flight_id,
)

PENGUINS = Example(
    name="penguins",
    module="include.penguins",
    days=("2026-06-01",),  # a snapshot: the whole table, loaded once
    split=None,  # its own: a fifth of the 342 birds to validate, a fifth to test
    cheap_model="ridge",
    other_model="hist_gradient_boosting",
    numeric_field="flipper_length_mm",
    optional_field="sex",
    record_id=_penguin_id,
)

EXAMPLES = (FLIGHTS, PENGUINS)


def example_id(example: Example) -> str:
    return example.name
