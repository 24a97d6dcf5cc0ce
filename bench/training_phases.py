"""Where a training task's time goes, per phase: from Airflow's timestamps and the task's own clock.

``train_candidate`` (include/mlpipeline/ml/training.py) returns, with its candidate, the seconds of
its phases (imports, setup, load, fit, evaluate, log; ``began`` / ``ended`` as epoch seconds). Airflow
adds the rest: ``queued`` (queued -> the task process starts: the executor taking it), ``start-up``
(the task process starts -> the task function begins: the task runner's start, parsing dags/train.py,
the callbacks), ``finish`` (the function returns -> the task ends: XCom push, the end callbacks). The
task's duration is the sum of start-up, the six phases and finish.

``bench/pipeline.py`` prints this table for its x1 train run. For a running stack (``make run``):

    .venv/bin/python bench/training_phases.py [--state-dir .local] [--run RUN_ID]

reads the newest (or the given) train run through the REST API, with the login in the state folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from stack.airflow_client import AirflowClient  # noqa: E402
from stack.config import local_config  # noqa: E402

TASK_PHASES = ("imports", "setup", "load", "fit", "evaluate", "log")  # include.mlpipeline.ml.training.PHASES
COLUMNS = ("queued", "start-up", *TASK_PHASES, "finish", "task")


def seconds_between(start: str | float | None, end: str | float | None) -> float | None:
    """``end - start`` in seconds; each an ISO time (Airflow's) or epoch seconds (the task's clock)."""
    if start is None or end is None:
        return None
    start_s = start if isinstance(start, float | int) else dt.datetime.fromisoformat(start).timestamp()
    end_s = end if isinstance(end, float | int) else dt.datetime.fromisoformat(end).timestamp()
    return end_s - start_s


def candidate_phases(client: AirflowClient, run_id: str, dag_id: str = "train") -> list[dict[str, Any]]:
    """One row per ``train_candidate`` instance of the run: the seconds of each of :data:`COLUMNS`."""
    rows = []
    for ti in client.task_instances(dag_id, run_id):
        if ti["task_id"] != "train_candidate" or ti["state"] != "success":
            continue
        entry = client.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/train_candidate/xcomEntries/return_value",
            params={"map_index": ti["map_index"], "deserialize": True, "stringify": False},
        )
        value = entry["value"]
        value = json.loads(value) if isinstance(value, str) else value
        phases = value.get("phases") or {}
        row: dict[str, Any] = {
            "candidate": ti.get("rendered_map_index") or value.get("name") or str(ti["map_index"]),
            "queued": seconds_between(ti.get("queued_when"), ti["start_date"]),
            "start-up": seconds_between(ti["start_date"], phases.get("began")),
            **{phase: phases.get(phase) for phase in TASK_PHASES},
            "finish": seconds_between(phases.get("ended"), ti["end_date"]),
            "task": seconds_between(ti["start_date"], ti["end_date"]),
        }
        rows.append(row)
    return sorted(rows, key=lambda row: row["candidate"])


def phase_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, with the median of each column last."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        "| candidate | " + " | ".join(COLUMNS) + " |",
        "| --- |" + " ---: |" * len(COLUMNS),
    ]
    for row in rows:
        lines.append(f"| {row['candidate']} | " + " | ".join(cell(row[c]) for c in COLUMNS) + " |")
    if rows:
        lines.append("| median | " + " | ".join(cell(median_of(rows, c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


def median_of(rows: list[dict[str, Any]], column: str) -> float | None:
    values = [row[column] for row in rows if row[column] is not None]
    return statistics.median(values) if values else None


def outside_fit(rows: list[dict[str, Any]]) -> str:
    """A sentence: the median task, its fit, and the share of the task spent outside the fit."""
    task, fit = median_of(rows, "task"), median_of(rows, "fit")
    if not task or fit is None:
        return "no phases recorded (a train run from before the phases were timed?)"
    return f"median task {task:.1f} s, of which fit {fit:.1f} s: {100 * (1 - fit / task):.0f}% outside the fit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, help="the stack's state folder (default: MLP_STACK_STATE_DIR)")
    parser.add_argument("--run", help="a train run id (default: the newest train run)")
    args = parser.parse_args()
    config = local_config({**os.environ, **({"MLP_STACK_STATE_DIR": str(args.state_dir)} if args.state_dir else {})})
    secrets = json.loads((config.state_dir / "secrets.json").read_text())
    client = AirflowClient(config.airflow_url, "admin", secrets["admin_password"])
    run_id = args.run or client.runs("train")[0]["dag_run_id"]
    rows = candidate_phases(client, run_id)
    print(f"train run {run_id}\n")
    print(phase_table(rows))
    print(f"\n{outside_fit(rows)}")


if __name__ == "__main__":
    main()
