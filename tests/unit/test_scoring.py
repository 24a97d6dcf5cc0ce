"""One scoring pass (include/mlpipeline/serving/scoring.py): the flight problem's request checks,
features and lookups, small fitted models, the prediction log and the metrics; then each task kind's
answer (a toy plant problem, binary, multiclass and regression) through the app: its documented
schema, the answers themselves and the outcomes /feedback takes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pydantic
import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from include.flight_delay import PROBLEM
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.serving.answers import ScoredRequest
from include.mlpipeline.serving.app import create_app
from include.mlpipeline.serving.feedback import unknown_classes
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import FEEDBACK, PREDICTIONS, PredictionLog, assign_variants
from include.mlpipeline.serving.request_parsing import PredictBodyParser, predict_request_model
from include.mlpipeline.serving.scoring import Scorer, ScoringJob

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

    def __init__(self, settings: Settings, context: Any, lake: Lake, problem: ProblemSpec = PROBLEM):
        self.problem = problem
        self.store = ModelStore(settings, problem, context, problem.name)  # not started: the test sets its models
        self.log = PredictionLog(lambda: lake, flush_s=3600)
        self.lake = lake
        self.bodies = PredictBodyParser(problem, settings, predict_request_model(problem, settings))

    def job(self, records: list[dict[str, Any]], variant: str | None = None) -> ScoringJob:
        """A job as /predict queues it: the body through the fast path, then its columns."""
        parsed = self.bodies.parse(orjson.dumps({self.problem.request_key: records}))
        checked = getattr(parsed, self.problem.request_key)
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
        expected = champion.predict(features)
        assert scored.keys.tolist() == features[PROBLEM.key_columns[0]].astype(str).tolist()
        assert sorted(scored.columns) == ["label", "positive", "probability"]
        np.testing.assert_allclose(scored.columns["probability"], expected)
        assert scored.columns["positive"].tolist() == (expected >= champion.threshold).tolist()
        positive, negative = PROBLEM.positive_label, PROBLEM.negative_label
        assert scored.columns["label"].tolist() == [positive if p else negative for p in scored.columns["positive"]]
        assert set(scored.variants) == {"champion"} and set(scored.versions) == {"1"}
        assert scored.champion is champion
    assert metrics.registry.get_sample_value("mlp_api_scoring_pass_requests_count") == 1
    assert _served(metrics, "champion", "1") == 5

    assert scoring.log.flush() == 5  # one log entry for the pass, the refused request left out
    logged = lake.read_appended(PREDICTIONS, days)
    assert logged["request_id"].tolist() == [jobs[0].request_id] * 2 + [jobs[2].request_id] * 3
    assert logged["id"].tolist() == [*first.keys, *last.keys]
    np.testing.assert_allclose(logged["probability"], [*first.columns["probability"], *last.columns["probability"]])
    assert logged["label"].tolist() == [*first.columns["label"], *last.columns["label"]]
    assert logged["value"].isna().all() and (logged["probabilities"] == "").all()  # binary: no value, no classes


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
        np.testing.assert_allclose(split.columns["probability"][rows], model.predict(features[rows]))
        assert set(split.versions[rows]) == {model.version}
    positive = split.columns["probability"] >= np.where(expected_variants == "champion", 0.5, 0.3)
    assert split.columns["positive"].tolist() == positive.tolist()
    assert set(forced.variants) == {"challenger"} and set(forced.versions) == {"2"}
    assert forced.columns["positive"].tolist() == (forced.columns["probability"] >= challenger.threshold).tolist()
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


# ------------------------------------------------------------------ each task kind: a toy plant problem
class PlantRequest(BaseModel):
    """One plant, as a caller sends it."""

    model_config = ConfigDict(extra="forbid")

    plant: str = Field(min_length=1, max_length=20, description="Name of the plant.")
    length: float = Field(ge=0, le=100, description="Leaf length, cm.")
    width: float = Field(ge=0, le=100, description="Leaf width, cm.")


def no_context() -> None:
    return None


def plants_as_they_are(requests: pd.DataFrame, context: None) -> pd.DataFrame:
    return requests


def plant_features(clean: pd.DataFrame) -> pd.DataFrame:
    return clean.assign(area=clean["length"] * clean["width"])


PLANTS = [{"plant": f"p{i}", "length": float(1 + i % 7), "width": float(1 + (3 * i) % 5)} for i in range(12)]


def plant_canaries() -> list[dict[str, Any]]:
    return PLANTS[:3]


TARGETS = {"binary": "tall", "multiclass": "species", "regression": "mass_g"}
SPECIES = np.array(["adelie", "chinstrap", "gentoo"])


def plant_problem(task: str) -> ProblemSpec:
    """The toy problem of one task kind, built from the flight problem's pieces that serving does not use."""
    return dataclasses.replace(
        PROBLEM,
        name=f"plants_{task}",
        description="Toy plants.",
        target=TARGETS[task],
        key_columns=("plant",),
        numeric_features=("length", "width", "area"),
        categorical_features=(),
        request_model=PlantRequest,
        load_serving_context=no_context,
        serving_frame=plants_as_they_are,
        build_features=plant_features,
        canary_records=plant_canaries,
        request_key="plants",
        request_checks=None,
        positive_label="tall",
        negative_label="short",
        task=task,
    )


