"""Batch scoring's throughput: rows/s, seconds and peak memory of ``BatchScorer`` for a day and for the year at x10.

Data. The flights example's source files at a scale K, built as ``bench/scale.py`` builds them
(``scale.write_flights``: each day's real flights plus K-1 perturbed copies, the reference tables
unscaled), then the ETL's own steps (``etl.extract_source`` for each source, ``etl.transform_partitions``)
make the clean partitions batch scoring reads, in a lake of that scale (DVC off).

Model. The problem's ``hist_gradient_boosting`` candidate (the shipped champion's kind), fitted on the
first day's feature partition and given the scoring form the API's warm-up chooses
(``scoring_form.choose_form`` on the canaries): the model only has to answer as a champion would, its
quality is not measured here.

Runs. Each measurement is a fresh process (this script with ``--child``) whose clock covers
``BatchScorer.score(days)`` only: read each clean partition, the request checks, ``serving_frame``,
``build_features``, the model, and the committed ``batch_predictions`` and quarantine partitions.
Peak memory is that process's ``VmHWM`` (the kernel's high-water mark of its resident set, see
``bench/scale.py``); its resident set before scoring (interpreter, imports, model) is shown beside it.

Default measurements: one day at x1 and at x10, and ``--days`` days at x10 (365: the year). On a
busy machine ``--days 31`` measures a month at x10 and the table extrapolates the year from its rows/s
(the row says so).

    .venv/bin/python bench/batch_scoring.py [--days 365] [--day 2013-06-14] [--chunk-rows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "bench")]

import scale  # noqa: E402 - bench/scale.py: the x K source files and the child's environment

YEAR_DAYS = 365
ETL_CHUNK_DAYS = 31  # days per extract/transform call while building the lake (not measured)
CANDIDATE = "hist_gradient_boosting"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def resident_gib(field: str = "VmHWM") -> float:
    """A field of /proc/self/status (``VmHWM`` the peak, ``VmRSS`` now) in GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / scale.GIB
    raise RuntimeError(f"/proc/self/status has no {field}: this bench needs Linux")


# ------------------------------------------------------------------------------------ children
def build_lake(days: list[dt.date], model_path: Path) -> dict[str, Any]:
    """The child that prepares: clean partitions for ``days`` and the fitted model (pickled)."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.data import etl
    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.ml.candidates import problem_candidates

    problem = load_problem()
    started = time.perf_counter()
    for start in range(0, len(days), ETL_CHUNK_DAYS):
        chunk = days[start : start + ETL_CHUNK_DAYS]
        for source in problem.sources:
            etl.extract_source(source.name, chunk)
        etl.transform_partitions(chunk)
    etl.build_feature_partitions(days[:1])
    train = Lake.from_settings().read(etl.FEATURES, days[0])
    candidate = problem_candidates(problem)[CANDIDATE]
    pipeline = candidate.build(problem, candidate.params, 0).fit(train[problem.feature_columns], train[problem.target])
    model_path.write_bytes(pickle.dumps(pipeline))
    return {"seconds": time.perf_counter() - started, "train_rows": len(train)}


def score_lake(days: list[dt.date], model_path: Path, chunk_rows: int) -> dict[str, Any]:
    """The child that measures: the champion-like model warmed up, then ``BatchScorer.score(days)`` timed."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.core.settings import get_settings
    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.deployment.batch_scoring import BatchScorer
    from include.mlpipeline.serving.model_store import LoadedModel
    from include.mlpipeline.serving.scoring_form import choose_form

    problem, settings = load_problem(), get_settings()
    context = problem.load_serving_context()
    pipeline = pickle.loads(model_path.read_bytes())  # noqa: S301 - the file the prepare child just wrote
    model = LoadedModel(problem.name, "1", None, pipeline, 0.5, list(problem.feature_columns), task=problem.task)
    canaries = problem.request_features(problem.canary_records(), context)[model.features]
    form = choose_form(pipeline, model.kind, canaries)
    model = LoadedModel(
        problem.name, "1", None, pipeline, 0.5, list(problem.feature_columns), task=problem.task, scoring=form
    )
    scorer = BatchScorer(
        model, problem=problem, context=context, lake=Lake.from_settings(settings), settings=settings,
        chunk_rows=chunk_rows,
    )  # fmt: skip
    before = resident_gib("VmRSS")
    started = time.perf_counter()
    extra = scorer.score([day.isoformat() for day in days])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": extra["rows"],
        "rows_quarantined": extra["rows_quarantined"],
        "partitions": len(extra["partitions"]),
        "form": form.form,
        "rss_before_gib": before,
        "peak_gib": resident_gib("VmHWM"),
    }


