"""Values as strict JSON: what asset event extras, XCom and API error bodies may hold."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any


def _leaf(value: Any) -> Any:
    """A JSON value for one leaf json.dumps cannot write."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if type(value).__name__ == "datetime64":  # numpy timestamps: .item() would give nanoseconds
        import numpy as np

        return str(np.datetime_as_string(value, unit="s"))
    if hasattr(value, "item"):  # other numpy scalars
        return value.item()
    return str(value)


def _encodable(text: str) -> str:
    """``text``, with any lone surrogate (JSON's ``"\\ud800"`` decodes to one) written as its escape:
    UTF-8 cannot encode it, and the JSON encoder of an answer fails on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return {_encodable(key): _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    return value


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON values: numpy scalars as numbers, dates as ISO text, tuples as lists,
    NaN and infinities as None (strict JSON has no such numbers), lone surrogates in text as their
    escapes (UTF-8 has no such characters), anything else as its text.

    A stray ``numpy.float64`` in an asset event extra fails the task at its very end, and a NaN echoed
    in an error body makes the JSON encoder fail the answer: both go through here.
    """
    return _strict(json.loads(json.dumps(value, default=_leaf)))
