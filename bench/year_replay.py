"""Replay a range of days (default: all of 2013) through `etl` and `features` on a real Airflow.

Starts an isolated stack (scripts/stack/: scheduler, dag-processor, triggerer, api-server,
MLflow, API) on free ports, pauses `train` and `deploy` (this measures the data path), creates an
Airflow 3 backfill of `etl` through the REST API with several runs in parallel, and waits until
every ETL run has finished and `features` has built every clean partition. Meanwhile it samples the
memory of every process of the stack. Then it reconciles (include/mlpipeline/monitoring/reconciliation.py):
rows in = published + quarantined for every day and dataset, every asset event matches the lake and
every published partition was announced. Prints a table: wall time, runs, rows in / out /
quarantined per stage, peak memory, and the reconciliation.

Airflow 3.3 refuses to create a backfill on SQLite while the scheduler runs, so the stack is the
production-like one: Airflow on PostgreSQL with the CeleryExecutor, a Redis broker and ``--workers``
Celery workers (127.0.0.1:5432 and :6379; the databases are created and dropped here).

With ``--faults`` the same year runs under the faults the fault tests inject one at a time
(tests/e2e/test_faults.py), all in one replay:

- a corrupt source day (``--bad-day``, every flight with a negative distance, in a private copy of
  the source files): its ``clean`` gate must block that day and only that day;
- Slack and Sentry unreachable for the whole year (their URLs point at closed ports): alerts fail,
  the pipeline's outcome must not change;
- the scheduler SIGKILLed (with its process group) at a quarter and three quarters of the ETL runs,
  and every Celery worker, with the task processes they run (mid-write), at half; each restarted
  10 s later. The killed tasks are found by their missing heartbeats and retried;
- after the backfill, ``train`` is triggered while the MLflow server is down, and MLflow comes back
  45 s later: train retries and registers exactly one version, which the reconciliation then
  traces to its data version.

The expected outcome: every ETL run succeeds except the bad day's, whose ``clean`` task fails once
(no retry), nothing is published or announced for that day, and the reconciliation balances.

    python bench/year_replay.py [--start 2013-01-01] [--end 2013-12-31] [--parallel 4] [--workers 2] [--keep DIR]
    python bench/year_replay.py --faults [--bad-day 2013-07-01]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from stack.config import StackConfig  # noqa: E402
from stack.postgres import create_postgres_database, drop_postgres_database  # noqa: E402
from stack.processes import exit_on_sigterm, free_port, wait_for_http  # noqa: E402
from stack.stack import Stack  # noqa: E402

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
    from include.mlpipeline.data.lake import Lake

    lake = Lake(stack.config.lake_uri)
    totals = {"partitions": 0, "rows_in": 0, "rows_out": 0, "rows_quarantined": 0}
    for day in lake.partitions(dataset):
        gate = (lake.manifest(dataset, day) or {}).get("meta", {}).get("gate", {})
        totals["partitions"] += 1
        for key in ("rows_in", "rows_out", "rows_quarantined"):
            totals[key] += int(gate.get(key, 0))
    return totals


def reconcile(stack: Stack, model_name: str | None = None) -> Any:
    """Reconcile the lake with every asset event of the stack, and the registry's versions if named."""
    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.monitoring.reconcile_stack import reconcile_stack

    events, offset = [], 0
    while True:
        page = stack.airflow.request("GET", "/assets/events", params={"limit": 100, "offset": offset})
        events += page["asset_events"]
        offset += 100
        if offset >= page["total_entries"]:
            break
    return reconcile_stack(
        lake=Lake(stack.config.lake_uri),
        events=events,
        tracking_uri=stack.config.mlflow_url if model_name else None,
        model_name=model_name,
        dvc_remote_url=(stack.config.dvc_remote_url or str(stack.config.state_dir / "dvc-remote"))
        if model_name
        else None,
    )


