"""The problems' fast feature path (``request_feature_arrays``) and its check before it serves
(include/mlpipeline/serving/feature_arrays.py): the flights' array path gives its frame path's key
and feature values on real flights and odd ones; the store serves it only when it does, on both
examples; a pass scored on arrays answers as a pass scored on frames."""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from include.flight_delay import PROBLEM as FLIGHTS
from include.flight_delay import cleaning, sources
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.request_frame import column_kinds, records_columns
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.feature_arrays import (
    ARRAYS,
    FRAMES,
    FeaturePath,
    check_feature_arrays,
    differing_columns,
)
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import PredictionLog
from include.mlpipeline.serving.request_parsing import PredictBodyParser, predict_request_model
from include.mlpipeline.serving.scoring import Scorer, ScoringJob
from include.penguins import PROBLEM as PENGUINS


@functools.cache
def context() -> Any:
    return FLIGHTS.load_serving_context()


@functools.cache
def flight_requests() -> tuple[dict[str, Any], ...]:
    """The requests of two weeks of real flights, March and November (clocks change), and odd ones:
    codes in lower case, an unknown plane and destination, no tail number, a day without weather."""
    flights = sources.whole_table("flights")
    raw = {table: sources.whole_table(table) for table in ("weather", "planes", "airlines")}
    raw["flights"] = flights[flights["month"].isin([3, 11]) & flights["day"].between(1, 7)]
    records = FLIGHTS.requests_for(cleaning.transform(raw, None))
    odd = [
        {**records[0], "carrier": records[0]["carrier"].lower(), "dest": "xyz", "tailnum": "N0NE"},
        {**records[1], "tailnum": None},
        {**records[2], "year": 2030},  # no weather observation within two hours
    ]
    return tuple(records + odd)


def _columns(problem: ProblemSpec, records: list[dict[str, Any]]) -> dict[str, Any]:
    return records_columns(records, column_kinds(problem.request_model))


def test_the_flights_array_path_gives_the_frame_paths_values() -> None:
    records = list(flight_requests())

    found = FLIGHTS.request_feature_arrays(_columns(FLIGHTS, records), context())
    expected = FLIGHTS.request_features(records, context())

    assert len(records) > 10_000
    assert differing_columns(found, expected, [*FLIGHTS.key_columns, *FLIGHTS.feature_columns]) == []
    assert found["weather_missing"][-1] == 1 and np.isnan(found["temp"][-1])
    assert found["plane_known"][-3:-1].tolist() == [0, 0]


def _shifted_distance(columns: dict[str, Any], lookups: Any) -> dict[str, Any]:
    found = dict(FLIGHTS.request_feature_arrays(columns, lookups))
    found["distance"] = found["distance"] + 1.0
    return found


def _failing(columns: dict[str, Any], lookups: Any) -> dict[str, Any]:
    raise KeyError("sched_dep_time")


@pytest.mark.parametrize(
    ("problem", "path", "reason"),
    [
        (FLIGHTS, ARRAYS, None),
        (PENGUINS, FRAMES, "the problem has no request_feature_arrays"),
        (
            dataclasses.replace(FLIGHTS, request_feature_arrays=_shifted_distance),
            FRAMES,
            r"request_feature_arrays differs from build_features in \['distance'\]",
        ),
        (
            dataclasses.replace(FLIGHTS, request_feature_arrays=_failing),
            FRAMES,
            "request_feature_arrays failed: KeyError: 'sched_dep_time'",
        ),
    ],
    ids=["flights", "penguins", "flights-skewed", "flights-failing"],
)
def test_the_array_path_serves_only_when_it_gives_the_frame_paths_values(
    problem: ProblemSpec, path: str, reason: str | None
) -> None:
    lookups = context() if problem.name == FLIGHTS.name else problem.load_serving_context()

    checked = check_feature_arrays(problem, lookups, problem.canary_records())

    assert checked.name == path
    if reason is None:
        assert checked.reason is None and checked.arrays
    else:
        assert checked.reason is not None and pd.Series([checked.reason]).str.fullmatch(reason).all(), checked.reason


def test_a_pass_on_arrays_answers_as_a_pass_on_frames(tmp_path: Any) -> None:
    records = list(flight_requests())
    features = FLIGHTS.request_features(records[:3000], context())
    columns = ["dep_hour", "distance", "temp", "plane_age", "carrier"]
    numbers = features[columns[:-1]]
    pipeline = make_pipeline(SimpleImputer(), LogisticRegression()).fit(numbers, features["weather_missing"] == 0)
    model = LoadedModel("flights", "1", None, pipeline, 0.5, columns[:-1])
    settings = Settings()
    body_parser = PredictBodyParser(FLIGHTS, settings, predict_request_model(FLIGHTS, settings))
    answers = {}
    for path in (ARRAYS, FRAMES):
        store = ModelStore(settings, FLIGHTS, context(), FLIGHTS.name)  # not started: the test sets its model
        store.current, store.feature_path = model, FeaturePath(path)
        log = PredictionLog(functools.partial(Lake, f"file://{tmp_path}/{path}"), flush_s=3600)
        jobs = []
        for part in (records[:1], records[1:40], records[40:41], records[:1]):  # a pass of three, then one alone
            parsed = getattr(body_parser.parse(orjson.dumps({FLIGHTS.request_key: part})), FLIGHTS.request_key)
            jobs.append(ScoringJob(body_parser.columns(parsed), parsed, None, store, log, time.perf_counter()))
        scorer = Scorer(FLIGHTS, settings, ServingMetrics())
        scored = [*scorer.score(jobs[:3]), *scorer.score(jobs[3:])]
        answers[path] = [(s.keys.tolist(), s.columns["probability"].tolist()) for s in scored]
        logged = log.flush()
        assert logged == 41 + 1

    assert answers[ARRAYS] == answers[FRAMES]
