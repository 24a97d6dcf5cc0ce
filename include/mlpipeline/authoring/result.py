"""What a conformance check returns: a :class:`CheckResult`, built from the :class:`Finding` s it made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One fault of a problem package: what is wrong (naming the column, key or function) and what to fix."""

    detail: str
    fix: str


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check (in the manner of a Dagster asset check result).

    Attributes:
        name: The check's name (one of ``conformance.CHECK_NAMES``).
        passed: Whether the problem keeps the check's promise.
        detail: What the check saw: on a failure, what is wrong, naming the columns, keys or functions.
        fix: What to change in the problem package (empty when passed).
        skipped: Not run, because its input could not be built; another check failed and says why.
    """

    name: str
    passed: bool
    detail: str
    fix: str = ""
    skipped: bool = False

    @property
    def failed(self) -> bool:
        return not self.passed and not self.skipped

    @property
    def status(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"


def verdict(name: str, findings: Sequence[Finding], passed_detail: str) -> CheckResult:
    """Passed with ``passed_detail`` when there are no findings; else failed, with every finding and its fix."""
    if not findings:
        return CheckResult(name, True, passed_detail)
    fixes = list(dict.fromkeys(finding.fix for finding in findings))
    return CheckResult(name, False, "; ".join(finding.detail for finding in findings), "; ".join(fixes))


def skipped(name: str, why: str) -> CheckResult:
    """A check not run because its input could not be built (``why`` names the check that says so)."""
    return CheckResult(name, False, f"not run: {why}", skipped=True)


def brief(error: BaseException, limit: int = 300) -> str:
    """An exception as one line (its type and message), cut at ``limit`` characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