def corrupt_source_copy(folder: Path, bad_day: dt.date) -> Path:
    """A copy of the source files in which every flight of ``bad_day``'s month and day has distance -1."""
    import pandas as pd

    from include.flight_delay import sources

    folder.mkdir(parents=True, exist_ok=True)
    for path in sources.data_dir().iterdir():
        if path.suffix in {".csv", ".zip"}:
            shutil.copy(path, folder / path.name)
    flights_file = folder / "flights.csv.zip"
    flights = pd.read_csv(flights_file, low_memory=False)
    flights.loc[(flights["month"] == bad_day.month) & (flights["day"] == bad_day.day), "distance"] = -1.0
    flights.to_csv(flights_file, index=False, compression={"method": "zip", "archive_name": "flights.csv"})
    return folder


def fault_env(state: Path, bad_day: dt.date) -> dict[str, str]:
    """The environment of a replay under faults (see the module docstring)."""
    closed = free_port()  # nothing listens here: Slack and Sentry are down for the whole replay
    return {
        "MLP_FLIGHTS_DATA_DIR": str(corrupt_source_copy(state / "source", bad_day)),
        "AIRFLOW_CONN_SLACK_DEFAULT": json.dumps(
            {"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{closed}/services/T0/B0/down"}
        ),
        "MLP_SENTRY_DSN": f"http://publickey@127.0.0.1:{closed}/1",
        "MLP_ALERT_TIMEOUT_S": "5",
        # How soon the scheduler adopts or fails what a dead scheduler or worker left running (defaults
        # 300 s each): shortened so the killed tasks are retried within the replay, not minutes later.
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        # One quick client retry, so that an MLflow outage reaches Airflow's own retry (see test_faults).
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }


def crash_and_restart(stack: Stack, names: list[str], sampler: MemorySampler, down_s: float = 10) -> int:
    """SIGKILL components' process groups at once, start them again ``down_s`` later, keep sampling
    their memory. Returns how many task instances were running just before the kill."""
    running = stack.airflow.request("GET", "/dags/~/dagRuns/~/taskInstances", params={"state": "running", "limit": 1})[
        "total_entries"
    ]
    for name in names:
        stack.kill(name)
    time.sleep(down_s)
    for name in names:
        stack.restart(name)
    sampler.roots = [p.pid for p in stack.processes.values()]
    return running


def train_through_mlflow_outage(stack: Stack, sampler: MemorySampler, down_s: float = 45) -> dict[str, Any]:
    """Trigger train with MLflow down, bring MLflow back ``down_s`` later; the run's state and retried tasks."""
    stack.airflow.set_paused("train", False)
    stack.kill("mlflow")
    run = stack.airflow.trigger("train")
    time.sleep(down_s)
    stack.restart("mlflow")
    wait_for_http(f"{stack.config.mlflow_url}/health", timeout=180, process=stack.processes["mlflow"])
    sampler.roots = [p.pid for p in stack.processes.values()]
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        state = stack.airflow.request("GET", f"/dags/train/dagRuns/{run['dag_run_id']}")["state"]
        if state in {"success", "failed"}:
            break
        time.sleep(5)
    tries = {
        t["task_id"]: t["try_number"]
        for t in stack.airflow.task_instances("train", run["dag_run_id"])
        if (t["try_number"] or 0) > 1
    }
    return {"state": state, "tasks that needed a retry": tries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", default="2013-01-01")
    parser.add_argument("--end", default="2013-12-31")
    parser.add_argument("--parallel", type=int, default=4, help="ETL runs at once (backfill max_active_runs)")
    parser.add_argument("--keep", type=Path, help="keep the stack's state in this folder (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (concurrency 2 each)")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--faults", action="store_true", help="replay under injected faults (see the docstring)")
    parser.add_argument("--bad-day", type=dt.date.fromisoformat, default=dt.date(2013, 7, 1))
    args = parser.parse_args()
    exit_on_sigterm()  # a background run stopped with SIGTERM still drops its stack and databases
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
        # Every worker also takes the training queue: only --faults trains, once, after the backfill.
        celery_workers=tuple((f"worker-{n}", "default,training") for n in range(1, args.workers + 1)),
        # No scheduled etl run: the replay maps a logical date onto the replay year by month and day,
        # so today's run would publish 2013's same day again under today's date (the training-set
        # gate refused the duplicates in stop 11's full-year replay). The schedule stays periodic,
        # since Airflow backfills only a DAG with a periodic schedule, and unpaused, since it runs
        # a paused DAG's backfill runs never; its start date is moved past the replay instead.
        extra_env={
            "MLP_BOOTSTRAP_DAYS": "0",
            "MLP_ETL_START_DATE": "2100-01-01",
            **(fault_env(state, args.bad_day) if args.faults else {}),
        },
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
            timeout=300,  # the API creates every run of the range before it answers: minutes for a year
        )
        etl_done_at = None
        # (share of ETL runs finished, components to crash): the scheduler twice; every Celery worker
        # (and the task processes they run) once. The stack names worker processes "worker-<name>".
        workers = [f"worker-{name}" for name, _ in config.celery_workers]
        crashes = [(0.25, ["scheduler"]), (0.5, workers), (0.75, ["scheduler"])] if args.faults else []
        injected: list[str] = []
        while time.monotonic() - started < args.timeout:
            finished = sum(count_runs(stack, "etl", run_type="backfill", state=s) for s in ("success", "failed"))
            if crashes and finished >= crashes[0][0] * days:
                _, names = crashes.pop(0)
                running = crash_and_restart(stack, names, sampler)
                injected.append(
                    f"{' and '.join(names)} SIGKILLed after {finished} ETL runs "
                    f"({time.monotonic() - started:.0f} s; {running} task instances running)"
                )
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
        model_name, faults = None, {}
        if args.faults:
            faults = fault_outcome(stack, args.bad_day, injected)
            faults["train with MLflow down 45 s"] = train_through_mlflow_outage(stack, sampler)
            model_name, versions = registered_versions(stack)
            faults[f"registered versions of {model_name}"] = versions
            print("\nfaults:")
            for name, value in faults.items():
                print(f"- {name}: {value}")
        report = reconcile(stack, model_name)
        print(f"\nreconciliation: {report.summary()}")
        summary = {**dict(rows), "faults": faults, "reconciliation": report.to_dict()}
        (state / "year_replay.json").write_text(json.dumps(summary, indent=1))
    finally:
        stack.stop()
        broker.flushdb()
        drop_postgres_database(airflow_db)
        drop_postgres_database(mlflow_db)


