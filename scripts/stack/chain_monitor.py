"""Following the pipeline chain (etl -> features -> train -> deploy) run by run, through the REST API."""

from __future__ import annotations

import time
from typing import Any

from stack.airflow_client import AirflowClient
from stack.config import PIPELINE_DAGS


class ChainMonitor:
    """Follows the newest run of each pipeline DAG through the REST API."""

    def __init__(self, client: AirflowClient, dag_ids: tuple[str, ...] = PIPELINE_DAGS):
        self.client = client
        self.dag_ids = dag_ids

    def latest(self) -> dict[str, dict[str, Any] | None]:
        runs = {}
        for dag_id in self.dag_ids:
            found = self.client.runs(dag_id)
            runs[dag_id] = found[0] if found else None
        return runs

    def progress(self, dag_id: str, run: dict[str, Any]) -> str:
        states = [t["state"] for t in self.client.task_instances(dag_id, run["dag_run_id"])]
        done = sum(s in {"success", "skipped"} for s in states)
        failed = sum(s in {"failed", "upstream_failed"} for s in states)
        return f"{done}/{len(states)} tasks done" + (f", {failed} failed" if failed else "")

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
