"""`make run`: start the local stack, start the pipeline, show its progress, stop on Ctrl-C.

Starts MLflow (:5000), Airflow (UI and API on :8080) and the prediction API (:8000) on 127.0.0.1,
with their state in .local/ and the data lake in data/lake (both git-ignored). Unpauses the four
pipeline DAGs; the etl DAG's daily schedule then creates today's run (if it does not within 30
seconds, the run is triggered by hand). Running it again reuses the state: nothing is lost, and a
day that already ran is not run again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import time
from pathlib import Path

from stack.chain_monitor import ChainMonitor
from stack.config import PIPELINE_DAGS, ROOT, local_config
from stack.stack import Stack

STATE = ROOT / ".local"
SYMBOL = {"success": "done", "failed": "FAILED", "running": "running", "queued": "queued"}


def say(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def example_request(stack: Stack) -> Path:
    """A request body built from the problem's canary records, for the curl example."""
    from include.mlpipeline.core.problem import load_problem

    problem = load_problem()
    path = STATE / "example_request.json"
    path.write_text(json.dumps({problem.request_key: problem.canary_records()[:2]}, indent=1))
    (STATE / "api_key").write_text(stack.secrets["api_key"])
    (STATE / "api_key").chmod(0o600)
    return path


def ensure_first_etl_run(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if stack.airflow.runs("etl"):
            return
        time.sleep(2)
    run = stack.airflow.trigger("etl")
    say(f"etl: no scheduled run appeared; triggered {run['dag_run_id']}")


def follow(stack: Stack, started: float) -> None:
    """Print a line whenever a pipeline DAG's newest run changes state or progress, until interrupted."""
    monitor = ChainMonitor(stack.airflow)
    printed: dict[str, str] = {}
    served = False
    while True:
        for dag_id, run in monitor.latest().items():
            if run is None:
                continue
            state = SYMBOL.get(run["state"], run["state"])
            line = f"{dag_id:<9} {state:<8} {run['run_type']:<15} {monitor.progress(dag_id, run)}"
            if printed.get(dag_id) != line:
                say(line)
                printed[dag_id] = line
            if dag_id == "deploy" and run["state"] == "success" and not served:
                served = True
                say(f"model served {(time.monotonic() - started) / 60:.1f} min after start. Try it:")
                print(
                    f"    curl -s -X POST {stack.config.api_url}/predict -H 'content-type: application/json' "
                    f'-H "X-API-Key: $(cat .local/api_key)" -d @.local/example_request.json\n'
                    f"    curl -s {stack.config.api_url}/model",
                    flush=True,
                )
        time.sleep(3)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    started = time.monotonic()
    config = local_config()
    stack = Stack(config)
    for signum in (signal.SIGINT, signal.SIGTERM):  # explicit: a background start may ignore SIGINT
        signal.signal(signum, _interrupt)
    try:
        say("starting MLflow, Airflow (scheduler, dag-processor, triggerer, api-server) and the prediction API")
        say(f"state in {STATE.relative_to(ROOT)}/, data lake in data/lake/, component logs in .local/logs/")
        stack.start()
        stack.airflow.wait_for_dags()
        for dag_id in (*PIPELINE_DAGS[1:], PIPELINE_DAGS[0]):  # consumers first, so no asset event is missed
            stack.airflow.set_paused(dag_id, False)
        request_file = example_request(stack)
        print(
            "\n"
            f"  Airflow UI   {config.airflow_url}   login: admin / {stack.secrets['admin_password']}\n"
            f"  MLflow UI    {config.mlflow_url}\n"
            f"  API docs     {config.api_url}/docs\n"
            + (
                f"  API key      {stack.secrets['api_key']}   (shown once; kept in .local/api_key)\n"
                if stack.secrets_created
                else "  API key      in .local/api_key (X-API-Key header)\n"
            )
            + f"  Example body {request_file.relative_to(ROOT)}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        say(f"DAGs unpaused: {', '.join(PIPELINE_DAGS)}; the chain runs etl -> features -> train -> deploy")
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
