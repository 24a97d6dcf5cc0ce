"""The request model of each example is its contract, three ways at once: its JSON Schema (what
``/openapi.json`` documents), pydantic (what the API refuses) and the columnar validator (the fast
path) agree on every record, valid or not."""

from __future__ import annotations

import calendar
import json
from typing import Any

import jsonschema
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from include.flight_delay import serving as flight_serving
from include.mlpipeline.core.request_frame import stack_columns
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.serving.request_parsing import PredictBodyParser, predict_request_model
from tests.support.examples import EXAMPLES, Example, example_id

# Values of every JSON type, in and around what the examples' fields take.
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=2_500),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=0, max_value=2_500).map(float),  # a whole float: JSON Schema's integer
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.text(max_size=4),
    st.text(alphabet="EWRJFKLGAdelieBscoTrgnmaf.", min_size=1, max_size=10),
    st.sampled_from(["EWR", "jfk", "UA", "N14228", "Adelie", "Gentoo", "Dream", "male", "female", "", "\x00\x00"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@pytest.fixture(scope="module", params=EXAMPLES, ids=example_id)
def contract(request: pytest.FixtureRequest) -> tuple[Example, PredictBodyParser, list[dict[str, Any]], Any]:
    example: Example = request.param
    problem = example.problem
    settings_ = Settings(api_max_batch=5)
    parser = PredictBodyParser(problem, settings_, predict_request_model(problem, settings_))
    validator = jsonschema.Draft202012Validator(problem.request_model.model_json_schema())
    return example, parser, problem.canary_records(), validator


def _changed(canaries: list[dict[str, Any]], field: str | None, value: Any, drop: bool) -> dict[str, Any]:
    record = dict(canaries[0])
    if field is not None:
        if drop:
            record.pop(field, None)
        else:
            record[field] = value
    return record


ACCEPTED: dict[str, list[str]] = {}


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_schema_pydantic_and_the_fast_path_agree_on_every_record(contract, data) -> None:
    """A record the schema allows is accepted (with the problem's request checks, which enforce the
    schema's rules across fields); one it forbids is refused; the fast path accepts only what pydantic
    accepts, and gives the same columns."""
    example, parser, canaries, schema = contract
    fields = list(example.problem.request_model.model_fields)
    field = data.draw(st.sampled_from([None, *fields, "unknown_field"]))
    record = _changed(canaries, field, data.draw(_VALUE), drop=data.draw(st.booleans()))
    body = orjson.dumps({example.problem.request_key: [canaries[1], record]})

    allowed = schema.is_valid(record)
    try:
        validated = parser.body_model.model_validate_json(body)
    except ValidationError:
        validated = None
    fast = parser.parse(body)

    if validated is not None:
        frame = stack_columns([parser.columns(getattr(validated, example.problem.request_key))])
        checks = example.problem.request_checks
        refused_by_checks = checks is not None and checks(frame).notna().any()
        assert allowed == (not refused_by_checks), (record, allowed)
        ACCEPTED.setdefault(example.name, []).append("fast" if fast is not None else "pydantic")
    else:
        assert not allowed, record
    if fast is not None:
        assert validated is not None, record
        fast_frame = stack_columns([parser.columns(getattr(fast, example.problem.request_key))])
        pd.testing.assert_frame_equal(fast_frame, frame)


def test_the_agreement_test_compared_accepted_records_on_both_paths() -> None:
    """Runs after the property test: for each example it must have seen records accepted by the
    fast path and records only pydantic accepted (2.0 for an integer, a left-out optional field)."""
    for name in (example.name for example in EXAMPLES):
        paths = ACCEPTED.get(name, [])
        assert paths.count("fast") > 20 and "pydantic" in paths, (name, paths.count("fast"), len(paths))


@pytest.mark.parametrize("year", [1900, 1996, 2000, 2013, 2100])
def test_the_flights_calendar_rule_in_the_schema_is_the_one_the_api_enforces(year: int) -> None:
    """Every (month, day) the field bounds allow: the schema's if/then clauses refuse exactly the
    dates that impossible_dates names."""
    schema = jsonschema.Draft202012Validator({"allOf": flight_serving.CALENDAR_RULE})
    dates = [(year, month, day) for month in range(1, 13) for day in range(1, 32)]
    requests = pd.DataFrame(dates, columns=["year", "month", "day"])

    reasons = flight_serving.impossible_dates(requests).tolist()

    for (y, m, d), reason in zip(dates, reasons, strict=True):
        exists = d <= calendar.monthrange(y, m)[1]
        assert schema.is_valid({"year": y, "month": m, "day": d}) == exists == (reason is None), (y, m, d)


def test_the_calendar_rule_is_in_the_documented_schema() -> None:
    documented = json.loads(json.dumps(flight_serving.FlightRequest.model_json_schema()))
    assert documented["allOf"] == flight_serving.CALENDAR_RULE
