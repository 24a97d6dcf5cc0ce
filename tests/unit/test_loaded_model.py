"""The served model's scoring call: scikit-learn's input checks are off, so its own guard must hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from include.mlpipeline.serving.model_store import LoadedModel


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "unused": 0.0})
    target = (train["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[["a", "b"]], target)
    return LoadedModel("m", "3", None, pipeline, 0.5, ["a", "b"])


def test_answers_are_the_pipelines_own(model: LoadedModel) -> None:
    rows = pd.DataFrame({"b": [0.1, -2.0, 3.0], "a": [1.0, 0.0, -1.5], "extra": "x"})  # any order, extra columns

    assert np.array_equal(model.predict_proba(rows), model.pipeline.predict_proba(rows[["a", "b"]])[:, 1])


def test_an_infinite_feature_value_is_refused(model: LoadedModel) -> None:
    rows = pd.DataFrame({"a": [1.0, np.inf, -np.inf], "b": [0.0, 0.0, 0.0]})

    with pytest.raises(ValueError, match="2 of 3 rows have an infinite feature value"):
        model.predict_proba(rows)


def test_a_missing_probability_is_an_error(model: LoadedModel) -> None:
    rows = pd.DataFrame({"a": [1.0, np.nan], "b": [0.0, 0.0]})  # no imputer in this pipeline

    with pytest.raises(ValueError, match="model version 3 gave no probability for 1 of 2 rows"):
        model.predict_proba(rows)
