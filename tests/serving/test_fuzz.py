"""Fuzzing the live API against its own OpenAPI schema, plus hand-written edge cases, for each example.

schemathesis reads ``/openapi.json`` from a real uvicorn process and, for every operation, sends
requests that fit the schema and requests that break it (``positive`` and ``negative`` modes); the
API key is supplied, since unauthenticated requests are 401 by design. Whatever arrives, the API must
answer without a server error. The explicit cases below cover inputs that tests/api/test_api.py does
not: non-standard JSON numbers, streamed bodies over the limit, the variant header, odd but valid
records, and records the problem's request checks refuse (an impossible calendar date; a species
the penguin study never saw).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from .conftest import API_KEY

MAX_BATCH = 20
MAX_BODY = 64_000


@pytest.fixture(scope="module")
def api(start_api, registry):
    registry.set_champion(registry.v1)
    return start_api(MLP_API_MAX_BATCH=str(MAX_BATCH), MLP_API_MAX_BODY_BYTES=str(MAX_BODY))


@pytest.fixture(scope="module")
def api_schema(api):
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    schema.config.generation.update(with_security_parameters=False)  # the key is sent with every request
    # Invalid data must be refused with a 4xx; 413 (body over the limit) is as good a refusal as 422.
    schema.config.checks.negative_data_rejection.expected_statuses = ["4xx", "5xx"]  # 5xx: not_a_server_error

    return schema


WITH_INPUT = ["POST /predict", "POST /feedback"]  # body (and the variant header): fuzzed valid and invalid
WITHOUT_INPUT = ["POST /admin/reload", "GET /health", "GET /ready", "GET /model", "GET /metrics"]
CASES = [
    *[(label, GenerationMode.POSITIVE) for label in WITH_INPUT + WITHOUT_INPUT],
    *[(label, GenerationMode.NEGATIVE) for label in WITH_INPUT],  # nothing to break without input
]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, negative_data_rejection]


def test_every_operation_is_fuzzed(api_schema):
    assert sorted(op.ok().label for op in api_schema.get_all_operations()) == sorted(WITH_INPUT + WITHOUT_INPUT)


# schemathesis' own pytest plugin (schema.parametrize) fails on pytest 9 ("'Function' object has no
# attribute '_nodeid'"), so each operation's strategy is driven by a plain Hypothesis test.
@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label}-{mode}" for label, mode in CASES])
def test_no_server_errors(api_schema, label, mode):
    """Any request, valid or not, gets an answer below 500; documented answers match the schema."""
    operation = api_schema.find_operation_by_label(label)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case) -> None:
        case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS)

    fuzz()


# explicit cases ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(api) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


def post_raw(client: httpx.Client, text: str) -> httpx.Response:
    return client.post("/predict", content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_is_422_naming_the_field(client, example, canaries, token):
    """Python's JSON parser accepts NaN and Infinity; the answer is a 422 on the field, not a 500."""
    field, key = example.numeric_field, example.problem.request_key  # flights: distance
    number = f'"{field}": {json.dumps(canaries[0][field])}'
    body = json.dumps(example.body([canaries[0]])).replace(number, f'"{field}": {token}')
    assert token in body
    response = post_raw(client, body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", key, 0, field]


def test_streamed_body_over_the_limit_is_413(client, problem, canaries):
    """Without Content-Length (chunked upload) the limit is enforced while reading, with the same 413."""
    record = json.dumps(canaries[0]).encode()

    def chunks() -> Iterator[bytes]:
        yield b'{"' + problem.request_key.encode() + b'": ['
        for _ in range(MAX_BODY // len(record) + 10):
            yield record + b","
        yield record + b"]}"

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_variant_header(client, example, canaries, registry):
    body = example.body(canaries[:2])
    champion = client.post("/predict", json=body, headers={"X-Model-Variant": "champion"})
    assert champion.status_code == 200
    assert {p["model_version"] for p in champion.json()["predictions"]} == {registry.v1}
    # A/B testing is off: no challenger to force
    assert client.post("/predict", json=body, headers={"X-Model-Variant": "challenger"}).status_code == 409
    unknown = client.post("/predict", json=body, headers={"X-Model-Variant": "canary"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["header", "X-Model-Variant"]


ODD_BUT_VALID = {
    "flights": {
        "no-tailnum": {"tailnum": None},
        "non-ascii-codes": {"carrier": "ÜÖ", "origin": "ÄÖÜ", "dest": "ßßß"},
        "first-year": {"year": 1900, "month": 1, "day": 1, "time_hour": "1900-01-01T05:00:00Z"},
        "last-year": {"year": 2100, "month": 12, "day": 31, "time_hour": "2100-12-31T12:00:00+05:00"},
        "midnight": {"sched_dep_time": 2400, "sched_arr_time": 0, "hour": 0, "minute": 0},
        "max-distance": {"distance": 10_000},
    },
    "penguins": {
        "no-sex": {"sex": None},
        "sex-as-the-source-writes-unknown": {"sex": "."},
        "source-spelling": {"species": "Adelie Penguin (Pygoscelis adeliae)", "island": "TORGERSEN", "sex": "MALE"},
        "smallest-measurements": {"culmen_length_mm": 25.0, "culmen_depth_mm": 10.0, "flipper_length_mm": 150.0},
        "largest-measurements": {"culmen_length_mm": 70.0, "culmen_depth_mm": 30.0, "flipper_length_mm": 250.0},
        "no-full-clutch": {"clutch_completion": False},
    },
}


def test_odd_but_valid_records_are_answered(client, example, canaries):
    for case, change in ODD_BUT_VALID[example.name].items():
        response = client.post("/predict", json=example.body([canaries[0], {**canaries[0], **change}]))
        assert response.status_code == 200, (case, response.text)
        body = response.json()
        _, odd = body["predictions"]
        example.check_answer(odd, body.get("threshold"))  # flights: 0 <= probability <= 1
        assert odd["id"] != "nan", case


CODE_FIELDS = {"flights": ("carrier", "origin", "dest"), "penguins": ("species", "island")}


def test_codes_are_case_insensitive(client, example, canaries):
    lower = {**canaries[0], **{key: canaries[0][key].lower() for key in CODE_FIELDS[example.name]}}
    assert lower != canaries[0]
    response = client.post("/predict", json=example.body([canaries[0], lower]))
    assert response.status_code == 200
    first, second = response.json()["predictions"]
    assert first == second


def test_duplicate_records_get_identical_answers(client, example, canaries):
    response = client.post("/predict", json=example.body([canaries[0]] * 3))
    assert response.status_code == 200
    assert len({json.dumps(p, sort_keys=True) for p in response.json()["predictions"]}) == 1


@pytest.mark.parametrize(
    "body",
    ["null", "[]", '"{key}"', '{{"{key}": null}}', '{{"{key}": [null]}}', '{{"{key}": [[]]}}', '{{"{key}": {{}}}}'],
)
def test_wrong_shapes_are_422(client, problem, body):
    response = post_raw(client, body.format(key=problem.request_key))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


HUGE_INTEGER_FIELD = {"flights": "year", "penguins": "flipper_length_mm"}  # an integer field; a float field


def test_huge_integer_is_422(client, example, canaries):
    field = HUGE_INTEGER_FIELD[example.name]
    number = f'"{field}": {json.dumps(canaries[0][field])}'
    body = json.dumps(example.body([canaries[0]])).replace(number, f'"{field}": ' + "9" * 400)
    assert "9" * 400 in body
    response = post_raw(client, body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", example.problem.request_key, 0, field]


@pytest.mark.parametrize(("method", "path"), [("GET", "/predict"), ("PUT", "/admin/reload"), ("DELETE", "/model")])
def test_wrong_method_is_405(client, method, path):
    assert client.request(method, path).status_code == 405


REFUSED = {
    # (change, field shown in the error's input, message): a date the calendar does not have (flights);
    # a species the study never saw (penguins).
    "flights": ({"month": 2, "day": 31}, "day", "Value error, {year}-02-31 is not a calendar date"),
    "penguins": (
        {"species": "Emperor"},
        "species",
        "Value error, species 'Emperor' is not one of Adelie, Chinstrap, Gentoo",
    ),
}


@pytest.mark.parametrize("batch", ["alone", "beside-a-valid-record", "without-the-optional-field"])
def test_a_record_the_request_checks_refuse_is_422(client, example, canaries, batch):
    """Both ways a body is validated refuse it: column by column, and pydantic (a record without its
    optional field, flights' tailnum or penguins' sex, is left to pydantic)."""
    change, field, message = REFUSED[example.name]
    refused = {**canaries[0], **change}
    if batch == "without-the-optional-field":
        del refused[example.optional_field]
    records = [refused] if batch == "alone" else [canaries[0], refused]
    response = client.post("/predict", json=example.body(records))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", example.problem.request_key, len(records) - 1]
    assert error["msg"] == message.format(**canaries[0])
    assert error["input"][field] == change[field]
