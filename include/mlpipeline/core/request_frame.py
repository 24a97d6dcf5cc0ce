"""Request records to a typed frame, column by column, with each column's type fixed by the request model.

``pd.DataFrame.from_records`` on a list of dicts infers every column's type from its Python objects,
and tries to read every object column as dates; for 1,000 records that inference cost more than the
model. The request model already fixed each field's type, so the columns are built from it directly:
``int`` fields as int64, ``float`` as float64, ``bool`` as bool, datetimes as UTC timestamps, and
everything else (strings, optional fields) as Python objects, exactly as validated.

This frame is part of the problem contract: ``ProblemSpec.serving_frame`` receives it.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_NUMPY_TYPES = {int: "int64", float: "float64", bool: "bool"}


def column_kind(annotation: Any) -> str:
    """``int64``, ``float64``, ``bool``, ``datetime`` or ``object`` for a field's annotation."""
    if annotation in _NUMPY_TYPES:
        return _NUMPY_TYPES[annotation]
    if annotation is dt.datetime:
        return "datetime"
    return "object"  # str, optional (may be None), anything else: kept as the validated objects


def column_kinds(model: type[BaseModel]) -> dict[str, str]:
    """Each field of ``model`` and the kind of column it becomes."""
    return {name: column_kind(field.annotation) for name, field in model.model_fields.items()}


def _utc_timestamps(values: Sequence[Any]) -> pd.DatetimeIndex:
    """UTC timestamps from datetimes (microsecond precision; one without an offset is read as UTC) or,
    for records that were not validated into objects, from ISO-8601 text."""
    if not all(isinstance(value, dt.datetime) for value in values):
        values = [value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value) for value in values]
    if any(value.tzinfo is None for value in values):
        values = [value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC) for value in values]
    # Whole microseconds since the epoch rather than pandas' parser: pandas takes a slow path, tens of
    # microseconds a value, for the time zone objects pydantic attaches. Integer division of
    # timedeltas is exact; datetime.timestamp()'s float seconds were off by 1 us after about 2140.
    micros = np.fromiter(((value - _EPOCH) // _MICROSECOND for value in values), dtype="int64", count=len(values))
    return pd.DatetimeIndex(micros.view("datetime64[us]"), tz="UTC")


def typed_column(values: Sequence[Any], kind: str) -> Any:
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


def records_columns(records: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """One column per entry of ``kinds`` (see :func:`column_kinds`), in that order, one value per record:
    the columns :func:`records_frame` and :func:`stack_columns` make frames of.

    Args:
        records: Field dicts of request records, validated (datetimes as objects) or as JSON; a
            missing field is None.
        kinds: Column name -> ``int64``, ``float64``, ``bool``, ``datetime`` or ``object``.

    Returns:
        Column name -> its values (a numpy array, an object Series, or a UTC DatetimeIndex).
    """
    names = list(kinds)
    if not records:
        return {name: pd.Series([], dtype=_empty_dtype(kind)) for name, kind in kinds.items()}
    try:
        columns = field_values(records, names)
    except KeyError:  # a record without some optional field: it is None there
        columns = field_values([{name: record.get(name) for name in names} for record in records], names)
    return {name: typed_column(values, kinds[name]) for name, values in zip(names, columns, strict=True)}


def field_values(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Any:
    """Each name's values over ``records``, one sequence per name, in order; KeyError if a record lacks one."""
    rows = list(map(operator.itemgetter(*names), records))
    return zip(*rows, strict=True) if len(names) > 1 else (rows,)  # one name: itemgetter gives the value itself


def records_frame(records: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> pd.DataFrame:
    """One row per record, one column per entry of ``kinds`` (see :func:`records_columns`), with a
    RangeIndex."""
    return pd.DataFrame(records_columns(records, kinds))


def stack_columns(parts: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One frame from the columns of several requests (:meth:`ColumnarValidator.columns` or
    :func:`records_columns`), in order: what ``pd.concat`` of their frames gives, without a frame per
    request."""
    if len(parts) == 1:
        return pd.DataFrame(parts[0])
    return pd.DataFrame({name: _stacked([part[name] for part in parts]) for name in parts[0]})


def _stacked(columns: list[Any]) -> Any:
    if isinstance(columns[0], pd.Index):  # timestamps, in UTC
        return columns[0].append(columns[1:])
    stacked = np.concatenate([np.asarray(column) for column in columns])
    return pd.Series(stacked, dtype=object, copy=False) if stacked.dtype == object else stacked


def _empty_dtype(kind: str) -> Any:
    return pd.DatetimeTZDtype("us", tz="UTC") if kind == "datetime" else kind