def plant_model(task: str, version: str, seed: int) -> LoadedModel:
    """A tiny fitted model of the task kind (different seeds: different fits)."""
    rng = np.random.default_rng(seed)
    train = plant_features(pd.DataFrame({"length": rng.uniform(0, 8, 300), "width": rng.uniform(0, 6, 300)}))
    noise = rng.normal(scale=0.7, size=len(train))
    targets = {
        "binary": (train["width"] + noise > 3).astype(int),
        "multiclass": SPECIES[np.digitize(train["length"] + noise, [2.5, 5.0])],
        "regression": 20.0 * train["length"] + 5.0 * train["width"] + noise,
    }
    estimator = LinearRegression() if task == "regression" else LogisticRegression()
    features = ["length", "width", "area"]
    pipeline = make_pipeline(StandardScaler(), estimator).fit(train[features], targets[task])
    threshold = {"1": 0.5, "2": 0.3}[version] if task == "binary" else None
    return LoadedModel(f"plants_{task}", version, None, pipeline, threshold, features, task=task)


TASKS = ["binary", "multiclass", "regression"]
ANSWER_FIELDS = {
    "binary": ["id", "probability", "label", "positive", "variant", "model_version"],
    "multiclass": ["id", "label", "probability", "probabilities", "variant", "model_version"],
    "regression": ["id", "value", "variant", "model_version"],
}