def fault_outcome(stack: Stack, bad_day: dt.date, injected: list[str]) -> dict[str, Any]:
    """What the faults left behind: the failed runs and their tasks, the bad day in the lake and events."""
    from include.mlpipeline.data.lake import Lake

    failed = stack.airflow.request("GET", "/dags/etl/dagRuns", params={"state": "failed", "limit": 100})["dag_runs"]
    failed_tasks = {
        run["logical_date"][:10]: sorted(
            f"{t['task_id']} (try {t['try_number']})"
            for t in stack.airflow.task_instances("etl", run["dag_run_id"])
            if t["state"] == "failed"
        )
        for run in failed
    }
    retried, offset = 0, 0
    while True:
        page = stack.airflow.request(
            "GET", "/dags/etl/dagRuns/~/taskInstances", params={"state": "success", "limit": 100, "offset": offset}
        )
        retried += sum(1 for t in page["task_instances"] if (t["try_number"] or 0) > 1)
        offset += 100
        if offset >= page["total_entries"]:
            break
    events = stack.airflow.request("GET", "/assets/events", params={"limit": 1000})["asset_events"]
    bad = bad_day.isoformat()
    announced = [e for e in events if bad in json.dumps(e.get("extra") or {}) and e["name"] == "clean_data"]
    return {
        "injected": injected,
        "failed ETL runs and their failed tasks": failed_tasks,
        "ETL task instances that succeeded on a retry": retried,
        f"clean partition of {bad} published": Lake(stack.config.lake_uri).manifest("clean", bad) is not None,
        f"clean_data events naming {bad}": len(announced),
    }


def registered_versions(stack: Stack) -> tuple[str | None, list[str]]:
    """The stack's registered model (train registers one) and its versions."""
    import mlflow

    client = mlflow.MlflowClient(stack.config.mlflow_url)
    models = client.search_registered_models()
    if not models:
        return None, []
    name = models[0].name
    return name, sorted(v.version for v in client.search_model_versions(f"name='{name}'"))


if __name__ == "__main__":
    main()
