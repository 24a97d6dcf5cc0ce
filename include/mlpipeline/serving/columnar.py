"""Parsed JSON request records checked column by column against the request model (the API's fast path).

:class:`ColumnarValidator` checks parsed JSON records column by column against the request model's
field types and bounds, and builds the columns of the request frame
(:mod:`include.mlpipeline.core.request_frame`) without creating one pydantic object per record. It
accepts only records whose every value is already in its final form (an ``int`` field holding a JSON
integer, a datetime as plain ISO-8601 text, ...). Anything else, valid or not, it declines, and the
caller validates with pydantic instead, so the answer to a valid body is the same frame either way
and an invalid body gets pydantic's own 422.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, Union

import numpy as np
import pandas as pd
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, Strict

from include.mlpipeline.core.request_frame import column_kind, column_kinds, field_values, typed_column
from include.mlpipeline.core.request_types import WHOLE_FLOATS

log = logging.getLogger(__name__)


# Plain ISO-8601 date and time, which pydantic and numpy read alike; any other text pydantic may
# accept (a date alone, a Unix time, a comma before the fraction) goes to pydantic.
_ISO_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)"  # local date and time
    r"(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?"  # offset from UTC, if any
)
_BOUNDS = {Ge: ("ge", operator.ge), Gt: ("gt", operator.gt), Le: ("le", operator.le), Lt: ("lt", operator.lt)}
# Model settings that do not change what this accepts: it checks exact types, as strict mode does.
_CONFIG_KEYS = {"extra", "title", "json_schema_extra", "strict"}
_DECLINE = (TypeError, ValueError, KeyError, OverflowError)  # a value outside the subset: pydantic decides


class _Rule:
    """What one field accepts: its column kind, bounds, lengths, closed set, and whether it may be null."""

    __slots__ = ("bounds", "choices", "kind", "max_len", "min_len", "nullable")

    def __init__(self, kind: str, nullable: bool):
        self.kind = kind
        self.nullable = nullable
        self.bounds: list[tuple[Any, Any]] = []
        self.min_len: int | None = None
        self.max_len: int | None = None
        self.choices: frozenset[str] | None = None  # a Literal of strings: the values it allows


def _string_choices(annotation: Any) -> frozenset[str] | None:
    """The values of ``Literal["a", "b", ...]`` (strings only), or None for any other annotation."""
    if typing.get_origin(annotation) is not Literal or not all(type(v) is str for v in typing.get_args(annotation)):
        return None
    return frozenset(typing.get_args(annotation))


def _rule_for(annotation: Any, metadata: Sequence[Any]) -> _Rule | None:
    """The rule for a field, or None when the field is not simple enough to check column by column."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (Union, types.UnionType) else ()
    nullable = len(members) == 2 and type(None) in members
    if nullable:
        annotation = next(member for member in members if member is not type(None))
    choices = _string_choices(annotation)
    if choices is not None:
        annotation = str
    if annotation not in (int, float, bool, str, dt.datetime) or (nullable and annotation is not str):
        return None
    rule = _Rule(column_kind(annotation), nullable)
    rule.choices = choices
    for constraint in metadata:
        if type(constraint) in _BOUNDS and annotation in (int, float):
            attribute, compare = _BOUNDS[type(constraint)]
            rule.bounds.append((compare, getattr(constraint, attribute)))
        elif isinstance(constraint, MinLen) and annotation is str:
            rule.min_len = constraint.min_length
        elif isinstance(constraint, MaxLen) and annotation is str:
            rule.max_len = constraint.max_length
        elif constraint == Strict() or (constraint is WHOLE_FLOATS and annotation is int):
            pass  # exact types are all this checks; an Integer's 2.0 is declined, for pydantic to read
        else:  # a pattern, a multiple-of, a validator...: pydantic checks it
            return None
    return rule


def _field_rules(model: type[BaseModel]) -> tuple[dict[str, _Rule], str | None]:
    """Each field's rule, and why ``model`` cannot be checked column by column (None when it can)."""
    found = model.__pydantic_decorators__
    if any((found.validators, found.field_validators, found.root_validators, found.model_validators)):
        return {}, "it has validators"
    if set(model.model_config) - _CONFIG_KEYS or model.model_config.get("extra") == "allow":
        return {}, f"its config sets {sorted(set(model.model_config) - _CONFIG_KEYS) or 'extra=allow'}"
    if model.model_config.get("strict") is False:  # strict=False on the model; fields may set it too
        return {}, "its config sets strict=False"
    rules = {}
    for name, info in model.model_fields.items():
        if info.alias or info.validation_alias:
            return {}, f"field {name} has an alias"
        rule = _rule_for(info.annotation, info.metadata)
        if rule is None:
            return {}, f"field {name} ({info.annotation}, {info.metadata}) is not a plain scalar with bounds"
        rules[name] = rule
    return rules, None


