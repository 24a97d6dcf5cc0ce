"""Writing a new problem's ``schemas.py``: the raw, clean and feature contracts (pandera).

- raw: the structure, by the source's column names: every column and its type, coerced, every value
  allowed to be missing (values are the clean contract's business); columns it does not name are
  dropped (``strict="filter"``);
- clean: the values: each column's type, whether it may be missing (only if the sample had missing
  values), a range widened from the one seen, the values seen for low-cardinality text, a unique key;
- features: strict: the key, the target and the features, nothing else.

Every field's description comes from one ``DESCRIPTIONS`` dict, shared with the request model, and
says what the sample held; what the column means is a person's to write (``TODO``).
"""

from __future__ import annotations

import textwrap

from include.mlpipeline.authoring.package_rendering import (
    class_name,
    header,
    literal,
    round_bound,
    text_literal,
    tuple_literal,
)
from include.mlpipeline.authoring.problem_inference import Inference, widened
from include.mlpipeline.authoring.table_profile import ColumnProfile

LISTED_KINDS = ("text", "integer")
_CLEAN_TYPES = {
    "integer": "pd.Int64Dtype",
    "number": "float",
    "flag": "pd.BooleanDtype",
    "timestamp": "pd.Timestamp",
    "text": "str",
}


def raw_type(column: ColumnProfile) -> str:
    if column.raw.startswith("datetime:"):
        return f'Annotated[pd.DatetimeTZDtype, "ns", {column.raw.split(":", 1)[1]!r}]'
    return {"int": "pd.Int64Dtype", "float": "float", "bool": "pd.BooleanDtype", "datetime": "pd.Timestamp"}.get(
        column.raw, "str"
    )


def ranges(inference: Inference) -> dict[str, tuple[object, object]]:
    """The widened range of every numeric column of the clean table (a regression target's too)."""
    found = {}
    for column in inference.columns:
        if column.numeric and column.low is not None and column.name != inference.key_name:
            if column is inference.target and inference.task != "regression":
                continue
            whole = column.kind == "integer"
            low, high = widened(float(column.low), float(column.high), whole)
            found[column.name] = (round_bound(low, whole), round_bound(high, whole))
    return found


def categories(inference: Inference) -> dict[str, tuple[object, ...]]:
    """The allowed values: those seen, for categorical text features and a multiclass target."""
    listed = {name: inference.column(name).values for name in inference.categorical if inference.column(name).values}
    if inference.task == "multiclass" and inference.target.values:
        listed[inference.target.name] = inference.target.values
    return listed


def describe(inference: Inference, column: ColumnProfile) -> str:
    said = f"TODO: what {column.name} means (seen: {column.seen()})"
    if column is inference.target and inference.task == "binary":
        said += f"; 1 = {inference.positive!r}, 0 = {inference.negative!r}"
    return said


def _field(column: str, type_: str, arguments: list[str], description: str) -> str:
    joined = ", ".join([*arguments, f"description={description}"])
    return f"    {column}: Series[{type_}] = pa.Field({joined})"


def _bounds(name: str, found: dict[str, object]) -> list[str]:
    return [f"ge=RANGES[{name!r}][0]", f"le=RANGES[{name!r}][1]"] if name in found else []


def key_description(inference: Inference) -> str:
    if inference.key is not None:
        return f"DESCRIPTIONS[{inference.key_name!r}]"
    return repr(f"Key: a hash of {', '.join(inference.hashed[:4])}{', ...' if len(inference.hashed) > 4 else ''}")


def clean_fields(inference: Inference) -> list[str]:
    found, listed = ranges(inference), categories(inference)
    lines = []
    if inference.key is None:
        lines.append(_field(inference.key_name, "str", ["unique=True"], key_description(inference)))
    for column in inference.columns:
        arguments = []
        type_ = _CLEAN_TYPES[column.kind]
        if column is inference.target:
            if inference.task == "binary":
                type_, arguments = "int", ["isin=[0, 1]"]
            elif inference.task == "regression":
                type_ = "float"
        if column.name == inference.key_name:
            arguments.append("unique=True")
        if column.nullable and column is not inference.target:
            arguments.append("nullable=True")
        arguments += _bounds(column.name, found)
        if column.name in listed:
            arguments.append(f"isin=list(CATEGORIES[{column.name!r}])")
        lines.append(_field(column.name, type_, arguments, f"DESCRIPTIONS[{column.name!r}]"))
    return lines


