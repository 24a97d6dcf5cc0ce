"""Field types for a problem's request model, so that its JSON Schema (the API's ``/openapi.json``)
states exactly what the API accepts.

pydantic's default (lax) mode takes ``true`` for an ``int`` (as 1), ``"7"`` for an ``int`` and ``1``
for a ``bool``: none of them is what the schema documents. Its strict mode refuses those, but also
``2.0`` for an ``int``, which JSON Schema calls the integer 2 (a schema-driven client such as
schemathesis sends it). So a request model sets ``strict=True`` in its config and types its whole
numbers as :data:`Integer`; ``float``, ``bool`` and ``str`` are exact in strict mode as they are:

- :data:`Integer`: a JSON integer, written ``2`` or ``2.0``; never ``true``, ``"2"`` or ``2.5``;
- ``float``: any JSON number (``2`` too); never ``true`` or ``"2.5"``;
- ``bool``: ``true`` or ``false`` only; never ``1`` or ``"true"``;
- ``str``: a JSON string only; a closed set of values as ``Literal["a", "b"]`` (the schema's ``enum``).

Bounds go in the field, ``year: Integer = Field(ge=1900)``: in ``Annotated[Integer, Field(ge=1900)]``
they would come after the validator, and pydantic would leave them out of the JSON Schema.

The columnar validator (``serving/columnar.py``) knows these types and checks them column by column.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Strict


def whole_number(value: Any) -> Any:
    """A float with no fractional part as the int it stands for (``2.0`` -> ``2``); anything else as
    it is, for the strict int check to accept or refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE_FLOATS = BeforeValidator(whole_number)
"""The validator of :data:`Integer` (the columnar validator recognises it by identity)."""

Integer = Annotated[int, Strict(), WHOLE_FLOATS]
"""A whole number as JSON Schema's ``integer`` defines it (see the module docstring)."""
