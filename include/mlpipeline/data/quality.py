"""Quality gates: pandera contracts that decide whether data may pass a handoff.

A gate validates a frame lazily (every failure in one pass) and sorts the failures:

- **row-level** (a value out of range, a null key, a duplicate, a value that cannot be coerced):
  those rows go to quarantine with the names of the checks they failed, and the good rows pass,
  as long as the quarantined share stays at or below ``max_quarantine_share``;
- **table-level** (a missing or renamed column, an unexpected column, a wrong dtype, an empty
  frame where data was expected), or too many bad rows: the gate raises :class:`DataQualityError`,
  naming every failed check. That error is deterministic: orchestrators must not retry it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa

log = logging.getLogger(__name__)

FAILED_CHECKS_COLUMN = "_failed_checks"
_MAX_ROUNDS = 4


class DataQualityError(Exception):
    """Data broke a contract. Retrying cannot help; the message names the failed checks."""

    def __init__(self, gate: str, failed_checks: dict[str, int], detail: str = ""):
        self.gate = gate
        self.failed_checks = dict(failed_checks)
        checks = "; ".join(
            f"{name} ({count} rows)" if count else name for name, count in sorted(self.failed_checks.items())
        )
        message = f"quality gate '{gate}' failed: {checks}"
        super().__init__(f"{message}. {detail}".strip() if detail else message)


@dataclass
class GateReport:
    """What a gate saw and decided; goes to logs, XCom and asset event extras."""

    gate: str
    rows_in: int
    rows_out: int
    rows_quarantined: int
    failed_checks: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined_share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "quarantined_share": round(self.quarantined_share, 6)}


@dataclass
class GateResult:
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    report: GateReport


def _check_name(row: pd.Series) -> str:
    column = row["column"]
    check = str(row["check"])
    if row["schema_context"] == "DataFrameSchema":
        return f"{check}:{row['failure_case']}" if check in {"column_in_dataframe", "column_in_schema"} else check
    return f"{column}:{check}"


def apply_gate(
    frame: pd.DataFrame,
    schema: type[pa.DataFrameModel],
    *,
    gate: str,
    max_quarantine_share: float,
    allow_empty: bool = False,
) -> GateResult:
    """Validate ``frame`` against ``schema``; quarantine bad rows or raise.

    Args:
        frame: The data to check.
        schema: The pandera contract (coercing models return properly typed frames).
        gate: Name used in logs, reports and errors (for example ``"clean"``).
        max_quarantine_share: Largest share of rows that may be quarantined (0.01 = 1%).
        allow_empty: Whether an empty frame is acceptable.

    Returns:
        The valid rows (validated and coerced), the quarantined rows (original values plus a
        ``_failed_checks`` column) and a :class:`GateReport`.

    Raises:
        DataQualityError: on a table-level failure, an unexpected empty frame, or too many bad rows.
    """
    rows_in = len(frame)
    if rows_in == 0 and not allow_empty:
        raise DataQualityError(gate, {"not_empty": 0}, "The frame is empty where data was expected.")

    remaining = frame
    quarantined_parts: list[pd.DataFrame] = []
    row_failures: Counter[str] = Counter()
    for _ in range(_MAX_ROUNDS):
        try:
            valid = schema.validate(remaining, lazy=True)
            break
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases.copy()
            cases["name"] = cases.apply(_check_name, axis=1)
            row_cases = cases[cases["index"].notna()]
            table_cases = cases[cases["index"].isna()]
            if row_cases.empty:
                # Only table-level failures remain: structure, dtype or whole-frame checks.
                counts = Counter({name: 0 for name in table_cases["name"]})
                counts.update({k: v for k, v in row_failures.items()})
                raise DataQualityError(gate, counts) from None
            bad_index = pd.Index(row_cases["index"].unique())
            reasons = row_cases.groupby("index")["name"].agg(lambda names: ";".join(sorted(set(names))))
            bad_rows = remaining.loc[remaining.index.isin(bad_index)].copy()
            bad_rows[FAILED_CHECKS_COLUMN] = reasons.reindex(bad_rows.index).to_numpy()
            quarantined_parts.append(bad_rows)
            for names in row_cases.groupby("index")["name"].agg(set):
                row_failures.update(names)
            remaining = remaining.loc[~remaining.index.isin(bad_index)]
    else:
        raise DataQualityError(gate, dict(row_failures), f"Still failing after {_MAX_ROUNDS} rounds of quarantine.")

    quarantined = (
        pd.concat(quarantined_parts) if quarantined_parts else frame.iloc[0:0].assign(**{FAILED_CHECKS_COLUMN: ""})
    )
    report = GateReport(
        gate=gate,
        rows_in=rows_in,
        rows_out=len(valid),
        rows_quarantined=len(quarantined),
        failed_checks=dict(row_failures),
    )
    if report.quarantined_share > max_quarantine_share:
        raise DataQualityError(
            gate,
            dict(row_failures),
            f"{report.rows_quarantined} of {rows_in} rows ({report.quarantined_share:.2%}) broke row-level "
            f"checks; the limit is {max_quarantine_share:.2%}.",
        )
    if len(valid) == 0 and not allow_empty:
        raise DataQualityError(gate, {"not_empty": 0, **row_failures}, "No valid rows remain.")
    if report.rows_quarantined:
        log.warning(
            "gate %s quarantined %d of %d rows (%.2f%%): %s",
            gate,
            report.rows_quarantined,
            rows_in,
            100 * report.quarantined_share,
            dict(row_failures),
        )
    else:
        log.info("gate %s passed: %d rows", gate, rows_in)
    return GateResult(valid=valid.reset_index(drop=True), quarantined=quarantined, report=report)