def feature_fields(inference: Inference) -> list[str]:
    found, listed = ranges(inference), categories(inference)
    key = inference.key
    key_type = "int" if key is not None and key.kind == "integer" else "str"
    target = inference.target
    target_type = {"binary": "int", "regression": "float"}.get(
        inference.task, "int" if target.kind == "integer" else "str"
    )
    target_arguments = ["isin=[0, 1]"] if inference.task == "binary" else _bounds(target.name, found)
    if target.name in listed:
        target_arguments.append(f"isin=list(CATEGORIES[{target.name!r}])")
    lines = [
        _field(inference.key_name, key_type, ["unique=True"], key_description(inference)),
        _field(target.name, target_type, target_arguments, f"DESCRIPTIONS[{target.name!r}]"),
    ]
    for name in inference.numeric:
        column = inference.column(name)
        arguments = ["nullable=True"] if column.nullable else []
        arguments += ["isin=[0.0, 1.0]"] if column.kind == "flag" else _bounds(name, found)
        lines.append(_field(name, "float", arguments, f"DESCRIPTIONS[{name!r}]"))
    lines += [_field(name, "str", [], f"DESCRIPTIONS[{name!r}]") for name in inference.categorical]
    return lines


def raw_fields(inference: Inference) -> list[str]:
    lines = []
    for column in inference.columns:
        arguments = ["nullable=True"] + ([f"alias={column.source!r}"] if column.source != column.name else [])
        lines.append(_field(column.name, raw_type(column), arguments, f"DESCRIPTIONS[{column.name!r}]"))
    return lines


def _dict(name: str, entries: dict[str, str], comment: str) -> str:
    body = "".join(f"    {key!r}: {value},\n" for key, value in entries.items())
    return f"# {comment}\n{name} = {{\n{body}}}\n"


def schemas_module(inference: Inference) -> str:
    """The whole ``schemas.py``."""
    name = class_name(inference.name)
    descriptions = {c.name: text_literal(describe(inference, c), 4) for c in inference.columns}
    found, listed = ranges(inference), categories(inference)
    range_entries = {k: f"({literal(low)}, {literal(high)})" for k, (low, high) in found.items()}
    category_entries = {k: tuple_literal(values) for k, values in listed.items()}
    annotated = (
        "from typing import Annotated\n\n" if any(c.raw.startswith("datetime:") for c in inference.columns) else ""
    )
    bullets = [
        f"- ``Raw{name}``: the source table's structure: its columns (by their source names) and types, coerced; "
        "columns it does not name are dropped. Values are the clean contract's business.",
        f"- ``Clean{name}``: the clean table's values: types, missing values only where the sample had some, "
        "ranges widened from those seen (``RANGES``), the values seen for low-cardinality text (``CATEGORIES``), "
        "a unique key. A row that breaks one is quarantined.",
        f"- ``{name}Features``: the feature table, strict: the key, the target and the features, nothing else.",
    ]
    body = "\n".join("\n".join(textwrap.wrap(b, 100, subsequent_indent="  ")) for b in bullets) + (
        "\n\n``DESCRIPTIONS`` describes every column, for the three contracts and the request model."
    )
    return (
        header(inference, f"Data contracts of the problem ``{inference.name}`` (pandera).", body)
        + f"\nfrom __future__ import annotations\n\n{annotated}import pandas as pd\nimport pandera.pandas as pa\n"
        "from pandera.typing import Series\n\n"
        + _dict("DESCRIPTIONS", descriptions, "What each column means (a person says it) and what the sample held.")
        + "\n"
        + _dict(
            "RANGES", range_entries, "The range a number may take: the one seen, widened by its width on each side."
        )
        + "\n"
        + _dict("CATEGORIES", category_entries, "The values low-cardinality text may take: those seen.")
        + f'''

class Raw{name}(pa.DataFrameModel):
    """The source table's structure: columns and types (values are checked in the clean table)."""

{chr(10).join(raw_fields(inference))}

    class Config:
        coerce = True
        strict = "filter"


class Clean{name}(pa.DataFrameModel):
    """One row of the table, cleaned; the key is ``{inference.key_name}``."""

{chr(10).join(clean_fields(inference))}

    class Config:
        coerce = True
        strict = True


class {name}Features(pa.DataFrameModel):
    """The model-ready table: the key, the target and the plain features. Nothing else."""

{chr(10).join(feature_fields(inference))}

    class Config:
        coerce = True
        strict = True
'''
    )
