"""/predict's body: validated by pydantic straight from the bytes, with FastAPI's own answers to bad bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from include.mlpipeline.serving.app import _invalid_request, _one_pass_json_route


class Body(BaseModel):
    items: list[int] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _note_mode(cls, value: list[int], info: ValidationInfo) -> list[int]:
        MODES.append(info.mode)
        return value


MODES: list[str] = []


def _app(one_pass: bool) -> TestClient:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, _invalid_request)  # as the API does (NaN-safe 422)

    def echo(body: Body) -> dict[str, Any]:
        return {"items": body.items}

    override = {"route_class_override": _one_pass_json_route(Body)} if one_pass else {}
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
