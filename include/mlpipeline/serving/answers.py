"""What /predict answers, by task kind (``ProblemSpec.task``): each record's answer columns from a
model's predictions, the response models that document them in ``/openapi.json``, and their JSON.

Each prediction has ``id``, ``variant`` and ``model_version``, and, by kind:

- ``binary``: ``probability`` (p(positive)), ``label`` (the problem's positive or negative label at
  the answering model's threshold) and ``positive``; the response also has the champion's ``threshold``;
- ``multiclass``: ``label`` (the most probable class, as text), ``probability`` (that class's) and
  ``probabilities`` (every class's, ``{class: probability}``);
- ``regression``: ``value``.

The answer is encoded here with orjson rather than returned for FastAPI to validate and encode
against the response model (still the documented schema): for 1,000 records that cost more than
the model. The response models forbid extra fields, so a test validating real answers against them
checks both ways that the encoding writes what the schema says.
"""

from __future__ import annotations

import abc
import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.serving.model_store import LoadedModel

Probability = Annotated[float, Field(ge=0, le=1)]
_CLOSED = ConfigDict(extra="forbid")  # the answer has these fields and no others


@dataclass
class ScoredRequest:
    """What one request gets back: the champion of the snapshot that scored it, and per record its key,
    variant, model version and answer columns (:attr:`TaskAnswers.fields`)."""

    champion: LoadedModel
    keys: np.ndarray
    variants: np.ndarray
    versions: np.ndarray
    columns: dict[str, np.ndarray]


class TaskAnswers(abc.ABC):
    """The answers of one task kind (a subclass per kind; :func:`task_answers` picks it)."""

    fields: tuple[str, ...] = ()  # the answer columns, in the order of a prediction's JSON fields

    def __init__(self, problem: ProblemSpec):
        self.problem = problem
        self.kind = task_kind(problem.task)

    @abc.abstractmethod
    def columns(self, model: LoadedModel, predictions: np.ndarray) -> dict[str, np.ndarray]:
        """The answer columns of ``model``'s predictions (:meth:`LoadedModel.predict`), one value per row."""

    def label_counts(self, columns: Mapping[str, np.ndarray]) -> dict[str, int]:
        """How many rows of ``columns`` (one model's answers) got each label: the predictions metric."""
        return dict(collections.Counter(columns["label"].tolist()))

    @abc.abstractmethod
    def answer_fields(self) -> dict[str, Any]:
        """The pydantic fields of :attr:`fields` in a prediction."""

    def response_fields(self) -> dict[str, Any]:
        """The response's fields besides ``request_id``, the model and the predictions."""
        return {}

    def response_model(self) -> type[BaseModel]:
        """``PredictResponse``, the documented /predict answer of this kind."""
        prediction = create_model(
            "Prediction",
            __config__=_CLOSED,
            id=(str, Field(description="Key of the record (built from its fields).")),
            **self.answer_fields(),
            variant=(
                Literal["champion", "challenger"],
                Field(description="A/B variant that answered this record."),
            ),
            model_version=(str, Field(description="Registered model version that computed this record's answer.")),
        )
        return create_model(
            "PredictResponse",
            __config__=_CLOSED,
            request_id=(str, Field(description="Id of this request (in the prediction log).")),
            model_name=(str, Field(description="Registered model name.")),
            model_version=(
                str,
                Field(description="The champion's version (with A/B testing on, see each prediction)."),
            ),
            **self.response_fields(),
            predictions=(list[prediction], Field(description="One answer per record, in the order sent.")),
        )

    def head(self, scored: ScoredRequest) -> dict[str, Any]:
        """The response's fields from :meth:`response_fields` for ``scored``."""
        return {}

    def encode(self, request_id: str, scored: ScoredRequest) -> bytes:
        """The /predict answer of one request as JSON (the shape of :meth:`response_model`)."""
        columns = [scored.keys, *(scored.columns[name] for name in self.fields), scored.variants, scored.versions]
        names = ("id", *self.fields, "variant", "model_version")
        return orjson.dumps(
            {
                "request_id": request_id,
                "model_name": scored.champion.name,
                "model_version": scored.champion.version,
                **self.head(scored),
                "predictions": self.predictions(names, [values.tolist() for values in columns]),
            }
        )

    @staticmethod
    def predictions(names: tuple[str, ...], columns: list[list[Any]]) -> list[dict[str, Any]]:
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class BinaryAnswers(TaskAnswers):
    fields = ("probability", "label", "positive")

    def columns(self, model: LoadedModel, predictions: np.ndarray) -> dict[str, np.ndarray]:
        positive = self.kind.labels(predictions, model.threshold, model.classes) == 1
        labels = np.where(positive, self.problem.positive_label, self.problem.negative_label)
        return {"probability": predictions, "label": labels, "positive": positive}

    def label_counts(self, columns: Mapping[str, np.ndarray]) -> dict[str, int]:
        hits = int(np.count_nonzero(columns["positive"]))
        return {self.problem.positive_label: hits, self.problem.negative_label: len(columns["positive"]) - hits}

    def answer_fields(self) -> dict[str, Any]:
        return {
            "probability": (Probability, Field(description="Predicted probability of the positive class.")),
            "label": (str, Field(description="Class name at the threshold of the model that answered.")),
            "positive": (bool, Field(description="probability >= threshold.")),
        }

    def response_fields(self) -> dict[str, Any]:
        return {"threshold": (float, Field(description="The champion's decision threshold."))}

    def head(self, scored: ScoredRequest) -> dict[str, Any]:
        return {"threshold": float(scored.champion.threshold)}

    @staticmethod
    def predictions(names: tuple[str, ...], columns: list[list[Any]]) -> list[dict[str, Any]]:
        # The most common answer, spelled out: a third faster for 1,000 records than building each
        # record's dict from the names.
        return [
            {"id": k, "probability": p, "label": lb, "positive": pos, "variant": v, "model_version": mv}
            for k, p, lb, pos, v, mv in zip(*columns, strict=True)
        ]


class MulticlassAnswers(TaskAnswers):
    fields = ("label", "probability", "probabilities")

    def columns(self, model: LoadedModel, predictions: np.ndarray) -> dict[str, np.ndarray]:
        names = [str(value) for value in model.classes]
        probabilities = np.empty(len(predictions), dtype=object)
        probabilities[:] = [dict(zip(names, row, strict=True)) for row in predictions.tolist()]
        return {
            "label": self.kind.labels(predictions, None, names),
            "probability": predictions.max(axis=1),
            "probabilities": probabilities,
        }

    def answer_fields(self) -> dict[str, Any]:
        return {
            "label": (str, Field(description="The most probable class (as text).")),
            "probability": (Probability, Field(description="The most probable class's probability.")),
            "probabilities": (
                dict[str, Probability],
                Field(description="Every class's probability, by class (as text); they sum to 1."),
            ),
        }


class RegressionAnswers(TaskAnswers):
    fields = ("value",)

    def columns(self, model: LoadedModel, predictions: np.ndarray) -> dict[str, np.ndarray]:
        return {"value": predictions}

    def label_counts(self, columns: Mapping[str, np.ndarray]) -> dict[str, int]:
        return {"": len(columns["value"])}  # no label: counted per variant

    def answer_fields(self) -> dict[str, Any]:
        return {"value": (float, Field(description=f"Predicted {self.problem.target}."))}


_ANSWERS = {"binary": BinaryAnswers, "multiclass": MulticlassAnswers, "regression": RegressionAnswers}


def task_answers(problem: ProblemSpec) -> TaskAnswers:
    """The answers of the problem's task kind."""
    return _ANSWERS[task_kind(problem.task).name](problem)
