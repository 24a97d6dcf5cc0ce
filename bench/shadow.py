"""Shadow mode's cost to /predict: the same API with ``MLP_SHADOW_ENABLED`` on and off, side by side in one run.

Two API processes run at once (``uvicorn --factory include.mlpipeline.serving.app:create_app``, one
worker each, the prediction log on, no A/B split), both serving the same registered champion; the
one with shadow mode on also loads the challenger (a second registered version) and shadow-scores
every request in its worker thread. The model, the challenger and the records are
``bench/serving.py``'s (the baseline and ``--candidate`` trained on 12 replayed days; the same
flights, one per request). Load: ``bench/serving.py``'s clients, in turns that alternate between the
two processes (``--rounds``), so the machine's background load falls on both alike; scenarios: one
client (latency alone) and ``--clients`` concurrent clients. Prints p50 / p99 per side and the p99 the
shadow adds (goal: under 1 ms), and the shadow side's own counters (scored, dropped, errors). Then the
same in process, without the HTTP server and the second process's noise: one scoring pass
(``Scorer.score``) with shadow mode off and on, alternating pass by pass (``--passes``), the shadow
worker running meanwhile.

    python bench/shadow.py [--clients 4] [--seconds 5] [--rounds 4] [--warmup 2] [--candidate logistic_regression]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "bench")]
from serving import (  # noqa: E402 - bench/serving.py: its model, records, load and machine line
    API_KEY,
    Model,
    Result,
    Service,
    build_workload,
    load,
    machine,
    registry_server,
)
from stack.processes import free_port, wait_for_http  # noqa: E402

GOAL_MS = 1.0
SIDES = ("shadow off", "shadow on")
COUNTERS = ("mlp_api_shadow_scored_total", "mlp_api_shadow_dropped_total", "mlp_api_shadow_errors_total")


def start_api(model: Model, lake_uri: str, log_dir: Path, *, shadow: bool) -> Service:
    """One API process (one worker) on the champion; with ``shadow`` the challenger shadows it."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLP_MLFLOW_TRACKING_URI": model.tracking_uri,
        "MLP_REGISTERED_MODEL_NAME": model.name,
        "MLP_LAKE_URI": lake_uri,
        "MLP_API_KEY": API_KEY,
        "MLP_API_RELOAD_INTERVAL_S": "3600",
        "MLP_AB_CHALLENGER_SHARE": "0",
        "MLP_SHADOW_ENABLED": str(shadow).lower(),
    }
    name = SIDES[shadow]
    command = [sys.executable, "-m", "uvicorn", "--factory", "include.mlpipeline.serving.app:create_app",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]  # fmt: skip
    log = (log_dir / f"api-{'on' if shadow else 'off'}.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ready", timeout=300, process=process)
    return Service(name, url, "/predict", {"X-API-Key": API_KEY, "content-type": "application/json"}, process)


def counters(service: Service) -> dict[str, float]:
    """The shadow counters on ``service``'s /metrics, summed over their labels."""
    text = httpx.get(f"{service.url}/metrics", timeout=30).text
    totals = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{.*\})? (\S+)$", line)
        if match and match.group(1) in totals:
            totals[match.group(1)] += float(match.group(2))
    return totals


def measure(services: list[Service], bodies: list[bytes], args: argparse.Namespace) -> dict[tuple[str, int], Result]:
    """Each scenario in ``args.rounds`` turns per side, the sides alternating (who goes first alternates too)."""
    results: dict[tuple[str, int], Result] = {}
    for clients in (1, args.clients):
        for turn in range(args.rounds):
            for service in services if turn % 2 == 0 else services[::-1]:
                measured = load(service, bodies, 1, clients=clients, warmup=args.warmup, seconds=args.seconds)
                key = (service.name, clients)
                results[key] = results[key].plus(measured) if key in results else measured
    return results


