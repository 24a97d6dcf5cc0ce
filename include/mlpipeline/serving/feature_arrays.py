"""The problem's fast feature path (``ProblemSpec.request_feature_arrays``), checked before it serves.

A problem may compute its request features on arrays, without the frames of ``serving_frame`` and
``build_features`` (see the field's description in :mod:`include.mlpipeline.core.problem`). Two
implementations of the same features could drift apart, so :func:`check_feature_arrays` compares
them on the canary records when the service loads, and the API uses the array path only if every
key and feature value is the frame path's. Feature columns are then passed around as a mapping of
column name to array (:data:`FeatureColumns`): the compiled model reads it as it reads a frame.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.request_frame import column_kinds, records_columns

log = logging.getLogger(__name__)

FeatureColumns = Mapping[str, Any]
"""Feature rows as columns: a frame, or a mapping of column name to an array (one value per row)."""

ARRAYS, FRAMES = "arrays", "frames"


@dataclass(frozen=True)
class FeaturePath:
    """How the API builds request features: ``arrays`` (the problem's fast path) or ``frames``, and why."""

    name: str
    reason: str | None = None

    @property
    def arrays(self) -> bool:
        return self.name == ARRAYS


def check_feature_arrays(problem: ProblemSpec, context: Any, records: Sequence[Mapping[str, Any]]) -> FeaturePath:
    """The array path if the problem has one and it gives the frame path's key and feature values for
    ``records`` (request records: the canaries); else the frame path, with the reason."""
    if problem.request_feature_arrays is None:
        return FeaturePath(FRAMES, "the problem has no request_feature_arrays")
    expected = problem.request_features(records, context)
    try:
        found = problem.request_feature_arrays(records_columns(records, column_kinds(problem.request_model)), context)
        differing = differing_columns(found, expected, [*problem.key_columns, *problem.feature_columns])
    except Exception as error:  # a fast path that fails is not served; the frame path still answers
        return FeaturePath(FRAMES, f"request_feature_arrays failed: {type(error).__name__}: {error}")
    if differing:
        return FeaturePath(FRAMES, f"request_feature_arrays differs from build_features in {differing}")
    return FeaturePath(ARRAYS)


def differing_columns(found: FeatureColumns, expected: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The ``columns`` whose values in ``found`` are not exactly ``expected``'s (missing is missing);
    text compares as text, numbers and times as numbers."""
    differing = []
    for column in columns:
        if column not in found:
            differing.append(column)
            continue
        mine, theirs = np.asarray(found[column]), expected[column].to_numpy()
        if len(mine) != len(theirs):
            differing.append(column)
        elif object in (theirs.dtype, mine.dtype):
            if [str(v) for v in mine.tolist()] != [str(v) for v in theirs.tolist()]:
                differing.append(column)
        elif not np.array_equal(_numbers(mine), _numbers(theirs), equal_nan=True):
            differing.append(column)
    return differing


def _numbers(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").astype("int64").astype("float64")
    return values.astype("float64")


def request_columns(parts: Sequence[Mapping[str, Any]], requests: pd.DataFrame) -> Mapping[str, Any]:
    """The request columns of one scoring pass: one request's own columns as they are (``parts``, when
    it is the only one and passed the checks), else the checked request frame's."""
    if len(parts) == 1 and len(requests) == len(next(iter(parts[0].values()))):
        return parts[0]
    return {name: requests[name].to_numpy() for name in requests.columns}


def take_rows(features: FeatureColumns, rows: np.ndarray) -> FeatureColumns:
    """The rows of ``features`` where the mask ``rows`` holds."""
    if isinstance(features, pd.DataFrame):
        return features.loc[rows]
    return {name: np.asarray(values)[rows] for name, values in features.items()}
