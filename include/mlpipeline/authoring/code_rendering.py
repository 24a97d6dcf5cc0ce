"""Writing a new problem's code: ``cleaning.py``, ``features.py`` and ``serving.py``.

The cleaning rules convert each column to its kind with one function per kind, and the API's
``serving_frame`` converts request fields with the same functions, so a request and the clean row
it stands for become the same values (and, for a generated key, the same id). The request model
uses the clean contract's ranges as bounds and plain field types, the API's column-by-column path.
"""

from __future__ import annotations

import pprint
import textwrap
from collections.abc import Sequence
from typing import Any

from include.mlpipeline.authoring.package_rendering import class_name, header, literal, names
from include.mlpipeline.authoring.problem_inference import Inference
from include.mlpipeline.authoring.schema_rendering import categories, ranges
from include.mlpipeline.authoring.table_profile import ColumnProfile

CONVERSION = {
    "integer": "whole_numbers",
    "number": "numbers",
    "flag": "flags",
    "timestamp": "timestamps",
    "text": "texts",
}
_REQUEST_TYPES = {"integer": "int", "number": "float", "flag": "bool", "timestamp": "dt.datetime", "text": "str"}

_CONVERSIONS_CODE = '''

def numbers(values: pd.Series) -> pd.Series:
    """Numbers as float64; a value that is no number becomes missing, for the clean contract to judge."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def whole_numbers(values: pd.Series) -> pd.Series:
    """Whole numbers (nullable Int64); a value with a fraction, or no number, becomes missing."""
    found = numbers(values)
    return found.where(found == found.round()).astype("Int64")


def flags(values: pd.Series) -> pd.Series:
    """True or False (nullable boolean)."""
    return values.astype("boolean")


def texts(values: pd.Series) -> pd.Series:
    """Text stripped of surrounding blanks; an empty text is missing (None)."""
    stripped = values.astype("string").str.strip()
    return stripped.astype(object).where(~stripped.fillna("").eq(""), None)


def timestamps(values: pd.Series) -> pd.Series:
    """Timestamps without an offset: one with an offset counts in UTC (as the table source's days do)."""
    return pd.to_datetime(values, errors="coerce", utc=True, format="mixed").dt.tz_convert(None)
'''

_ROW_IDS_CODE = '''

def _canonical(values: pd.Series) -> pd.Series:
    """Each value as text, the same for a clean row and for the request it stands for; missing is empty."""
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    elif pd.api.types.is_bool_dtype(values):
        text = values.astype("boolean").map({True: "1", False: "0"})
    elif pd.api.types.is_numeric_dtype(values):
        text = values.astype("float64").astype(str)  # 3 and 3.0 are one value
    else:
        text = values.astype("string")
    return text.astype(object).where(values.notna(), "")


def row_ids(frame: pd.DataFrame, repeats: bool = True) -> pd.Series:
    """The key: a hash of HASHED_COLUMNS, so a row sent as a request gets its id back. With ``repeats``
    (the clean table), the second and later copies of a row get ``-2``, ``-3``... so the key is unique."""
    joined = pd.Series("", index=frame.index, dtype=object)
    for column in HASHED_COLUMNS:
        joined = joined + "\\x1f" + _canonical(frame[column])
    ids = joined.map(lambda text: hashlib.blake2b(text.encode(), digest_size=8).hexdigest())
    if repeats:
        copy = ids.groupby(ids).cumcount()
        ids = ids.where(copy == 0, ids + "-" + (copy + 1).astype(str))
    return ids.astype(object)
'''


def conversions(inference: Inference) -> str:
    entries = "".join(f"    {c.name!r}: {CONVERSION[c.kind]},\n" for c in inference.columns)
    comment = "# Each clean column and the function that converts it (a request's fields too).\n"
    return f"{comment}CONVERSIONS = {{\n{entries}}}\n"