class ColumnarValidator:
    """Checks JSON request records column by column and returns their columns (see the module docstring).

    Supported models: fields of type ``int`` (or :data:`~include.mlpipeline.core.request_types.Integer`),
    ``float``, ``bool``, ``str``, a ``Literal`` of strings (either may be ``| None``) or ``datetime``,
    with bounds (``ge``/``gt``/``le``/``lt``) and lengths (``min_length``/``max_length``), in lax or
    strict mode; no other validators, no aliases. For any other model :attr:`enabled` is False and
    :meth:`columns` always declines.
    """

    def __init__(self, model: type[BaseModel]):
        self.model = model
        self._rules, self.reason = _field_rules(model)
        self.enabled = self.reason is None
        self.kinds = column_kinds(model)
        self._names = list(self.kinds)
        if not self.enabled:
            log.info("%s is validated record by record (pydantic): %s", model.__name__, self.reason)

    def columns(self, records: Any) -> dict[str, Any] | None:
        """The columns of ``records`` (parsed JSON), as :func:`records_columns` builds them from the same
        records validated by pydantic; None when any record is outside what this checks (then validate
        with pydantic: the records may still be valid, or be refused with its errors). Not yet a frame:
        the API stacks the columns of concurrent requests (:func:`stack_columns`) into one frame."""
        if not self.enabled or type(records) is not list or not records:
            return None
        if set(map(type, records)) != {dict} or set(map(len, records)) != {len(self._names)}:
            return None  # missing optional fields and unknown ones (same count, other names) go to pydantic
        try:
            columns = field_values(records, self._names)
            checked = {
                name: self._check(self._rules[name], values) for name, values in zip(self._names, columns, strict=True)
            }
        except (_DeclinedError, *_DECLINE):
            return None
        return checked

    @staticmethod
    def _check(rule: _Rule, values: tuple[Any, ...]) -> Any:
        """The column for ``values`` if every value passes ``rule`` as it stands; raises _DeclinedError if not."""
        types = set(map(type, values))
        kind = rule.kind
        if kind == "object":
            _require(types <= ({str, type(None)} if rule.nullable else {str}))
            if rule.choices is not None:
                _require(all(v in rule.choices for v in values if v is not None))
            if rule.min_len is not None or rule.max_len is not None:
                strings = [v for v in values if v is not None] if rule.nullable else values
                lengths = np.fromiter(map(len, strings), dtype="int64", count=len(strings))
                _require(rule.min_len is None or not (lengths < rule.min_len).any())
                _require(rule.max_len is None or not (lengths > rule.max_len).any())
            return typed_column(values, "object")
        if kind == "datetime":
            _require(types == {str})
            return _iso_timestamps(values)
        if kind == "bool":
            _require(types == {bool})
            return np.array(values, dtype="bool")
        _require(types == {int} or (kind == "float64" and types <= {int, float}))  # True is an int to Python only
        column = np.array(values, dtype=kind)
        _require(kind != "float64" or np.isfinite(column).all())
        for compare, bound in rule.bounds:
            _require(compare(column, bound).all())
        return column


def _iso_timestamps(values: Sequence[str]) -> pd.DatetimeIndex:
    """UTC timestamps from plain ISO-8601 text (text without an offset is UTC, as records_frame reads
    it); raises _DeclinedError for any other text. numpy reads the local part, in C; the offset is
    applied here (pandas' own reader misread text without an offset next to text with one)."""
    utc = _utc_seconds_timestamps(values)
    return utc if utc is not None else _any_iso_timestamps(values)


_UTC_SECONDS = np.frombuffer(b"0000-00-00T00:00:00Z", dtype=np.uint8)  # "0": a digit goes there
_DIGIT_AT = np.flatnonzero(np.equal(_UTC_SECONDS, ord("0")))
_MARK_AT = np.flatnonzero(np.not_equal(_UTC_SECONDS, ord("0")))


def _utc_seconds_timestamps(values: Sequence[str]) -> pd.DatetimeIndex | None:
    """The common shape only, ``YYYY-MM-DDTHH:MM:SSZ`` (how pydantic writes a UTC time), checked
    character by character for all values at once; None if any value has another shape. A shape the
    general reader (:func:`_any_iso_timestamps`) accepts, read by the same numpy parser."""
    if set(map(len, values)) != {len(_UTC_SECONDS)} or not all(map(str.isascii, values)):
        return None
    text = np.array(values, dtype=f"S{len(_UTC_SECONDS)}")
    grid = text.view(np.uint8).reshape(len(text), len(_UTC_SECONDS))
    digits = grid[:, _DIGIT_AT]
    shaped = ((digits >= ord("0")) & (digits <= ord("9"))).all() and (grid[:, _MARK_AT] == _UTC_SECONDS[_MARK_AT]).all()
    if not shaped:
        return None
    return pd.DatetimeIndex(text.astype(f"S{len(_UTC_SECONDS) - 1}").astype("datetime64[us]"), tz="UTC")


def _any_iso_timestamps(values: Sequence[str]) -> pd.DatetimeIndex:
    """:func:`_iso_timestamps` for every shape it accepts (a regular expression per value)."""
    matches = list(map(_ISO_DATETIME.fullmatch, values))
    _require(all(matches))
    local = np.array([match[1] for match in matches], dtype="datetime64[us]")
    zones = [match[2] for match in matches]
    if any(zone not in (None, "Z") for zone in zones):
        east = [0 if z in (None, "Z") else (60 * int(z[1:3]) + int(z[4:6])) * (1 if z[0] == "+" else -1) for z in zones]
        local = local - np.array(east, dtype="timedelta64[m]")
    return pd.DatetimeIndex(local, tz="UTC")


class _DeclinedError(Exception):
    """A value outside what ColumnarValidator checks (see its ``columns``)."""


def _require(condition: bool) -> None:
    if not condition:
        raise _DeclinedError
