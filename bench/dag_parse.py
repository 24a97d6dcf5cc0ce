"""Parse time of each DAG file next to a trivial DAG file's, measured as Airflow's dag-processor does.

Each measurement parses one file with ``DagBag`` in a fresh interpreter (so module caches do not
help a later file), like the dag-processor's per-file parse, and takes the time DagBag itself
records for the file. Files are measured round robin so that machine noise hits all alike. The ratio column
compares with a one-task DAG file using the same imports style (``from airflow.sdk import dag,
task``): the target is at most 1.5x.

    python bench/dag_parse.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMPTY_DAG = '''"""### Empty: the floor for parse time"""
import datetime as dt

from airflow.sdk import dag, task


@dag(schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False, tags=["bench"])
def empty():
    @task
    def noop() -> None:
        return None

    noop()


empty()
'''

PROBE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
wall = time.perf_counter() - started
stats = [s for s in bag.dagbag_stats]
print(json.dumps({"errors": {k: str(v)[:200] for k, v in bag.import_errors.items()},
                  "dags": len(bag.dags), "duration": sum(s.duration.total_seconds() for s in stats), "wall": wall}))
"""


def parse_once(path: Path, home: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'dags'}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="parses per file (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        empty = home / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        files = [("(empty DAG)", empty), *[(p.name, p) for p in sorted((ROOT / "dags").glob("*.py"))]]
        samples: dict[str, list[float]] = {name: [] for name, _ in files}
        for _ in range(args.repeat):  # round robin, so machine noise hits every file alike
            for name, path in files:
                run = parse_once(path, home)
                if run["errors"]:
                    raise SystemExit(f"{name} has import errors: {run['errors']}")
                samples[name].append(run["duration"])
    results = {name: statistics.median(values) for name, values in samples.items()}
    best = {name: min(values) for name, values in samples.items()}
    floor, best_floor = results["(empty DAG)"], best["(empty DAG)"]
    print(f"| DAG file | median of {args.repeat} (ms) | best (ms) | median / empty | best / empty |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds in results.items():
        print(
            f"| {name} | {seconds * 1000:.0f} | {best[name] * 1000:.0f} | {seconds / floor:.2f} | "
            f"{best[name] / best_floor:.2f} |"
        )


if __name__ == "__main__":
    main()
