"""A served pipeline compiled to array code when it loads.

A scikit-learn ``Pipeline`` of a ``ColumnTransformer`` and an estimator, called on a one-row frame,
spends nearly all its time outside the model's arithmetic: column selection from a frame, input
checks and conversions in every step, output containers. :func:`compile_pipeline` turns the
fitted steps into plain array code once, from their fitted state:

- categorical encoders (``OneHotEncoder``, ``TargetEncoder``) become one lookup table per column,
  built by asking the fitted encoder itself for the output of every category it knows and of an
  unknown one, so infrequent-category pooling, unknown handling and target encodings are its own;
- numeric steps (``SimpleImputer`` with or without missing indicators, ``StandardScaler``,
  ``FunctionTransformer``, ``"passthrough"``) run their fitted arithmetic on a float64 matrix;
- a linear estimator (logistic regression, ridge, linear regression) is folded into the lookup
  tables (:class:`LinearFold`), a dummy baseline is a constant, and any other estimator (boosting,
  forests) runs its own ``predict_proba``/``predict`` on the preprocessed array.

Anything else (another step type, a sparse output) raises :class:`UnsupportedPipelineError`. ONNX
Runtime was tried first (skl2onnx 1.20, onnxruntime 1.31): it converted none of the library's four
families (imputers with missing indicators, ``TargetEncoder``, ``FunctionTransformer(np.clip)`` and
double-precision imputers are unsupported). The model store serves a compiled form only once
:mod:`.scoring_form` has checked its answers against the pipeline's own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

ARRAYS = "arrays"  # the compiled form's name on /model
UNKNOWN = "\x00unseen category"  # a value no encoder was fitted on: asks it for its unknown answer
_MISSING = object()  # the lookup key of a missing category (None or NaN)


class UnsupportedPipelineError(ValueError):
    """The pipeline has a part :func:`compile_pipeline` has no array form for (it says which)."""


def _key(value: Any) -> Any:
    """A category as a lookup key: None and NaN are one missing key (as scikit-learn's encoders see them)."""
    if value is None or (type(value) is float and math.isnan(value)):
        return _MISSING
    return value


@dataclass(frozen=True)
class CategoryTable:
    """One categorical column's encoding: each known value's output row, and the unknown value's."""

    column: str
    rows: dict[Any, int]  # value key -> row of ``outputs``
    outputs: np.ndarray  # (known values + 1, width); the last row answers an unknown value

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        return self.outputs[self.indices(values)]

    def indices(self, values: Sequence[Any]) -> list[int]:
        """The row of :attr:`outputs` of each value."""
        unknown = len(self.outputs) - 1
        get = self.rows.get
        found = [get(value, unknown) for value in values]  # plain values are their own keys
        missing = self.rows.get(_MISSING)
        if missing is not None and unknown in found:  # None or NaN, when the encoder knows a missing category
            found = [
                missing if row == unknown and _key(value) is _MISSING else row
                for row, value in zip(found, values, strict=True)
            ]
        return found

    def known_values(self) -> list[Any]:
        return [np.nan if key is _MISSING else key for key in self.rows]


def _category_tables(encoder: Any, columns: list[str]) -> list[CategoryTable]:
    """Lookup tables of a fitted categorical encoder, one per column, from the encoder's own answers."""
    if isinstance(encoder, OneHotEncoder) and (encoder.drop is not None or encoder.sparse_output):
        raise UnsupportedPipelineError("a OneHotEncoder with drop or a sparse output")
    if not isinstance(encoder, OneHotEncoder | TargetEncoder):
        raise UnsupportedPipelineError(f"categorical step {type(encoder).__name__}")
    if isinstance(encoder, OneHotEncoder) and encoder.handle_unknown == "error":
        raise UnsupportedPipelineError("a OneHotEncoder that refuses unknown categories")
    categories = [[*values, UNKNOWN] for values in encoder.categories_]
    longest = max(map(len, categories))
    # Row i asks for the i-th category of every column (the last one repeated when a column has fewer).
    probe = pd.DataFrame(
        {c: [v[min(i, len(v) - 1)] for i in range(longest)] for c, v in zip(columns, categories, strict=True)}
    )
    encoded = np.asarray(encoder.transform(probe), dtype="float64")
    widths = _output_widths(encoder, columns)
    tables, start = [], 0
    for column, values, width in zip(columns, categories, widths, strict=True):
        outputs = encoded[: len(values), start : start + width]
        tables.append(CategoryTable(column, {_key(v): i for i, v in enumerate(values[:-1])}, outputs.copy()))
        start += width
    return tables


def _output_widths(encoder: Any, columns: list[str]) -> list[int]:
    """Output columns per input column, in order, from the encoder's output names (``<column>`` or
    ``<column>_<category or class>``, contiguous per column)."""
    names, widths, at = list(encoder.get_feature_names_out()), [], 0
    for column in columns:
        start = at
        while at < len(names) and (names[at] == column or names[at].startswith(f"{column}_")):
            at += 1
        widths.append(at - start)
    if at != len(names) or 0 in widths:
        raise UnsupportedPipelineError(f"{type(encoder).__name__} outputs {names[:5]}... not per column")
    return widths


@dataclass(frozen=True)
class NumericBlock:
    """Numeric columns through fitted numeric steps, on a float64 matrix."""

    columns: list[str]
    steps: list[Any]

    def transform(self, features: Mapping[str, Any], rows: int) -> np.ndarray:
        matrix = np.empty((rows, len(self.columns)), dtype="float64")
        for position, column in enumerate(self.columns):
            matrix[:, position] = np.asarray(features[column], dtype="float64")
        for step in self.steps:
            matrix = _numeric_step(step, matrix)
        return matrix


def _numeric_step(step: Any, matrix: np.ndarray) -> np.ndarray:
    """One fitted numeric step's ``transform``, as its own code computes it."""
    if isinstance(step, StandardScaler):
        if step.with_mean:
            matrix = matrix - step.mean_
        return matrix / step.scale_ if step.with_std else matrix
    if isinstance(step, FunctionTransformer):
        return matrix if step.func is None else step.func(matrix, **(step.kw_args or {}))
    missing = np.isnan(matrix)  # a SimpleImputer (checked in _numeric_steps)
    kept = ~np.isnan(step.statistics_)  # columns all missing in training are dropped, as the imputer does
    filled = np.where(missing, step.statistics_, matrix)[:, kept]
    if step.indicator_ is None:
        return filled
    return np.hstack([filled, missing[:, step.indicator_.features_].astype("float64")])


def _numeric_steps(transformer: Any) -> list[Any]:
    steps = [step for _, step in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    flat = []
    for step in steps:
        if step == "passthrough" or step is None:
            continue
        if isinstance(step, SimpleImputer):
            if not (isinstance(step.missing_values, float) and math.isnan(step.missing_values)):
                raise UnsupportedPipelineError("a SimpleImputer of other missing values than NaN")
            if step.keep_empty_features or (step.indicator_ is not None and step.indicator_.features != "missing-only"):
                raise UnsupportedPipelineError("a SimpleImputer keeping empty features or indicating all")
        elif isinstance(step, FunctionTransformer):
            if step.validate:
                raise UnsupportedPipelineError("a FunctionTransformer that validates its input")
        elif not isinstance(step, StandardScaler):
            raise UnsupportedPipelineError(f"numeric step {type(step).__name__}")
        flat.append(step)
    return flat


@dataclass(frozen=True)
class Estimator:
    """The final estimator on the preprocessed matrix: a linear kernel, a constant, or its own method."""

    model: Any
    method: str  # "predict_proba" or "predict"

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        model, kernel = self.model, self.kernel
        if kernel == "constant":
            if isinstance(model, DummyClassifier):
                return np.tile(model.class_prior_, (len(matrix), 1))
            return np.repeat(np.ravel(model.constant_)[:1], len(matrix))
        if kernel == "scikit-learn":
            return getattr(model, self.method)(matrix)
        if isinstance(model, LogisticRegression):
            decision = matrix @ model.coef_.T + model.intercept_
            if len(model.classes_) <= 2:
                positive = expit(decision.ravel())
                return np.column_stack([1 - positive, positive])
            return softmax(decision, axis=1)
        return matrix @ model.coef_ + model.intercept_

    @property
    def kernel(self) -> str:
        """How the estimator runs: ``linear``, ``constant`` or ``scikit-learn`` (its own method on arrays)."""
        model = self.model
        if (isinstance(model, DummyClassifier) and model.strategy == "prior") or isinstance(model, DummyRegressor):
            return "constant"
        if isinstance(model, LogisticRegression) or (
            isinstance(model, Ridge | LinearRegression) and np.ndim(model.coef_) == 1
        ):
            return "linear"
        return "scikit-learn"


@dataclass(frozen=True)
class CompiledPipeline:
    """A fitted pipeline as array code (:func:`compile_pipeline`), called as the pipeline is: its
    ``predict_proba`` (classifiers) or ``predict`` of ``features``, a frame or any mapping of column
    name to a sequence of values (one per row)."""

    numeric: list[NumericBlock | None]  # per ColumnTransformer block, in output order: numeric or None
    categorical: list[list[CategoryTable] | None]  # ... or its column tables
    estimator: Estimator
    width: int  # columns of the preprocessed matrix
    fold: LinearFold | None = None  # a linear estimator folded into the encodings (see LinearFold)

    def predict_proba(self, features: Mapping[str, Any]) -> np.ndarray:
        if self.fold is not None:
            return self.fold(features)
        return self.estimator(self.preprocess(features))

    def predict(self, features: Mapping[str, Any]) -> np.ndarray:
        return self.predict_proba(features)

    def preprocess(self, features: Mapping[str, Any]) -> np.ndarray:
        """What the pipeline's preprocessing gives for ``features``: the estimator's input."""
        parts = []
        rows = -1
        for block, tables in zip(self.numeric, self.categorical, strict=True):
            if block is not None:
                rows = len(features[block.columns[0]]) if rows < 0 else rows
                parts.append(block.transform(features, rows))
            else:
                parts.extend(table.encode(_values(features[table.column])) for table in tables or [])
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def known_categories(self) -> dict[str, list[Any]]:
        """Every categorical column's known values (to probe every row of its table)."""
        return {table.column: table.known_values() for tables in self.categorical if tables for table in tables}

    @property
    def form(self) -> str:
        """The form's name on /model: ``arrays`` and how the estimator runs."""
        folded = " folded into the encodings" if self.fold is not None else ""
        return f"{ARRAYS}, estimator {self.estimator.kernel}{folded}"


@dataclass(frozen=True)
class LinearFold:
    """A linear model's decision computed without its one-hot matrix: a category's columns times
    their coefficients are summed once per table row when the model loads, so a row costs one lookup
    per categorical column instead of a dot product over every one-hot column; numbers still go
    through their fitted steps and their coefficients. Then the model's link (logistic, softmax or
    none). The same sums in another order: the store checks the answers like any compiled form's."""

    numeric: list[tuple[NumericBlock, np.ndarray]]  # each block and its coefficients (its width x k)
    tables: list[tuple[CategoryTable, np.ndarray]]  # each table and each of its rows' sum (rows x k)
    intercept: np.ndarray  # (k,)
    link: str  # "logistic", "softmax" or "identity"

    def __call__(self, features: Mapping[str, Any]) -> np.ndarray:
        first = self.numeric[0][0].columns[0] if self.numeric else self.tables[0][0].column
        rows = len(features[first])
        decision = np.tile(self.intercept, (rows, 1))
        for block, weights in self.numeric:
            decision += block.transform(features, rows) @ weights
        for table, sums in self.tables:
            decision += sums[table.indices(_values(features[table.column]))]
        if self.link == "logistic":
            positive = expit(decision[:, 0])
            return np.column_stack([1 - positive, positive])
        return softmax(decision, axis=1) if self.link == "softmax" else decision[:, 0]


def fold_linear(compiled: CompiledPipeline, blocks: list[slice]) -> LinearFold | None:
    """The :class:`LinearFold` of a compiled pipeline whose estimator is linear (None otherwise);
    ``blocks`` are the ColumnTransformer blocks' output columns, in order."""
    model = compiled.estimator.model
    if compiled.estimator.kernel != "linear":
        return None
    if isinstance(model, LogisticRegression):
        weights, link = model.coef_.T, "logistic" if len(model.classes_) <= 2 else "softmax"
    else:
        weights, link = model.coef_[:, None], "identity"
    numeric, tables = [], []
    for block, categories, columns in zip(compiled.numeric, compiled.categorical, blocks, strict=True):
        if block is not None:
            numeric.append((block, weights[columns]))
            continue
        start = columns.start
        for table in categories or []:
            width = table.outputs.shape[1]
            tables.append((table, table.outputs @ weights[start : start + width]))
            start += width
    return LinearFold(numeric, tables, np.atleast_1d(np.asarray(model.intercept_, dtype="float64")), link)


def _values(column: Any) -> list[Any]:
    return column.tolist() if hasattr(column, "tolist") else list(column)


def compile_pipeline(pipeline: Any, classifier: bool) -> CompiledPipeline:
    """The array form of ``Pipeline([ColumnTransformer, estimator])`` (see the module docstring).

    Raises:
        UnsupportedPipelineError: naming the part that has no array form.
    """
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise UnsupportedPipelineError(f"{type(pipeline).__name__} is not a Pipeline of preprocessing and a model")
    preprocess, model = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer) or getattr(preprocess, "sparse_output_", False):
        raise UnsupportedPipelineError("its preprocessing is not a ColumnTransformer with a dense output")
    if hasattr(model, "feature_names_in_"):
        raise UnsupportedPipelineError("its estimator was fitted on a frame")
    numeric: list[NumericBlock | None] = []
    categorical: list[list[CategoryTable] | None] = []
    blocks: list[slice] = []
    width = 0
    for name, transformer, selected in preprocess.transformers_:
        if transformer == "drop" or len(selected) == 0:
            continue
        if not all(isinstance(c, str) for c in selected):
            raise UnsupportedPipelineError(f"block {name} selects columns by position")
        columns = list(selected)
        if isinstance(transformer, OneHotEncoder | TargetEncoder):
            numeric.append(None)
            categorical.append(_category_tables(transformer, columns))
        else:
            numeric.append(NumericBlock(columns, _numeric_steps(transformer)))
            categorical.append(None)
        blocks.append(preprocess.output_indices_[name])
        width += blocks[-1].stop - blocks[-1].start
    method = "predict_proba" if classifier else "predict"
    compiled = CompiledPipeline(numeric, categorical, Estimator(model, method), width)
    return dataclasses.replace(compiled, fold=fold_linear(compiled, blocks))
