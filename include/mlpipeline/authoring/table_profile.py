"""What each column of a sample holds: a Python name, a kind, and the values seen.

``make new-problem`` decides everything from these profiles (:mod:`problem_inference`), and the
generated contracts, cleaning rules and request model are written from them. A profile reads the
values as the generated cleaning rules will convert them (numbers, whole numbers, flags, text
stripped of blanks, timestamps in UTC without an offset), so the ranges and allowed values it
reports are those the clean contract will see.

Kinds:

- ``integer``: whole numbers (an integer column of the source);
- ``number``: other numbers (floats, SQL decimals);
- ``flag``: booleans;
- ``timestamp``: dates and times, native or text where nearly every value reads as a date;
- ``text``: anything else.
"""

from __future__ import annotations

import datetime as dt
import decimal
import keyword
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["integer", "number", "flag", "timestamp", "text"]
MAX_LISTED_VALUES = 50  # text (or integer codes) with at most this many values lists them in the contract
DATE_SHARE = 0.95  # text is a timestamp when at least this share of its values reads as one
_DATE_TEXT = re.compile(
    r"\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})"  # a date, year first or last
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2}|UTC)?\s*",  # a time and an offset, if any
    re.IGNORECASE,
)
# Names a column cannot take in the generated code: pandera and pydantic model attributes, Python words.
_RESERVED = frozenset(
    {"Config", "copy", "dict", "json", "schema", "validate", "construct", "fields", "to_schema", "example"}
    | set(keyword.kwlist)
    | set(keyword.softkwlist)
)


@dataclass(frozen=True)
class ColumnProfile:
    """One column of the sample.

    Attributes:
        source: Its name in the source table.
        name: Its snake_case Python name in the generated package.
        kind: See the module doc.
        raw: How the raw contract types it: ``int``, ``float``, ``bool``, ``str``, ``datetime`` or
            ``datetime:<zone>`` (a time zone aware timestamp).
        rows: Rows in the sample.
        missing: Missing values (after conversion).
        distinct: Distinct values (missing ones not counted).
        low / high: The smallest and largest value (numbers and timestamps), else None.
        values: Every distinct value, sorted, when there are at most MAX_LISTED_VALUES (text, integers
            and flags), else ().
        max_length: The longest text (text only).
        monotonic: Whole numbers that only grow down the table (a row number).
    """

    source: str
    name: str
    kind: Kind
    raw: str
    rows: int
    missing: int
    distinct: int
    low: Any = None
    high: Any = None
    values: tuple[Any, ...] = ()
    max_length: int = 0
    monotonic: bool = False

    @property
    def nullable(self) -> bool:
        return self.missing > 0

    @property
    def unique(self) -> bool:
        return self.missing == 0 and self.distinct == self.rows

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number")

    def seen(self) -> str:
        """What the sample held, in words: the range or the values, and how many are missing."""
        if self.kind == "timestamp" and self.low is not None:
            said = f"{self.low:%Y-%m-%d %H:%M} to {self.high:%Y-%m-%d %H:%M}, {self.distinct} distinct"
        elif self.numeric and self.low is not None:
            said = f"{_number(self.low)} to {_number(self.high)}, {self.distinct} distinct"
        elif self.values:
            shown = ", ".join(_short(v) for v in self.values[:8]) + (", ..." if len(self.values) > 8 else "")
            said = f"{self.distinct} value{'s' if self.distinct != 1 else ''}: {shown}"
        else:
            said = f"{self.distinct} distinct values" + (
                f", up to {self.max_length} characters" if self.kind == "text" else ""
            )
        return said + (f"; {self.missing} of {self.rows} missing" if self.missing else "")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------- naming
def snake_case(text: str) -> str:
    """``"Culmen Length (mm)"`` -> ``culmen_length_mm``, ``"studyName"`` -> ``study_name``: a lower-case
    Python identifier (a leading digit gets ``c_``, a reserved word a trailing ``_``)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(text).strip())
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    name = re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()
    if not name:
        name = "column"
    if name[0].isdigit():
        name = f"c_{name}"
    return f"{name}_" if name in _RESERVED or name.startswith("model_") else name


def column_names(columns: list[Any]) -> dict[str, str]:
    """Each source column's snake_case name, made unique by a numbered suffix where two collide."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        name = base = snake_case(column)
        number = 2
        while name in taken:
            name, number = f"{base}_{number}", number + 1
        taken.add(name)
        names[str(column)] = name
    return names


