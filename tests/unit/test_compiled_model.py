"""The served pipeline compiled to array code (include/mlpipeline/serving/compiled_model.py) and the
choice of the form that answers (scoring_form.py): for every candidate family of both shipped
examples (flights: binary; penguins: regression) and of a multiclass toy (the penguin's species),
fitted on real rows, the compiled answers equal the pipeline's own ``predict_proba``/``predict`` to
1e-6 on held-out rows, unknown and missing categories and missing numbers; the store's choice falls
back to the pipeline whenever the compiled form cannot be built or differs."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

from include.flight_delay import PROBLEM as FLIGHTS
from include.flight_delay import cleaning as flight_cleaning
from include.flight_delay import sources as flight_sources
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.ml.candidates import problem_candidates
from include.mlpipeline.ml.task_kinds import task_kind
from include.mlpipeline.serving import compiled_model, scoring_form
from include.mlpipeline.serving.compiled_model import UnsupportedPipelineError, compile_pipeline
from include.mlpipeline.serving.model_store import LoadedModel
from include.mlpipeline.serving.scoring_form import PIPELINE, TOLERANCE, choose_form
from include.penguins import PROBLEM as PENGUINS
from include.penguins import cleaning as penguin_cleaning
from include.penguins import sources as penguin_sources

SPECIES = dataclasses.replace(
    PENGUINS,
    name="penguin_species",
    task="multiclass",
    target="species",
    categorical_features=tuple(c for c in PENGUINS.categorical_features if c != "species"),
    primary_metric=None,
    candidates=None,
)
PROBLEMS = {"flights": FLIGHTS, "penguins": PENGUINS, "penguin_species": SPECIES}


@functools.cache
def feature_rows(name: str) -> pd.DataFrame:
    """Real feature rows of the problem: three June days of flights, or the whole penguin table."""
    if name == "flights":
        flights = flight_sources.whole_table("flights")
        raw = {table: flight_sources.whole_table(table) for table in ("weather", "planes", "airlines")}
        raw["flights"] = flights[(flights["month"] == 6) & (flights["day"] <= 3)]
        return FLIGHTS.build_features(flight_cleaning.transform(raw, None))
    clean = penguin_cleaning.transform({penguin_cleaning.SOURCE: penguin_sources.whole_table()}, None)
    return PENGUINS.build_features(clean.dropna(subset=["body_mass_g"])).reset_index(drop=True)


@functools.cache
def fitted(name: str, candidate: str) -> tuple[ProblemSpec, object, pd.DataFrame]:
    """The candidate fitted on two thirds of the rows; the problem, the pipeline and the held-out rows."""
    problem = PROBLEMS[name]
    rows = feature_rows(name)
    train = rows.sample(frac=2 / 3, random_state=0)
    found = problem_candidates(problem)[candidate]
    pipeline = found.build(problem, found.params, 0).fit(train[problem.feature_columns], train[problem.target])
    return problem, pipeline, rows.drop(train.index)[problem.feature_columns].reset_index(drop=True)


def awkward(problem: ProblemSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows, then the same rows with unseen categories, missing categories (None) and every
    number missing."""
    unseen = rows.head(20).copy()
    for column in problem.categorical_features:
        unseen[column] = [f"never-seen-{i}" for i in range(len(unseen))]
    no_category = rows.head(5).astype({column: object for column in problem.categorical_features})
    no_category.loc[:, list(problem.categorical_features)] = None
    missing = rows.head(20).copy()
    for column in problem.numeric_features:
        missing[column] = np.nan
    return pd.concat([rows, unseen, no_category, missing], ignore_index=True)


CASES = [(name, candidate) for name, problem in PROBLEMS.items() for candidate in problem_candidates(problem)]


@pytest.mark.parametrize(("name", "candidate"), CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_the_compiled_form_answers_as_the_pipeline_itself(name: str, candidate: str) -> None:
    problem, pipeline, held_out = fitted(name, candidate)
    kind = task_kind(problem.task)

    form = choose_form(pipeline, kind, held_out.head(5))
    rows = awkward(problem, held_out)
    expected = kind.predict(pipeline, rows)

    assert form.compiled is not None, form.reason
    linear = candidate in ("logistic_regression", "ridge")
    assert form.form == ("arrays, estimator linear folded into the encodings" if linear else form.form)
    assert form.form.startswith("arrays")
    assert form.max_difference <= TOLERANCE
    assert form.rows_checked > 5  # the probes too: every known category, unknown ones, missing numbers
    np.testing.assert_allclose(kind.predict(form.compiled, rows), expected, rtol=0, atol=TOLERANCE)
    columns = {column: rows[column].to_numpy() for column in problem.feature_columns}  # arrays, not a frame
    np.testing.assert_allclose(kind.predict(form.compiled, columns), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_the_served_model_answers_arrays_and_frames_alike(name: str) -> None:
    problem, pipeline, held_out = fitted(name, next(iter(problem_candidates(PROBLEMS[name]))))
    threshold = 0.5 if problem.task == "binary" else None
    model = LoadedModel(problem.name, "1", None, pipeline, threshold, problem.feature_columns, task=problem.task)
    compiled = dataclasses.replace(model, scoring=choose_form(pipeline, model.kind, held_out.head(5)))
    columns = {column: held_out[column].to_numpy() for column in held_out.columns}

    assert model.compiled is None and compiled.compiled is not None
    np.testing.assert_allclose(compiled.predict(columns), model.predict(held_out), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(compiled.predict(held_out), model.predict(columns), rtol=0, atol=TOLERANCE)


def _quantile_pipeline() -> object:
    problem, _, held_out = fitted("flights", "logistic_regression")
    numbers = held_out[list(problem.numeric_features)].fillna(0.0)
    return make_pipeline(QuantileTransformer(n_quantiles=10), LogisticRegression()).fit(numbers, numbers.index % 2)


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        (lambda: make_pipeline(LogisticRegression()), "no array form: .*not a Pipeline of preprocessing and a model"),
        (_quantile_pipeline, "no array form: .*not a ColumnTransformer"),
    ],
    ids=["one step", "no column transformer"],
)
def test_a_pipeline_without_an_array_form_is_served_as_it_is(pipeline, reason: str) -> None:
    with pytest.raises(UnsupportedPipelineError):
        compile_pipeline(pipeline(), classifier=True)
    _, _, held_out = fitted("flights", "logistic_regression")

    form = choose_form(pipeline(), task_kind("binary"), held_out.head(5))

    assert form.compiled is None and form.form == PIPELINE
    assert form.reason is not None
    assert pd.Series([form.reason]).str.match(reason).all(), form.reason


def test_a_compiled_form_that_differs_from_the_pipeline_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    problem, pipeline, held_out = fitted("penguins", "ridge")
    honest = compiled_model.compile_pipeline

    def off_by_a_little(pipeline: object, classifier: bool) -> compiled_model.CompiledPipeline:
        """The honest compiled form with one species' share of the decision moved by 1e-3 (a fault)."""
        compiled = honest(pipeline, classifier)
        table, sums = compiled.fold.tables[0]
        assert table.column == "species"
        sums[0] += 1e-3
        return compiled

    monkeypatch.setattr(scoring_form, "compile_pipeline", off_by_a_little)

    form = choose_form(pipeline, task_kind(problem.task), held_out.head(5))

    assert form.compiled is None and form.form == PIPELINE
    assert form.reason is not None and "array form differs from the pipeline by" in form.reason
    assert form.max_difference > TOLERANCE