def in_process(model: Model, bodies: list[bytes], folder: Path, repeats: int) -> dict[str, np.ndarray]:
    """Milliseconds of one scoring pass (``Scorer.score`` on a one-record job, as /predict runs it less
    the HTTP server) with shadow mode off and on, the two alternating pass by pass in one process; the
    shadow worker runs meanwhile, as it does in the API, so its share of the CPU and the GIL is counted."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.core.settings import Settings
    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.serving.metrics import ServingMetrics
    from include.mlpipeline.serving.model_store import ModelStore
    from include.mlpipeline.serving.prediction_log import PredictionLog
    from include.mlpipeline.serving.request_parsing import PredictBodyParser, predict_request_model
    from include.mlpipeline.serving.scoring import Scorer, ScoringJob

    problem = load_problem()
    settings = Settings(mlflow_tracking_uri=model.tracking_uri, registered_model_name=model.name, shadow_enabled=True)
    store = ModelStore(settings, problem, problem.load_serving_context(), model.name)
    store.refresh()
    if store.challenger is None:
        raise RuntimeError(f"no challenger loaded for the shadow: {store.last_error}")
    prediction_log = PredictionLog(lambda: Lake(f"file://{folder}/in-process-lake"), flush_s=3600)
    parser = PredictBodyParser(problem, settings, predict_request_model(problem, settings))
    parsed = [getattr(parser.parse(body), problem.request_key) for body in bodies]
    scorers = {
        SIDES[0]: Scorer(problem, settings.model_copy(update={"shadow_enabled": False}), ServingMetrics()),
        SIDES[1]: Scorer(problem, settings, ServingMetrics()),
    }
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for index in range(repeats):
        records = parsed[index % len(parsed)]
        for side in SIDES if index % 2 == 0 else SIDES[::-1]:
            job = ScoringJob(parser.columns(records), records, None, store, prediction_log, time.perf_counter())
            started = time.perf_counter()
            scorers[side].score([job])
            times[side].append((time.perf_counter() - started) * 1000)
        if index % 500 == 499:  # the log's flush thread's work, outside the clock
            prediction_log.flush()
    scorers[SIDES[1]].shadow.drain()
    return {side: np.array(values) for side, values in times.items()}


def in_process_report(times: dict[str, np.ndarray]) -> list[str]:
    off, on = times[SIDES[0]], times[SIDES[1]]
    lines = [
        "",
        f"in process: one scoring pass of one record, {len(off):,} per side, the sides alternating",
        "",
        "| side | p50 (ms) | p99 (ms) | p99 added by the shadow (ms) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for side, values in times.items():
        added = f"{np.percentile(on, 99) - np.percentile(off, 99):+.3f}" if side == SIDES[1] else ""
        lines.append(f"| {side} | {np.percentile(values, 50):.3f} | {np.percentile(values, 99):.3f} | {added} |")
    return lines


def report(
    results: dict[tuple[str, int], Result], shadow_counts: dict[str, float], header: str, passes: dict[str, np.ndarray]
) -> str:
    lines = [
        f"machine: {header}",
        "",
        "| clients | side | requests | errors | p50 (ms) | p99 (ms) | p99 added by the shadow (ms) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clients in sorted({clients for _, clients in results}):
        off = results[(SIDES[0], clients)]
        for side in SIDES:
            result = results[(side, clients)]
            added = f"{result.percentile(99) - off.percentile(99):+.2f}" if side == SIDES[1] else ""
            lines.append(
                f"| {clients} | {side} | {result.requests:,} | {result.errors} | {result.percentile(50):.2f} | "
                f"{result.percentile(99):.2f} | {added} |"
            )
    worst = max(
        results[(SIDES[1], clients)].percentile(99) - results[(SIDES[0], clients)].percentile(99)
        for clients in {clients for _, clients in results}
    )
    lines += [
        "",
        f"goal: the shadow adds under {GOAL_MS:g} ms to p99: {'met' if worst < GOAL_MS else 'NOT met'} "
        f"(largest {worst:+.2f} ms)",
        "shadow side's counters (records): " + ", ".join(f"{k} {v:,.0f}" for k, v in shadow_counts.items()),
        *in_process_report(passes),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the second scenario")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per turn")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds before each turn")
    parser.add_argument("--rounds", type=int, default=4, help="turns per side and scenario")
    parser.add_argument("--passes", type=int, default=3000, help="in-process scoring passes per side")
    parser.add_argument("--candidate", default="logistic_regression", help="the champion's candidate")
    parser.add_argument("--tracking-uri", help=argparse.SUPPRESS)  # registry_server's options
    parser.add_argument("--model", default="bench_serving", help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    args = parser.parse_args()
    header = machine()
    folder = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    services: list[Service] = []
    with registry_server(args, folder) as model:
        workload = build_workload(model)
        try:
            for shadow in (False, True):
                services.append(start_api(model, f"file://{folder}/lake", folder, shadow=shadow))
            results = measure(services, workload.ours_single, args)
            shadow_counts = counters(services[1])
        finally:
            for service in services:
                service.stop()
        passes = in_process(model, workload.ours_single, folder, args.passes)
    print(report(results, shadow_counts, header, passes))


if __name__ == "__main__":
    main()
