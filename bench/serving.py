"""Serving benchmark: our prediction API against `mlflow models serve`, same registered model, same records.

Both services run on this machine as one process each, one at a time under load: our API
(``uvicorn --factory include.mlpipeline.serving.app:create_app``, as ``make run`` starts it) and
``mlflow models serve -m models:/<name>/<version> --env-manager local`` (the model is logged with
``pyfunc_predict_fn=predict_proba``). Each gets the input it needs for the SAME flights: our API the
raw request fields (it looks up weather and planes and builds features itself), MLflow the feature
frame (``dataframe_split`` of the model's input columns), built once here with the problem's
``request_features``. Before timing, both answer the 1,000 records and their
probabilities are compared.

Load: a fixed number of concurrent clients (threads, one keep-alive httpx client each, bodies
encoded beforehand), a warm-up phase, then a measured phase, for one-record requests (each a
different flight) and for 1,000-record requests. The measured time is split into turns that
alternate between the two services (``--rounds``), so background load on a shared machine falls on
both alike. Prints a markdown table with both services side by
side and the ratios, the machine, and where the time of our request path goes (stages timed in
process on the same records).

Without ``--tracking-uri`` it starts its own MLflow server in a temporary folder and trains and
registers a model on 12 replayed days, as the API tests do.

    python bench/serving.py [--clients 8] [--seconds 20] [--warmup 5] [--candidate logistic_regression]
    python bench/serving.py --tracking-uri http://127.0.0.1:5000 --model flight_delay --version 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from stack.mlflow_server import running_mlflow_server  # noqa: E402
from stack.processes import free_port, stop_process_group, wait_for_http  # noqa: E402

API_KEY = "bench-key"
DAYS = [f"2013-06-{day:02d}" for day in range(1, 13)]
BATCH = 1000


# the model ----------------------------------------------------------------------------------------


@dataclass
class Model:
    tracking_uri: str
    name: str
    version: str
    candidate: str = "?"


def train_and_register(tracking_uri: str, lake_uri: str, candidate: str) -> Model:
    """Train the baseline and ``candidate`` on 12 replayed days with the pipeline's code; register the best."""
    os.environ.update(
        {
            "MLP_MLFLOW_TRACKING_URI": tracking_uri,
            "MLP_LAKE_URI": lake_uri,
            "MLP_REGISTERED_MODEL_NAME": "bench_serving",
            "MLP_EXPERIMENT_NAME": "bench_serving",
            "MLP_VALIDATION_SIZE": "3 days",
            "MLP_TEST_SIZE": "3 days",
            "MLP_DVC_ENABLED": "false",
        }
    )
    from include.mlpipeline.core.settings import get_settings
    from include.mlpipeline.data import etl
    from include.mlpipeline.ml import registry, tracking
    from include.mlpipeline.ml.training import train_candidate
    from include.mlpipeline.ml.window import select_window

    get_settings.cache_clear()
    etl.replay_days(DAYS)
    window = select_window().to_dict()
    parent = tracking.start_parent_run(window, run_name="serving benchmark")
    results = [train_candidate(name, window, parent) for name in ("baseline", candidate)]
    registration = registry.register_best(results, window, parent)
    registry.set_alias("champion", registration["version"])
    return Model(tracking_uri, "bench_serving", str(registration["version"]), registration["candidate"])


# the records --------------------------------------------------------------------------------------


@dataclass
class Workload:
    """The same flights for both services, as each needs them, encoded once."""

    records: list[dict]
    features: list[str]
    ours_single: list[bytes] = field(default_factory=list)
    mlflow_single: list[bytes] = field(default_factory=list)
    ours_batch: bytes = b""
    mlflow_batch: bytes = b""


def build_workload(model: Model, count: int = BATCH) -> Workload:
    import mlflow
    import pandas as pd

    from include.flight_delay import sources
    from include.flight_delay.serving import FlightRequest
    from include.mlpipeline.core.problem import load_problem

    problem = load_problem()
    flights = sources.whole_table("flights")
    year = sources.source_settings().replay_year
    picked = flights[(flights["year"] == year) & (flights["month"] == 7)].head(count)
    rows = picked[list(FlightRequest.model_fields)].astype(object).where(picked.notna(), None)
    records = [FlightRequest.model_validate(r).model_dump(mode="json") for r in rows.to_dict(orient="records")]
    mlflow.set_tracking_uri(model.tracking_uri)
    metadata = mlflow.models.get_model_info(f"models:/{model.name}/{model.version}").metadata or {}
    columns = list(metadata.get("features", problem.feature_columns))
    frame = problem.request_features(records, problem.load_serving_context())[columns]

    def split(part: pd.DataFrame) -> bytes:  # NaN -> null, as MLflow expects
        return b'{"dataframe_split": ' + part.to_json(orient="split", index=False).encode() + b"}"

    workload = Workload(records, columns)
    workload.ours_single = [json.dumps({problem.request_key: [r]}).encode() for r in records]
    workload.mlflow_single = [split(frame.iloc[[i]]) for i in range(len(frame))]
    workload.ours_batch = json.dumps({problem.request_key: records}).encode()
    workload.mlflow_batch = split(frame)
    return workload


