"""Replay a range of days (default: all of 2013) through `etl` and `features` on a real Airflow.

Starts an isolated stack (scripts/stack.py: scheduler, dag-processor, triggerer, api-server,
MLflow, API) on free ports, pauses `train` and `deploy` (this measures the data path), creates an
Airflow 3 backfill of `etl` through the REST API with several runs in parallel, and waits until
every ETL run has finished and `features` has built every clean partition. Meanwhile it samples the
memory of every process of the stack. Then it reconciles (include/mlpipeline/reconciliation.py):
rows in = published + quarantined for every day and dataset, every asset event matches the lake and
every published partition was announced. Prints a table: wall time, runs, rows in / out /
quarantined per stage, peak memory, and the reconciliation.

Airflow 3.3 refuses to create a backfill on SQLite while the scheduler runs, so the stack is the
production-like one: Airflow on PostgreSQL with the CeleryExecutor, a Redis broker and ``--workers``
Celery workers (127.0.0.1:5432 and :6379; the databases are created and dropped here).

    python bench/year_replay.py [--start 2013-01-01] [--end 2013-12-31] [--parallel 4] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from stack import Stack, StackConfig, create_postgres_database, drop_postgres_database  # noqa: E402

REDIS_DB = 12  # a database of the local Redis nothing else here uses; flushed before and after


class MemorySampler(threading.Thread):
    """Peak memory of a set of process trees: the largest sum over all, and the largest single process."""

    def __init__(self, roots: list[int], interval: float = 0.5):
        super().__init__(daemon=True)
        self.roots, self.interval = roots, interval
        self.peak_total = self.peak_process = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            total = 0
            for root in self.roots:
                try:
                    tree = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
                for process in tree:
                    try:
                        rss = process.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    total += rss
                    self.peak_process = max(self.peak_process, rss)
            self.peak_total = max(self.peak_total, total)


def count_runs(stack: Stack, dag_id: str, **filters: str) -> int:
    return stack.airflow.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1, **filters})["total_entries"]


def stage_totals(stack: Stack, dataset: str) -> dict[str, int]:
    """Rows in/out/quarantined over every committed partition, from the gate reports in the manifests."""
    from include.mlpipeline.lake import Lake

    lake = Lake(stack.config.lake_uri)
    totals = {"partitions": 0, "rows_in": 0, "rows_out": 0, "rows_quarantined": 0}
    for day in lake.partitions(dataset):
        gate = (lake.manifest(dataset, day) or {}).get("meta", {}).get("gate", {})
        totals["partitions"] += 1
        for key in ("rows_in", "rows_out", "rows_quarantined"):
            totals[key] += int(gate.get(key, 0))
    return totals


def reconcile(stack: Stack) -> Any:
    """Reconcile the lake with every asset event of the stack (no models: train is paused)."""
    from include.mlpipeline.lake import Lake
    from include.mlpipeline.reconciliation import reconcile_stack

    events, offset = [], 0
    while True:
        page = stack.airflow.request("GET", "/assets/events", params={"limit": 100, "offset": offset})
        events += page["asset_events"]
        offset += 100
        if offset >= page["total_entries"]:
            break
    return reconcile_stack(lake=Lake(stack.config.lake_uri), events=events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", default="2013-01-01")
    parser.add_argument("--end", default="2013-12-31")
    parser.add_argument("--parallel", type=int, default=4, help="ETL runs at once (backfill max_active_runs)")
    parser.add_argument("--keep", type=Path, help="keep the stack's state in this folder (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (concurrency 2 each)")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    args = parser.parse_args()
    days = (dt.date.fromisoformat(args.end) - dt.date.fromisoformat(args.start)).days + 1

    import redis

    state = args.keep or Path(tempfile.mkdtemp(prefix="mlp-year-"))
    suffix = f"{os.getpid()}"
    airflow_db, mlflow_db = f"mlp_year_airflow_{suffix}", f"mlp_year_mlflow_{suffix}"
    airflow_url, mlflow_url = create_postgres_database(airflow_db), create_postgres_database(mlflow_db)
    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    broker.flushdb()
    config = StackConfig.isolated(
        state,
        executor="CeleryExecutor",
        airflow_db_url=airflow_url.replace("postgresql://", "postgresql+psycopg2://"),
        mlflow_backend_uri=mlflow_url,
        celery_broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
        celery_result_backend=f"db+{airflow_url}",
        celery_workers=tuple((f"worker-{n}", "default") for n in range(1, args.workers + 1)),
        extra_env={"MLP_BOOTSTRAP_DAYS": "0"},
    )
    stack = Stack(config)
    try:
        stack.start()
        stack.airflow.wait_for_dags()
        for dag_id in ("features", "etl"):
            stack.airflow.set_paused(dag_id, False)
        sampler = MemorySampler([p.pid for p in stack.processes.values()])
        sampler.start()
        started = time.monotonic()
        backfill = stack.airflow.request(
            "POST",
            "/backfills",
            json={
                "dag_id": "etl",
                "from_date": f"{args.start}T00:00:00Z",
                "to_date": f"{args.end}T00:00:00Z",
                "max_active_runs": args.parallel,
                "dag_run_conf": {"bootstrap_days": 0},
            },
        )
        etl_done_at = None
        while time.monotonic() - started < args.timeout:
            finished = sum(count_runs(stack, "etl", run_type="backfill", state=s) for s in ("success", "failed"))
            busy_features = sum(count_runs(stack, "features", state=s) for s in ("queued", "running"))
            if finished >= days and etl_done_at is None:
                etl_done_at = time.monotonic()
            if etl_done_at and busy_features == 0:
                break
            time.sleep(2)
        wall = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        etl_ok = count_runs(stack, "etl", run_type="backfill", state="success")
        etl_failed = count_runs(stack, "etl", run_type="backfill", state="failed")
        features_runs = count_runs(stack, "features")
        clean, features = stage_totals(stack, "clean"), stage_totals(stack, "features")
        gib = 1024**3
        print(
            f"\nmachine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / gib:.0f} GiB; "
            f"backfill {backfill['id']} of {days} days, {args.parallel} ETL runs at once, "
            f"PostgreSQL + CeleryExecutor ({args.workers} workers)\n"
        )
        print("| measure | value |\n| --- | ---: |")
        rows = [
            ("wall time, backfill created -> last features run done", f"{wall / 60:.1f} min"),
            ("  of which ETL runs", f"{((etl_done_at or time.monotonic()) - started) / 60:.1f} min"),
            ("ETL runs succeeded / failed", f"{etl_ok} / {etl_failed}"),
            ("features runs (asset-triggered, events batched)", f"{features_runs}"),
            (
                "clean partitions; rows in / out / quarantined",
                f"{clean['partitions']}; {clean['rows_in']:,} / {clean['rows_out']:,} / {clean['rows_quarantined']:,}",
            ),
            (
                "feature partitions; rows in / out / quarantined",
                f"{features['partitions']}; {features['rows_in']:,} / {features['rows_out']:,} / "
                f"{features['rows_quarantined']:,}",
            ),
            ("peak memory, all stack processes together", f"{sampler.peak_total / gib:.2f} GiB"),
            ("peak memory, largest single process", f"{sampler.peak_process / gib:.2f} GiB"),
        ]
        for name, value in rows:
            print(f"| {name} | {value} |")
        report = reconcile(stack)
        print(f"\nreconciliation: {report.summary()}")
        summary = {**dict(rows), "reconciliation": report.to_dict()}
        (state / "year_replay.json").write_text(json.dumps(summary, indent=1))
    finally:
        stack.stop()
        broker.flushdb()
        drop_postgres_database(airflow_db)
        drop_postgres_database(mlflow_db)


if __name__ == "__main__":
    main()
