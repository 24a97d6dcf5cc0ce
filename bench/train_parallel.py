"""Wall time of the train step: candidates in parallel (as the train DAG maps them) versus one after another.

Starts an MLflow server (SQLite in a temporary folder), replays ``--days`` days (default 45) of the
example into a temporary lake, selects the window as the train DAG does, and calls
``train_candidate`` for every candidate against the server:

- sequential: one process trains the candidates one after another;
- parallel: a pool of ``--workers`` processes (default 4), one candidate each, like the DAG's
  mapped ``train_candidate`` tasks; no Airflow processes are involved.

Every process is warm before timing starts (imports done, MLflow client configured), so the table
compares training work, not interpreter start-up. Repeats alternate the order of the modes, and the
median is reported.

Then the cost of the evaluation artifacts each child run logs (``evaluation.write_evaluation`` plus
their upload), measured on its own for every fitted candidate: taking the difference of two whole
train_candidate calls instead would drown it in the fits' own variance on a busy machine.

Prints markdown tables and the machine (cores, load when the run started).

    .venv/bin/python bench/train_parallel.py [--days 45] [--workers 4] [--repeat 1] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from stack.mlflow_server import running_mlflow_server  # noqa: E402


def warm_up(barrier: Any | None = None) -> int:
    """Import what training needs and point MLflow at the server; with a barrier, wait for every worker.

    The barrier makes each warm-up task land on a different pool worker, so all of them are warm.
    """
    import mlflow.sklearn  # noqa: F401

    from include.mlpipeline.ml import evaluation, tracking  # noqa: F401

    tracking.configure()
    if barrier is not None:
        barrier.wait()
    return os.getpid()


TEST_METRICS: dict[str, dict[str, float]] = {}  # candidate -> test metrics (from the sequential runs)


def train_one(name: str, window: dict[str, Any], parent: str) -> tuple[str, float, float]:
    """One candidate, timed (runs in a pool worker or in this process).

    Returns:
        name, wall seconds, CPU seconds of this process (threads included; less sensitive than wall
        time to other work on the machine).
    """
    from include.mlpipeline.ml.training import train_candidate

    started, cpu = time.perf_counter(), time.process_time()
    result = train_candidate(name, window, parent)
    TEST_METRICS[name] = result["test"]  # kept only in the calling process, i.e. for the sequential mode
    return name, time.perf_counter() - started, time.process_time() - cpu


def sequential(candidates: list[str], window: dict[str, Any]) -> dict[str, float]:
    from include.mlpipeline.ml import tracking

    parent = tracking.start_parent_run(window, run_name="bench sequential")
    started = time.perf_counter()
    times = [train_one(name, window, parent) for name in candidates]
    return _timings(time.perf_counter() - started, times)


def parallel(pool: ProcessPoolExecutor, candidates: list[str], window: dict[str, Any]) -> dict[str, float]:
    from include.mlpipeline.ml import tracking

    parent = tracking.start_parent_run(window, run_name="bench parallel")
    started = time.perf_counter()
    futures = [pool.submit(train_one, name, window, parent) for name in candidates]
    times = [future.result() for future in futures]
    return _timings(time.perf_counter() - started, times)


def _timings(wall: float, times: list[tuple[str, float, float]]) -> dict[str, float]:
    return {"wall": wall, **{name: seconds for name, seconds, _ in times}, **{f"{n}:cpu": c for n, _, c in times}}


def artifact_costs(candidates: list[str], window: Any, data: Any, repeat: int) -> dict[str, dict[str, float]]:
    """Per candidate: median wall and CPU seconds of writing the evaluation artifacts, and of uploading them."""
    import mlflow

    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.ml import tracking, training
    from include.mlpipeline.ml.evaluation import write_evaluation

    problem = load_problem()
    parent = tracking.start_parent_run(window.to_dict(), run_name="bench evaluation artifacts")
    costs = {}
    for name in candidates:
        fitted = training.fit_candidate(name, data, problem=problem)
        samples: dict[str, list[float]] = {"write": [], "write_cpu": [], "upload": []}
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as folder:
                started, cpu = time.perf_counter(), time.process_time()
                write_evaluation(Path(folder), problem=problem, candidate=name, window=window, data=data, fitted=fitted)
                samples["write"].append(time.perf_counter() - started)
                samples["write_cpu"].append(time.process_time() - cpu)
                with mlflow.start_run(run_name=f"{name} artifacts", parent_run_id=parent, nested=True):
                    started = time.perf_counter()
                    mlflow.log_artifacts(folder, artifact_path="evaluation")
                    samples["upload"].append(time.perf_counter() - started)
        costs[name] = {key: statistics.median(values) for key, values in samples.items()}
    return costs


def build_lake(days: list[dt.date]) -> None:
    from include.mlpipeline.data import etl

    etl.replay_days(days)


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            model,
        )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    import sklearn

    return (
        f"{platform.system()} {platform.machine()}, {model}, {os.cpu_count()} logical cores ({usable} usable), "
        f"load average {load} at start; Python {platform.python_version()}, scikit-learn {sklearn.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=45, help="replayed feature days in the window (30-60 is typical)")
    parser.add_argument(
        "--last-day", type=dt.date.fromisoformat, default=dt.date(2013, 7, 31),
        help="last replayed day of the window (2013-12-31: the model the train DAG fits at the year's end)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=4, help="processes in the parallel pool")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode (median reported)")
    parser.add_argument(
        "--threads", type=int, default=None, help="OpenMP/BLAS threads per process (default: the libraries' own)"
    )
    args = parser.parse_args()
    if args.threads:
        # Read by OpenMP and BLAS when they load, here and in the pool workers (which inherit the environment).
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.threads)
    header = machine()  # before anything of ours loads the machine

    with (
        tempfile.TemporaryDirectory(prefix="bench-train-") as tmp,
        # Two server workers, as make run starts it: parallel candidates upload their models at once.
        running_mlflow_server(Path(tmp) / "mlflow", workers=2) as tracking_uri,
    ):
        folder = Path(tmp)
        os.environ.update(
            {
                "MLP_LAKE_URI": f"file://{folder}/lake",
                "MLP_MLFLOW_TRACKING_URI": tracking_uri,
                "MLP_EXPERIMENT_NAME": "bench_train_parallel",
                "MLP_DVC_WORKDIR": str(folder / "dvc"),
                "MLP_DVC_REMOTE_URL": str(folder / "dvc-remote"),
                "MLFLOW_DISABLE_TELEMETRY": "true",
            }
        )
        days = [args.last_day - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
        started = time.perf_counter()
        build_lake(days)
        lake_seconds = time.perf_counter() - started

        from include.mlpipeline.core.problem import load_problem
        from include.mlpipeline.ml.candidates import problem_candidates
        from include.mlpipeline.ml.window import load_training_set, select_window

        window = select_window(window_days=args.days)
        data = load_training_set(window)
        candidates = list(problem_candidates(load_problem()))
        warm_up()
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager, ProcessPoolExecutor(args.workers, mp_context=context) as pool:
            barrier = manager.Barrier(args.workers)
            list(pool.map(warm_up, [barrier] * args.workers))
            results: dict[str, list[dict[str, float]]] = {"sequential": [], "parallel": []}
            for repeat in range(args.repeat):
                if repeat % 2 == 0:
                    results["sequential"].append(sequential(candidates, window.to_dict()))
                    results["parallel"].append(parallel(pool, candidates, window.to_dict()))
                else:
                    results["parallel"].append(parallel(pool, candidates, window.to_dict()))
                    results["sequential"].append(sequential(candidates, window.to_dict()))
        costs = artifact_costs(candidates, window, data, args.repeat)

    median = {mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for mode, runs in results.items()}
    print(f"machine: {header}")
    print(
        f"window: {window.days[0]}..{window.days[-1]} ({args.days} replayed days of 2013: "
        f"{len(window.train_days)} train, "
        f"{len(window.validation_days)} validation, {len(window.test_days)} test; rows {len(data.train):,} / "
        f"{len(data.validation):,} / {len(data.test):,}); lake built in {lake_seconds:.0f} s; "
        f"candidates {', '.join(candidates)}; median of {args.repeat}"
    )
    print()
    seq, par = median["sequential"]["wall"], median["parallel"]["wall"]
    threads = f"{args.threads} thread(s) per process" if args.threads else "default threads per process"
    print(f"| train step ({threads}) | wall time (s) | speed-up vs sequential |")
    print("| --- | ---: | ---: |")
    print(f"| sequential, 1 process | {seq:.1f} | 1.00 |")
    print(f"| parallel, pool of {args.workers} processes | {par:.1f} | {seq / par:.2f} |")
    print()
    print(
        "| candidate | sequential: wall (s) | sequential: CPU (s) | in the pool: wall (s) "
        "| evaluation artifacts: write, wall (s) | write, CPU (s) | upload (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in candidates:
        cost = costs[name]
        print(
            f"| {name} | {median['sequential'][name]:.1f} | {median['sequential'][f'{name}:cpu']:.1f} | "
            f"{median['parallel'][name]:.1f} | {cost['write']:.1f} | {cost['write_cpu']:.1f} | {cost['upload']:.2f} |"
        )
    print()
    print("| candidate (test days) | ROC AUC | PR AUC | log loss | Brier | F1 at threshold |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in candidates:
        values = " | ".join(f"{TEST_METRICS[name][k]:.3f}" for k in ("roc_auc", "pr_auc", "log_loss", "brier", "f1"))
        print(f"| {name} | {values} |")


if __name__ == "__main__":
    main()
