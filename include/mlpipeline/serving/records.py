"""Validated request records to a DataFrame, column by column, with each column's type known up front.

``pd.DataFrame.from_records`` on a list of dicts infers every column's type from its Python objects,
and tries to read every object column as dates; for 1,000 records that inference cost more than the
model. The request model already fixed each field's type, so the columns are built from it directly:
``int`` fields as int64, ``float`` as float64, ``bool`` as bool, datetimes as UTC timestamps, and
everything else (strings, optional fields) as Python objects, exactly as validated.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

_NUMPY_TYPES = {int: "int64", float: "float64", bool: "bool"}


def _column_kind(annotation: Any) -> str:
    """``int64``, ``float64``, ``bool``, ``datetime`` or ``object`` for a field's annotation."""
    if annotation in _NUMPY_TYPES:
        return _NUMPY_TYPES[annotation]
    if annotation is dt.datetime:
        return "datetime"
    return "object"  # str, optional (may be None), anything else: kept as the validated objects


def column_kinds(model: type[BaseModel]) -> dict[str, str]:
    """Each field of ``model`` and the kind of column it becomes."""
    return {name: _column_kind(field.annotation) for name, field in model.model_fields.items()}


def _utc_timestamps(values: Sequence[Any]) -> pd.DatetimeIndex:
    """UTC timestamps from datetimes (microsecond precision; one without an offset is read as UTC) or,
    for records that were not validated into objects, from ISO-8601 text."""
    if not all(isinstance(value, dt.datetime) for value in values):
        values = [value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value) for value in values]
    zones = {value.tzinfo for value in values}
    if None in zones:
        values = [value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC) for value in values]
    # datetime.timestamp() rather than pandas' parser: pandas takes a slow path, tens of microseconds
    # a value, for the time zone objects pydantic attaches.
    seconds = np.fromiter((value.timestamp() for value in values), dtype="float64", count=len(values))
    micros = np.round(seconds * 1_000_000).astype("int64")
    return pd.DatetimeIndex(micros.view("datetime64[us]"), tz="UTC")


def _column(values: Sequence[Any], kind: str) -> Any:
    if kind == "datetime":
        return _utc_timestamps(values)
    if kind != "object":
        try:
            return np.array(values, dtype=kind)
        except (TypeError, ValueError):  # e.g. None in a record that skipped validation: let pandas infer
            return pd.Series(list(values)).to_numpy()
    column = np.empty(len(values), dtype=object)
    column[:] = values
    # An object Series so pandas keeps the values as they are instead of inferring a type.
    return pd.Series(column, dtype=object, copy=False)


def records_frame(records: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> pd.DataFrame:
    """One row per record, one column per entry of ``kinds`` (see :func:`column_kinds`), in that order.

    Args:
        records: Field dicts of request records, validated (datetimes as objects) or as JSON; a
            missing field is None.
        kinds: Column name -> ``int64``, ``float64``, ``bool``, ``datetime`` or ``object``.

    Returns:
        The frame, with a RangeIndex.
    """
    names = list(kinds)
    if not records:
        return pd.DataFrame({name: pd.Series([], dtype=_empty_dtype(kind)) for name, kind in kinds.items()})
    try:
        rows = list(map(operator.itemgetter(*names), records)) if len(names) > 1 else None
    except KeyError:
        rows = None
    if rows is None:
        rows = [tuple(record.get(name) for name in names) for record in records]
    return pd.DataFrame(
        {name: _column(values, kinds[name]) for name, values in zip(names, zip(*rows, strict=True), strict=True)}
    )


def _empty_dtype(kind: str) -> Any:
    return pd.DatetimeTZDtype("us", tz="UTC") if kind == "datetime" else kind
