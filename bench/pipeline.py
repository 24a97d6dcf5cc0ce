"""The whole chain on a real Airflow: orchestration floor, our overhead over it, scale, DAG parse time.

One run starts ONE isolated stack (scripts/stack/: scheduler, dag-processor, triggerer,
api-server on SQLite + LocalExecutor, MLflow, the API; free ports, a temporary state folder) that
loads two DAG bundles: ``dags/`` (ours) and ``bench/floor_dags/`` (four trivial DAGs,
``floor_etl -> floor_features -> floor_train -> floor_deploy``, chained by their own assets, with
the same graphs as ours and tasks that return at once). One stack rather than two, so that the
floor and our chain share the scheduler, executor, database, configuration and dag-processor
load, and so that the floor is never measured while a second stack competes for the two cores; the
floor runs only while none of our DAGs runs (and the reverse).

Steps:

1. history: an ``etl`` run for ``HISTORY_END`` with ``bootstrap_days`` = window - 1 fills the lake
   with the training window's feature days (``train`` and ``deploy`` are paused, so it trains
   nothing; a paused consumer is not queued by an asset event). Not measured.
2. our chain, one daily partition (x1): ``etl`` triggered through the REST API for the next day
   with ``bootstrap_days`` 0, then the asset-triggered ``features``, ``train`` and ``deploy`` runs.
3. the floor: ``floor_etl`` triggered with the mapped widths (extract, clean, build, candidates)
   counted in step 2's task instances, so every floor DAG has exactly as many task instances
   (mapped ones included) as ours had; repeated, the median run by wall time is reported.
4. scale: the chain again for 10 and 100 new days in one run (``bootstrap_days`` 9 and 99: the
   ETL's own way to load a date range; the replay has no setting that multiplies rows). ETL and
   features scale with the days; ``train`` always fits its ``MLP_TRAIN_WINDOW_DAYS`` window, so its
   cost does not grow. Before each scale run the registry's ``champion`` alias is removed, so the
   new model is promoted as a first model (it must still beat the baseline) and ``deploy`` runs;
   otherwise a model that does not beat the previous one stops the chain at ``train``. x100 is
   skipped, saying so, when a line fitted to the runs so far (history, x1, x10: days against
   trigger -> features end, plus x10's train + deploy) projects it past ``--budget-min``.
5. the training tasks of x1, per phase (``bench/training_phases.py``: queued, start-up, imports, setup,
   load, fit, evaluate, log, finish), from Airflow's timestamps and the task's own clock.
6. DAG parse time after the stack is stopped, with ``bench/dag_parse.py``'s probe (DagBag in a
   fresh interpreter per parse, the time DagBag records for the file), next to an empty DAG file.

Definitions (all timestamps from the REST API, not from this script's polling):

- trigger: ``queued_at`` of the first DAG's run, as the POST that created it returned it;
- last task end: the latest ``end_date`` over the task instances of the chain's four runs;
- wall = last task end - trigger;
- busy = the time in [trigger, last task end] during which at least one of the chain's task
  instances was running (the union of their [start_date, end_date] intervals);
- sum of task durations = the sum of (end_date - start_date) over the task instances; mapped and
  parallel tasks overlap, so it can exceed the wall time, and wall - sum can be negative: it is
  printed, not used;
- idle = wall - busy: time in which no task of the chain runs: the scheduler noticing a finished task
  and queueing the next, the executor picking it up, an asset event becoming the consumer's run. A
  task instance's start_date is set as its task process starts, so the process start-up (fork, DAG
  file parse, imports) counts as task time, in both chains;
- handoff of a DAG: its first task start - the previous DAG's last task end (the trigger for the
  first DAG); span: its last task end - its first task start; idle inside the span: span - the union
  of its task intervals. For a chain, wall = sum(handoff + span) and idle = sum(handoff + idle inside);
- floor = the trivial chain's wall (all of it is orchestration: its tasks do nothing);
- **overhead ratio = idle(our chain, x1) / wall(floor)**; the issue's target is at most 1.3. Also
  printed: idle(ours) / idle(floor), the stricter gaps-to-gaps comparison (it leaves out the
  trivial tasks' own run time, the task process start-up both chains pay per task).
- rows/s = rows the ETL read for the run's days (``rows_in`` of its ``clean_data`` event) / wall.

Machine notes: everything shares the machine; the header prints the cores and load average, and
the floor's spread over its repeats is printed with it. No metrics stack (Prometheus, Pushgateway)
runs, as in the end-to-end tests. The full run took 11 min here (load average 3-9 from other
work); ``--quick`` (20-day window, one floor run, x1 and x10, one parse each) took 11 min at load
average 17, less on a quiet machine.

    .venv/bin/python bench/pipeline.py [--quick] [--floor-runs 3] [--budget-min 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "bench")]

from dag_parse import EMPTY_DAG, parse_once  # noqa: E402
from stack.config import PIPELINE_DAGS, StackConfig  # noqa: E402
from stack.processes import exit_on_sigterm  # noqa: E402
from stack.stack import Stack  # noqa: E402
from training_phases import candidate_phases, outside_fit, phase_table  # noqa: E402

FLOOR_DIR = ROOT / "bench" / "floor_dags"
FLOOR_DAGS = ("floor_etl", "floor_features", "floor_train", "floor_deploy")
HISTORY_END = dt.date(2026, 3, 1)  # replays 2013; every later day used here stays before 30 Dec (weather ends)
SHAPE_TASKS = {"extract": ("etl", "extract"), "clean": ("etl", "clean"), "build": ("features", "build")}
SHAPE_TASKS["candidates"] = ("train", "train_candidate")
CHAIN_TIMEOUT_S = 1200.0
PARSE_ESTIMATE_S = 90.0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def when(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def union_seconds(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Length of the union of time intervals."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def bundle_env() -> dict[str, str]:
    """Two DAG bundles: the dags folder (ours, as always) and the floor's DAGs."""
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {
            "name": "bench-floor",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(FLOOR_DIR)},
        },
    ]
    return {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}


