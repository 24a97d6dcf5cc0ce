"""Serving benchmark: our prediction API against `mlflow models serve`, same registered model, same records.

Both services run on this machine as one process each, one at a time under load: our API
(``uvicorn --factory include.mlpipeline.serving.app:create_app``, as ``make run`` starts it, with the
A/B split on: a second registered version answers ``AB_SHARE`` of the records, and the prediction
log on) and ``mlflow models serve -m models:/<name>/<version> --env-manager local`` (the model is
logged with ``pyfunc_predict_fn=predict_proba``). Each gets the input it needs for the SAME flights:
our API the raw request fields (it looks up weather and planes and builds features itself), MLflow
the feature frame (``dataframe_split`` of the model's input columns), built once here with the
problem's ``request_features``. Before timing, both answer the 1,000 records and their champion
probabilities are compared.

Load: three scenarios, each a number of concurrent clients (threads, one keep-alive httpx client
each, bodies encoded beforehand), a warm-up, then a measured phase: one-record requests from one
client (latency alone), one-record requests (each a different flight) from ``--clients`` clients,
and 1,000-record requests from ``--clients`` clients. The measured time is split into turns that
alternate between the two services (``--rounds``), so background load on a shared machine falls on
both alike. Prints a markdown table with both services side by side and the ratios, the machine and
its load, and then our request path timed in process, through the API's own objects (the model as
the store loads it, compiled and checked): stage by stage, end to end from the body's bytes to the
answer's, and next to it the floor, the estimator's own ``predict_proba`` on already preprocessed
arrays, with the ratio.

Without ``--tracking-uri`` it starts its own MLflow server in a temporary folder and trains and
registers a model (and the baseline as the challenger) on 12 replayed days, as the API tests do.

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
AB_SHARE = 0.1  # the share of records our API answers with the challenger (A/B split on, as in production)
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
    # The A/B split stays on: the other candidate is registered too and served as the challenger.
    import mlflow

    other = next(result for result in results if result["name"] != registration["candidate"])
    challenger = mlflow.register_model(other["model_uri"], "bench_serving").version
    registry.set_alias("challenger", str(challenger))
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
        "MLP_AB_CHALLENGER_SHARE": str(AB_SHARE),
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
    champion = {**ours.headers, "X-Model-Variant": "champion"}  # the A/B split sends some records elsewhere
    mine = httpx.post(f"{ours.url}{ours.path}", content=workload.ours_batch, headers=champion, timeout=120)
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


def round_trip_ms(service: Service, path: str, count: int = 300) -> float:
    """Median milliseconds of ``count`` GET ``path`` one after another: the HTTP stack's own share of a
    one-client request (client, loopback, server, framework), with no model work."""
    times = []
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for _ in range(count):
            started = time.perf_counter()
            http.get(path).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


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


@dataclass
class InProcess:
    """Our request path timed in this process (median ms per request, for 1 and for 1,000 records)."""

    stages: list[tuple[str, float, float]]  # (stage, 1 record, 1,000 records)
    path: tuple[float, float]  # body bytes to answer bytes, through the API's own objects
    floor: tuple[float, float]  # the estimator's own predict on preprocessed arrays
    form: dict


def _median_ms(function, arguments: list, repeats: int) -> float:
    for argument in arguments[:3]:  # warm
        function(argument)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        function(arguments[i % len(arguments)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def in_process(model: Model, workload: Workload, folder: Path, repeats: int = 300) -> InProcess:
    """Our request path in process, as /predict runs it (without the HTTP server): the served model as
    the store loads it (compiled and checked), the A/B split and the prediction log on; stage by stage,
    end to end, and the floor: the estimator's own ``predict_proba`` on already preprocessed arrays."""
    from include.mlpipeline.core.problem import load_problem
    from include.mlpipeline.core.settings import Settings
    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.serving.answers import task_answers
    from include.mlpipeline.serving.metrics import ServingMetrics
    from include.mlpipeline.serving.model_store import ModelStore
    from include.mlpipeline.serving.prediction_log import PredictionLog, assign_variants
    from include.mlpipeline.serving.request_parsing import PredictBodyParser, RequestChecks, predict_request_model
    from include.mlpipeline.serving.scoring import Scorer, ScoringJob, predict_by_variant

    problem = load_problem()
    context = problem.load_serving_context()
    settings = Settings(
        mlflow_tracking_uri=model.tracking_uri, registered_model_name=model.name, ab_challenger_share=AB_SHARE
    )
    store = ModelStore(settings, problem, context, model.name)
    store.refresh()
    champion, challenger = store.current, store.challenger
    prediction_log = PredictionLog(lambda: Lake(f"file://{folder}/in-process-lake"), flush_s=3600)
    bodies = PredictBodyParser(problem, settings, predict_request_model(problem, settings))
    checks, scorer, answers = RequestChecks(problem), Scorer(problem, settings, ServingMetrics()), task_answers(problem)

    def answer(body: bytes) -> bytes:  # what the /predict route runs, less the HTTP server
        records = getattr(bodies.parse(body), problem.request_key)
        job = ScoringJob(bodies.columns(records), records, None, store, prediction_log, time.perf_counter())
        (scored,) = scorer.score([job])
        return answers.encode(job.request_id, scored)

    single, batch = workload.ours_single, [workload.ours_batch]
    path, flush_ms = [], []
    for bodies_, count in ((single, repeats), (batch, max(20, repeats // 10))):
        path.append(_median_ms(answer, bodies_, count))
        passes = count + 3
        started = time.perf_counter()
        prediction_log.flush()  # the flush thread's work for those passes: their rows, written
        flush_ms.append((time.perf_counter() - started) * 1000 / passes)

    pipeline, estimator = champion.pipeline, champion.pipeline[-1]
    frame = problem.request_features(workload.records, context)[champion.features]
    arrays = [pipeline[:-1].transform(frame.iloc[[i]]) for i in range(50)]
    whole = pipeline[:-1].transform(frame)
    floor = (_median_ms(estimator.predict_proba, arrays, repeats), _median_ms(estimator.predict_proba, [whole], 50))

    stages: dict[str, list[float]] = {}

    def timed(name: str, function, *args):
        started = time.perf_counter()
        value = function(*args)
        stages.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return value

    def stage_by_stage(body: bytes) -> None:
        parsed = timed("JSON parse + field checks (column by column)", bodies.parse, body)
        records = getattr(parsed, problem.request_key)
        columns = bodies.columns(records)
        job = ScoringJob(columns, records, None, store, prediction_log, time.perf_counter())
        requests, _ = timed("request frame + problem's checks", checks.apply, [columns], [records])
        features = timed(f"features ({store.feature_path.name})", scorer._features, [job], requests, store)
        keys = np.asarray(features[problem.key_columns[0]]).astype(str).astype(object)
        variants = timed("A/B assignment", assign_variants, keys.tolist(), AB_SHARE)
        predicted, _, _ = timed(
            f"model ({champion.scoring_summary()['form']})",
            predict_by_variant, features, variants, champion, challenger, answers,
        )  # fmt: skip
        logged = {"request_id": np.repeat(job.request_id, len(keys)), "id": keys, **predicted}
        timed("prediction log hand-over", scorer._log_pass, [job], np.array([len(keys)]), logged, features)
        scored = scorer.score([job])[0]
        timed("response JSON", answers.encode, job.request_id, scored)

    rows = []
    for bodies_ in (single, batch):
        stages.clear()
        for i in range(60):
            stage_by_stage(bodies_[i % len(bodies_)])
        rows.append({name: float(np.median(values)) for name, values in stages.items()})
    table = [(name, rows[0][name], rows[1][name]) for name in rows[0]]
    table.append(("prediction log rows + write (flush thread, per request)", *flush_ms))
    return InProcess(table, (path[0], path[1]), floor, store.scoring_summary(champion))


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


SCENARIOS = ("1@1", "1", str(BATCH))  # one record, one client; one record, --clients; 1,000 records, --clients


def scenario_name(scenario: str, clients: int) -> str:
    if scenario == "1@1":
        return "1 record, 1 client"
    return f"{'1 record' if scenario == '1' else f'{BATCH} records'}, {clients} clients"


def report(results: dict[tuple[str, str], Result], args: argparse.Namespace, model: Model, difference: float) -> str:
    ours, theirs = "our API", "mlflow models serve"
    metrics = [
        ("p50 latency (ms)", lambda r: r.percentile(50)),
        ("p99 latency (ms)", lambda r: r.percentile(99)),
        ("requests/s", lambda r: r.rps),
        ("records/s", lambda r: r.records_per_s),
        ("server CPU (cores busy)", lambda r: r.server_cores),
    ]
    lines = [
        f"Model: `models:/{model.name}/{model.version}` ({model.candidate}); our API with the A/B split on "
        f"({AB_SHARE:.0%} of records to a challenger version) and the prediction log on; "
        f"{args.warmup:.0f} s warm-up then {args.seconds:.0f} s measured per scenario, in {args.rounds} turns "
        f"alternating between the services; one server process each (--workers {args.workers}); both answer "
        f"the same {BATCH} flights with probabilities equal to {difference:.1e} (champion).",
        "",
        f"| scenario | metric | {ours} | {theirs} | ours / mlflow |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for scenario in SCENARIOS:
        for name, metric in metrics:
            if scenario == "1@1" and name in ("records/s", "server CPU (cores busy)"):
                continue
            if (scenario, name) in (("1", "records/s"), (str(BATCH), "requests/s")):
                continue
            a, b = metric(results[(ours, scenario)]), metric(results[(theirs, scenario)])
            label = scenario_name(scenario, args.clients)
            if "CPU" in name:  # context, not a target
                lines.append(f"| {label} | {name} | {a:.2f} | {b:.2f} | {ratio(a, b)} |")
                continue
            better = b / a if "latency" in name else a / b
            lines.append(
                f"| {label} | {name} | {a:,.1f} | {b:,.1f} | {ratio(a, b)} ({'better' if better > 1 else 'worse'}) |"
            )
    errors = {f"{s} ({n})": r.errors for (s, n), r in results.items() if r.errors}
    lines += ["", f"Failed requests: {errors or 'none'}", "", f"Machine: {machine()}"]
    alone = results[(ours, "1@1")].percentile(50)
    one_ratio = results[(ours, "1")].rps / results[(theirs, "1")].rps
    many_ratio = results[(ours, str(BATCH))].records_per_s / results[(theirs, str(BATCH))].records_per_s
    lower_p99 = all(results[(ours, n)].percentile(99) < results[(theirs, n)].percentile(99) for n in ("1", str(BATCH)))
    lines.append(
        f"Targets: p50 of one record alone <= 3 ms: {alone:.2f} ms ({'met' if alone <= 3 else 'missed'}); "
        f"throughput with {args.clients} clients >= 5x mlflow with 1 record: {one_ratio:.2f}x "
        f"({'met' if one_ratio >= 5 else 'missed'}), >= 3x with {BATCH}: {many_ratio:.2f}x "
        f"({'met' if many_ratio >= 3 else 'missed'}); lower p99: {'met' if lower_p99 else 'missed'}"
    )
    return "\n".join(lines)


def in_process_report(measured: InProcess) -> str:
    form = measured.form
    lines = [
        f"Served as: {form['form']} (largest difference from the pipeline {form['max_difference']:.1e} on "
        f"{form['rows_checked']} rows checked at load), request features on {form['features']}.",
        "",
        "Where our request path spends its time (in process, median ms per request):",
        "",
        f"| stage | 1 record | {BATCH} records |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {one:.3f} | {many:.3f} |" for name, one, many in measured.stages]
    (path_one, path_many), (floor_one, floor_many) = measured.path, measured.floor
    lines += [
        f"| **request to answer, end to end** | {path_one:.3f} | {path_many:.3f} |",
        f"| floor: the estimator's own predict_proba on preprocessed arrays | {floor_one:.3f} | {floor_many:.3f} |",
        f"| ratio to the floor | {path_one / floor_one:.1f}x | {path_many / floor_many:.1f}x |",
        "",
        f"Target: request to answer at most 2x the floor (1 record): {path_one / floor_one:.1f}x "
        f"({'met' if path_one <= 2 * floor_one else 'missed'})",
    ]
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
    parser.add_argument("--no-breakdown", action="store_true", help="skip timing our request path in process")
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
            round_trips = {
                service.name: round_trip_ms(service, "/health" if i == 0 else "/ping")
                for i, service in enumerate(services)
            }
            results: dict[tuple[str, str], Result] = {}
            passes = {scenario: [0.0, 0.0] for scenario in SCENARIOS}  # our API: scoring passes, requests in them
            # The two services take turns, each round a share of the measured time, so a change in
            # the machine's background load falls on both rather than on whichever ran last.
            for round_ in range(args.rounds):
                for scenario in SCENARIOS:
                    for service in services:
                        ours = service.name == "our API"
                        if scenario == str(BATCH):
                            bodies = [workload.ours_batch if ours else workload.mlflow_batch]
                        else:
                            bodies = workload.ours_single if ours else workload.mlflow_single
                        name = scenario_name(scenario, args.clients)
                        print(f"[bench] round {round_ + 1}: {service.name}, {name}", flush=True)
                        before = scoring_passes(service) if ours else (0.0, 0.0)
                        measured = load(
                            service, bodies, BATCH if scenario == str(BATCH) else 1,
                            clients=1 if scenario == "1@1" else args.clients,
                            warmup=args.warmup if round_ == 0 else 1.0, seconds=args.seconds / args.rounds,
                        )  # fmt: skip
                        if ours:
                            after = scoring_passes(service)
                            counts = zip(passes[scenario], after, before, strict=True)
                            passes[scenario] = [t + a - b for t, a, b in counts]
                        key = (service.name, scenario)
                        results[key] = results[key].plus(measured) if key in results else measured
        finally:
            for service in services:
                service.stop()
        print()
        print(report(results, args, model, difference))
        print(
            "HTTP round trip with no model work, one client (median ms): "
            + ", ".join(
                f"{name} {ms:.2f} (GET {'/health' if name == 'our API' else '/ping'})"
                for name, ms in round_trips.items()
            )
        )
        print(
            "Our API scored "
            + ", ".join(
                f"{r / n:.1f} requests per pass ({scenario_name(scenario, args.clients)})"
                for scenario, (n, r) in passes.items()
                if n
            )
            + " on average (concurrent requests share one pass through features and model)."
        )
        if not args.no_breakdown:
            print(f"\n[bench] timing our request path in process (load average {os.getloadavg()[0]:.1f})\n")
            print(in_process_report(in_process(model, workload, folder)))


if __name__ == "__main__":
    main()
