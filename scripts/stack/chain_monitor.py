"""Following the pipeline chain (etl -> features -> train -> deploy) run by run, through the REST API.

A run's progress counts the DAG's tasks, so its total is known before the run starts: a mapped task
is one task, done when all its instances are, and its instances are shown beside the count once it
has expanded (``2/5 tasks done; clean 3/7``), instead of a total of task instances that grows as
tasks expand (0/5, then 2/8, then 6/11).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from typing import Any

from stack.airflow_client import AirflowClient
from stack.config import PIPELINE_DAGS

DONE = frozenset({"success", "skipped"})
FAILED = frozenset({"failed", "upstream_failed"})


def task_progress(tasks: Sequence[dict[str, Any]], instances: Sequence[dict[str, Any]]) -> str:
    """``"2/5 tasks done; clean 3/7"`` for a run: ``tasks`` of its DAG, ``instances`` of the run.

    Args:
        tasks: The DAG's tasks (``task_id``, ``is_mapped``), as ``GET /dags/{id}/tasks`` lists them.
        instances: The run's task instances (``task_id``, ``map_index``, ``state``).

    Returns:
        Tasks done of the DAG's tasks, failed ones if any, and each expanded mapped task's
        instances done of its width.
    """
    by_task: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for instance in instances:
        by_task[instance["task_id"]].append(instance)
    done = failed = 0
    mapped = []
    for task in tasks:
        found = by_task.get(task["task_id"], [])
        expanded = [i for i in found if i.get("map_index") is not None and i["map_index"] >= 0]
        states = [i["state"] for i in (expanded or found)]
        if states and all(state in DONE for state in states):
            done += 1
        elif any(state in FAILED for state in states):
            failed += 1
        if task.get("is_mapped") and expanded:
            mapped.append(f"{task['task_id']} {sum(i['state'] in DONE for i in expanded)}/{len(expanded)}")
    text = f"{done}/{len(tasks)} tasks done" + (f", {failed} failed" if failed else "")
    return text + (f"; {', '.join(mapped)}" if mapped else "")


class ChainMonitor:
    """Follows the newest run of each pipeline DAG through the REST API."""

    def __init__(self, client: AirflowClient, dag_ids: tuple[str, ...] = PIPELINE_DAGS):
        self.client = client
        self.dag_ids = dag_ids
        self._tasks: dict[str, list[dict[str, Any]]] = {}

    def tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's tasks (asked once: a DAG's tasks do not change while it is followed)."""
        if dag_id not in self._tasks:
            self._tasks[dag_id] = self.client.dag_tasks(dag_id)
        return self._tasks[dag_id]

    def plan(self, dag_id: str) -> str:
        """``"5 tasks (extract, clean mapped)"``: what a run of ``dag_id`` will do, before it runs."""
        tasks = self.tasks(dag_id)
        mapped = [task["task_id"] for task in tasks if task.get("is_mapped")]
        return f"{len(tasks)} tasks" + (f" ({', '.join(mapped)} mapped)" if mapped else "")

    def latest(self) -> dict[str, dict[str, Any] | None]:
        """The newest run of each followed DAG (None if it has none), asked for in one call."""
        return self.client.newest_runs(self.dag_ids)

    def progress(self, dag_id: str, run: dict[str, Any]) -> str:
        return task_progress(self.tasks(dag_id), self.client.task_instances(dag_id, run["dag_run_id"]))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        """Wait for one run to finish; return it if it succeeded, raise if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.client.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] == "success":
                return run
            if run["state"] == "failed":
                raise RuntimeError(f"{dag_id} run {run_id} failed: {self.progress(dag_id, run)}")
            time.sleep(2)
        raise TimeoutError(f"{dag_id} run {run_id} not finished within {timeout:.0f}s")

    def wait_for_success(self, dag_id: str, timeout: float = 600) -> dict[str, Any]:
        """Wait until ``dag_id`` has a run (its first one, or any later one) and that run succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.client.runs(dag_id)
            if runs:
                return self.wait_for_run(dag_id, runs[0]["dag_run_id"], timeout=max(1.0, deadline - time.monotonic()))
            time.sleep(2)
        raise TimeoutError(f"no {dag_id} run within {timeout:.0f}s")