class NotPromotedError(RuntimeError):
    """train finished without approving its model: deploy will not run."""


@dataclass
class Chain:
    """One chain run: its DAG runs and task instances, and the timings derived from them."""

    label: str
    trigger: dt.datetime
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tis: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rows_in: int | None = None
    days: int | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)  # train's candidates, per phase (training_phases)

    def intervals(self, dag_id: str | None = None) -> list[tuple[dt.datetime, dt.datetime]]:
        dags = [dag_id] if dag_id else list(self.tis)
        return [
            (when(ti["start_date"]), when(ti["end_date"]))
            for d in dags
            for ti in self.tis[d]
            if ti["start_date"] and ti["end_date"]
        ]

    def last_end(self, dag_id: str | None = None) -> dt.datetime:
        return max(stop for _, stop in self.intervals(dag_id))

    def first_start(self, dag_id: str) -> dt.datetime:
        return min(start for start, _ in self.intervals(dag_id))

    @property
    def wall(self) -> float:
        return (self.last_end() - self.trigger).total_seconds()

    @property
    def busy(self) -> float:
        return union_seconds(self.intervals())

    @property
    def idle(self) -> float:
        return self.wall - self.busy

    @property
    def sum_durations(self) -> float:
        return sum((stop - start).total_seconds() for start, stop in self.intervals())

    def tasks(self) -> list[int]:
        return [len(tis) for tis in self.tis.values()]

    def count(self, dag_id: str, task_id: str) -> int:
        return sum(ti["task_id"] == task_id for ti in self.tis[dag_id])

    def stages(self) -> list[tuple[str, float, float, float]]:
        """(dag_id, handoff, span, idle inside the span) per DAG, in chain order."""
        out, previous = [], self.trigger
        for dag_id in self.tis:
            first, last = self.first_start(dag_id), self.last_end(dag_id)
            span = (last - first).total_seconds()
            out.append((dag_id, (first - previous).total_seconds(), span, span - union_seconds(self.intervals(dag_id))))
            previous = last
        return out

    def until(self, dag_id: str) -> float:
        """Seconds from the trigger to the last task end of ``dag_id``."""
        return (self.last_end(dag_id) - self.trigger).total_seconds()


