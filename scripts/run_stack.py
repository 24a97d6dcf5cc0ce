"""`make run`: start the local stack, start the pipeline, show its progress, stop on Ctrl-C.

Starts MLflow (:5000), Airflow (UI and API on :8080) and the prediction API (:8000) on 127.0.0.1,
and Prometheus (:9090) with the Pushgateway (:9091) and the StatsD bridge when they are installed
(`make run` installs them as `make test` does, where it can; the banner says why metrics are off
otherwise), with their state in .local/ and the data lake in data/lake (both git-ignored).
Unpauses the four pipeline DAGs, batch_score, monitor and ab_test (:data:`~stack.config.UNPAUSED_DAGS`,
consumers first); the etl DAG's daily schedule then creates today's run (if it does not within 30
seconds, the run is triggered by hand). It prints the plan (tasks per DAG, known before they run),
a line whenever a run changes, and a status line at least every 25 s while the chain runs. Running
it again reuses the state: nothing is lost, and a day that already ran is not run again.

The ports and the state folder are settings (``stack.config.local_config``): ``MLP_STACK_STATE_DIR``
and ``MLP_STACK_<NAME>_PORT``. A second stack beside a first one needs other ports and its own state
folder; its lake and DVC remote are then inside that folder too, e.g.::

    MLP_STACK_STATE_DIR=/tmp/second MLP_STACK_AIRFLOW_PORT=8180 MLP_STACK_MLFLOW_PORT=5100 \
    MLP_STACK_API_PORT=8100 MLP_STACK_WORKER_LOG_PORT=8893 MLP_STACK_TRIGGER_LOG_PORT=8894 \
    MLP_STACK_PROMETHEUS_PORT=9190 MLP_STACK_PUSHGATEWAY_PORT=9191 MLP_STACK_STATSD_PORT=9225 \
    MLP_STACK_STATSD_HTTP_PORT=9202 make run
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from stack.chain_monitor import ChainMonitor
from stack.config import ROOT, UNPAUSED_DAGS, local_config
from stack.stack import Stack

SYMBOL = {"success": "done", "failed": "FAILED", "running": "running", "queued": "queued"}


def say(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def shown(path: Path) -> str:
    """A path as it is printed: relative to the project (where `make run` runs) when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def shown_uri(uri: str) -> str:
    """The lake's URI as it is printed: a local lake as a path (see :func:`shown`)."""
    return shown(Path(uri.removeprefix("file://"))) if uri.startswith("file:///") else uri


def example_request(stack: Stack) -> Path:
    """A request body built from the problem's canary records, for the curl example; the key beside it."""
    from include.mlpipeline.core.problem import load_problem

    problem = load_problem()
    state = stack.config.state_dir
    path = state / "example_request.json"
    path.write_text(json.dumps({problem.request_key: problem.canary_records()[:2]}, indent=1))
    (state / "api_key").write_text(stack.secrets["api_key"])
    (state / "api_key").chmod(0o600)
    return path


def warn_if_committable(state: Path) -> None:
    """Warn when the state folder (secrets.json, api_key) is inside the project and git does not ignore it."""
    if not state.is_relative_to(ROOT):
        return
    try:
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(state / "secrets.json")], cwd=ROOT, capture_output=True, check=False
        ).returncode
    except OSError:  # no git here
        return
    if ignored == 1:
        say(
            f"warning: {shown(state)}/ is inside the project and not git-ignored; its secrets could be committed. "
            "Use a folder outside the project or under .local/ (MLP_STACK_STATE_DIR)"
        )