def expected_answers(task: str, model: LoadedModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``model`` should answer for ``records``, computed from its pipeline."""
    predictions = model.kind.predict(model.pipeline, plant_features(pd.DataFrame(records))[model.features])
    if task == "binary":
        return [
            {"probability": p, "label": "tall" if p >= model.threshold else "short", "positive": p >= model.threshold}
            for p in predictions
        ]
    if task == "multiclass":
        return [
            {
                "label": str(SPECIES[np.argmax(row)]),
                "probability": row.max(),
                "probabilities": dict(zip(SPECIES.tolist(), row.tolist(), strict=True)),
            }
            for row in predictions
        ]
    return [{"value": value} for value in predictions]


def assert_answers_equal(answers: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(answers) == len(expected)
    for answer, wanted in zip(answers, expected, strict=True):
        for name, value in wanted.items():
            if isinstance(value, dict):
                assert answer[name].keys() == value.keys()
                np.testing.assert_allclose(list(answer[name].values()), list(value.values()), rtol=1e-12)
            elif isinstance(value, float):
                np.testing.assert_allclose(answer[name], value, rtol=1e-12)
            else:
                assert answer[name] == value, name


@pytest.mark.parametrize("task", TASKS)
def test_each_task_kind_is_answered_counted_and_logged_in_its_shape(task: str, lake: Lake) -> None:
    problem = plant_problem(task)
    champion, challenger = plant_model(task, "1", seed=1), plant_model(task, "2", seed=2)
    settings, metrics = Settings(ab_challenger_share=0.5), ServingMetrics()
    scoring = Pass(settings, None, lake, problem)
    scoring.store.current, scoring.store.challenger = champion, challenger
    days = [pd.Timestamp.now("UTC").date()]

    (scored,) = Scorer(problem, settings, metrics).score([scoring.job(PLANTS)])
    days.append(pd.Timestamp.now("UTC").date())

    variants = assign_variants([p["plant"] for p in PLANTS], 0.5)
    assert set(variants) == {"champion", "challenger"}  # both models answer some plants
    assert scored.variants.tolist() == variants.tolist()
    assert scored.versions.tolist() == ["1" if v == "champion" else "2" for v in variants]
    answers = [{name: values[row] for name, values in scored.columns.items()} for row in range(len(PLANTS))]
    for name, model in (("champion", champion), ("challenger", challenger)):
        rows = np.flatnonzero(variants == name)
        records = [PLANTS[row] for row in rows]
        assert_answers_equal([answers[row] for row in rows], expected_answers(task, model, records))
        counted = _counts_by_label(metrics, name, model.version)
        labels = [answers[row].get("label", "") for row in rows]  # a regression counts under "" per variant
        assert counted == {label: float(labels.count(label)) for label in set(labels)}

    assert scoring.log.flush() == len(PLANTS)
    logged = lake.read_appended(PREDICTIONS, days)
    assert list(logged.columns[:12]) == [
        "ts", "request_id", "id", "variant", "model_version", "probability", "label", "value", "probabilities",
        "latency_ms", "features_hash", "f_length",
    ]  # fmt: skip
    assert (logged["probability"].dtype, logged["value"].dtype) == ("float64", "float64")
    if task == "regression":
        np.testing.assert_array_equal(logged["value"], scored.columns["value"])
        assert logged["probability"].isna().all() and (logged["label"] == "").all()
    else:
        np.testing.assert_array_equal(logged["probability"], scored.columns["probability"])
        assert logged["label"].tolist() == scored.columns["label"].tolist()
        assert logged["value"].isna().all()
    if task == "multiclass":
        assert [orjson.loads(text) for text in logged["probabilities"]] == scored.columns["probabilities"].tolist()
    else:
        assert (logged["probabilities"] == "").all()


def _counts_by_label(metrics: ServingMetrics, variant: str, version: str) -> dict[str, float]:
    """The predictions metric of one variant and version, by label."""
    (family,) = [f for f in metrics.registry.collect() if f.name == "mlp_api_predictions"]
    return {
        sample.labels["label"]: sample.value
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["variant"] == variant
        and sample.labels["model_version"] == version
    }  # fmt: skip


# ------------------------------------------------------------------ each task kind through the app
class PlantApi:
    """The app of a plant problem with its models set by hand: no registry, no lifespan (no threads)."""

    def __init__(self, task: str, lake: Lake, *, loaded: bool = True):
        self.problem = plant_problem(task)
        self.settings = Settings(lake_uri=lake.root_uri, mlflow_tracking_uri="http://127.0.0.1:9")
        self.app = create_app(self.settings, self.problem)
        store = ModelStore(self.settings, self.problem, None, self.problem.name)
        store.current = plant_model(task, "1", seed=1) if loaded else None
        self.app.state.store, self.app.state.prediction_log = store, PredictionLog(lambda: lake, flush_s=3600)
        self.client = TestClient(self.app)

    def response_model(self) -> type[BaseModel]:
        """The response model /predict documents."""
        (route,) = [route for route in self.app.routes if getattr(route, "path", None) == "/predict"]
        return route.response_model


@pytest.mark.parametrize("task", TASKS)
def test_the_answer_is_the_documented_response_of_its_task_kind(task: str, lake: Lake) -> None:
    api = PlantApi(task, lake)

    response = api.client.post("/predict", json={"plants": PLANTS[:4]})

    assert response.status_code == 200, response.text
    api.response_model().model_validate_json(response.content)  # extra fields are refused, so both ways
    body = response.json()
    assert [list(prediction) for prediction in body["predictions"]] == [ANSWER_FIELDS[task]] * 4
    assert_answers_equal(body["predictions"], expected_answers(task, api.app.state.store.current, PLANTS[:4]))
    assert ("threshold" in body) == (task == "binary")
    schemas = api.app.openapi()["components"]["schemas"]
    assert list(schemas["Prediction"]["properties"]) == ANSWER_FIELDS[task]
    assert ("threshold" in schemas["PredictResponse"]["properties"]) == (task == "binary")
    model = api.client.get("/model").json()
    classes = {"binary": [0, 1], "multiclass": SPECIES.tolist(), "regression": None}[task]
    assert (model["task"], model["classes"]) == (task, classes)
    assert (model["threshold"] is None) == (task != "binary")


@pytest.mark.parametrize(
    ("task", "answer", "threshold"),
    [
        ("binary", {"probability": 0.5, "label": "tall", "positive": True}, None),
        ("binary", {"probability": 0.5, "label": "tall", "positive": True, "value": 1.0}, 0.5),
        ("multiclass", {"label": "adelie", "probability": 0.5, "probabilities": {"adelie": 0.5}}, 0.5),
        ("multiclass", {"label": "adelie", "probability": 0.5}, None),
        ("regression", {"value": 1.0, "probability": 0.5}, None),
        ("regression", {"value": 1.0}, 0.5),
    ],
    ids=[
        "binary-no-threshold",
        "binary-value",
        "multiclass-threshold",
        "multiclass-no-probabilities",
        "regression-probability",
        "regression-threshold",
    ],
)
def test_the_response_model_refuses_another_kinds_answer(
    task: str, answer: dict[str, Any], threshold: float | None, lake: Lake
) -> None:
    response_model = PlantApi(task, lake).response_model()
    prediction = {"id": "p0", **answer, "variant": "champion", "model_version": "1"}
    body = {"request_id": "r", "model_name": "m", "model_version": "1", "predictions": [prediction]}

    with pytest.raises(pydantic.ValidationError):
        response_model.model_validate({**body, **({"threshold": threshold} if threshold is not None else {})})


FEEDBACK_CASES = {
    "binary": ([0, 1, "1.0"], ["false", "true", "0.5", "2", '"1"', "null"]),  # 1.0 is JSON Schema's integer 1
    "multiclass": (['"adelie"', '"gentoo"'], ['"emperor"', "1", "true", "1.5", '""']),
    "regression": (["3", "3.5", "-1e3"], ["NaN", "Infinity", '"3.5"', "true", "null"]),
}


@pytest.mark.parametrize("task", TASKS)
def test_feedback_takes_the_outcomes_of_its_task_kind_only(task: str, lake: Lake) -> None:
    api = PlantApi(task, lake)
    accepted, refused = FEEDBACK_CASES[task]

    def post(outcome: object) -> Any:
        content = f'{{"outcomes": [{{"id": "p1", "outcome": {outcome}}}]}}'.encode()
        return api.client.post("/feedback", content=content, headers={"content-type": "application/json"})

    answers = {outcome: post(outcome) for outcome in [*accepted, *refused]}

    assert {o: a.status_code for o, a in answers.items()} == {
        **dict.fromkeys(accepted, 200),
        **dict.fromkeys(refused, 422),
    }
    for outcome in refused:
        errors = answers[outcome].json()["detail"]
        assert errors and all(error["loc"][:4] == ["body", "outcomes", 0, "outcome"] for error in errors)
    stored = lake.read_appended(FEEDBACK, [pd.Timestamp.now("UTC").date()])
    assert stored["outcome"].tolist() == [orjson.loads(str(outcome)) for outcome in accepted]
    if task == "multiclass":
        assert answers['"emperor"'].json()["detail"][0]["msg"] == (
            "Value error, 'emperor' is not one of the model's classes ['adelie', 'chinstrap', 'gentoo']"
        )


def test_multiclass_feedback_waits_for_a_model_to_know_its_classes(lake: Lake) -> None:
    api = PlantApi("multiclass", lake, loaded=False)

    response = api.client.post("/feedback", json={"outcomes": [{"id": "p1", "outcome": "adelie"}]})

    assert response.status_code == 503
    assert "no model loaded yet" in response.json()["detail"]


def test_integer_classes_are_matched_as_integers() -> None:
    outcomes = [SimpleNamespace(outcome=2), SimpleNamespace(outcome="2"), SimpleNamespace(outcome=3)]

    refusal = unknown_classes(outcomes, [0, 1, 2])

    assert refusal is not None
    assert [error["loc"][2] for error in refusal.errors()] == [1, 2]