def cleaning_module(inference: Inference) -> str:
    target, key = inference.target, inference.key_name
    renamed = {c.source: c.name for c in inference.columns}
    rules = [
        "- ``COLUMN_NAMES``: the source's column names become snake_case identifiers, the names every later "
        "step and the API use;",
        "- ``CONVERSIONS``: each column becomes its type (numbers, whole numbers, flags, text stripped of "
        "blanks, timestamps); a value that does not convert becomes missing, for the clean contract to judge;",
        f"- a row without ``{target.name}`` is dropped: it can neither train nor test a model;",
    ]
    binary = ""
    if inference.task == "binary":
        rules.append(
            f"- ``binary_target``: {inference.positive!r} becomes 1 and {inference.negative!r} 0; another value "
            "becomes missing, which the clean contract quarantines;"
        )
        chosen = "the 1 or True" if inference.positive in (1, True) else "the rarer value"
        positive, negative = literal(inference.positive), literal(inference.negative)
        labels = f"{inference.positive_label!r}, {inference.negative_label!r}"
        binary = (
            f"\n# TODO: confirm the positive class (1); it was chosen as {chosen}: swap the two if not.\n"
            f"POSITIVE, NEGATIVE = {positive}, {negative}\n"
            f"POSITIVE_LABEL, NEGATIVE_LABEL = {labels}  # their names in API answers\n"
        )
    if inference.key is None:
        rules.append(
            f"- ``row_ids``: the key ``{key}`` is a hash of what a request carries (``HASHED_COLUMNS``), so a row "
            "sent as a request gets the same id; a repeated row gets ``-2``, ``-3``..."
        )
    else:
        rules.append(f"- the key ``{key}`` is the table's own (the clean contract checks it is unique).")
    body = (
        "The rules, and why:\n\n"
        + "\n".join(_wrap_item(rule) for rule in rules)
        + (
            "\n\nRows are not dropped otherwise: a value out of range or not allowed is quarantined by the clean "
            "contract,\nwhich names the check it failed."
        )
    )
    hashed = f"HASHED_COLUMNS = {names(inference.hashed)}\n" if inference.key is None else ""
    imports = "import hashlib\n" if inference.key is None else ""
    steps = ""
    if inference.task == "binary":
        steps += "    clean[TARGET] = binary_target(clean[TARGET])\n"
    if inference.key is None:
        steps += "    clean[KEY] = row_ids(clean)\n"
    binary_function = (
        '''

def binary_target(values: pd.Series) -> pd.Series:
    """1 for POSITIVE, 0 for NEGATIVE, missing for any other value (the contract quarantines it)."""
    return values.map({POSITIVE: 1, NEGATIVE: 0}).astype("Int64")
'''
        if inference.task == "binary"
        else ""
    )
    name = class_name(inference.name)
    what = f"Cleaning rules of the problem ``{inference.name}``, one function each, composed by :func:`transform`."
    return f"""{header(inference, what, body)}
from __future__ import annotations

import datetime as dt
{imports}import logging
from collections.abc import Mapping

import pandas as pd

from . import schemas

log = logging.getLogger(__name__)

SOURCE = {inference.source_name!r}
TARGET = {target.name!r}
KEY = {key!r}
# The source's column names and the clean table's.
COLUMN_NAMES = {pprint.pformat(renamed, width=100, sort_dicts=False)}
{hashed}{binary}{_CONVERSIONS_CODE}

{conversions(inference)}{_ROW_IDS_CODE if inference.key is None else ""}{binary_function}

def converted(table: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Every column of CONVERSIONS, converted (``table`` has the clean names).\"\"\"
    return pd.DataFrame({{name: convert(table[name]) for name, convert in CONVERSIONS.items()}}, index=table.index)


def transform(raw: Mapping[str, pd.DataFrame], day: dt.date | None) -> pd.DataFrame:
    \"\"\"Turn the raw table into the clean table (columns in contract order).

    Args:
        raw: The day's raw tables by source name: ``{inference.source_name}``.
        day: The logical date being processed (for logs; None outside an ETL run).

    Returns:
        One row per raw row with a target, converted; rows the contract rejects are still there.
    \"\"\"
    clean = converted(raw[SOURCE].rename(columns=COLUMN_NAMES))
    unlabelled = clean[TARGET].isna()
    if unlabelled.any():
        log.warning("%s: %d of %d rows have no %s; dropped", day, int(unlabelled.sum()), len(clean), TARGET)
        clean = clean[~unlabelled].copy()
{steps}    log.info("%s: %d rows cleaned", day, len(clean))
    return clean[list(schemas.Clean{name}.to_schema().columns)].reset_index(drop=True)
"""