def ensure_first_etl_run(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if stack.airflow.runs("etl"):
            return
        time.sleep(2)
    run = stack.airflow.trigger("etl")
    say(f"etl: no scheduled run appeared; triggered {run['dag_run_id']}")


HEARTBEAT_S = 25.0
"""Longest silence while following: a status line comes at least this often, even if nothing changed."""
IDLE_HEARTBEAT_S = 600.0
"""The same once a model is served and nothing runs (waiting for the next scheduled day)."""
ACTIVE = ("queued", "running")
POLL_S = 4.0  # each round asks the api-server for the runs and the active runs' tasks: it shares the cores


def run_line(monitor: ChainMonitor, dag_id: str, run: dict, finished: dict[str, str]) -> str:
    """One run's line: DAG, state, run type, progress (a finished run's line is asked for once)."""
    if run["dag_run_id"] in finished:
        return finished[run["dag_run_id"]]
    state = SYMBOL.get(run["state"], run["state"])
    line = f"{dag_id:<11} {state:<8} {run['run_type']:<15} {monitor.progress(dag_id, run)}"
    if run["state"] not in ACTIVE:
        finished[run["dag_run_id"]] = line
    return line


def say_served(stack: Stack, started: float) -> None:
    say(f"model served {(time.monotonic() - started) / 60:.1f} min after start. Try it:")
    folder = stack.config.state_dir
    key, body = shlex.quote(shown(folder / "api_key")), shlex.quote(shown(folder / "example_request.json"))
    print(
        f"    curl -s -X POST {stack.config.api_url}/predict -H 'content-type: application/json' "
        f'-H "X-API-Key: $(cat {key})" -d @{body}\n'
        f"    curl -s {stack.config.api_url}/model",
        flush=True,
    )


def follow(stack: Stack, started: float) -> None:
    """Print a line whenever a followed DAG's newest run changes state or progress, and a status line
    at least every HEARTBEAT_S seconds (IDLE_HEARTBEAT_S once a model is served and nothing runs),
    until interrupted. The plan (tasks per DAG) comes first."""
    monitor = ChainMonitor(stack.airflow, UNPAUSED_DAGS)
    say("plan: " + "; ".join(f"{dag_id} {monitor.plan(dag_id)}" for dag_id in UNPAUSED_DAGS))
    printed: dict[str, str] = {}
    finished: dict[str, str] = {}
    served, said = False, time.monotonic()
    while True:
        active = []
        for dag_id, run in monitor.latest().items():
            if run is None:
                continue
            line = run_line(monitor, dag_id, run, finished)
            if run["state"] in ACTIVE:
                active.append(" ".join(line.split()))
            if printed.get(dag_id) != line:
                say(line)
                printed[dag_id], said = line, time.monotonic()
            if dag_id == "deploy" and run["state"] == "success" and not served:
                served = True
                say_served(stack, started)
        if time.monotonic() - said >= (HEARTBEAT_S if active or not served else IDLE_HEARTBEAT_S):
            waiting = "the next etl run comes with its schedule" if served else "waiting for the next run to be queued"
            say(f"{(time.monotonic() - started) / 60:.1f} min: " + ("; ".join(active) or f"nothing running, {waiting}"))
            said = time.monotonic()
        time.sleep(POLL_S)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    started = time.monotonic()
    try:
        config = local_config()
    except ValueError as error:  # a bad MLP_STACK_* setting, named in the message
        say(f"error: {error}")
        return 2
    stack = Stack(config)
    state = shown(config.state_dir)
    for signum in (signal.SIGINT, signal.SIGTERM):  # explicit: a background start may ignore SIGINT
        signal.signal(signum, _interrupt)
    try:
        say("starting MLflow, Airflow (scheduler, dag-processor, triggerer, api-server) and the prediction API")
        say(f"state in {state}/, data lake in {shown_uri(config.lake_uri)}, component logs in {state}/logs/")
        warn_if_committable(config.state_dir)
        stack.start()
        stack.airflow.wait_for_dags(UNPAUSED_DAGS)
        for dag_id in (*UNPAUSED_DAGS[1:], UNPAUSED_DAGS[0]):  # consumers first (etl last), so no event is missed
            stack.airflow.set_paused(dag_id, False)
        request_file = example_request(stack)
        print(
            "\n"
            f"  Airflow UI   {config.airflow_url}   login: admin / {stack.secrets['admin_password']}\n"
            f"  MLflow UI    {config.mlflow_url}\n"
            f"  API docs     {config.api_url}/docs\n"
            + (
                f"  API key      {stack.secrets['api_key']}   (shown once; kept in {state}/api_key)\n"
                if stack.secrets_created
                else f"  API key      in {state}/api_key (X-API-Key header)\n"
            )
            + f"  Example body {shown(request_file)}\n"
            + (
                f"  Prometheus   {stack.monitoring.prometheus_url}   Pushgateway {stack.monitoring.pushgateway_url}\n"
                if stack.monitoring
                else f"  Metrics      off: {stack.monitoring_off or 'not configured'}\n"
            )
            + "  Ctrl-C stops everything.\n",
            flush=True,
        )
        say(
            f"DAGs unpaused: {', '.join(UNPAUSED_DAGS)}; the chain runs etl -> features -> train -> deploy, "
            "batch_score scores each new day with the champion, monitor checks it for drift and ab_test "
            "decides champion against challenger"
        )
        ensure_first_etl_run(stack)
        follow(stack, started)
    except KeyboardInterrupt:
        say("stopping")
    except Exception as error:  # show the cause, then stop what was started
        say(f"error: {error}")
        return 1
    finally:
        stack.stop()
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
