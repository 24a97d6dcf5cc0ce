"""What ``POST /feedback`` accepts: the outcomes of predicted records, typed by the task kind.

An outcome is what actually happened to a record the API predicted:

- ``binary``: the integer 0 or 1 (1: the positive class; ``1.0`` is that integer, as JSON Schema
  says); ``true``, ``false`` and ``"1"`` are refused;
- ``multiclass``: one of the served models' classes, as the target holds them (text or integer,
  exactly: the class ``2`` is not ``"2"``); ``/model`` lists them;
- ``regression``: a finite number.

The type is checked by the body model (:func:`feedback_request_model`: strict types, no extra field
at any level); a multiclass outcome's class is checked against the models being served
(:func:`unknown_classes`), which only they know.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, Strict, StrictInt, StrictStr, create_model

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.request_types import Integer
from include.mlpipeline.serving.model_store import ModelStore

MAX_OUTCOMES = 10_000
_STRICT = ConfigDict(extra="forbid", strict=True)  # what the schema documents, exactly


def outcome_type(problem: ProblemSpec) -> tuple[Any, Any]:
    """The type of an outcome of the problem's task kind, and its field (with its description)."""
    if problem.task == "binary":
        described = f"What happened: 1 for the positive class ({problem.positive_label}), 0 for the other."
        # The bounds in the field, not around Integer: after its validator they would not reach the schema.
        return Integer, Field(ge=0, le=1, description=described)
    if problem.task == "multiclass":
        described = "What happened: one of the served model's classes (see /model), as text or integer like the target."
        return StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=200)], Field(description=described)
    described = f"What happened: the true {problem.target} (a finite number)."
    return Annotated[float, Strict(), Field(allow_inf_nan=False)], Field(description=described)


def feedback_request_model(problem: ProblemSpec) -> type[BaseModel]:
    """The /feedback body: ``{"outcomes": [{"id": ..., "outcome": ...}, ...]}``."""
    outcome = create_model(
        "Outcome",
        __config__=_STRICT,
        id=(str, Field(min_length=1, max_length=200, description="Key of a predicted record (the prediction's id).")),
        outcome=outcome_type(problem),
    )
    return create_model(
        "FeedbackRequest",
        __config__=_STRICT,
        outcomes=(list[outcome], Field(min_length=1, max_length=MAX_OUTCOMES)),  # type: ignore[valid-type]
    )


def served_classes(store: ModelStore) -> list[Any]:
    """The classes of the models being served (the champion's, then any other of the challenger's).

    Raises:
        HTTPException: 503 when no model is loaded yet (nothing says which classes there are).
    """
    models = [model for model in (store.current, store.challenger) if model is not None]
    if not models:
        raise HTTPException(status_code=503, detail=f"no model loaded yet: {store.last_error or 'loading'}")
    return list(dict.fromkeys(value for model in models for value in model.classes))


def unknown_classes(outcomes: Sequence[Any], classes: Sequence[Any]) -> RequestValidationError | None:
    """The 422 (in pydantic's shape, one error per outcome) for outcomes that are none of ``classes``."""
    known = {(type(value), value) for value in classes}
    errors = [
        {
            "type": "value_error",
            "loc": ("body", "outcomes", index, "outcome"),
            "msg": f"Value error, {item.outcome!r} is not one of the model's classes {list(classes)}",
            "input": item.outcome,
        }
        for index, item in enumerate(outcomes)
        if (type(item.outcome), item.outcome) not in known
    ]
    return RequestValidationError(errors) if errors else None
