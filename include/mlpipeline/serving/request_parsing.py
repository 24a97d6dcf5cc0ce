"""How a /predict body becomes the checked request frame that scoring works on.

- :func:`predict_request_model`: the body's pydantic model, ``{"<records key>": [record, ...]}``;
- :func:`one_pass_json_route`: a route class whose body is parsed and validated in one pass;
- :class:`PredictBodyParser`: the fast path for /predict bodies (records checked column by column)
  and each validated body's columns, from either path;
- :class:`RequestChecks`: the problem's checks across fields, on the frame of a scoring pass's
  requests, refusing only the requests they fail;
- :func:`invalid_request_handler`: FastAPI's own 422 answer, made JSON-safe.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from include.mlpipeline.core.jsonable import json_safe
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.request_frame import records_columns, stack_columns
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.serving.columnar import ColumnarValidator

_STRICT = ConfigDict(extra="forbid", strict=True)


def predict_request_model(problem: ProblemSpec, settings: Settings) -> type[BaseModel]:
    """The pydantic model of a /predict body: 1 to ``api_max_batch`` of the problem's request records,
    and no other field (an unknown top-level field is refused like an unknown record field)."""
    records = (
        list[problem.request_model],  # type: ignore[name-defined]
        Field(
            min_length=1,
            max_length=settings.api_max_batch,
            description=f"1 to {settings.api_max_batch} records to score.",
        ),
    )
    return create_model("PredictRequest", __config__=_STRICT, **{problem.request_key: records})


async def invalid_request_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 answer (every bad field), made JSON-safe: the JSON parser accepts NaN,
    Infinity and lone surrogates (``"\\ud800"``), and echoing such an input back used to fail
    FastAPI's default handler with a 500."""
    return JSONResponse({"detail": json_safe(jsonable_encoder(error.errors()))}, status_code=422)


class OnePassJSONRequest(Request):
    """A request whose JSON body is parsed and validated in one pass.

    FastAPI reads a JSON body with ``json.loads`` and then validates the Python objects. Here
    ``fast_parse`` is tried first (/predict: parsed JSON checked column by column, see
    :class:`~include.mlpipeline.serving.columnar.ColumnarValidator`); when it declines, pydantic's
    ``model_validate_json`` does both straight from the bytes, about 30% faster for 1,000 records
    than FastAPI's way. ``json()`` hands FastAPI the validated model, which it accepts as it is. A
    body that does not validate is handed over as plain ``json.loads`` output instead, so FastAPI
    validates it itself and answers with exactly its usual 422 (or its JSON decode error).
    """

    body_model: type[BaseModel]
    fast_parse: Callable[[bytes], BaseModel | None]

    async def json(self) -> Any:
        body = await self.body()
        parsed = self.fast_parse(body)
        if parsed is not None:
            return parsed
        try:
            return self.body_model.model_validate_json(body)
        except ValidationError:
            return await super().json()


class OnePassJSONRoute(APIRoute):
    """A route that hands its endpoint a :class:`OnePassJSONRequest` (see :func:`one_pass_json_route`)."""

    request_class: type[OnePassJSONRequest]

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        request_class = self.request_class

        # FastAPI's documented way to change the request class of a route: wrap its handler.
        async def handle(request: Request) -> Response:
            return await handler(request_class(request.scope, request.receive))

        return handle


def one_pass_json_route(model: type[BaseModel], fast_parse: Callable[[bytes], BaseModel | None]) -> type[APIRoute]:
    """A route class whose endpoint receives its body model parsed by :class:`OnePassJSONRequest`;
    ``fast_parse`` returns the validated body, or None to leave it to pydantic."""
    # staticmethod: a bound method (PredictBodyParser.parse) must not be bound again to the request.
    attributes = {"body_model": model, "fast_parse": staticmethod(fast_parse)}
    request_class = type("OnePassJSONRequest", (OnePassJSONRequest,), attributes)
    return type("OnePassJSONRoute", (OnePassJSONRoute,), {"request_class": request_class})


@dataclass(frozen=True)
class CheckedRecords:
    """A /predict body's records, checked column by column: their columns and the parsed JSON."""

    columns: dict[str, Any]
    records: list[dict[str, Any]]


def record_count(columns: dict[str, Any]) -> int:
    """Records in one request's columns."""
    return len(next(iter(columns.values())))


class PredictBodyParser:
    """Reads /predict bodies: ``parse`` is the fast path for JSON bodies (records checked column by
    column); ``columns`` turns the validated body from either path into its columns."""

    def __init__(self, problem: ProblemSpec, settings: Settings, body_model: type[BaseModel]):
        self.problem = problem
        self.max_batch = settings.api_max_batch
        self.body_model = body_model
        self.columnar = ColumnarValidator(problem.request_model)

    def parse(self, body: bytes) -> BaseModel | None:
        """The body with its records checked column by column, or None to let pydantic validate it."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(document) is not dict or len(document) != 1:  # an extra top-level field: pydantic refuses it
            return None
        records = document.get(self.problem.request_key)
        if type(records) is not list or not 1 <= len(records) <= self.max_batch:
            return None
        columns = self.columnar.columns(records)
        if columns is None:
            return None
        # Not validated again: FastAPI accepts an instance of the body model as it is.
        return self.body_model.model_construct(**{self.problem.request_key: CheckedRecords(columns, records)})

    def columns(self, records: Any) -> dict[str, Any]:
        """A validated body's records as columns, from either path: the fast path's checked columns,
        or built from pydantic's records."""
        if isinstance(records, CheckedRecords):
            return records.columns
        return records_columns([vars(record) for record in records], self.columnar.kinds)


class RequestChecks:
    """The problem's request checks (rules across fields) over the requests of one scoring pass."""

    def __init__(self, problem: ProblemSpec):
        self.rules = problem.request_checks
        self.request_key = problem.request_key

    def apply(
        self, parts: Sequence[dict[str, Any]], records: Sequence[Any]
    ) -> tuple[pd.DataFrame, list[RequestValidationError | None]]:
        """One request frame for several requests (``parts``, from :meth:`PredictBodyParser.columns`,
        and each one's records), checked by the problem's rules. Returns the frame of the requests
        that pass, in order, and per request its 422 error (None if it passes)."""
        frame = stack_columns(parts)  # one frame for the pass, none per request
        errors: list[RequestValidationError | None] = [None] * len(parts)
        reasons = self.rules(frame) if self.rules else None
        if reasons is None or not reasons.notna().any():
            return frame, errors
        refused = reasons.notna().to_numpy()
        bounds = np.cumsum([0, *map(record_count, parts)])
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            rows = np.flatnonzero(refused[start:end])
            if len(rows):
                errors[index] = self._refusal(records[index], reasons.iloc[start:end], rows)
        keep = np.repeat([error is None for error in errors], np.diff(bounds))
        return frame[keep].reset_index(drop=True), errors

    def _refusal(self, records: Any, reasons: pd.Series, rows: np.ndarray) -> RequestValidationError:
        """The 422 of one request, in pydantic's shape: one error per refused row, with its input."""
        raw = records.records if isinstance(records, CheckedRecords) else records
        return RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", self.request_key, int(row)),
                    "msg": f"Value error, {reasons.iloc[row]}",
                    "input": raw[row] if isinstance(raw[row], dict) else raw[row].model_dump(mode="json"),
                }
                for row in rows
            ]
        )
