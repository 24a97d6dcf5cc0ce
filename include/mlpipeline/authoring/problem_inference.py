"""What ``make new-problem`` decides from a sample: the task, the time axis, the key, the features and
the bounds, each with the reason it prints.

The rules (each decision can be overridden on the command line):

- **task** (``--task``), from the target's values: two values are ``binary``; whole numbers or text
  with 3 to 50 values are ``multiclass``; other numbers are ``regression``; text with more than 50
  values is an error that suggests ``--task``.
- **time axis** (``--time-column``, ``--no-time-column``): a date or time column (native, or text
  where nearly every value reads as a date) with at least three days, names like ``date``, ``day``,
  ``time``, ``timestamp``, ``*_at`` or ``*_date`` first. None found: a snapshot.
- **key** (``--key``): a unique, never missing column named like ``id``, ``*_id`` or ``key``; else a
  generated ``row_id``, a hash of what a request carries, so a row sent as a request gets its id.
- **features**: every other column, except constants, dates other than the time axis, identifiers
  and row numbers, and text with more than 50 values or nearly one per row.
- **bounds**: the range seen, widened by its width on each side (never below 0 for a column that
  never was), rounded outward; the clean contract and the request model share them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from include.mlpipeline.authoring.source_sample import NewProblemError, SourceSpec
from include.mlpipeline.authoring.table_profile import (
    MAX_LISTED_VALUES,
    ColumnProfile,
    converted,
    profile_column,
    profile_table,
    snake_case,
)
from include.mlpipeline.core.problem import TASK_KINDS

SMALL_TABLE_ROWS = 1000  # below it, 20% validate and 20% test instead of 15%, so each part has rows to judge
MIN_DAYS = 3  # a train, a validation and a test day
NEARLY_UNIQUE = 0.9  # text with a value for nearly every row is an identifier or free text, not a category
_TIME_NAMES = re.compile(r"^(date|day|time|timestamp|datetime|ts)$|_(at|date|day|time|timestamp|ts)$|^(date|time)_")
_KEY_NAMES = re.compile(r"^(id|key|uuid|guid)$|_(id|key|uuid)$|^id_")


@dataclass(frozen=True)
class Inference:
    """Everything the generated package is written from (see the module doc for the rules).

    Attributes:
        name: The package's name.
        source: Where the table is.
        source_name: The Source's name (its folder under ``raw/``).
        columns: Every column's profile, in the table's order (the target's as its task reads it).
        target: The target's profile.
        task: ``binary``, ``multiclass`` or ``regression``.
        time: The time axis's profile, or None (a snapshot).
        key: The key column's profile, or None when the key is generated.
        key_name: The key column's name (``row_id`` when generated).
        numeric / categorical: Feature names, by kind (flags are numbers, 0 or 1).
        left_out: ``(column, why)`` for every column that is no feature, the target, key or time.
        positive / negative: A binary target's values that become 1 and 0.
        positive_label / negative_label: Their names in API answers.
        rows: Rows in the sample; ``whole``: whether the sample is the whole table.
        days: Days the time axis spans in the sample (0 for a snapshot).
        reasons: Why the task, time axis and key are what they are, for the summary.
    """

    name: str
    source: SourceSpec
    source_name: str
    columns: tuple[ColumnProfile, ...]
    target: ColumnProfile
    task: str
    time: ColumnProfile | None
    key: ColumnProfile | None
    key_name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]
    positive: Any
    negative: Any
    positive_label: str
    negative_label: str
    rows: int
    whole: bool
    days: int
    reasons: dict[str, str]

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    @property
    def split(self) -> str:
        return "20%" if self.whole and self.rows < SMALL_TABLE_ROWS else "15%"

    @property
    def request_fields(self) -> tuple[str, ...]:
        """What a request carries: the key (a real one), the time (when it is part of a generated key),
        the features."""
        key = (self.key.name,) if self.key else ()
        time = (self.time.name,) if self.time and not self.key else ()
        return (*key, *time, *self.features)

    @property
    def hashed(self) -> tuple[str, ...]:
        """The columns a generated key is a hash of (what a request carries); () for a real key."""
        return () if self.key else self.request_fields

    def column(self, name: str) -> ColumnProfile:
        return next(column for column in self.columns if column.name == name)


# ------------------------------------------------------------------------------------ helpers
def find_column(columns: Sequence[ColumnProfile], wanted: str, role: str) -> ColumnProfile:
    """The column a person named (its source name or its snake_case name, in any case)."""
    for match in (lambda c: wanted in (c.source, c.name), lambda c: wanted.lower() in (c.source.lower(), c.name)):
        found = [column for column in columns if match(column)]
        if found:
            return found[0]
    listed = ", ".join(column.source for column in columns)
    raise NewProblemError(f"the {role} column {wanted!r} is not in the table; its columns are: {listed}")


def widened(low: float, high: float, whole: bool) -> tuple[float, float]:
    """The range ``low..high`` widened by its width on each side (at least 1, or its size), rounded
    outward to two significant digits of that width; never below 0 if ``low`` is not."""
    width = high - low or max(abs(high), 1.0)
    step = 10 ** math.floor(math.log10(width)) / 10
    if whole:
        step = max(1.0, step)
    lower = math.floor((low - width) / step) * step
    upper = math.ceil((high + width) / step) * step
    if low >= 0:
        lower = max(0.0, lower)
    digits = max(0, -math.floor(math.log10(step)))
    return (float(int(lower)), float(int(upper))) if whole else (round(lower, digits), round(upper, digits))


# --------------------------------------------------------------------------------------- task
def target_profile(sample: pd.DataFrame, target: ColumnProfile, task: str | None) -> ColumnProfile:
    """The target's profile as its task reads it: whole numbers with few values are class codes, a
    regression target is a number."""
    values = sample[target.source]
    if task == "regression" or (task is None and target.numeric and target.distinct > MAX_LISTED_VALUES):
        return profile_column(target.source, target.name, values, "number") if target.numeric else target
    if target.kind == "number" and target.distinct <= MAX_LISTED_VALUES:
        present = converted(values, "number").dropna()
        if (present == present.round()).all():
            return profile_column(target.source, target.name, values, "integer")
    return target


def choose_task(target: ColumnProfile, asked: str | None) -> tuple[str, str]:
    """The task and why (see the module doc)."""
    values = target.distinct
    if values == 0:
        raise NewProblemError(f"the target {target.source!r} has no values (every row is missing)")
    if values == 1:
        raise NewProblemError(
            f"the target {target.source!r} has one value ({target.values[0]!r}) in every row: there is nothing to "
            "predict; choose another TARGET, or a table where it varies"
        )
    if target.kind == "timestamp":
        raise NewProblemError(f"the target {target.source!r} holds dates: predict a number, a flag or a class")
    if asked:
        if asked not in TASK_KINDS:
            raise NewProblemError(f"--task must be one of {', '.join(TASK_KINDS)}, not {asked!r}")
        if asked == "binary" and values != 2:
            raise NewProblemError(f"--task binary needs a target with two values; {target.source!r} has {values}")
        if asked == "regression" and not target.numeric:
            raise NewProblemError(f"--task regression needs a numeric target; {target.source!r} is {target.kind}")
        if asked == "multiclass" and target.kind == "number":
            raise NewProblemError(f"--task multiclass needs text or whole-number classes; {target.source!r} is not")
        return asked, f"--task {asked}"
    if values == 2:
        return "binary", f"the target has two values ({target.values[0]!r}, {target.values[1]!r})"
    if target.kind in ("integer", "text") and values <= MAX_LISTED_VALUES:
        if target.numeric:
            return "multiclass", f"the target has {values} whole-number codes; --task regression if they are amounts"
        return "multiclass", f"the target has {values} text values"
    if target.numeric:
        return "regression", f"the target is a number with {values} distinct values"
    raise NewProblemError(
        f"the target {target.source!r} is text with {values} distinct values, too many to guess the task: pass "
        "--task multiclass to predict them as classes anyway (or choose another TARGET)"
    )


def binary_classes(sample: pd.DataFrame, target: ColumnProfile) -> tuple[Any, Any, str, str]:
    """The positive and negative values of a binary target and their labels: 1 or True when the values
    are 0/1 or flags, else the rarer value."""
    if set(target.values) in ({0, 1}, {False, True}):
        positive, negative = (True, False) if target.kind == "flag" else (1, 0)
        return positive, negative, target.name, f"not_{target.name}"
    counts = converted(sample[target.source], target.kind).value_counts()
    ordered = sorted(target.values, key=lambda value: (int(counts.get(value, 0)), str(value)))
    positive, negative = ordered[0], ordered[1]
    labels = [re.sub(r"\s+", "_", str(value).strip()) or "blank" for value in (positive, negative)]
    if labels[0] == labels[1]:
        labels = ["positive", "negative"]
    return positive, negative, labels[0], labels[1]


# ---------------------------------------------------------------------------------- time, key
def _days(sample: pd.DataFrame, column: ColumnProfile) -> int:
    return int(converted(sample[column.source], "timestamp").dt.normalize().nunique())


def choose_time(
    sample: pd.DataFrame, columns: Sequence[ColumnProfile], target: ColumnProfile, asked: str | None, none: bool
) -> tuple[ColumnProfile | None, int, str]:
    """The time axis, its days in the sample, and why."""
    if none:
        return None, 0, "--no-time-column: a snapshot"
    if asked:
        column = find_column(columns, asked, "time")
        if column.kind != "timestamp" or column is target:
            raise NewProblemError(f"--time-column {asked!r} does not read as dates or times ({column.seen()})")
        days = _days(sample, column)
        if days < MIN_DAYS:
            raise NewProblemError(
                f"--time-column {asked!r} spans {days} day(s); training by day needs at least {MIN_DAYS} "
                "(a train, a validation and a test day): use --no-time-column"
            )
        return column, days, f"--time-column {asked}"
    dated = [c for c in columns if c.kind == "timestamp" and c.name != target.name]
    for column in sorted(dated, key=lambda c: not _TIME_NAMES.search(c.name)):
        days = _days(sample, column)
        if days >= MIN_DAYS:
            return column, days, f"{column.source!r} holds dates ({days} days)"
    if dated:
        return None, 0, f"no date column spans {MIN_DAYS} days or more: a snapshot"
    return None, 0, "no date or time column: a snapshot"


def choose_key(
    columns: Sequence[ColumnProfile], exclude: set[str], asked: str | None
) -> tuple[ColumnProfile | None, str, str]:
    """The key column (None: generated), its name, and why."""
    if asked:
        column = find_column(columns, asked, "key")
        if column.name in exclude:
            raise NewProblemError(f"--key {asked!r} is the target or the time axis; a key must be another column")
        if not column.unique:
            raise NewProblemError(
                f"--key {asked!r} does not identify rows: {column.rows - column.distinct - column.missing} repeated "
                f"and {column.missing} missing values in {column.rows} rows"
            )
        return column, column.name, f"--key {asked}"
    for column in columns:
        named = _KEY_NAMES.search(column.name)
        if named and column.name not in exclude and column.unique and column.kind in ("integer", "text"):
            return column, column.name, f"{column.source!r} is unique and named like a key"
    taken = {column.name for column in columns}
    name = next(n for n in ("row_id", *(f"row_id_{i}" for i in range(2, 100))) if n not in taken)
    return None, name, f"no unique id column: {name} is generated, a hash of the columns a request carries"


# ----------------------------------------------------------------------------------- features
def left_out_because(column: ColumnProfile) -> str | None:
    """Why a column is no plain feature, or None when it is one."""
    present = column.rows - column.missing
    rules = (
        (column.distinct <= 1, "constant: one value (or none) in the sample, nothing to learn from"),
        (column.kind == "timestamp", "a date or time other than the time axis: a raw timestamp is no plain feature"),
        (column.unique and bool(_KEY_NAMES.search(column.name)), "an identifier: unique, named like a key"),
        (column.monotonic and column.unique, "a row number: unique whole numbers that only grow"),
        (
            column.kind == "text" and column.distinct > MAX_LISTED_VALUES,
            f"text with {column.distinct} distinct values: too many categories for a plain feature",
        ),
        (
            column.kind == "text" and present > 20 and column.distinct >= NEARLY_UNIQUE * present,
            "text with a value for nearly every row: an identifier or free text, not a category",
        ),
    )
    return next((why for applies, why in rules if applies), None)


def infer(
    name: str,
    source: SourceSpec,
    sample: pd.DataFrame,
    *,
    whole: bool,
    target: str,
    task: str | None = None,
    time_column: str | None = None,
    no_time_column: bool = False,
    key: str | None = None,
) -> Inference:
    """Every decision about the table (see the module doc).

    Raises:
        NewProblemError: a missing target column, a target with one value, an unusable override, no
            feature left.
    """
    profiles = profile_table(sample)
    target_column = target_profile(sample, find_column(profiles, target, "target"), task)
    profiles = [target_column if p.name == target_column.name else p for p in profiles]
    chosen_task, task_reason = choose_task(target_column, task)
    time, days, time_reason = choose_time(sample, profiles, target_column, time_column, no_time_column)
    exclude = {target_column.name, *([time.name] if time else [])}
    key_column, key_name, key_reason = choose_key(profiles, exclude, key)
    numeric, categorical, left_out = [], [], []
    for column in profiles:
        if column.name in exclude or column.name == key_name:
            continue
        why = left_out_because(column)
        if why:
            left_out.append((column.name, why))
        else:
            (categorical if column.kind == "text" else numeric).append(column.name)
    if not numeric and not categorical:
        raise NewProblemError(
            f"no column is left to predict {target!r} from: "
            + "; ".join(f"{column}: {why}" for column, why in left_out)
            + (" (and no other column)" if not left_out else "")
        )
    positive = negative = None
    positive_label, negative_label = "positive", "negative"
    if chosen_task == "binary":
        positive, negative, positive_label, negative_label = binary_classes(sample, target_column)
    return Inference(
        name=name,
        source=source,
        source_name=_source_name(source, name),
        columns=tuple(profiles),
        target=target_column,
        task=chosen_task,
        time=time,
        key=key_column,
        key_name=key_name,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        left_out=tuple(left_out),
        positive=positive,
        negative=negative,
        positive_label=positive_label,
        negative_label=negative_label,
        rows=len(sample),
        whole=whole,
        days=days,
        reasons={"task": task_reason, "time axis": time_reason, "key": key_reason},
    )


def _source_name(source: SourceSpec, name: str) -> str:
    """The table's name as a snake_case identifier (the problem's name for a query)."""
    table = source.table_name
    return name if table in ("query", "table") else snake_case(table).rstrip("_") or name
