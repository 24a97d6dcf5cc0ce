"""The pipeline's pushes against a real Pushgateway, and what an outage does (nothing, quickly).

Every ``record_*`` function is fed what its call site passes (publish_summary's extra, register_best's
result, ...) and the Pushgateway's /metrics is read back. Outages: nothing listening, a server that
never answers, a server answering 500: the push returns False within its timeout, logs one warning
per process, and never raises; neither does the failing task's gate push nor the DAG callback.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stack.processes import free_port

from include.mlpipeline.core import bounded
from include.mlpipeline.telemetry import pipeline_metrics as metrics
from include.mlpipeline.telemetry import pushgateway

ROOT = Path(__file__).resolve().parents[2]


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name.startswith("mlp_"):
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(url: str, name: str, **labels: str) -> float:
    return scrape(url)[(name, frozenset({"instance": "", **labels}.items()))]


def series(url: str, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in scrape(url) if sample_name == name]


@pytest.fixture
def gateway(pushgateway: str, pipeline_env: pytest.MonkeyPatch) -> Iterator[str]:
    """Metrics on, pointed at a fresh Pushgateway state."""
    pipeline_env.setenv("MLP_PUSHGATEWAY_URL", pushgateway)
    pipeline_env.setenv("MLP_PUSHGATEWAY_TIMEOUT_S", "2")
    httpx.put(f"{pushgateway}/api/v1/admin/wipe", timeout=5).raise_for_status()
    yield pushgateway


def test_publish_pushes_rows_share_and_data_version_and_passes_the_gate(gateway: str) -> None:
    extra = {
        "partitions": ["2026-06-29", "2026-06-30"],
        "rows_in": 2000,
        "rows_out": 1990,
        "rows_quarantined": 10,
        "data_version": "49d791faea99cbd7",
    }
    assert metrics.record_gate_blocked("clean", {"distance:greater_than(0)": 12}, dag_id="etl", task_id="clean")
    block = {"job": "mlp_quality_gate", "gate": "clean", "dag_id": "etl", "task_id": "clean"}
    assert value(gateway, "mlp_quality_gate_blocked", **block) == 1
    assert metrics.record_publish("clean", extra, max_share=0.01)

    data = {"job": "mlp_data", "dataset": "clean"}
    assert value(gateway, "mlp_data_rows_in", **data, gate="clean") == 2000
    assert value(gateway, "mlp_data_rows_out", **data, gate="clean") == 1990
    assert value(gateway, "mlp_data_rows_quarantined", **data, gate="clean") == 10
    assert value(gateway, "mlp_data_quarantine_share", **data, gate="clean") == pytest.approx(0.005)
    assert value(gateway, "mlp_data_quarantine_max_share", **data, gate="clean") == 0.01
    assert value(gateway, "mlp_data_partitions_published", **data) == 2
    assert value(gateway, "mlp_data_version_info", **data, data_version="49d791faea99cbd7") == 1
    assert time.time() - value(gateway, "mlp_data_last_publish_timestamp_seconds", **data) < 60
    # the publish passed the gate: the flag is back to 0, the last block's details stay
    assert series(gateway, "mlp_quality_gate_blocked") == [{"instance": "", "job": "mlp_quality_gate", "gate": "clean"}]
    assert value(gateway, "mlp_quality_gate_blocked", job="mlp_quality_gate", gate="clean") == 0
    assert value(gateway, "mlp_quality_gate_failed_rows", **block) == 12
    assert value(gateway, "mlp_quality_gate_failed_checks", **block) == 1


def test_a_blocked_gate_in_a_task_is_pushed_and_still_fails_the_task(gateway: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from include.mlpipeline.data.quality import DataQualityError
    from include.mlpipeline.orchestration.tasks import fail_fast_on_data_errors

    with pytest.raises(AirflowFailException), fail_fast_on_data_errors():
        raise DataQualityError("raw_flights", {"column_in_dataframe:sched_dep_time": 0})
    labels = {"job": "mlp_quality_gate", "gate": "raw_flights", "dag_id": "", "task_id": ""}  # no task context here
    assert value(gateway, "mlp_quality_gate_blocked", **labels) == 1
    assert value(gateway, "mlp_quality_gate_failed_rows", **labels) == 0  # table-level
    assert time.time() - value(gateway, "mlp_quality_gate_last_blocked_timestamp_seconds", **labels) < 60


def test_training_replaces_the_previous_run_and_deploy_records_the_served_version(gateway: str) -> None:
    results = [
        {"name": "baseline", "test": {"roc_auc": 0.5, "log_loss": 0.54}},
        {"name": "random_forest", "test": {"roc_auc": 0.64, "log_loss": 0.52, "rows": 4570.0}},
        {"name": "logistic_regression", "test": {"roc_auc": 0.61, "log_loss": float("nan")}},
    ]
    registration = {
        "model_name": "flight_delay",
        "version": "3",
        "candidate": "random_forest",
        "test": results[1]["test"],
        "decision": {
            "promote": True,
            "reason": "first model",
            "challenger_score": 0.64,
            "champion_score": None,
            "baseline_score": 0.5,
        },
    }
    assert metrics.record_training(registration, results)
    model = {"job": "mlp_training", "model_name": "flight_delay"}
    forest = {"candidate": "random_forest", "metric": "roc_auc"}
    assert value(gateway, "mlp_model_candidate_test_metric", **model, **forest) == 0.64
    assert {s["candidate"] for s in series(gateway, "mlp_model_candidate_test_metric")} == {
        "baseline", "random_forest", "logistic_regression",
    }  # fmt: skip
    assert ("mlp_model_candidate_test_metric", "logistic_regression", "log_loss") not in {
        (n, dict(labels).get("candidate"), dict(labels).get("metric")) for n, labels in scrape(gateway)
    }, "NaN is left out"
    assert value(gateway, "mlp_model_registered_version", **model) == 3
    assert value(gateway, "mlp_model_promoted", **model) == 1
    assert value(gateway, "mlp_model_promotion_decision_info", **model, decision="promote") == 1
    assert {s["role"] for s in series(gateway, "mlp_model_promotion_score")} == {"challenger", "baseline"}

    second = {**registration, "version": "4", "decision": {**registration["decision"], "promote": False}}
    assert metrics.record_training(second, results[:2])
    assert {s["candidate"] for s in series(gateway, "mlp_model_candidate_test_metric")} == {"baseline", "random_forest"}
    assert value(gateway, "mlp_model_promotion_decision_info", **model, decision="keep_champion") == 1
    assert len(series(gateway, "mlp_model_promotion_decision_info")) == 1

    served = {"version": "4", "canaries": 8, "max_abs_difference": 0.0}
    assert metrics.record_served(served, "flight_delay") is served
    deploy = {"job": "mlp_deploy", "model_name": "flight_delay"}
    assert value(gateway, "mlp_deploy_served_version", **deploy) == 4
    assert value(gateway, "mlp_deploy_rolled_back", **deploy) == 0
    metrics.record_served({"version": "3"}, "flight_delay", rolled_back_from="5")
    assert value(gateway, "mlp_deploy_served_version", **deploy) == 3
    assert value(gateway, "mlp_deploy_rolled_back", **deploy) == 1
    assert not series(gateway, "mlp_deploy_canary_max_abs_difference")


def test_drift_and_ab_results(gateway: str) -> None:
    summary = {
        "champion_version": "2",
        "retrain": True,
        "newest_days": {"rows": 0},
        "served_inputs": {
            "rows": 1800,
            "drift_share": 0.4,
            "drifted_features": ["temp", "wind_speed"],
            "scores": {"temp": 0.31, "wind_speed": 0.27, "distance": 0.01},
        },
        "offline": {"roc_auc": 0.64, "log_loss": 0.52},
        "live": {"predictions": 900.0, "roc_auc": 0.62, "log_loss": 0.53},
    }
    assert metrics.record_drift(summary, "flight_delay", threshold=0.3)
    drift = {"job": "mlp_drift", "model_name": "flight_delay"}
    assert value(gateway, "mlp_drift_share", **drift, comparison="served_inputs") == 0.4
    assert value(gateway, "mlp_drift_feature_score", **drift, comparison="served_inputs", feature="temp") == 0.31
    assert value(gateway, "mlp_drift_features_drifted", **drift, comparison="served_inputs") == 2
    assert value(gateway, "mlp_drift_rows", **drift, comparison="newest_days") == 0
    assert [s["comparison"] for s in series(gateway, "mlp_drift_share")] == ["served_inputs"]
    assert value(gateway, "mlp_drift_share_threshold", **drift) == 0.3
    assert value(gateway, "mlp_drift_retrain_requested", **drift) == 1
    assert value(gateway, "mlp_drift_champion_version", **drift) == 2
    assert value(gateway, "mlp_monitor_live_metric", **drift, metric="roc_auc") == 0.62
    assert value(gateway, "mlp_monitor_offline_metric", **drift, metric="roc_auc") == 0.64
    assert not metrics.record_drift({"retrain": False, "status": "no champion yet"}, "flight_delay")

    result = {
        "decision": "no_significant_difference",
        "champion_version": "2",
        "challenger_version": "3",
        "p_value": 0.41,
        "promote": False,
        "variants": {
            "champion": {"predictions": 450.0, "log_loss": 0.51, "roc_auc": 0.63},
            "challenger": {"predictions": 430.0, "log_loss": 0.52},
        },
    }
    assert metrics.record_ab(result, "flight_delay")
    ab = {"job": "mlp_ab_test", "model_name": "flight_delay"}
    challenger = {"variant": "challenger", "model_version": "3"}
    assert value(gateway, "mlp_ab_live_metric", **ab, **challenger, metric="log_loss") == 0.52
    assert value(gateway, "mlp_ab_live_metric", **ab, variant="champion", model_version="2", metric="roc_auc") == 0.63
    assert value(gateway, "mlp_ab_p_value", **ab) == 0.41
    assert value(gateway, "mlp_ab_decision_info", **ab, decision="no_significant_difference") == 1
    assert value(gateway, "mlp_ab_promote", **ab) == 0


def test_shadow_report_pushes_agreement_live_metrics_and_promotion(gateway: str) -> None:
    result = {
        "decision": "challenger_wins",
        "promote": True,
        "report": {
            "champion_version": "2",
            "shadow_version": "3",
            "agreement": {"pairs": 400.0, "same_label_share": 0.91, "mean_abs_probability_diff": 0.04},
            "live": {"champion": {"log_loss": 0.55}, "shadow": {"log_loss": 0.5}},
        },
    }
    assert metrics.record_shadow(result, "flight_delay")
    shadow = {"job": "mlp_shadow", "model_name": "flight_delay"}
    pair = {"champion_version": "2", "shadow_version": "3"}
    assert value(gateway, "mlp_shadow_agreement", **shadow, **pair, metric="same_label_share") == 0.91
    assert value(gateway, "mlp_shadow_agreement", **shadow, **pair, metric="pairs") == 400
    assert (
        value(gateway, "mlp_shadow_live_metric", **shadow, variant="shadow", model_version="3", metric="log_loss")
        == 0.5
    )
    assert value(gateway, "mlp_shadow_promote", **shadow) == 1


def test_dag_run_callback_pushes_duration_state_and_end_time(gateway: str) -> None:
    from include.mlpipeline.orchestration.alerts import DagRunMetrics

    start = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
    run = SimpleNamespace(
        dag_id="etl",
        state=SimpleNamespace(value="success"),
        run_type=SimpleNamespace(value="manual"),
        start_date=start,
        end_date=start + dt.timedelta(seconds=95),
    )
    DagRunMetrics()({"dag": SimpleNamespace(dag_id="etl"), "dag_run": run, "reason": "success"})
    labels = {"job": "mlp_dag_run", "dag_id": "etl"}
    assert value(gateway, "mlp_dag_run_duration_seconds", **labels) == 95
    assert value(gateway, "mlp_dag_run_failed", **labels) == 0
    assert value(gateway, "mlp_dag_run_last_state", **labels, state="success", run_type="manual") == 1
    assert value(gateway, "mlp_dag_run_end_timestamp_seconds", **labels) == (start.timestamp() + 95)
    succeeded = value(gateway, "mlp_dag_run_last_success_timestamp_seconds", **labels)

    # the dag-processor's minimal context (no last task): dag, run_id and the reason only
    DagRunMetrics()({"dag": SimpleNamespace(dag_id="etl"), "run_id": "manual__x", "reason": "task_failure"})
    assert value(gateway, "mlp_dag_run_failed", **labels) == 1
    assert value(gateway, "mlp_dag_run_last_state", **labels, state="failed", run_type="unknown") == 1
    assert len(series(gateway, "mlp_dag_run_last_state")) == 1
    assert value(gateway, "mlp_dag_run_last_success_timestamp_seconds", **labels) == succeeded
    assert time.time() - value(gateway, "mlp_dag_run_last_failure_timestamp_seconds", **labels) < 60


def test_without_a_pushgateway_url_nothing_is_sent(pipeline_env: pytest.MonkeyPatch) -> None:
    pipeline_env.delenv("MLP_PUSHGATEWAY_URL", raising=False)
    assert metrics.record_publish("clean", {"rows_in": 1, "partitions": []}) is False
    assert metrics.record_dag_run("etl", "success") is False


def test_an_undocumented_metric_is_refused_not_raised(gateway: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert pushgateway.push("mlp_data", {"dataset": "x"}, [pushgateway.Sample("mlp_not_documented", 1.0)]) is False
    assert "not a documented pipeline metric" in caplog.text


def test_every_metric_is_documented_in_the_module_doc() -> None:
    doc = pushgateway.__doc__ or ""
    documented = set(re.findall(r"``(mlp_[a-z_]+)``", doc))
    missing = set(pushgateway.METRICS) - documented
    assert not missing, f"not in pushgateway.py's docstring: {sorted(missing)}"
    jobs = {value for name, value in vars(pushgateway).items() if name.startswith("JOB_")}
    assert not documented - set(pushgateway.METRICS) - jobs, "documented but never pushed"


# --- outages ----------------------------------------------------------------------------------------
class _Hanging:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


class _Failing(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _fail(self) -> None:
                self.send_response(500)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"oops\n")

            do_PUT = do_POST = _fail  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.parametrize("outage", ["refused", "hanging", "http_500"])
def test_a_pushgateway_outage_never_raises_and_is_logged_once(
    outage: str, pipeline_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from include.mlpipeline.data.quality import DataQualityError
    from include.mlpipeline.orchestration.alerts import DagRunMetrics
    from include.mlpipeline.orchestration.tasks import fail_fast_on_data_errors

    server: object = None
    if outage == "refused":
        url = f"http://127.0.0.1:{free_port()}"
    elif outage == "hanging":
        server = _Hanging()
        url = server.url
    else:
        server = _Failing()
        url = server.url
    pipeline_env.setenv("MLP_PUSHGATEWAY_URL", url)
    pipeline_env.setenv("MLP_PUSHGATEWAY_TIMEOUT_S", "1")
    bounded._logged_once.clear()
    try:
        with caplog.at_level(logging.DEBUG, logger=pushgateway.__name__):
            started = time.monotonic()
            assert metrics.record_publish("clean", {"rows_in": 10, "rows_out": 10, "partitions": ["x"]}) is False
            assert metrics.record_served({"version": "1"}, "m") == {"version": "1"}
            DagRunMetrics()({"dag": SimpleNamespace(dag_id="etl"), "reason": "success"})
            with pytest.raises(AirflowFailException), fail_fast_on_data_errors():  # the task still fails as usual
                raise DataQualityError("clean", {"x": 1})
            elapsed = time.monotonic() - started
    finally:
        if isinstance(server, _Hanging):
            server.close()
        elif isinstance(server, _Failing):
            server.shutdown()
            server.server_close()
    # 5 pushes (publish + its gate pass, deploy, DAG run, gate block), each bounded by ~1.5 s
    assert elapsed < 5 * 1.5 + 1, f"{elapsed:.1f}s"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "pipeline goes on" in warnings[0].getMessage()