# the services -------------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    url: str
    path: str
    headers: dict[str, str]
    process: subprocess.Popen

    def stop(self) -> None:
        stop_process_group(self.process, timeout=30)


def start_ours(model: Model, lake_uri: str, log_dir: Path, workers: int) -> Service:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLP_MLFLOW_TRACKING_URI": model.tracking_uri,
        "MLP_REGISTERED_MODEL_NAME": model.name,
        "MLP_LAKE_URI": lake_uri,
        "MLP_API_KEY": API_KEY,
        "MLP_API_RELOAD_INTERVAL_S": "3600",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "include.mlpipeline.serving.app:create_app",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=(log_dir / "api.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ready", timeout=300, process=process)
    return Service("our API", url, "/predict", {"X-API-Key": API_KEY, "content-type": "application/json"}, process)


def start_mlflow_serve(model: Model, log_dir: Path, workers: int) -> Service:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": model.tracking_uri, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    command = [str(Path(bin_dir) / "mlflow"), "models", "serve",
               "-m", f"models:/{model.name}/{model.version}", "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, cwd=log_dir, stdout=(log_dir / "mlflow_serve.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/ping", timeout=300, process=process)
    return Service("mlflow models serve", url, "/invocations", {"content-type": "application/json"}, process)


def check_same_answers(ours: Service, theirs: Service, workload: Workload) -> float:
    """Both services score the 1,000 records; returns the largest probability difference."""
    mine = httpx.post(f"{ours.url}{ours.path}", content=workload.ours_batch, headers=ours.headers, timeout=120)
    other = httpx.post(f"{theirs.url}{theirs.path}", content=workload.mlflow_batch, headers=theirs.headers, timeout=120)
    mine.raise_for_status()
    other.raise_for_status()
    live = np.array([p["probability"] for p in mine.json()["predictions"]])
    served = np.array([row[1] for row in other.json()["predictions"]])
    return float(np.max(np.abs(live - served)))


# the load -----------------------------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    records: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray
    server_cpu_s: float = 0.0  # CPU time of the service's processes over warm-up and measurement
    wall_s: float = 0.0  # ... and the wall time it was taken over

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    def plus(self, other: Result) -> Result:
        """This measurement and another of the same scenario, as one."""
        return Result(
            self.requests + other.requests,
            self.records + other.records,
            self.errors + other.errors,
            self.seconds + other.seconds,
            np.concatenate([self.latencies_ms, other.latencies_ms]),
            self.server_cpu_s + other.server_cpu_s,
            self.wall_s + other.wall_s,
        )

    @property
    def server_cores(self) -> float:
        """Cores the service kept busy on average (1.0: one core all the time)."""
        return self.server_cpu_s / self.wall_s if self.wall_s else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")


def load(
    service: Service, bodies: list[bytes], records_per_body: int, *, clients: int, warmup: float, seconds: float
) -> Result:
    """``clients`` threads send ``bodies`` round robin: ``warmup`` seconds unrecorded, then ``seconds`` measured."""
    start = time.perf_counter() + warmup
    end = start + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def client(index: int) -> None:
        with httpx.Client(base_url=service.url, headers=service.headers, timeout=120) as http:
            position = index
            while (now := time.perf_counter()) < end:
                body = bodies[position % len(bodies)]
                position += clients
                response = http.post(service.path, content=body)
                done = time.perf_counter()
                if now >= start:
                    if response.status_code == 200:
                        latencies[index].append((done - now) * 1000)
                    else:
                        errors[index] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    cpu_before, wall_before = server_cpu_seconds(service), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu, wall = server_cpu_seconds(service) - cpu_before, time.perf_counter() - wall_before
    measured = np.array([x for per_client in latencies for x in per_client])
    return Result(len(measured), len(measured) * records_per_body, sum(errors), seconds, measured, cpu, wall)


def scoring_passes(service: Service) -> tuple[float, float]:
    """Our API's scoring passes so far and the requests they scored (from its /metrics)."""
    text = httpx.get(f"{service.url}/metrics", timeout=30).text
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("mlp_api_scoring_pass_requests_")
    )
    return float(values.get("mlp_api_scoring_pass_requests_count", 0)), float(
        values.get("mlp_api_scoring_pass_requests_sum", 0)
    )