def run_chain(stack: Stack, dag_ids: tuple[str, ...], conf: dict[str, Any], label: str, timeout: float) -> Chain:
    """Trigger the first DAG, follow the asset-triggered runs to the last DAG, collect task instances."""
    client = stack.airflow
    created = client.trigger(dag_ids[0], conf=conf)
    chain = Chain(label, when(created["queued_at"] or created["run_after"]))
    deadline = time.monotonic() + timeout
    run: dict[str, Any] | None = created
    for dag_id in dag_ids:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: {dag_id} not done within {timeout:.0f}s")
            stack.raise_if_dead()
            if run is None:  # the consumer's run appears once the producer's asset event is processed
                run = next(
                    (r for r in client.runs(dag_id) if when(r["queued_at"] or r["run_after"]) >= chain.trigger), None
                )
            else:
                run = client.request("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
                if run["state"] == "success":
                    break
                if run["state"] == "failed":
                    states = sorted(
                        f"{t['task_id']}={t['state']}" for t in client.task_instances(dag_id, run["dag_run_id"])
                    )
                    raise RuntimeError(f"{label}: {dag_id} run {run['dag_run_id']} failed: {states}")
            time.sleep(1)
        chain.runs[dag_id] = run
        chain.tis[dag_id] = client.task_instances(dag_id, run["dag_run_id"])
        say(f"{label}: {dag_id} done, {len(chain.tis[dag_id])} task instances")
        if dag_id == "train" and any(t["task_id"] == "approve" and t["state"] == "skipped" for t in chain.tis[dag_id]):
            raise NotPromotedError(f"{label}: train did not approve its model, so deploy does not run")
        run = None
    first = dag_ids[0]
    events = client.request(
        "GET",
        "/assets/events",
        params={"source_dag_id": first, "source_run_id": chain.runs[first]["dag_run_id"], "limit": 10},
    )["asset_events"]
    if events:
        extra = events[0].get("extra") or {}
        chain.rows_in = extra.get("rows_in")
        chain.days = len(extra.get("partitions") or [])
    return chain


def remove_champion(stack: Stack) -> None:
    """Drop the ``champion`` alias so the next model is promoted as a first model and deploy runs."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from include.mlpipeline.core.problem import load_problem

    name = os.environ.get("MLP_REGISTERED_MODEL_NAME") or load_problem().name
    with contextlib.suppress(MlflowException):
        MlflowClient(tracking_uri=stack.config.mlflow_url).delete_registered_model_alias(name, "champion")


def parse_times(repeat: int) -> dict[str, list[float]]:
    """DagBag parse time of our chain's DAG files and an empty DAG file, round robin (bench/dag_parse.py)."""
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        home = Path(tmp)
        empty = home / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        files = [("(empty DAG)", empty), *[(f"{d}.py", ROOT / "dags" / f"{d}.py") for d in PIPELINE_DAGS]]
        samples: dict[str, list[float]] = {name: [] for name, _ in files}
        for _ in range(repeat):
            for name, path in files:
                result = parse_once(path, home)
                if result["errors"]:
                    raise RuntimeError(f"{name} has import errors: {result['errors']}")
                samples[name].append(result["duration"])
    return samples


def project(history: Chain, scales: list[Chain], volume: int) -> float:
    """Seconds a chain over ``volume`` days should take: a least-squares line of trigger -> features end
    over the days of the runs so far (history included), plus the last run's train + deploy time."""
    points = [(c.days or 1, c.until("features")) for c in [history, *scales]]
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = max(0.0, sum((x - mean_x) * (y - mean_y) for x, y in points) / spread) if spread else 0.0
    data = max(mean_y + slope * (volume - mean_x), *(y for _, y in points))
    return data + scales[-1].wall - scales[-1].until("features")


def measure(
    stack: Stack, history: Chain, volumes: tuple[int, ...], floor_runs: int, budget_left: float
) -> tuple[Chain, list[Chain], list[Chain], list[str]]:
    """Our chain at each volume (x1 first), the floor right after x1; x100 only if it fits the budget.

    Returns:
        our x1 chain, the floor runs, the chains of every volume run, why volumes were skipped.
    """
    started = time.monotonic()
    if stack.airflow.runs("train"):
        raise RuntimeError("train ran on the history's event: the x1 measurement would not be alone")
    ours: Chain | None = None
    floors: list[Chain] = []
    scales: list[Chain] = []
    skipped: list[str] = []
    last = HISTORY_END
    for volume in volumes:
        if volume > 10 and scales:
            projected = project(history, scales, volume) + PARSE_ESTIMATE_S
            left = budget_left - (time.monotonic() - started)
            if projected > left:
                skipped.append(
                    f"x{volume} skipped: the runs so far project it (and the parse step) at {projected / 60:.1f} min, "
                    f"{left / 60:.1f} min of the --budget-min left; raise --budget-min to run it"
                )
                continue
        if volume > 1:
            remove_champion(stack)
        day = last + dt.timedelta(days=volume)
        say(f"x{volume}: etl for {day} with the {volume - 1} days before it")
        conf = {"date": day.isoformat(), "bootstrap_days": volume - 1}
        chain = run_chain(stack, PIPELINE_DAGS, conf, f"x{volume}", CHAIN_TIMEOUT_S)
        last = day
        scales.append(chain)
        say(f"x{volume}: wall {chain.wall:.1f}s, {chain.rows_in:,} rows in over {chain.days} days")
        if volume == 1:
            ours = chain
            ours.phases = candidate_phases(stack.airflow, ours.runs["train"]["dag_run_id"])
            if len(stack.airflow.runs("train")) != 1:
                raise RuntimeError("train ran more than once: the x1 measurement was not alone")
            shape = {key: ours.count(dag_id, task_id) for key, (dag_id, task_id) in SHAPE_TASKS.items()}
            for repeat in range(floor_runs):
                floor = run_chain(stack, FLOOR_DAGS, {"shape": shape}, f"floor {repeat + 1}", CHAIN_TIMEOUT_S)
                if floor.tasks() != ours.tasks():
                    raise RuntimeError(f"floor task counts {floor.tasks()} differ from ours {ours.tasks()}")
                floors.append(floor)
                say(f"floor {repeat + 1}: wall {floor.wall:.1f}s")
    if ours is None:
        raise RuntimeError("volumes must start with 1")
    return ours, floors, scales, skipped


def fmt(seconds: float) -> str:
    return f"{seconds:.1f} s"


def report(
    header: str,
    ours: Chain,
    floors: list[Chain],
    scales: list[Chain],
    *,
    skipped: list[str],
    parse: dict[str, list[float]],
    target: float,
) -> dict[str, Any]:
    floor = sorted(floors, key=lambda c: c.wall)[(len(floors) - 1) // 2]  # the median run (lower for even counts)
    ratio = ours.idle / floor.wall
    gaps_ratio = ours.idle / floor.idle if floor.idle > 0 else float("nan")
    print(f"\n{header}\n")
    print(f"### Orchestration: our chain for one daily partition vs the trivial floor chain (median of {len(floors)})")
    print()
    print("| measure | floor | our chain, x1 |")
    print("| --- | ---: | ---: |")
    rows = [
        ("task instances etl / features / train / deploy", " / ".join(map(str, floor.tasks())),
         " / ".join(map(str, ours.tasks()))),
        ("wall: trigger -> last task end", fmt(floor.wall), fmt(ours.wall)),
        ("busy: at least one task running", fmt(floor.busy), fmt(ours.busy)),
        ("sum of task durations", fmt(floor.sum_durations), fmt(ours.sum_durations)),
        ("idle = wall - busy", fmt(floor.idle), fmt(ours.idle)),
    ]  # fmt: skip
    for ours_stage, floor_stage in zip(ours.stages(), floor.stages(), strict=True):
        cells = [
            f"{fmt(handoff)} + {fmt(span)} (idle {fmt(idle)})" for _, handoff, span, idle in (floor_stage, ours_stage)
        ]
        rows.append((f"{ours_stage[0]}: handoff + span (idle inside the span)", *cells))
    for name, a, b in rows:
        print(f"| {name} | {a} | {b} |")
    walls = ", ".join(fmt(c.wall) for c in floors)
    met = "met" if ratio <= target else "NOT met"
    print(f"\nfloor walls over its runs: {walls}")
    print(
        f"overhead ratio = idle(ours) / wall(floor) = {fmt(ours.idle)} / {fmt(floor.wall)} = {ratio:.2f} "
        f"(target <= {target}: {met})"
    )
    print(f"gaps only: idle(ours) / idle(floor) = {fmt(ours.idle)} / {fmt(floor.idle)} = {gaps_ratio:.2f}")
    print(
        f"wall - sum of durations (ours) = {fmt(ours.wall - ours.sum_durations)} "
        "(parallel tasks overlap, so this is not used as the compute measure)"
    )

    print("\n### Training tasks of x1, per phase (seconds; bench/training_phases.py)\n")
    print(phase_table(ours.phases))
    print(f"\n{outside_fit(ours.phases)}")

    print("\n### Scale: more days in one chain run (ETL and features scale; train fits its fixed window)\n")
    print(
        "| volume | days | rows in | wall | etl + features | train + deploy | rows/s (wall) | rows/s (etl+features) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for chain in scales:
        data = chain.until("features")
        rows_in = chain.rows_in or 0
        print(
            f"| {chain.label} | {chain.days} | {rows_in:,} | {fmt(chain.wall)} | {fmt(data)} | "
            f"{fmt(chain.wall - data)} | {rows_in / chain.wall:.0f} | {rows_in / data:.0f} |"
        )
    print()
    for line in skipped:
        print(line)
    if len(scales) > 1:
        base = scales[0]
        for chain in scales[1:]:
            print(
                f"{chain.label} / x1: wall x{chain.wall / base.wall:.2f}, etl + features "
                f"x{chain.until('features') / base.until('features'):.2f}, rows/s "
                f"x{(chain.rows_in or 0) / chain.wall / ((base.rows_in or 1) / base.wall):.1f}"
            )

    medians = {name: statistics.median(values) for name, values in parse.items()}
    empty = medians["(empty DAG)"]
    repeat = len(next(iter(parse.values())))
    print(f"\n### DAG parse time (DagBag per file in a fresh interpreter, median of {repeat})\n")
    print("| DAG file | parse (ms) | / empty DAG |")
    print("| --- | ---: | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1000:.0f} | {seconds / empty:.2f} |")
    return {
        "floor_walls_s": [c.wall for c in floors],
        "floor": {"wall_s": floor.wall, "busy_s": floor.busy, "idle_s": floor.idle, "tasks": floor.tasks()},
        "ours_x1": {
            "wall_s": ours.wall,
            "busy_s": ours.busy,
            "idle_s": ours.idle,
            "sum_durations_s": ours.sum_durations,
            "tasks": ours.tasks(),
            "stages": ours.stages(),
            "training_phases": ours.phases,
        },
        "overhead_ratio": ratio,
        "gaps_ratio": gaps_ratio,
        "target_met": ratio <= target,
        "scale": [
            {
                "label": c.label,
                "days": c.days,
                "rows_in": c.rows_in,
                "wall_s": c.wall,
                "etl_features_s": c.until("features"),
            }
            for c in scales
        ],
        "skipped": skipped,
        "parse_ms": {name: seconds * 1000 for name, seconds in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20-day window, 1 floor run, x1 and x10, 1 parse each")
    parser.add_argument("--floor-runs", type=int, help="repeats of the floor chain (default 3, quick 1)")
    parser.add_argument("--window-days", type=int, help="MLP_TRAIN_WINDOW_DAYS (default 60 as shipped, quick 20)")
    parser.add_argument("--budget-min", type=float, default=20, help="skip x100 if it would end past this")
    parser.add_argument("--target", type=float, default=1.3, help="largest acceptable overhead ratio")
    parser.add_argument("--keep", type=Path, help="keep the stack's state (and pipeline.json) in this folder")
    args = parser.parse_args()
    exit_on_sigterm()  # a background run stopped with SIGTERM still stops its stack
    window = args.window_days or (20 if args.quick else 60)
    floor_runs = args.floor_runs or (1 if args.quick else 3)
    volumes = (1, 10) if args.quick else (1, 10, 100)
    parse_repeat = 1 if args.quick else 3
    budget = args.budget_min * 60

    started = time.monotonic()
    load = os.getloadavg()
    from importlib.metadata import version

    header = (
        f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at start "
        f"(other work shares it); Python {platform.python_version()}, Airflow {version('apache-airflow')}, "
        f"SQLite + LocalExecutor (parallelism 8); one stack, the floor DAGs in a second DAG bundle; "
        f"train window {window} days"
    )
    state = args.keep or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    config = StackConfig.isolated(
        state,
        extra_env={"MLP_ETL_SCHEDULE": "none", "MLP_TRAIN_WINDOW_DAYS": str(window), **bundle_env()},
    )
    stack = Stack(config)
    try:
        say(f"starting the stack in {state}")
        stack.start()
        client = stack.airflow
        client.wait_for_dags(PIPELINE_DAGS + FLOOR_DAGS, timeout=300)
        for dag_id in ("features", "etl", *reversed(FLOOR_DAGS)):  # consumers first: no event is missed
            client.set_paused(dag_id, False)
        say(f"stack up after {time.monotonic() - started:.0f}s; loading {window} history days (not measured)")
        history = run_chain(
            stack, ("etl", "features"), {"date": HISTORY_END.isoformat(), "bootstrap_days": window - 1}, "history",
            CHAIN_TIMEOUT_S,
        )  # fmt: skip
        say(f"history: {history.days} days, {history.rows_in:,} rows in {history.wall:.0f}s")
        for dag_id in ("deploy", "train"):
            client.set_paused(dag_id, False)

        ours, floors, scales, skipped = measure(
            stack, history, volumes, floor_runs, budget - (time.monotonic() - started)
        )
    finally:
        stack.stop()
    say(f"stack stopped; parsing DAG files ({parse_repeat} round(s))")
    parse = parse_times(parse_repeat)
    results = report(header, ours, floors, scales, skipped=skipped, parse=parse, target=args.target)
    print(f"\ntotal bench time {(time.monotonic() - started) / 60:.1f} min")
    if args.keep:
        (state / "pipeline.json").write_text(json.dumps(results, indent=1, default=str))
    else:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