def _wrap_item(rule: str) -> str:
    return "\n".join(textwrap.wrap(rule, 100, subsequent_indent="  "))


# ----------------------------------------------------------------------------------- features
def _target_code(inference: Inference) -> str:
    if inference.task == "regression":
        return 'clean[TARGET].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)'
    if inference.task == "binary" or inference.target.kind == "integer":
        return 'clean[TARGET].astype("int64").to_numpy()'
    return "clean[TARGET].astype(str).to_numpy()"


def features_module(inference: Inference) -> str:
    flags = [n for n in inference.numeric if inference.column(n).kind == "flag"]
    numbers = [n for n in inference.numeric if n not in flags]
    items = []
    if numbers:
        items.append(f"numbers: {', '.join(numbers)}, as they are (missing ones stay missing: the model imputes them);")
    if flags:
        items.append(f"flags as 0/1 numbers: {', '.join(flags)};")
    if inference.categorical:
        items.append(
            f"categories: {', '.join(inference.categorical)} (a missing value is its own category, ``missing``);"
        )
    if inference.left_out:
        left = ", ".join(f"``{column}``" for column, _ in inference.left_out)
        items.append(f"not features: {left} (``LEFT_OUT`` says why).")
    reasons = "".join(f"    {column!r}: {why!r},\n" for column, why in inference.left_out)
    body = (
        "``build_features`` runs on the clean table in training and on request rows in the API, so the two\n"
        "cannot drift apart. Encodings and scaling are fitted in the model pipeline, on the training rows only.\n\n"
        + "\n".join(_wrap_item(f"- {item}") for item in items)
    )
    key = inference.key
    key_code = (
        'clean[KEY].astype("int64").to_numpy()'
        if key is not None and key.kind == "integer"
        else ("clean[KEY].astype(str).to_numpy()")
    )
    return f"""{header(inference, f"Features of the problem ``{inference.name}``: the plain columns themselves.", body)}
from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = {inference.target.name!r}
KEY = {inference.key_name!r}
KEY_COLUMNS = ({inference.key_name!r},)
NUMERIC_FEATURES: tuple[str, ...] = {names(inference.numeric)}
CATEGORICAL_FEATURES: tuple[str, ...] = {names(inference.categorical)}
# The clean columns that are no features (besides the key, the target and the time axis), and why.
LEFT_OUT: dict[str, str] = {{
{reasons}}}
MISSING = "missing"  # the category of a missing text value


def categories(values: pd.Series) -> np.ndarray:
    \"\"\"Text categories, a missing value being the category MISSING.\"\"\"
    values = values.astype(object)
    return values.where(values.notna(), MISSING).astype(str).to_numpy()


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    \"\"\"Turn clean rows (or request rows made clean-like by the API) into the feature table.

    Args:
        clean: Rows with the clean table's feature columns; the target is optional (absent for requests).

    Returns:
        The key, the target if present, and every feature, in contract order.
    \"\"\"
    columns: dict[str, object] = {{KEY: {key_code}}}
    if TARGET in clean.columns:
        columns[TARGET] = {_target_code(inference)}
    for name in NUMERIC_FEATURES:  # flags become 1.0 and 0.0
        columns[name] = clean[name].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    for name in CATEGORICAL_FEATURES:
        columns[name] = categories(clean[name])
    return pd.DataFrame(columns)
"""


# ------------------------------------------------------------------------------------ serving
def request_field(inference: Inference, column: ColumnProfile, found: dict[str, Any]) -> str:
    """One field of the request model: a plain type with the clean contract's bounds."""
    type_ = _REQUEST_TYPES[column.kind]
    arguments = []
    if column.kind in ("integer", "number") and column.name in found:
        arguments += [f"ge=schemas.RANGES[{column.name!r}][0]", f"le=schemas.RANGES[{column.name!r}][1]"]
    if column.kind == "text":
        arguments += (["min_length=1"] if column.name == inference.key_name else []) + [
            f"max_length={max(64, 2 * column.max_length)}"
        ]
    if column.nullable:
        type_ = "float" if column.kind == "integer" else type_
        arguments.insert(0, "None")
        type_ = f"{type_} | None"
    arguments.append(f"description=schemas.DESCRIPTIONS[{column.name!r}]")
    return f"    {column.name}: {type_} = Field({', '.join(arguments)})"


