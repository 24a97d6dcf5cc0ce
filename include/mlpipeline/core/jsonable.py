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


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON values: numpy scalars as numbers, dates as ISO text, tuples as lists,
    NaN and infinities as None (strict JSON has no such numbers), anything else as its text.

    A stray ``numpy.float64`` in an asset event extra fails the task at its very end, and a NaN echoed
    in an error body makes the JSON encoder fail the answer: both go through here.
    """
    return _finite(json.loads(json.dumps(value, default=_leaf)))