def server_cpu_seconds(service: Service) -> float:
    """User + system CPU seconds of the service's process and its children so far."""
    root = psutil.Process(service.process.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


# where our time goes ------------------------------------------------------------------------------


def breakdown(model: Model, workload: Workload, repeats: int = 30) -> list[tuple[str, float, float]]:
    """Our request path, stage by stage, in process (ms per request for 1 and for 1,000 records)."""
    import mlflow
    import orjson

    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.core.settings import Settings
    from include.mlpipeline.serving.model_store import LoadedModel
    from include.mlpipeline.serving.prediction_log import ScoredBatch, assign_variants, now_utc
    from include.mlpipeline.serving.request_parsing import PredictBodyParser, RequestChecks, predict_request_model

    problem = load_problem()
    context = problem.load_serving_context()
    pipeline = mlflow.sklearn.load_model(f"models:/{model.name}/{model.version}")
    served = LoadedModel(model.name, model.version, None, pipeline, 0.5, workload.features)
    settings = Settings()
    bodies = PredictBodyParser(problem, settings, predict_request_model(problem, settings))
    checks = RequestChecks(problem)
    stages: dict[str, list[float]] = {}

    def timed(name: str, function, *args):
        started = time.perf_counter()
        value = function(*args)
        stages.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return value

    def path(body: bytes) -> None:
        parsed = timed("JSON parse + request checks (column by column)", bodies.parse, body)
        records = getattr(parsed, problem.request_key)
        requests, _ = timed("request frame + problem's checks", checks.apply, [bodies.columns(records)], [records])
        clean = timed("serving_frame (lookups: weather, planes)", problem.serving_frame, requests, context)
        frame = timed("build_features", problem.build_features, clean)
        keys = frame[problem.key_columns[0]].astype(str)
        timed("A/B assignment", assign_variants, list(keys), 0.0)
        probabilities = timed("model predict_proba", served.predict, frame)
        columns = {"id": keys.to_numpy(), "probability": probabilities}
        batch = ScoredBatch(now_utc(), columns, frame, tuple(problem.feature_columns))
        timed("prediction log rows + features hash (flush thread)", ScoredBatch.rows, [batch])

        def respond() -> bytes:  # as the /predict route encodes its answer
            predictions = [
                {"id": k, "probability": p, "label": "x", "positive": True, "variant": "champion", "model_version": "1"}
                for k, p in zip(keys.tolist(), probabilities.tolist(), strict=True)
            ]
            return orjson.dumps({"request_id": "x", "predictions": predictions})

        timed("response objects + JSON", respond)

    rows = []
    for body in (workload.ours_single, [workload.ours_batch]):
        stages.clear()
        for i in range(repeats):
            path(body[i % len(body)])
        rows.append({name: float(np.median(values)) for name, values in stages.items()})
    return [(name, rows[0][name], rows[1][name]) for name in rows[0]]


# report -------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    memory = psutil.virtual_memory().total / 2**30
    load1, load5, _ = os.getloadavg()
    return (
        f"{os.cpu_count()} logical cores ({psutil.cpu_count(logical=False)} physical), {cpu}, {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"load average at start {load1:.1f} (1 min) / {load5:.1f} (5 min)"
    )


def ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.2f}x" if theirs else "-"


def report(results: dict[tuple[str, str], Result], args: argparse.Namespace, model: Model, difference: float) -> str:
    ours, theirs = "our API", "mlflow models serve"
    one, many = "1", str(BATCH)
    metrics = [
        ("p50 latency, {n} (ms)", lambda r: r.percentile(50)),
        ("p99 latency, {n} (ms)", lambda r: r.percentile(99)),
        ("requests/s, {n}", lambda r: r.rps),
        ("records/s, {n}", lambda r: r.records_per_s),
        ("server CPU, {n} (cores busy)", lambda r: r.server_cores),
    ]
    lines = [
        f"Model: `models:/{model.name}/{model.version}` ({model.candidate}); {args.clients} concurrent clients, "
        f"{args.warmup:.0f} s warm-up then {args.seconds:.0f} s measured per scenario, in {args.rounds} turns "
        "alternating between the services; one server process each "
        f"(--workers {args.workers}); both answer the same {BATCH} flights with probabilities equal to "
        f"{difference:.1e}.",
        "",
        f"| metric | {ours} | {theirs} | ours / mlflow |",
        "| --- | ---: | ---: | ---: |",
    ]
    for size, records in ((one, "1 record"), (many, f"{BATCH} records")):
        for template, metric in metrics:
            name = template.format(n=records)
            a, b = metric(results[(ours, size)]), metric(results[(theirs, size)])
            if "CPU" in name:  # context, not a target
                lines.append(f"| {name} | {a:.2f} | {b:.2f} | {ratio(a, b)} |")
                continue
            better = b / a if "latency" in name else a / b
            lines.append(f"| {name} | {a:,.1f} | {b:,.1f} | {ratio(a, b)} ({'better' if better > 1 else 'worse'}) |")
    errors = {f"{s} ({n} rec)": r.errors for (s, n), r in results.items() if r.errors}
    lines += ["", f"Failed requests: {errors or 'none'}", "", f"Machine: {machine()}"]
    one_ratio = results[(ours, one)].rps / results[(theirs, one)].rps
    many_ratio = results[(ours, many)].records_per_s / results[(theirs, many)].records_per_s
    lower_p99 = results[(ours, one)].percentile(99) < results[(theirs, one)].percentile(99)
    lines.append(
        f"Targets: throughput >= 2x mlflow: 1 record {one_ratio:.2f}x, {BATCH} records {many_ratio:.2f}x "
        f"({'met' if min(one_ratio, many_ratio) >= 2 else 'missed'}); lower p99 (1 record): "
        f"{'met' if lower_p99 else 'missed'}"
    )
    return "\n".join(lines)


