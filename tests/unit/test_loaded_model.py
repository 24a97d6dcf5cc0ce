"""The served model's scoring call, for each task kind: the pipeline's own predictions, in the kind's
shape; scikit-learn's input checks are off, so the model's own guards must hold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from include.flight_delay import PROBLEM
from include.mlpipeline.serving.model_store import LoadedModel, model_classes, model_task

SPECIES = np.array(["adelie", "chinstrap", "gentoo"])


def _train(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows), "unused": 0.0})


@pytest.fixture(scope="module")
def models() -> dict[str, LoadedModel]:
    """A tiny fitted model of each task kind, on the features a and b."""
    train = _train()
    noise = np.random.default_rng(1).normal(scale=0.5, size=len(train))
    targets = {
        "binary": (train["a"] + noise > 0).astype(int),
        "multiclass": SPECIES[np.digitize(train["a"] + noise, [-0.5, 0.5])],
        "regression": 3.0 * train["a"] - train["b"] + noise,
    }
    estimators = {"binary": LogisticRegression(), "multiclass": LogisticRegression(), "regression": LinearRegression()}
    fitted = {}
    for task, estimator in estimators.items():
        pipeline = make_pipeline(StandardScaler(), estimator).fit(train[["a", "b"]], targets[task])
        threshold = 0.5 if task == "binary" else None
        fitted[task] = LoadedModel("m", "3", None, pipeline, threshold, ["a", "b"], task=task)
    return fitted


ROWS = pd.DataFrame({"b": [0.1, -2.0, 3.0], "a": [1.0, 0.0, -1.5], "extra": "x"})  # any order, extra columns


def test_a_binary_model_gives_the_positive_class_probability(models: dict[str, LoadedModel]) -> None:
    model = models["binary"]

    assert np.array_equal(model.predict(ROWS), model.pipeline.predict_proba(ROWS[["a", "b"]])[:, 1])
    assert model.classes == (0, 1)
    assert model.threshold == 0.5


def test_a_multiclass_model_gives_every_class_probability_in_its_classes_order(
    models: dict[str, LoadedModel],
) -> None:
    model = models["multiclass"]

    predictions = model.predict(ROWS)

    assert predictions.shape == (3, 3)
    assert np.array_equal(predictions, model.pipeline.predict_proba(ROWS[["a", "b"]]))
    assert model.classes == ("adelie", "chinstrap", "gentoo")
    assert model.threshold is None


def test_a_regression_model_gives_its_values(models: dict[str, LoadedModel]) -> None:
    model = models["regression"]

    predictions = model.predict(ROWS)

    assert predictions.shape == (3,)
    assert np.array_equal(predictions, model.pipeline.predict(ROWS[["a", "b"]]))
    assert model.classes == ()
    assert model.threshold is None


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_an_infinite_feature_value_is_refused(models: dict[str, LoadedModel], task: str) -> None:
    rows = pd.DataFrame({"a": [1.0, np.inf, -np.inf], "b": [0.0, 0.0, 0.0]})

    with pytest.raises(ValueError, match="2 of 3 rows have an infinite feature value"):
        models[task].predict(rows)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("binary", "model version 3 gave no probability for 1 of 2 rows"),
        ("multiclass", "model version 3 gave no probability for 1 of 2 rows"),
        ("regression", "model version 3 gave no value for 1 of 2 rows"),
    ],
)
def test_a_missing_prediction_is_an_error(models: dict[str, LoadedModel], task: str, message: str) -> None:
    rows = pd.DataFrame({"a": [1.0, np.nan], "b": [0.0, 0.0]})  # no imputer in these pipelines

    with pytest.raises(ValueError, match=message):
        models[task].predict(rows)


def test_probabilities_for_other_classes_than_the_models_are_an_error(models: dict[str, LoadedModel]) -> None:
    model = dataclasses.replace(models["multiclass"], classes=("adelie", "gentoo"))

    with pytest.raises(ValueError, match=r"gave 3 class probabilities for its 2 classes \['adelie', 'gentoo'\]"):
        model.predict(ROWS)


@pytest.mark.parametrize(
    ("task", "threshold", "message"),
    [
        ("binary", None, "model version 3 is a binary model without a decision threshold"),
        ("multiclass", 0.5, "model version 3 is a multiclass model: it has no decision threshold"),
        ("regression", 0.5, "model version 3 is a regression model: it has no decision threshold"),
        ("ranking", None, "unknown task 'ranking'"),
    ],
)
def test_a_threshold_only_for_binary_models(
    models: dict[str, LoadedModel], task: str, threshold: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(models["multiclass"], task=task, threshold=threshold)


def test_classes_come_from_the_metadata_and_must_be_the_pipelines(models: dict[str, LoadedModel]) -> None:
    pipeline = models["multiclass"].pipeline

    assert model_classes("3", "multiclass", ["adelie", "chinstrap", "gentoo"], pipeline) == tuple(SPECIES)
    assert model_classes("3", "multiclass", None, pipeline) == ("adelie", "chinstrap", "gentoo")
    assert model_classes("3", "regression", None, models["regression"].pipeline) == ()
    with pytest.raises(ValueError, match=r"metadata names the classes \['gentoo', 'adelie', 'chinstrap'\]"):
        model_classes("3", "multiclass", ["gentoo", "adelie", "chinstrap"], pipeline)


def test_a_model_of_another_task_than_the_problems_is_refused() -> None:
    regression = dataclasses.replace(PROBLEM, task="regression")

    assert model_task("4", None, regression) == "regression"  # no task in the metadata: the problem's
    assert model_task("4", "binary", PROBLEM) == "binary"
    with pytest.raises(ValueError, match="model version 4 is a binary model; problem 'flight_delay' serves regression"):
        model_task("4", "binary", regression)
