"""The few Airflow REST API v2 calls the stack, the tests and the benchmarks make."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from stack.config import PIPELINE_DAGS


class AirflowClient:
    """The few Airflow REST API v2 calls the tools need, with a JWT from /auth/token."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        self._credentials = {"username": username, "password": password}
        self._client = httpx.Client(base_url=base_url, timeout=30)
        self._token_at: float | None = None  # not 0.0: monotonic time starts near 0 on a freshly booted machine

    def _auth(self) -> None:
        if self._token_at is not None and time.monotonic() - self._token_at < 600:
            return
        response = self._client.post("/auth/token", json=self._credentials)
        response.raise_for_status()
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self._token_at = time.monotonic()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self._auth()
        response = self._client.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 100})["dags"]}

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/importErrors")["import_errors"]

    def wait_for_dags(self, dag_ids: tuple[str, ...] = PIPELINE_DAGS, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(dag_ids) <= self.dag_ids():
                return
            errors = self.import_errors()
            if errors:
                raise RuntimeError(f"DAG import errors: {json.dumps(errors, indent=1)[:3000]}")
            time.sleep(1)
        raise TimeoutError(f"DAGs {dag_ids} not parsed within {timeout:.0f}s; found {sorted(self.dag_ids())}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> dict[str, Any]:
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json={"conf": conf or {}, "logical_date": logical_date})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 50})[
            "dag_runs"
        ]

    def newest_runs(self, dag_ids: tuple[str, ...], per_dag: int = 5) -> dict[str, dict[str, Any] | None]:
        """The newest run of each of ``dag_ids`` (None if it has none), in one call (the batch list).

        ``per_dag`` runs a DAG are asked for on average; a DAG crowded out of that page by the others'
        newer runs is asked for on its own.
        """
        body = {"dag_ids": list(dag_ids), "order_by": "-run_after", "page_limit": per_dag * len(dag_ids)}
        newest: dict[str, dict[str, Any] | None] = {}
        for run in self.request("POST", "/dags/~/dagRuns/list", json=body)["dag_runs"]:
            newest.setdefault(run["dag_id"], run)
        for dag_id in dag_ids:
            if dag_id not in newest:
                found = self.runs(dag_id)
                newest[dag_id] = found[0] if found else None
        return {dag_id: newest[dag_id] for dag_id in dag_ids}

    def dag_tasks(self, dag_id: str) -> list[dict[str, Any]]:
        """The tasks of a DAG as its definition has them (``task_id``, ``is_mapped``, ...)."""
        return self.request("GET", f"/dags/{dag_id}/tasks")["tasks"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})[
            "task_instances"
        ]