@contextlib.contextmanager
def registry_server(args: argparse.Namespace, folder: Path) -> Iterator[Model]:
    if args.tracking_uri:
        yield Model(args.tracking_uri, args.model, args.version, "given")
        return
    with running_mlflow_server(folder / "mlflow", workers=1) as url:
        print(f"[bench] MLflow at {url}; training {args.candidate} on {len(DAYS)} replayed days", flush=True)
        yield train_and_register(url, f"file://{folder}/lake", args.candidate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="use this MLflow server's model instead of training one")
    parser.add_argument("--model", help="registered model name (with --tracking-uri)")
    parser.add_argument("--version", help="registered model version (with --tracking-uri)")
    parser.add_argument("--candidate", default="logistic_regression", help="model family to train (no --tracking-uri)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before each scenario")
    parser.add_argument("--workers", type=int, default=1, help="server processes of each service (same for both)")
    parser.add_argument("--rounds", type=int, default=2, help="turns each service takes per scenario (alternating)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip timing our request path by stage")
    args = parser.parse_args()
    if args.tracking_uri and not (args.model and args.version):
        parser.error("--tracking-uri needs --model and --version")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp, registry_server(args, Path(tmp)) as model:
        folder = Path(tmp)
        print(f"[bench] model {model.name} version {model.version}; building {BATCH} records", flush=True)
        workload = build_workload(model)
        services = [
            start_ours(model, f"file://{folder}/serving-lake", folder, args.workers),
            start_mlflow_serve(model, folder, args.workers),
        ]
        try:
            difference = check_same_answers(*services, workload)
            results: dict[tuple[str, str], Result] = {}
            passes = {"1": [0.0, 0.0], str(BATCH): [0.0, 0.0]}  # our API: scoring passes, requests in them
            # The two services take turns, each round a share of the measured time, so a change in
            # the machine's background load falls on both rather than on whichever ran last.
            for round_ in range(args.rounds):
                for size in ("1", str(BATCH)):
                    for service in services:
                        ours = service.name == "our API"
                        if size == "1":
                            bodies = workload.ours_single if ours else workload.mlflow_single
                        else:
                            bodies = [workload.ours_batch if ours else workload.mlflow_batch]
                        print(f"[bench] round {round_ + 1}: {service.name}, {size}-record requests", flush=True)
                        before = scoring_passes(service) if ours else (0.0, 0.0)
                        measured = load(
                            service, bodies, 1 if size == "1" else BATCH, clients=args.clients,
                            warmup=args.warmup if round_ == 0 else 1.0, seconds=args.seconds / args.rounds,
                        )  # fmt: skip
                        if ours:
                            after = scoring_passes(service)
                            passes[size] = [t + a - b for t, a, b in zip(passes[size], after, before, strict=True)]
                        key = (service.name, size)
                        results[key] = results[key].plus(measured) if key in results else measured
        finally:
            for service in services:
                service.stop()
        print()
        print(report(results, args, model, difference))
        print(
            "Our API scored "
            + " and ".join(f"{r / n:.1f} {size}-record requests per pass" for size, (n, r) in passes.items() if n)
            + " on average (concurrent requests share one pass through features and model)."
        )
        if not args.no_breakdown:
            print("\nWhere our request path spends its time (in process, median ms per request):\n")
            print(f"| stage | 1 record | {BATCH} records |")
            print("| --- | ---: | ---: |")
            stages = breakdown(model, workload)
            for name, single_ms, batch_ms in stages:
                print(f"| {name} | {single_ms:.2f} | {batch_ms:.2f} |")
            print(f"| total | {sum(s[1] for s in stages):.2f} | {sum(s[2] for s in stages):.2f} |")


if __name__ == "__main__":
    main()
