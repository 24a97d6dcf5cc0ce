"""Every Grafana panel's query, run against a real Prometheus fed by a real pipeline run.

Prometheus and the Pushgateway are the Debian binaries (installed by ``make monitoring-tools`` if
missing), started on free ports with a config generated from ``monitoring/prometheus/prometheus.yml``
(scraping the Pushgateway with honor_labels, the API's /metrics and the StatsD bridge every 2 s,
with the alert rules); the StatsD bridge reads ``monitoring/statsd/mapping.yml``. Airflow sends its
StatsD metrics to the bridge (``MLP_STATSD_ADDRESS``, which scripts/stack/airflow_settings.py turns into
``AIRFLOW__METRICS__*``) and the pipeline pushes to the Pushgateway (``MLP_PUSHGATEWAY_URL``).

One scenario feeds every panel, in order:

1. the chain etl -> features -> train -> deploy (as in test_chain.py, smaller windows);
2. at the same time: ``train`` again with the served model's candidate only (same window and seed, so
   the same scores: registered as challenger, not promoted), and an ETL run on a corrupt source
   (a renamed column: the raw gate blocks it, the run fails);
3. live traffic through the A/B split (challenger share 0.5), a request without the API key (401);
4. ``ab_test`` and ``monitor`` triggered by hand (``train`` and ``deploy`` paused first, so a drift
   retrain or an A/B win starts nothing the test would have to wait for);
5. a last burst of traffic, a scrape; then every target of every panel of every dashboard is run,
   with Grafana's variables replaced by concrete ranges, and must return data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from stack.chain_monitor import ChainMonitor
from stack.config import ROOT, StackConfig
from stack.monitoring import Monitoring, monitoring_binaries
from stack.processes import free_port
from stack.stack import Stack

from include.flight_delay import sources
from include.mlpipeline.core.problem import load_problem

pytestmark = pytest.mark.e2e

RUN_DAY = "2026-06-30"
TRAFFIC_DAYS = ("2026-06-28", "2026-06-29")
BAD_DAY = "2026-07-01"
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
SCRAPE_INTERVAL_S = 2
# Grafana's built-in variables, as concrete ranges: the whole test fits in the range; rates need
# at least two scrapes (2 s apart) in their window.
GRAFANA_VARIABLES = {
    "${__rate_interval}": "1m",
    "$__rate_interval": "1m",
    "${__interval}": "10s",
    "$__interval": "10s",
    "${__range}": "1h",
    "$__range": "1h",
}


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unresolved Grafana variable in {expr!r}"
    return expr


def panel_targets() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel, refId, expr) of every target of every panel of every dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        panels = [p for p in board["panels"] if p["type"] != "row"]
        panels += [p for row in board["panels"] if row["type"] == "row" for p in row.get("panels", [])]
        for panel in panels:
            for target in panel["targets"]:
                found.append((board["title"], panel["title"], target["refId"], target["expr"]))
    return found


# --- the stack and the monitoring ------------------------------------------------------------------
@pytest.fixture(scope="module")
def monitoring_tools() -> dict[str, str | None]:
    """prometheus and prometheus-pushgateway: found, or installed with `make monitoring-tools`."""
    found = monitoring_binaries()
    if not (found["prometheus"] and found["pushgateway"]):
        result = subprocess.run(
            ["make", "-C", str(ROOT), "monitoring-tools"], check=False, capture_output=True, text=True
        )
        found = monitoring_binaries()
        if not (found["prometheus"] and found["pushgateway"]):
            pytest.fail(f"prometheus / prometheus-pushgateway missing and not installable:\n{result.stderr[-2000:]}")
    return found


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    for path in sources.data_dir().iterdir():
        if path.suffix in {".csv", ".zip"}:
            shutil.copy(path, folder / path.name)
    return folder


@dataclass
class Setup:
    stack: Stack
    monitoring: Monitoring
    chain: ChainMonitor
    state: Path

    def prometheus(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.monitoring.prometheus_url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert body.get("status") == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.prometheus("query", query=expr)["result"]

    def dump(self) -> Path:
        """The bridge's and the Pushgateway's metrics, for a failure message."""
        folder = self.state / "metrics-dump"
        folder.mkdir(exist_ok=True)
        for name, url in (("bridge", self.monitoring.bridge_url), ("pushgateway", self.monitoring.pushgateway_url)):
            (folder / f"{name}.txt").write_text(httpx.get(f"{url}/metrics", timeout=10).text)
        return folder


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, source_dir: Path, monitoring_tools: dict[str, str | None]
) -> Iterator[Setup]:
    state = tmp_path_factory.mktemp("stack")
    config = StackConfig.isolated(
        state,
        extra_env={
            "MLP_ETL_SCHEDULE": "none",
            "MLP_BOOTSTRAP_DAYS": "20",
            "MLP_VALIDATION_SIZE": "4 days",
            "MLP_TEST_SIZE": "4 days",
            "MLP_FLIGHTS_DATA_DIR": str(source_dir),
            "MLP_AB_CHALLENGER_SHARE": "0.5",
            "MLP_AB_MIN_SAMPLES": "10",
            "MLP_SHADOW_ENABLED": "true",  # the challenger also shadows the champion's half: the shadow panel
        },
    )
    monitoring = Monitoring(
        state,
        prometheus_port=free_port(),
        pushgateway_port=free_port(),
        statsd_port=free_port(),
        statsd_http_port=free_port(),
        api_port=config.api_port,
        scrape_interval=f"{SCRAPE_INTERVAL_S}s",
    )
    config.extra_env.update(monitoring.pipeline_env())  # MLP_PUSHGATEWAY_URL, MLP_STATSD_ADDRESS
    stack = Stack(config)
    try:
        monitoring.start()
        stack.start()
        stack.airflow.wait_for_dags(("etl", "features", "train", "deploy", "monitor", "ab_test"))
        for dag_id in ("features", "train", "deploy", "monitor", "ab_test", "etl"):  # consumers first
            stack.airflow.set_paused(dag_id, False)
        yield Setup(stack, monitoring, ChainMonitor(stack.airflow), state)
    finally:
        stack.stop()
        monitoring.stop()


# --- the scenario ----------------------------------------------------------------------------------
def send_traffic(stack: Stack, days: tuple[str, ...], batch: int = 250) -> int:
    """POST the raw flights of ``days`` to /predict, as traffic_replay does; returns how many."""
    from include.mlpipeline.data.etl import raw_dataset
    from include.mlpipeline.data.lake import Lake

    problem = load_problem()
    lake = Lake(stack.config.lake_uri)
    fields = list(problem.request_model.model_fields)
    sent = 0
    with httpx.Client(base_url=stack.config.api_url, headers=stack.api_headers(), timeout=120) as client:
        for day in days:
            frame = lake.read(raw_dataset(problem.sources[0].name), day)[fields]
            records = [
                problem.request_model.model_validate(r).model_dump(mode="json")
                for r in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            ]
            for start in range(0, len(records), batch):
                response = client.post("/predict", json={problem.request_key: records[start : start + batch]})
                response.raise_for_status()
                sent += len(response.json()["predictions"])
    return sent


def events(stack: Stack, dag_id: str) -> list[dict]:
    return stack.airflow.request("GET", "/assets/events", params={"source_dag_id": dag_id, "limit": 100})[
        "asset_events"
    ]


def bad_etl_run(setup: Setup, source_dir: Path) -> dict[str, Any]:
    """An ETL run whose flights file lost a column: the raw gate blocks it and the run fails."""
    flights_file = source_dir / "flights.csv.zip"
    original = flights_file.read_bytes()
    flights = pd.read_csv(flights_file, low_memory=False)
    flights.rename(columns={"sched_dep_time": "scheduled_departure"}).to_csv(
        flights_file, index=False, compression={"method": "zip", "archive_name": "flights.csv"}
    )
    try:
        run = setup.stack.airflow.trigger("etl", conf={"date": BAD_DAY, "bootstrap_days": 0})
        with pytest.raises(RuntimeError, match="failed"):
            setup.chain.wait_for_run("etl", run["dag_run_id"], timeout=300)
    finally:
        flights_file.write_bytes(original)
    return run


def retrain_same_candidate(setup: Setup, candidate: str) -> dict[str, Any]:
    run = setup.stack.airflow.trigger("train", conf={"candidates": [candidate]})
    return setup.chain.wait_for_run("train", run["dag_run_id"], timeout=400)


@pytest.fixture(scope="module")
def scenario(setup: Setup, source_dir: Path) -> dict[str, Any]:
    stack, chain, started = setup.stack, setup.chain, time.monotonic()
    run = stack.airflow.trigger("etl", conf={"date": RUN_DAY})
    chain.wait_for_run("etl", run["dag_run_id"], timeout=600)
    for dag_id in ("features", "train", "deploy"):
        chain.wait_for_success(dag_id, timeout=600)
    (approved,) = events(stack, "train")
    champion = str(approved["extra"]["version"])

    with ThreadPoolExecutor(2) as pool:
        retrain = pool.submit(retrain_same_candidate, setup, approved["extra"]["candidate"])
        bad = pool.submit(bad_etl_run, setup, source_dir)
        retrain.result()
        bad.result()
    for dag_id in ("train", "deploy"):
        stack.airflow.set_paused(dag_id, True)

    api = httpx.Client(base_url=stack.config.api_url, headers=stack.api_headers(), timeout=60)
    api.post("/admin/reload").raise_for_status()
    served = api.get("/model").json()
    assert served["model_version"] == champion
    assert (served.get("challenger") or {}).get("model_version") not in (None, champion), served
    predictions = send_traffic(stack, TRAFFIC_DAYS)
    records = load_problem().canary_records()[:2]
    assert httpx.post(f"{stack.config.api_url}/predict", json={"flights": records}).status_code == 401
    time.sleep(7)  # the API flushes its prediction log every MLP_PREDICTION_LOG_FLUSH_S (5 s)

    manual = {dag_id: stack.airflow.trigger(dag_id)["dag_run_id"] for dag_id in ("ab_test", "monitor")}
    finished = {dag_id: chain.wait_for_run(dag_id, run_id, timeout=300) for dag_id, run_id in manual.items()}
    send_traffic(stack, TRAFFIC_DAYS[-1:])  # recent requests for the rate panels
    wait_until_scraped(setup, ["mlp_ab_p_value", "mlp_drift_share", 'mlp_dag_run_failed{dag_id="monitor"}'])
    time.sleep(2 * SCRAPE_INTERVAL_S)
    return {
        "champion": champion,
        "challenger": served["challenger"]["model_version"],
        "predictions": predictions,
        "manual_runs": finished,
        "seconds": time.monotonic() - started,
    }


def wait_until_scraped(setup: Setup, exprs: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    missing = exprs
    while time.monotonic() < deadline:
        missing = [expr for expr in exprs if not setup.query(expr)]
        if not missing:
            return
        time.sleep(1)
    raise AssertionError(f"not in Prometheus after {timeout:.0f}s: {missing}; metrics in {setup.dump()}")


# --- the tests --------------------------------------------------------------------------------------
def test_every_panel_query_returns_data(setup: Setup, scenario: dict[str, Any]) -> None:
    targets = panel_targets()
    assert len(targets) >= 40
    empty = []
    for dashboard, panel, ref, expr in targets:
        if not setup.query(substitute(expr)):
            empty.append(f"{dashboard} / {panel} [{ref}]: {expr}")
    summary = f"{len(empty)} of {len(targets)} panel queries returned nothing (metrics in {setup.dump()})"
    assert not empty, summary + ":\n" + "\n".join(empty)


def test_pushed_metrics_match_what_the_pipeline_did(setup: Setup, scenario: dict[str, Any]) -> None:
    def value(expr: str) -> float:
        (sample,) = setup.query(expr)
        return float(sample["value"][1])

    (clean,) = [e for e in events(setup.stack, "etl")]
    assert value('mlp_data_rows_in{dataset="clean"}') == clean["extra"]["rows_in"]
    assert value('mlp_data_partitions_published{dataset="clean"}') == len(clean["extra"]["partitions"])
    (version,) = setup.query('mlp_data_version_info{dataset="clean"}')
    assert version["metric"]["data_version"] == clean["extra"]["data_version"]
    assert value("mlp_deploy_served_version") == float(scenario["champion"])
    assert value("mlp_model_registered_version") == float(scenario["challenger"])
    assert value("mlp_model_promoted") == 0  # the same model again: the champion stays
    assert value('mlp_dag_run_failed{dag_id="etl"}') == 1  # the corrupt source's run was the last one
    assert value('mlp_dag_run_failed{dag_id="deploy"}') == 0
    assert value('mlp_quality_gate_blocked{gate="raw_flights"}') == 1
    assert value('mlp_quality_gate_blocked{gate="clean"}') == 0
    variants = {s["metric"]["variant"] for s in setup.query('mlp_ab_live_metric{metric="predictions"}')}
    assert variants == {"champion", "challenger"}
    assert 0 <= value("mlp_ab_p_value") <= 1


def test_statsd_metrics_carry_dag_and_task_labels(setup: Setup, scenario: dict[str, Any]) -> None:
    runs = setup.query("sum by (dag_id, state) (airflow_dagrun_duration_seconds_count)")
    seen = {(s["metric"]["dag_id"], s["metric"]["state"]) for s in runs}
    assert {("etl", "success"), ("etl", "failed"), ("deploy", "success"), ("train", "success")} <= seen
    failed = setup.query('airflow_ti_finish_total{dag_id="etl", task_id="extract", state="failed"}')
    assert failed and float(failed[0]["value"][1]) >= 1
    assert setup.query('airflow_task_duration_seconds_count{dag_id="train", task_id="train_candidate"}')


def test_alert_rules_fire_for_the_failed_run_and_the_blocked_gate(setup: Setup, scenario: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    firing: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        alerts = setup.prometheus("alerts")["alerts"]
        firing = {
            (a["labels"]["alertname"], a["labels"].get("dag_id") or a["labels"].get("gate", ""))
            for a in alerts
            if a["state"] == "firing"
        }
        if {("PipelineRunFailed", "etl")} <= firing and any(name == "QualityGateBlocked" for name, _ in firing):
            break
        time.sleep(1)
    assert ("PipelineRunFailed", "etl") in firing, firing
    gates = [a for a in setup.prometheus("alerts")["alerts"] if a["labels"]["alertname"] == "QualityGateBlocked"]
    assert any(a["labels"]["gate"] == "raw_flights" and a["labels"]["task_id"] == "extract" for a in gates), gates
    assert ("ServingErrors", "") not in firing


def test_stack_turns_the_statsd_address_into_airflow_settings(setup: Setup) -> None:
    env = setup.stack.airflow_env()
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert f"{env['AIRFLOW__METRICS__STATSD_HOST']}:{env['AIRFLOW__METRICS__STATSD_PORT']}" == (
        setup.monitoring.statsd_address
    )
    assert env["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow"
    assert env["MLP_PUSHGATEWAY_URL"] == setup.monitoring.pushgateway_url
    assert os.environ.get("AIRFLOW__METRICS__STATSD_ON") is None  # nothing leaks into the test process
