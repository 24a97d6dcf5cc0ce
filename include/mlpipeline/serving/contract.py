"""The API's OpenAPI contract beyond its request and answer models: the error answers every route
documents, and the schema of its headers.

``/openapi.json`` is the contract: every status a route answers is documented on it
(schemathesis' ``status_code_conformance`` check holds the API to that, tests/serving/test_fuzz.py).
Besides a route's own success and FastAPI's 422 (an invalid body, header or parameter), they are:

- 400: a body FastAPI cannot parse (bytes that are not UTF-8, JSON nested too deep);
- 401: without the right ``X-API-Key``, when ``MLP_API_KEY`` is set;
- 409: a forced variant (``X-Model-Variant: challenger``) that is not being served;
- 413: a body over ``MLP_API_MAX_BODY_BYTES``, on any route (the middleware reads every body);
- 503: no model loaded yet.

Each has the body ``{"detail": "<what went wrong>"}`` (:class:`ErrorMessage`); ``/ready`` answers
its 503 as :class:`Readiness`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

_CLOSED = ConfigDict(extra="forbid")


class ErrorMessage(BaseModel):
    """A refusal other than a 422: what went wrong, and so what to fix."""

    model_config = _CLOSED

    detail: str = Field(description="What went wrong.")


class Readiness(BaseModel):
    """Whether a model is loaded: ``/ready`` answers 200 with its version, or 503 with the reason."""

    model_config = _CLOSED

    ready: bool = Field(description="A model is loaded and answers /predict.")
    model_version: str | None = Field(None, description="The served champion's version (when ready).")
    reason: str | None = Field(None, description="Why not ready: 'loading' or the last registry error.")


class FeedbackAnswer(BaseModel):
    """What ``/feedback`` stored."""

    model_config = _CLOSED

    accepted: int = Field(description="Outcomes stored.")
    stored: str = Field(description="Where in the lake they were written.")


_STATUSES = {
    400: "The body cannot be parsed: bytes that are not UTF-8, or JSON nested too deep.",
    401: "Missing or wrong X-API-Key (MLP_API_KEY is set).",
    409: "X-Model-Variant forces a variant that is not being served (A/B testing is off).",
    413: "The body is over MLP_API_MAX_BODY_BYTES.",
    503: "No model is loaded yet (the registry is unreachable, or the model is loading).",
}


def error_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that may answer ``statuses`` (keys of the module docstring's list),
    each with its :class:`ErrorMessage` body."""
    return {status: {"model": ErrorMessage, "description": _STATUSES[status]} for status in statuses}


class ContractSchema:
    """``app.openapi``: FastAPI's schema with the header parameters as they can arrive.

    FastAPI writes an optional header (``X-Model-Variant: champion | challenger``, or none) as
    ``anyOf [enum, null]``, yet a header cannot be null: it is absent or text, and a client that
    believes the schema sends the text ``null``, which is refused. Here such a header's schema is its
    non-null member; not being required already says it may be left out.
    """

    def __init__(self, app: FastAPI):
        self.app = app

    def __call__(self) -> dict[str, Any]:
        schema = FastAPI.openapi(self.app)  # built once, then cached by FastAPI; the fix is idempotent
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "header":
                        parameter["schema"] = _without_null(parameter["schema"])
        return schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``null`` alternative (``anyOf [X, null]`` -> X, keeping title and description)."""
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options:
        return schema
    others = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    return {**rest, **others[0]} if len(others) == 1 else {**rest, "anyOf": others}