def serving_module(inference: Inference, canaries: Sequence[dict[str, Any]]) -> str:
    name = class_name(inference.name)
    found = ranges(inference)
    fields = [request_field(inference, inference.column(field), found) for field in inference.request_fields]
    carries = f"the key ``{inference.key_name}`` and " if inference.key else ""
    time = (
        f"; and ``{inference.time.name}``, which with them makes the row's id (``{inference.key_name}``)"
        if inference.time and not inference.key
        else ""
    )
    said = (
        f"A request carries {carries}the features{time}. Never the target (a request holding it, or any other "
        "field, is refused with 422: the model forbids extra fields). The numbers' bounds are the clean "
        "contract's ranges. There is nothing to look up: the request fields are converted by the cleaning "
        "rules' own functions, then the features are built by the training code."
    )
    body = "\n".join(textwrap.wrap(said, 100))
    key_step = "    frame[cleaning.KEY] = cleaning.row_ids(frame, repeats=False)\n" if inference.key is None else ""
    records = pprint.pformat(list(canaries), width=112, sort_dicts=False)
    listed = categories(inference)
    unknown = "\n\n    A text outside ``schemas.CATEGORIES`` is answered like a rare category.\n    " if listed else ""
    example = ', json_schema_extra={"example": CANARY_RECORDS[0]}' if canaries else ""
    timed = any(inference.column(field).kind == "timestamp" for field in inference.request_fields)
    dates = "import datetime as dt\n" if timed else ""
    what = f"What the API needs to know about the problem ``{inference.name}``: the request row and canary rows."
    return f"""{header(inference, what, body)}
from __future__ import annotations

{dates}from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from . import cleaning, schemas

# Real rows of the table, as requests: deploy smoke-tests the live API with them.
CANARY_RECORDS: list[dict[str, Any]] = {records}


class {name}Request(BaseModel):
    \"\"\"One row of the table as a caller knows it, before the outcome.{unknown}\"\"\"

    model_config = ConfigDict(extra="forbid"{example})

{chr(10).join(fields)}


REQUEST_FIELDS = tuple({name}Request.model_fields)


def load_serving_context() -> None:
    \"\"\"Nothing: a row's features come from its request alone.\"\"\"
    return None


def serving_frame(requests: pd.DataFrame, context: None = None) -> pd.DataFrame:
    \"\"\"Request rows converted exactly as the cleaning rules convert the source (no target).

    Args:
        requests: The request frame: one column per :class:`{name}Request` field. Not changed.
        context: Unused (:func:`load_serving_context` has nothing to load).

    Returns:
        One clean-like row per request, with its key.
    \"\"\"
    converted = {{field: cleaning.CONVERSIONS[field](requests[field]) for field in REQUEST_FIELDS}}
    frame = pd.DataFrame(converted, index=requests.index)
{key_step}    return frame


def request_records(clean: pd.DataFrame) -> list[dict[str, Any]]:
    \"\"\"The request each clean row stands for, as a caller would have sent it before the outcome.

    Args:
        clean: Rows of the clean table (:class:`~schemas.Clean{name}`).

    Returns:
        One :class:`{name}Request` record (JSON form) per row, in the rows' order; a missing value is None.
    \"\"\"
    rows = clean[list(REQUEST_FIELDS)].astype(object)
    rows = rows.where(clean[list(REQUEST_FIELDS)].notna(), None).to_dict(orient="records")
    return [{name}Request.model_validate(row).model_dump(mode="json") for row in rows]


def canary_records() -> list[dict[str, Any]]:
    \"\"\"A handful of real rows (every class once for a classifier, the target's range for a regression, and
    a row with missing values if the table has any), as :class:`{name}Request` records.\"\"\"
    return [dict(record) for record in CANARY_RECORDS]
"""
