"""Run pipeline steps without Airflow: the same functions the DAG tasks call, over a range of days.

Used by the DVC stages in ``dvc.yaml`` (``make repro``) and handy for debugging a step::

    python -m include.mlpipeline.data.cli extract  --start 2013-06-01 --end 2013-06-07 [--lake file:///tmp/lake]
    python -m include.mlpipeline.data.cli clean    --start 2013-06-01 --end 2013-06-07
    python -m include.mlpipeline.data.cli features --start 2013-06-01 --end 2013-06-07

A failed quality gate exits with status 2 and names the failed checks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("include.mlpipeline.data.cli")


def day_range(start: str, end: str) -> list[str]:
    """Every ISO day from ``start`` to ``end``, both included."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if last < first:
        raise ValueError(f"end {end} is before start {start}")
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def run(step: str, days: list[str]) -> dict:
    """Run one step over ``days`` and return a summary (what the DAG's asset event would carry)."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.data import etl

    if step == "extract":
        return {s.name: etl.extract_source(s.name, days)["days"] for s in load_problem().sources}
    if step == "clean":
        return etl.summarize_partitions(etl.transform_partitions(days))
    if step == "features":
        return etl.summarize_partitions(etl.build_feature_partitions(days))
    raise ValueError(f"unknown step {step!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run pipeline steps without Airflow.")
    parser.add_argument("step", choices=["extract", "clean", "features"])
    parser.add_argument("--start", required=True, help="first day (ISO)")
    parser.add_argument("--end", required=True, help="last day (ISO), included")
    parser.add_argument("--lake", help="lake URI (default: MLP_LAKE_URI); a plain path is made absolute")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    if args.lake:
        lake = args.lake if "://" in args.lake else f"file://{Path(args.lake).resolve()}"
        os.environ["MLP_LAKE_URI"] = lake
        from include.mlpipeline.core.settings import get_settings

        get_settings.cache_clear()
    from include.mlpipeline.data.quality import DataQualityError

    try:
        summary = run(args.step, day_range(args.start, args.end))
    except DataQualityError as error:
        log.error("%s", error)
        return 2
    log.info("%s: %s", args.step, json.dumps(summary, default=str)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
