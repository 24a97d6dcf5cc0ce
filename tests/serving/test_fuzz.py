"""Fuzzing the live API against its own OpenAPI schema, plus hand-written edge cases, for each example.

schemathesis reads ``/openapi.json`` from a real uvicorn process and, for every operation, sends
requests that fit the schema and requests that break it (``positive`` and ``negative`` modes), and
runs every check it has on each answer: no server error; the status, content type, headers and body
are documented; a request that breaks the schema is refused, and one that fits it is answered (the
schema is the contract both ways). The API key is supplied, since unauthenticated requests are 401
by design (the ``ignored_auth`` check sends them without it). A fixed number of examples per
operation, derandomized: the same requests on every run. The explicit cases below cover inputs that
tests/api/test_api.py does not: unicode that UTF-8 cannot encode, NUL, very long strings, huge and
non-standard JSON numbers, nested junk, streamed bodies over the limit, the variant header, odd but
valid records, and records the problem's request checks refuse (an impossible calendar date).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from .conftest import API_KEY

MAX_BATCH = 20
MAX_BODY = 64_000
EXAMPLES_PER_CASE = 25  # per operation and mode: 9 cases, so 225 requests (and their checks) per example


@pytest.fixture(scope="module")
def api(start_api, registry):
    registry.set_champion(registry.v1)
    return start_api(MLP_API_MAX_BATCH=str(MAX_BATCH), MLP_API_MAX_BODY_BYTES=str(MAX_BODY))


@pytest.fixture(scope="module")
def api_schema(api):
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    schema.config.generation.update(with_security_parameters=False)  # the key is sent with every request
    checks = schema.config.checks
    # Valid data is answered: 2xx, or 409 when it forces a challenger while A/B testing is off (the
    # state of the service, not the request), or 413 when it is over the body limit (documented).
    checks.positive_data_acceptance.expected_statuses = ["2xx", "409", "413"]
    # Invalid data is refused, with a status the schema documents for that: never a 5xx.
    checks.negative_data_rejection.expected_statuses = ["400", "413", "422"]
    return schema


WITH_INPUT = ["POST /predict", "POST /feedback"]  # body (and the variant header): fuzzed valid and invalid
WITHOUT_INPUT = ["POST /admin/reload", "GET /health", "GET /ready", "GET /model", "GET /metrics"]
CASES = [
    *[(label, GenerationMode.POSITIVE) for label in WITH_INPUT + WITHOUT_INPUT],
    *[(label, GenerationMode.NEGATIVE) for label in WITH_INPUT],  # nothing to break without input
]
load_all_checks()
EVERY_CHECK = [CHECKS.get_one(name) for name in CHECKS.get_all_names()]


def test_every_operation_and_every_check_is_run(api_schema):
    assert sorted(op.ok().label for op in api_schema.get_all_operations()) == sorted(WITH_INPUT + WITHOUT_INPUT)
    names = {check.__name__ for check in EVERY_CHECK}
    assert {"positive_data_acceptance", "negative_data_rejection", "status_code_conformance"} <= names
    assert len(names) >= 14


# schemathesis' own pytest plugin (schema.parametrize) fails on pytest 9 ("'Function' object has no
# attribute '_nodeid'"), so each operation's strategy is driven by a plain Hypothesis test.
@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label}-{mode}" for label, mode in CASES])
def test_the_schema_is_the_contract(api_schema, label, mode):
    """Any request, valid or not, gets an answer below 500 that the schema documents; what the schema
    allows is answered and what it forbids is refused."""
    operation = api_schema.find_operation_by_label(label)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_CASE,
        derandomize=True,  # the same requests every run: a failure is reproducible, the time bounded
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case) -> None:
        case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=EVERY_CHECK)

    fuzz()


# explicit cases ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(api) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


def post_raw(client: httpx.Client, text: str, path: str = "/predict") -> httpx.Response:
    return client.post(path, content=text.encode(), headers={"content-type": "application/json"})


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
        "non-ascii-open-codes": {"carrier": "ÜÖ", "dest": "ßßß"},
        "nul-in-a-code": {"carrier": "U\u0000", "tailnum": "\u0000" * 10},
        "first-year": {"year": 1900, "month": 1, "day": 1},
        "last-year": {"year": 2100, "month": 12, "day": 31},
        "leap-day": {"year": 2000, "month": 2, "day": 29},
        "midnight": {"sched_arr_time": 0, "hour": 0, "minute": 0},
        "max-distance": {"distance": 10_000},
        "integers-written-as-floats": {"year": 2013.0, "flight": 1545.0},  # JSON Schema's integers
    },
    "penguins": {
        "no-sex": {"sex": None},
        "nul-and-emoji-in-the-id": {"penguin_id": "\u0000🐧" + "x" * 61},
        "integer-measurement": {"culmen_length_mm": 40},
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


OPEN_CODES = {"flights": ("carrier", "dest"), "penguins": ()}


def test_open_codes_are_case_insensitive(client, example, canaries):
    if not OPEN_CODES[example.name]:
        pytest.skip(f"{example.name} have no open set of codes: their categories are enums")
    lower = {**canaries[0], **{key: canaries[0][key].lower() for key in OPEN_CODES[example.name]}}
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


CLOSED_SETS = {
    # (field, a value outside its set, the known values as pydantic lists them)
    "flights": ("origin", "jfk", "'EWR', 'JFK' or 'LGA'"),
    "penguins": ("island", "Anvers", "'Biscoe', 'Dream' or 'Torgersen'"),
}


def test_a_value_outside_a_closed_set_is_422_naming_the_field_and_the_known_values(client, example, canaries):
    field, value, known = CLOSED_SETS[example.name]
    response = client.post("/predict", json=example.body([canaries[0], {**canaries[0], field: value}]))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", example.problem.request_key, 1, field]
    assert error["msg"] == f"Input should be {known}"
    schema = client.get("/openapi.json").json()["components"]["schemas"][example.problem.request_model.__name__]
    assert value not in schema["properties"][field]["enum"]


STRING_FIELDS = {"flights": ("carrier", "tailnum", "dest"), "penguins": ("penguin_id", "sex")}
JUNK = {
    "lone-high-surrogate": r'"\ud800"',
    "lone-low-surrogate": r'"N\udfff1"',
    "reversed-pair": r'"\udc00\ud800"',
    "nul": r'"\u0000\u0000\u0000"',  # valid text: answered where a 3-character string fits
    "very-long": json.dumps("✈" * 9_000),  # 54 kB of escapes: under the body limit
    "huge-integer": "9" * 4_000,
    "huge-float": "1e999999",
    "nested": '{"a": [[[[{"b": null}]]]], "\\ud800": [1, {"": []}]}',
    "deep": "[" * 2_000 + "]" * 2_000,
}


ANSWERED = {"nul": (200, 422), "deep": (400,)}  # 400: JSON nested deeper than the parser reads


@pytest.mark.parametrize("junk", list(JUNK))
def test_junk_in_any_string_field_is_refused_naming_it(client, example, canaries, junk):
    """The 422 echoes the input; what UTF-8 cannot encode is echoed as its escape, never a 500."""
    for field in STRING_FIELDS[example.name]:
        body = json.dumps(example.body([{**canaries[0], field: "JUNK"}])).replace('"JUNK"', JUNK[junk])
        response = post_raw(client, body)
        assert response.status_code in ANSWERED.get(junk, (422,)), (field, response.text[:300])
        if response.status_code == 422:
            assert response.json()["detail"][0]["loc"][:4] == ["body", example.problem.request_key, 0, field]
            response.content.decode("utf-8")  # strict UTF-8: a lone surrogate is echoed as its escape


@pytest.mark.parametrize("junk", list(JUNK))
def test_junk_in_feedback_is_refused(client, example, junk):
    bodies = {
        "id": '{"outcomes": [{"id": JUNK, "outcome": 1}]}',
        "outcome": '{"outcomes": [{"id": "a", "outcome": JUNK}]}',
    }
    for field, body in bodies.items():
        response = post_raw(client, body.replace("JUNK", JUNK[junk]), path="/feedback")
        expected = ANSWERED.get(junk, (422,)) if field == "id" or junk == "deep" else (422,)
        assert response.status_code in expected, (body, response.text[:300])


@pytest.mark.parametrize("where", ["top-level", "record"])
def test_an_extra_field_is_refused_at_every_level(client, example, canaries, where):
    body = example.body(canaries[:1])
    if where == "top-level":
        body["model"] = "v2"
    else:
        body[example.problem.request_key] = [{**canaries[0], "model": "v2"}]
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"


REFUSED = {
    # (change, field shown in the error's input, message): a date the calendar does not have.
    "flights": ({"month": 2, "day": 31}, "day", "Value error, {year}-02-31 is not a calendar date"),
}


@pytest.mark.parametrize("batch", ["alone", "beside-a-valid-record", "without-the-optional-field"])
def test_a_record_the_request_checks_refuse_is_422(client, example, canaries, batch):
    """Both ways a body is validated refuse it: column by column, and pydantic (a record without its
    optional field, flights' tailnum, is left to pydantic)."""
    if example.name not in REFUSED:
        pytest.skip(f"{example.name} have no rule across fields (request_checks)")
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


# offline docs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_every_file_from_the_api_itself(client, page):
    """No CDN: the page and every script, style sheet and icon it names come from the API (the files
    fastapi-offline bundles), so the docs work without internet."""
    html = client.get(page)
    assert html.status_code == 200
    assert "://" not in html.text  # no address of another host, not even a font
    assets = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']""", html.text) + re.findall(
        r"url: ?'([^']+)'", html.text
    )
    assert len(assets) >= 3, assets  # the script, a style sheet or the icon, and the schema
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1_000, asset