# --------------------------------------------------------------------------------- converting
def numbers(values: pd.Series) -> pd.Series:
    """Numbers as float64 (decimals too); anything unreadable is missing."""
    if values.dtype == object:
        values = values.map(lambda v: float(v) if isinstance(v, decimal.Decimal) else v)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def timestamps(values: pd.Series) -> pd.Series:
    """Timestamps without an offset: one with an offset counts in UTC, as the table source's days do."""
    return pd.to_datetime(values, errors="coerce", utc=True, format="mixed").dt.tz_convert(None)


def texts(values: pd.Series) -> pd.Series:
    """Text stripped of surrounding blanks; an empty text is missing."""
    stripped = values.astype("string").str.strip()
    return stripped.astype(object).where(~stripped.fillna("").eq(""), None)


def _is_whole_dtype(values: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


_DTYPE_KINDS: tuple[tuple[Any, tuple[Kind, str]], ...] = (
    (pd.api.types.is_bool_dtype, ("flag", "bool")),
    (pd.api.types.is_integer_dtype, ("integer", "int")),
    (pd.api.types.is_float_dtype, ("number", "float")),
    (pd.api.types.is_datetime64_dtype, ("timestamp", "datetime")),
)


def _kind_and_raw(values: pd.Series) -> tuple[Kind, str]:
    """The kind of a column and how its raw contract types it, from its dtype, else its values."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return "timestamp", f"datetime:{values.dtype.tz}"
    by_dtype = next((kind for test, kind in _DTYPE_KINDS if test(values.dtype)), None)
    return by_dtype or _object_kind(values.dropna())


def _object_kind(present: pd.Series) -> tuple[Kind, str]:
    """The kind of an object column from its Python values: flags, dates, SQL numbers, date text or text."""
    types = set(present.map(type))
    if not types:
        return "text", "str"
    if types <= {bool, np.bool_}:
        return "flag", "bool"
    if all(issubclass(t, dt.date) for t in types):
        return "timestamp", "datetime"
    if all(issubclass(t, decimal.Decimal | int | float) and not issubclass(t, bool) for t in types):
        return ("integer", "int") if types <= {int} else ("number", "float")
    return ("timestamp", "str") if _reads_as_dates(present.astype(str)) else ("text", "str")


def _reads_as_dates(text: pd.Series) -> bool:
    looks = text.str.fullmatch(_DATE_TEXT.pattern, case=False)
    if looks.mean() < DATE_SHARE:
        return False
    return bool(timestamps(text).notna().mean() >= DATE_SHARE)


def converted(values: pd.Series, kind: Kind) -> pd.Series:
    """``values`` as the generated cleaning rules convert a column of ``kind``."""
    if kind == "integer":
        numbers_ = numbers(values)
        return numbers_.where(numbers_ == numbers_.round()).astype("Int64")
    if kind == "number":
        return numbers(values)
    if kind == "flag":
        return values.astype("boolean")
    if kind == "timestamp":
        return timestamps(values)
    return texts(values)


# ---------------------------------------------------------------------------------- profiling
def profile_column(source: str, name: str, values: pd.Series, kind: Kind | None = None) -> ColumnProfile:
    """The profile of one column (``kind`` forces a kind, e.g. whole numbers for a class target)."""
    found, raw = _kind_and_raw(values)
    kind = kind or found
    clean = converted(values, kind)
    present = clean.dropna()
    distinct = int(present.nunique())
    low = high = None
    if kind in ("integer", "number", "timestamp") and len(present):
        low, high = present.min(), present.max()
        low, high = (low.to_pydatetime(), high.to_pydatetime()) if kind == "timestamp" else (low.item(), high.item())
    listed: tuple[Any, ...] = ()
    if kind in ("text", "integer", "flag") and distinct <= MAX_LISTED_VALUES:
        listed = tuple(sorted(v.item() if hasattr(v, "item") else v for v in present.unique()))
    return ColumnProfile(
        source=source,
        name=name,
        kind=kind,
        raw=raw,
        rows=len(values),
        missing=int(clean.isna().sum()),
        distinct=distinct,
        low=low,
        high=high,
        values=listed,
        max_length=int(present.astype(str).str.len().max()) if kind == "text" and len(present) else 0,
        monotonic=bool(kind == "integer" and clean.notna().all() and clean.is_monotonic_increasing),
    )


def profile_table(sample: pd.DataFrame) -> list[ColumnProfile]:
    """Every column's profile, in the table's order."""
    names = column_names(list(sample.columns))
    return [profile_column(str(column), names[str(column)], sample[column]) for column in sample.columns]
