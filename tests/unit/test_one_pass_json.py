"""/predict's body: checked column by column or validated by pydantic straight from the bytes, with
FastAPI's own answers to bad bodies, and the problem's request checks on both paths."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.request_frame import stack_columns
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.serving.request_parsing import (
    PredictBodyParser,
    RequestChecks,
    invalid_request_handler,
    one_pass_json_route,
    predict_request_model,
)


class Body(BaseModel):
    items: list[int] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _note_mode(cls, value: list[int], info: ValidationInfo) -> list[int]:
        MODES.append(info.mode)
        return value


MODES: list[str] = []


def decline(body: bytes) -> None:
    """A fast parse that leaves every body to pydantic."""
    return None


def _app(one_pass: bool) -> TestClient:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, invalid_request_handler)  # as the API does (NaN-safe 422)

    def echo(body: Body) -> dict[str, Any]:
        return {"items": body.items}

    override = {"route_class_override": one_pass_json_route(Body, decline)} if one_pass else {}
    app.router.add_api_route("/echo", echo, methods=["POST"], **override)
    return TestClient(app)


def test_a_valid_body_is_validated_once_from_the_json_bytes() -> None:
    MODES.clear()

    response = _app(one_pass=True).post("/echo", json={"items": [1, 2]})

    assert response.json() == {"items": [1, 2]}
    assert MODES == ["json"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"items": []}', {"content-type": "application/json"}),
        (b'{"items": ["x"]}', {"content-type": "application/json"}),
        (b'{"items": [1,', {"content-type": "application/json"}),
        (b'{"items": [NaN]}', {"content-type": "application/json"}),
        (b"", {"content-type": "application/json"}),
        (b'{"items": [1]}', {}),
        (b'{"items": [1]}', {"content-type": "text/plain"}),
    ],
    ids=["empty-list", "wrong-type", "broken-json", "nan", "no-body", "no-content-type", "not-json-type"],
)
def test_bad_bodies_get_the_answer_fastapi_gives(content: bytes, headers: dict[str, str]) -> None:
    stock = _app(one_pass=False).post("/echo", content=content, headers=headers)
    one_pass = _app(one_pass=True).post("/echo", content=content, headers=headers)

    assert stock.status_code == 422
    assert (one_pass.status_code, one_pass.json()) == (stock.status_code, stock.json())


def test_the_openapi_schema_is_unchanged() -> None:
    assert _app(one_pass=True).app.openapi() == _app(one_pass=False).app.openapi()


def test_a_fast_parse_that_answers_replaces_pydantic_and_one_that_declines_does_not() -> None:
    MODES.clear()
    app = FastAPI()

    def fast_parse(body: bytes) -> Body | None:
        return Body.model_construct(items=[7]) if body == b'{"items":[7]}' else None

    def echo(body: Body) -> dict[str, Any]:
        return {"items": body.items}

    app.router.add_api_route(
        "/echo", echo, methods=["POST"], route_class_override=one_pass_json_route(Body, fast_parse)
    )
    client = TestClient(app)

    answered = client.post("/echo", content=b'{"items":[7]}', headers={"content-type": "application/json"})
    declined = client.post("/echo", json={"items": [8]})

    assert (answered.json(), declined.json()) == ({"items": [7]}, {"items": [8]})
    assert MODES == ["json"]  # pydantic ran for the declined body only


# ------------------------------------------------------------------ /predict's bodies
@pytest.fixture(scope="module")
def bodies() -> PredictBodyParser:
    problem = load_problem("include.flight_delay")
    settings = Settings(api_max_batch=3)
    return PredictBodyParser(problem, settings, predict_request_model(problem, settings))


@pytest.fixture(scope="module")
def checks() -> RequestChecks:
    return RequestChecks(load_problem("include.flight_delay"))


@pytest.fixture(scope="module")
def canaries() -> list[dict[str, Any]]:
    return load_problem("include.flight_delay").canary_records()


def test_a_plain_body_is_checked_column_by_column(
    bodies: PredictBodyParser, checks: RequestChecks, canaries: list[dict[str, Any]]
) -> None:
    parsed = bodies.parse(orjson.dumps({"flights": canaries[:3]}))

    assert parsed is not None
    frame, errors = checks.apply([bodies.columns(parsed.flights)], [parsed.flights])
    assert errors == [None]
    pd.testing.assert_frame_equal(frame, bodies.problem.request_frame(canaries[:3]))


@pytest.mark.parametrize(
    "body",
    [b"[1]", b'{"flights": []}', b'{"flights": {}}', b"{", b'{"records": []}', "over the limit", "extra field"],
    ids=[
        "not-an-object",
        "empty",
        "not-a-list",
        "broken",
        "wrong-key",
        "over-the-batch-limit",
        "extra-top-level-field",
    ],
)
def test_other_bodies_are_left_to_pydantic(
    bodies: PredictBodyParser, canaries: list[dict[str, Any]], body: bytes | str
) -> None:
    if body == "over the limit":
        body = orjson.dumps({"flights": canaries[:4]})
    elif body == "extra field":  # pydantic refuses it, as it refuses an extra field in a record
        body = orjson.dumps({"flights": canaries[:1], "ignored": 1})
    assert bodies.parse(body) is None


@pytest.mark.parametrize("path", ["columnar", "pydantic"])
def test_the_problems_request_checks_refuse_a_record_on_either_path(
    bodies: PredictBodyParser, checks: RequestChecks, canaries: list[dict[str, Any]], path: str
) -> None:
    records = [canaries[0], {**canaries[1], "month": 4, "day": 31}]
    body = orjson.dumps({"flights": records})
    parsed = bodies.parse(body) if path == "columnar" else bodies.body_model.model_validate_json(body)

    _, (refused,) = checks.apply([bodies.columns(parsed.flights)], [parsed.flights])

    assert isinstance(refused, RequestValidationError)
    (error,) = refused.errors()
    assert error["loc"] == ("body", "flights", 1)
    assert error["msg"] == "Value error, 2013-04-31 is not a calendar date"
    assert error["input"]["day"] == 31


def test_requests_scored_together_are_checked_together_and_refused_alone(
    bodies: PredictBodyParser, checks: RequestChecks, canaries: list[dict[str, Any]]
) -> None:
    """One frame for a pass's requests (either path); a refused request leaves the others' rows in order."""
    good, bad, other = canaries[:2], [canaries[2], {**canaries[3], "month": 2, "day": 30}], canaries[4:6]
    parsed = [bodies.parse(orjson.dumps({"flights": records})) for records in (good, bad)]
    pydantic = bodies.body_model.model_validate_json(orjson.dumps({"flights": other}))
    records = [parsed[0].flights, parsed[1].flights, pydantic.flights]

    frame, errors = checks.apply([bodies.columns(r) for r in records], records)

    pd.testing.assert_frame_equal(frame, bodies.problem.request_frame([*good, *other]))
    assert errors[0] is None and errors[2] is None
    (error,) = errors[1].errors()
    assert error["loc"] == ("body", "flights", 1)  # the row within its own request
    assert error["msg"] == "Value error, 2013-02-30 is not a calendar date"


def test_columns_of_several_requests_stack_into_the_frame_concat_gives(
    bodies: PredictBodyParser, canaries: list[dict[str, Any]]
) -> None:
    parts = [bodies.columnar.columns(canaries[i : i + 3]) for i in (0, 3, 5)]

    stacked = stack_columns(parts)

    expected = pd.concat([pd.DataFrame(part) for part in parts], ignore_index=True)
    pd.testing.assert_frame_equal(stacked, expected)
    assert stacked.dtypes.to_dict() == bodies.problem.request_frame(canaries[:3]).dtypes.to_dict()
