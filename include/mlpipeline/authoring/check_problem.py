"""Check a problem package against the problem contract, without Airflow, MLflow or a server.

    python -m include.mlpipeline.authoring.check_problem include.<name> [--days 2026-06-01..2026-06-03]

Runs the conformance checks (:mod:`include.mlpipeline.authoring.conformance`) on a small sample of the
problem's own data, prints each verdict with what to fix, and exits 0 when every check passes, 1 when
any fails (or the package cannot be loaded), 2 on a usage error. ``make check-problem
PROBLEM=include.<name>`` runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import textwrap
from collections.abc import Sequence

from include.mlpipeline.authoring.conformance import CHECK_NAMES, run_checks
from include.mlpipeline.authoring.result import CheckResult, brief
from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import get_settings

log = logging.getLogger(__name__)

TIME_AXIS_DAYS = 3  # days sampled by default for a problem with a time axis: a few, so a day's quirks show
MAX_DAYS = 31  # a sample, not a backfill: more days only make the checks slower
WIDTH = 120


def parse_days(text: str) -> list[dt.date]:
    """The days of ``--days``: ``START..END`` (both included) or ISO days separated by commas.

    Raises:
        ValueError: naming what is wrong with ``text``.
    """
    try:
        if ".." in text:
            start, end = (dt.date.fromisoformat(part.strip()) for part in text.split("..", 1))
            if end < start:
                raise ValueError(f"--days {text}: the range ends before it starts")
            days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
        else:
            days = sorted({dt.date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()})
    except ValueError as error:
        if str(error).startswith("--days"):
            raise
        raise ValueError(f"--days {text}: not ISO days (YYYY-MM-DD..YYYY-MM-DD, or YYYY-MM-DD,YYYY-MM-DD)") from None
    if not days:
        raise ValueError("--days: no day given")
    if len(days) > MAX_DAYS:
        raise ValueError(f"--days {text}: {len(days)} days; a sample needs a few (at most {MAX_DAYS})")
    return days


def default_days(problem: ProblemSpec, start: dt.date) -> list[dt.date]:
    """The days checked without ``--days``: one for a snapshot problem (one load is the table); the
    newest days its sources list (``Source.available_days``: a table the user pointed at), or else the
    first days the ETL schedule loads (``MLP_ETL_START_DATE``), which a replay's sources have data for."""
    if problem.snapshot:
        return [start]
    listed = [s for s in problem.sources if s.required and s.available_days is not None]
    if listed:
        days = set.intersection(*(set(source.available_days()) for source in listed))
        if days:
            return sorted(days)[-TIME_AXIS_DAYS:]
    return [start + dt.timedelta(days=n) for n in range(TIME_AXIS_DAYS)]


def format_result(result: CheckResult) -> str:
    """One check's verdict, and what to fix on a failure, wrapped for a terminal."""
    lines = textwrap.wrap(f"{result.status} {result.name}: {result.detail}", WIDTH, subsequent_indent="     ")
    if result.failed and result.fix:
        lines += textwrap.wrap(f"fix: {result.fix}", WIDTH, initial_indent="     ", subsequent_indent="          ")
    return "\n".join(lines)


def summary(results: Sequence[CheckResult]) -> str:
    """``8 checks: 6 passed, 1 failed, 1 skipped`` (a count of none left out, but for passed)."""
    passed, failed = sum(r.passed for r in results), sum(r.failed for r in results)
    parts = [f"{passed} passed"] + [f"{failed} failed"] * bool(failed)
    parts += [f"{len(results) - passed - failed} skipped"] * bool(len(results) - passed - failed)
    return f"{len(results)} checks: {', '.join(parts)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.mlpipeline.authoring.check_problem",
        description="Check a problem package (a module exporting PROBLEM, a ProblemSpec) on a small sample of "
        "its own data, without Airflow, MLflow or a server. Checks, in order: " + ", ".join(CHECK_NAMES) + ". "
        "Exit code 0 if every check passes, 1 if any fails.",
    )
    parser.add_argument("problem", help="the problem package's module, e.g. include.penguins")
    parser.add_argument(
        "--days",
        type=_days_argument,
        help="days the sources have data for: START..END (both included) or DAY,DAY. Default: the first "
        f"{TIME_AXIS_DAYS} days from MLP_ETL_START_DATE (one for a snapshot problem, which uses the newest)",
    )
    parser.add_argument("--seed", type=int, help="seed of the samples and fits (default: MLP_RANDOM_SEED)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step, and tracebacks")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    if args.verbose:
        logging.getLogger("include.mlpipeline.authoring").setLevel(logging.DEBUG)
    write = sys.stdout.write
    try:
        problem = load_problem(args.problem)
    except Exception as error:  # any import error of the package is the author's to see
        log.debug("loading %s failed", args.problem, exc_info=True)
        failure = CheckResult(
            "loads",
            False,
            f"cannot load {args.problem}.PROBLEM: {brief(error)}",
            f"give the module path of a package that exports PROBLEM = ProblemSpec(...), e.g. include.penguins "
            f"(and run from the project root, so that {args.problem.split('.')[0]} imports)",
        )
        write(format_result(failure) + "\n")
        return 1
    days = args.days or default_days(problem, get_settings().etl_start_date)
    kind = f"{problem.task}, {'snapshot' if problem.snapshot else 'time axis'}"
    write(f"check_problem {args.problem} (problem {problem.name}: {kind}) on {_span(days)}\n")
    results = run_checks(problem, days, seed=args.seed)
    for result in results:
        write(format_result(result) + "\n")
    write(summary(results) + "\n")
    return 1 if any(result.failed for result in results) else 0


def _days_argument(text: str) -> list[dt.date]:
    try:
        return parse_days(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _span(days: Sequence[dt.date]) -> str:
    if len(days) <= 3:
        return ", ".join(day.isoformat() for day in days)
    return f"{days[0]}..{days[-1]} ({len(days)} days)"


if __name__ == "__main__":
    sys.exit(main())
