"""One scoring pass (include/mlpipeline/serving/scoring.py), without the app: the flight problem's
request checks, features and lookups, small fitted models, the prediction log and the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from include.flight_delay import PROBLEM
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import PREDICTIONS, PredictionLog, assign_variants
from include.mlpipeline.serving.request_parsing import PredictBodyParser, predict_request_model
from include.mlpipeline.serving.scoring import ScoredRequest, Scorer, ScoringJob

FEATURES = ["dep_hour", "distance", "temp", "plane_age"]


@pytest.fixture(scope="module")
def context() -> Any:
    return PROBLEM.load_serving_context()


@pytest.fixture(scope="module")
def canaries() -> list[dict[str, Any]]:
    return PROBLEM.canary_records()


@pytest.fixture(scope="module")
def models(make_features: Callable[..., pd.DataFrame]) -> tuple[LoadedModel, LoadedModel]:
    """A champion and a challenger with different fits and thresholds, so their answers differ."""
    fitted = []
    for day, threshold in (("2013-06-01", 0.5), ("2013-06-02", 0.3)):
        train = make_features(day, rows=300)
        pipeline = make_pipeline(SimpleImputer(), LogisticRegression()).fit(train[FEATURES], train["is_delayed"])
        fitted.append(LoadedModel("flights", str(len(fitted) + 1), None, pipeline, threshold, FEATURES))
    return fitted[0], fitted[1]


class Pass:
    """What a scoring pass needs besides the scorer: the served models, the log, the body parser."""

    def __init__(self, settings: Settings, context: Any, lake: Lake):
        self.store = ModelStore(settings, PROBLEM, context, "flights")  # not started: the test sets its models
        self.log = PredictionLog(lambda: lake, flush_s=3600)
        self.lake = lake
        self.bodies = PredictBodyParser(PROBLEM, settings, predict_request_model(PROBLEM, settings))

    def job(self, records: list[dict[str, Any]], variant: str | None = None) -> ScoringJob:
        """A job as /predict queues it: the body through the fast path, then its columns."""
        parsed = self.bodies.parse(orjson.dumps({PROBLEM.request_key: records}))
        checked = getattr(parsed, PROBLEM.request_key)
        return ScoringJob(self.bodies.columns(checked), checked, variant, self.store, self.log, time.perf_counter())


def _served(metrics: ServingMetrics, variant: str, version: str) -> float:
    labels = (PROBLEM.positive_label, PROBLEM.negative_label)
    return sum(
        metrics.registry.get_sample_value(
            "mlp_api_predictions_total", {"variant": variant, "model_version": version, "label": label}
        )
        or 0.0
        for label in labels
    )


def test_one_pass_scores_each_request_and_refuses_only_the_bad_one(
    context: Any, canaries: list[dict[str, Any]], models: tuple[LoadedModel, LoadedModel], lake: Lake
) -> None:
    champion, _ = models
    settings, metrics = Settings(), ServingMetrics()
    scoring = Pass(settings, context, lake)
    scoring.store.current = champion
    bad = {**canaries[3], "month": 2, "day": 30}
    jobs = [scoring.job(canaries[:2]), scoring.job([canaries[2], bad]), scoring.job(canaries[4:7])]
    days = [pd.Timestamp.now("UTC").date()]

    first, refused, last = Scorer(PROBLEM, settings, metrics).score(jobs)
    days.append(pd.Timestamp.now("UTC").date())

    assert isinstance(refused, RequestValidationError)
    (error,) = refused.errors()
    assert error["loc"] == ("body", PROBLEM.request_key, 1)
    assert error["msg"] == "Value error, 2013-02-30 is not a calendar date"
    for scored, records in ((first, canaries[:2]), (last, canaries[4:7])):
        assert isinstance(scored, ScoredRequest)
        features = PROBLEM.request_features(records, context)
        expected = champion.predict_proba(features)
        assert scored.keys.tolist() == features[PROBLEM.key_columns[0]].astype(str).tolist()
        np.testing.assert_allclose(scored.probabilities, expected)
        assert scored.positive.tolist() == (expected >= champion.threshold).tolist()
        positive, negative = PROBLEM.positive_label, PROBLEM.negative_label
        assert scored.labels.tolist() == [positive if p else negative for p in scored.positive]
        assert set(scored.variants) == {"champion"} and set(scored.versions) == {"1"}
        assert scored.champion is champion
    assert metrics.registry.get_sample_value("mlp_api_scoring_pass_requests_count") == 1
    assert _served(metrics, "champion", "1") == 5

    assert scoring.log.flush() == 5  # one log entry for the pass, the refused request left out
    logged = lake.read_appended(PREDICTIONS, days)
    assert logged["request_id"].tolist() == [jobs[0].request_id] * 2 + [jobs[2].request_id] * 3
    assert logged["id"].tolist() == [*first.keys, *last.keys]
    np.testing.assert_allclose(logged["probability"], [*first.probabilities, *last.probabilities])


def test_records_follow_their_ab_variant_unless_the_request_forces_one(
    context: Any, canaries: list[dict[str, Any]], models: tuple[LoadedModel, LoadedModel], lake: Lake
) -> None:
    champion, challenger = models
    settings, metrics = Settings(ab_challenger_share=0.5), ServingMetrics()
    scoring = Pass(settings, context, lake)
    scoring.store.current, scoring.store.challenger = champion, challenger

    split, forced = Scorer(PROBLEM, settings, metrics).score(
        [scoring.job(canaries), scoring.job(canaries[:3], variant="challenger")]
    )

    expected_variants = assign_variants(split.keys.tolist(), 0.5)
    assert set(expected_variants) == {"champion", "challenger"}  # the canaries fall on both sides
    assert split.variants.tolist() == expected_variants.tolist()
    features = PROBLEM.request_features(canaries, context)
    for variant, model in (("champion", champion), ("challenger", challenger)):
        rows = expected_variants == variant
        np.testing.assert_allclose(split.probabilities[rows], model.predict_proba(features[rows]))
        assert set(split.versions[rows]) == {model.version}
    assert set(forced.variants) == {"challenger"} and set(forced.versions) == {"2"}
    assert forced.positive.tolist() == (forced.probabilities >= challenger.threshold).tolist()
    assert forced.champion is champion  # the answer names the champion of the snapshot that scored it
    served = int((expected_variants == "challenger").sum()) + 3
    assert (_served(metrics, "challenger", "2"), _served(metrics, "champion", "1")) == (served, 11 - served)


def test_a_pass_without_a_model_or_without_the_forced_challenger_is_refused(
    context: Any, canaries: list[dict[str, Any]], models: tuple[LoadedModel, LoadedModel], lake: Lake
) -> None:
    settings = Settings()
    scoring = Pass(settings, context, lake)
    scorer = Scorer(PROBLEM, settings, ServingMetrics())

    with pytest.raises(HTTPException) as no_model:
        scorer.score([scoring.job(canaries[:1])])
    scoring.store.current = models[0]
    with pytest.raises(HTTPException) as no_challenger:
        scorer.score([scoring.job(canaries[:1]), scoring.job(canaries[1:2], variant="challenger")])

    assert no_model.value.status_code == 503
    assert no_challenger.value.status_code == 409
    assert scoring.log.flush() == 0  # nothing was scored, nothing logged
