"""Does the hyperparameter search pay? The champion's test metric with and without it, on the same rows.

Replays ``--days`` days of the example (default 60, ending ``--last-day`` 2013-12-31) into a
temporary lake, selects the window as the train DAG does, and for every candidate but the baseline:

- fits it with its default parameters (what ``MLP_SEARCH_TRIALS=0`` trains);
- searches ``--trials`` trials (Optuna, seeded; the first trial is the defaults), then fits the best.

Both are scored on the same validation and test rows by the problem's primary metric. The champion
of each mode is the candidate the train DAG would register: the best on validation. No MLflow server
and no Airflow: this measures the modelling, the part a search adds. Prints markdown tables.

    .venv/bin/python bench/search.py [--days 60] [--last-day 2013-12-31] [--trials 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]


def run(candidates: list[str], data: Any, problem: Any, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per candidate and mode: validation and test score, seconds, trials, best parameters."""
    from include.mlpipeline.ml import search, training
    from include.mlpipeline.ml.candidates import find_candidate
    from include.mlpipeline.ml.task_kinds import task_kind

    metric = task_kind(problem.task).primary_metric(problem.primary_metric)
    rows: dict[str, dict[str, Any]] = {}
    for name in candidates:
        started = time.perf_counter()
        plain = training.fit_candidate(name, data, problem=problem, seed=args.seed)
        plain_seconds = time.perf_counter() - started
        started = time.perf_counter()
        found = search.search(
            find_candidate(problem, name), data, problem, seed=args.seed, trials=args.trials, timeout_s=None
        )
        tuned = training.fit_candidate(name, data, problem=problem, seed=args.seed, params=found.best_params)
        tuned_seconds = time.perf_counter() - started
        changed = {k: v for k, v in found.best_params.items() if plain.params and plain.params.get(k) != v}
        rows[name] = {
            "metric": metric,
            "defaults": {"validation": plain.validation[metric], "test": plain.test[metric], "seconds": plain_seconds},
            "search": {
                "validation": tuned.validation[metric],
                "test": tuned.test[metric],
                "seconds": tuned_seconds,
                "trials": len(found.trials),
                "changed": changed,
            },
        }
    return rows


def champion(rows: dict[str, dict[str, Any]], mode: str, greater: bool) -> str:
    sign = 1 if greater else -1
    return max(rows, key=lambda name: sign * rows[name][mode]["validation"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=60, help="replayed feature days in the window")
    parser.add_argument("--last-day", type=dt.date.fromisoformat, default=dt.date(2013, 12, 31))
    parser.add_argument("--trials", type=int, default=20, help="search trials per candidate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (1: as the parallel DAG tasks)")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        os.environ.update(
            {
                "MLP_LAKE_URI": f"file://{tmp}/lake",
                "MLP_DVC_ENABLED": "false",
                "MLP_TRAIN_WINDOW_DAYS": str(args.days),
                "MLFLOW_DISABLE_TELEMETRY": "true",
            }
        )
        from include.mlpipeline.core.problem import load_problem
        from include.mlpipeline.data import etl
        from include.mlpipeline.ml.candidates import baseline_name, problem_candidates
        from include.mlpipeline.ml.task_kinds import greater_is_better
        from include.mlpipeline.ml.window import load_training_set, select_window

        problem = load_problem()
        days = [args.last_day - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
        etl.replay_days(days)
        window = select_window(window_days=args.days)
        data = load_training_set(window)
        candidates = [name for name in problem_candidates(problem) if name != baseline_name(problem)]
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        with threadpool_limits(limits=args.threads):
            rows = run(candidates, data, problem, args)

    metric = next(iter(rows.values()))["metric"]
    greater = greater_is_better(metric)
    print(
        f"problem {problem.name}, window {window.days[0]}..{window.days[-1]} ({len(data.train):,} / "
        f"{len(data.validation):,} / {len(data.test):,} train / validation / test rows), {args.trials} trials per "
        f"candidate, seed {args.seed}, {args.threads} thread(s), {os.cpu_count()} cores, load {load} at start"
    )
    print()
    print(
        f"| candidate | validation {metric}: defaults | search | test {metric}: defaults | search "
        "| seconds: defaults | search | parameters the search changed |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, row in rows.items():
        d, s = row["defaults"], row["search"]
        print(
            f"| {name} | {d['validation']:.4f} | {s['validation']:.4f} | {d['test']:.4f} | {s['test']:.4f} | "
            f"{d['seconds']:.1f} | {s['seconds']:.1f} | {s['changed'] or 'none'} |"
        )
    print()
    plain, tuned = champion(rows, "defaults", greater), champion(rows, "search", greater)
    cost = sum(row["search"]["seconds"] for row in rows.values())
    base = sum(row["defaults"]["seconds"] for row in rows.values())
    print(f"| champion (best on validation) | candidate | test {metric} | training time, all candidates (s) |")
    print("| --- | --- | ---: | ---: |")
    print(f"| without search | {plain} | {rows[plain]['defaults']['test']:.4f} | {base:.1f} |")
    print(f"| with {args.trials} trials per candidate | {tuned} | {rows[tuned]['search']['test']:.4f} | {cost:.1f} |")


if __name__ == "__main__":
    main()