def run_child(args: argparse.Namespace) -> None:
    logging.basicConfig(filename=Path(args.work) / f"{args.child}.log", level=logging.INFO)
    days = [dt.date.fromisoformat(args.first) + dt.timedelta(days=n) for n in range(args.count)]
    model_path = Path(args.work) / "model.pkl"
    result = build_lake(days, model_path) if args.child == "prepare" else score_lake(days, model_path, args.chunk_rows)
    Path(args.result).write_text(json.dumps(result, default=str))


# ------------------------------------------------------------------------------------ parent
def child(
    kind: str, folder: Path, env: dict[str, str], *, first: dt.date, count: int, chunk_rows: int
) -> dict[str, Any]:
    """One child process; its JSON result (or the tail of its output when it failed)."""
    result = folder / f"{kind}.json"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", kind, "--work", str(folder), "--result", str(result),
        "--first", first.isoformat(), "--count", str(count), "--chunk-rows", str(chunk_rows),
    ]  # fmt: skip
    with (folder / f"{kind}.out").open("wb") as output:
        code = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        tail = (folder / f"{kind}.out").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{kind} child failed (exit {code}):\n" + "\n".join(tail))
    return json.loads(result.read_text())


def measure(
    label: str, factor: int, *, first: dt.date, count: int, work: Path, templates: dict[str, str], chunk_rows: int
) -> dict[str, Any]:
    """A lake of ``count`` days from ``first`` at ``factor``, then its batch scoring measured."""
    folder = work / label.replace(" ", "_")
    folder.mkdir(parents=True)
    days = [first + dt.timedelta(days=n) for n in range(count)]
    rows = scale.write_flights(folder / "source", factor, days)
    env = scale.stage_env(folder, templates, {})
    env["MLP_PROBLEM"] = "include.flight_delay"
    prepared = child("prepare", folder, env, first=first, count=count, chunk_rows=chunk_rows)
    say(f"{label}: {rows:,} source rows, lake built in {prepared['seconds']:.0f} s; scoring")
    result = child("score", folder, env, first=first, count=count, chunk_rows=chunk_rows)
    say(f"{label}: {result['rows']:,} rows scored in {result['seconds']:.1f} s")
    shutil.rmtree(folder / "source", ignore_errors=True)
    return {"label": label, "factor": factor, "days": count, **result}


def table(results: list[dict[str, Any]], year_days: int) -> list[str]:
    lines = [
        "| data | days | rows scored | seconds | rows/s | peak RSS (GiB) | RSS before scoring (GiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['days']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
            f"{r['peak_gib']:.2f} | {r['rss_before_gib']:.2f} |"
        )
    longest = results[-1]
    if longest["days"] < year_days:  # a month measured: the year from its rate
        factor = year_days / longest["days"]
        lines.append(
            f"| year x{longest['factor']} (extrapolated from {longest['days']} days at their rows/s) | {year_days} | "
            f"~{longest['rows'] * factor:,.0f} | ~{longest['seconds'] * factor:.0f} | "
            f"{longest['rows'] / longest['seconds']:,.0f} | ~{longest['peak_gib']:.2f} (per chunk: flat) | |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=YEAR_DAYS, help="days of 2013 at x10 (365: the year; 31: a month)")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2013, 6, 14), help="the one day measured")
    parser.add_argument("--chunk-rows", type=int, help="BatchScorer chunk_rows (default: batch_scoring.CHUNK_ROWS)")
    parser.add_argument("--keep", type=Path, help="keep the lakes and logs in this folder")
    parser.add_argument("--child", choices=("prepare", "score"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    if not 1 <= args.days <= YEAR_DAYS:
        parser.error(f"--days must be 1..{YEAR_DAYS}")
    from serving import machine  # bench/serving.py's machine line: cores, CPU, RAM, load

    from include.mlpipeline.deployment.batch_scoring import CHUNK_ROWS

    chunk_rows = args.chunk_rows or CHUNK_ROWS
    header = machine()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.pop("MLP_PROBLEM", None)
    try:
        templates = scale.write_reference(work / "reference")
        plans = [("one day x1", 1, args.day, 1), ("one day x10", 10, args.day, 1)]
        span = "year" if args.days == YEAR_DAYS else f"{args.days} days"
        plans.append((f"{span} x10", 10, scale.FIRST_DAY, args.days))
        results = [
            measure(label, k, first=first, count=n, work=work, templates=templates, chunk_rows=chunk_rows)
            for label, k, first, n in plans
        ]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load1, load5, _ = os.getloadavg()
    print(f"machine: {header}; at the end {load1:.1f} (1 min) / {load5:.1f} (5 min)")
    print(
        f"model: {CANDIDATE} fitted on the first day, served as {results[0]['form']}; chunk_rows {chunk_rows:,}; "
        "seconds: BatchScorer.score (read, request checks, features, model, both partitions written)"
    )
    print()
    print("\n".join(table(results, YEAR_DAYS)))


if __name__ == "__main__":
    main()
