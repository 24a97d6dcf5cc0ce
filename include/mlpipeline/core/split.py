"""How a training run splits its data: the window, and the sizes of the validation and test parts.

Sizes are written as text, in one of three units:

- ``"5 days"`` (or ``"5d"``): the newest 5 day partitions (data with a time axis only);
- ``"500 rows"`` (or ``"500r"``): with a time axis, the newest days that hold at least 500 rows;
  for a snapshot, 500 rows;
- ``"15%"`` (or ``"0.15"``): that share of the rows, counted the same way.

With a time axis the parts are whole days in time order (test newest, validation before it, train
before that), so a later day never fits an earlier one. A snapshot has no order: its rows are
assigned to the parts by a seeded hash of their key, stratified by class for classifiers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Unit = Literal["days", "rows", "share"]
_SIZE = re.compile(r"\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>%|d|days?|r|rows?)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class PartSize:
    """A part's size: ``amount`` days, rows, or a share (0 < share < 1) of the rows."""

    amount: float
    unit: Unit

    @classmethod
    def parse(cls, text: str | float | PartSize) -> PartSize:
        """``"5 days"``, ``"500 rows"``, ``"15%"`` or ``0.15`` as a :class:`PartSize`.

        Raises:
            ValueError: for anything else, saying which forms are understood.
        """
        if isinstance(text, PartSize):
            return text
        match = _SIZE.fullmatch(str(text))
        if not match:
            raise ValueError(f"cannot read the part size {text!r}: write e.g. '5 days', '500 rows' or '15%'")
        amount, unit = float(match["amount"]), (match["unit"] or "").lower()
        if unit == "%":
            size = cls(amount / 100, "share")
        elif unit.startswith("d"):
            size = cls(amount, "days")
        elif unit.startswith("r"):
            size = cls(amount, "rows")
        elif amount < 1:
            size = cls(amount, "share")
        else:
            raise ValueError(f"the part size {text!r} needs a unit: '{text} days', '{text} rows' or a share below 1")
        size.validate()
        return size

    def validate(self) -> None:
        if self.unit == "share" and not 0 < self.amount < 1:
            raise ValueError(f"a share must lie between 0 and 1 (exclusive), got {self.amount}")
        if self.unit in ("days", "rows") and (self.amount < 1 or self.amount != int(self.amount)):
            raise ValueError(f"{self.unit} must be a whole number of at least 1, got {self.amount}")

    def rows_of(self, total: int) -> int:
        """How many of ``total`` rows this size asks for (at least 1; days are not rows)."""
        if self.unit == "days":
            raise ValueError("a size in days has no row count")
        wanted = self.amount if self.unit == "rows" else math.ceil(self.amount * total)
        return max(1, int(wanted))

    def __str__(self) -> str:
        if self.unit == "share":
            return f"{self.amount:.0%}" if round(self.amount * 100, 9).is_integer() else f"{self.amount:g}"
        return f"{int(self.amount)} {self.unit}"


@dataclass(frozen=True)
class Split:
    """A problem's training split (settings ``MLP_TRAIN_WINDOW_DAYS``, ``MLP_VALIDATION_SIZE`` and
    ``MLP_TEST_SIZE`` override it).

    Attributes:
        window_days: With a time axis, train on the newest this many day partitions (None: all of
            them; a run above ``MLP_TRAIN_MAX_ROWS`` rows is sampled). Ignored for a snapshot, which
            trains on its newest load.
        validation: Size of the part that chooses the threshold, the best candidate and the search's
            trials (see the module doc for the units).
        test: Size of the held-out part the promotion gate scores.
        group_by: For a snapshot, a column whose rows must stay in one part (a customer, a patient);
            None: the key columns.
    """

    window_days: int | None = None
    validation: str = "15%"
    test: str = "15%"
    group_by: str | None = None

    def __post_init__(self) -> None:
        PartSize.parse(self.validation)
        PartSize.parse(self.test)
        if self.window_days is not None and self.window_days < 3:
            raise ValueError(
                f"window_days must be at least 3 (a train, a validation and a test day), got {self.window_days}"
            )
