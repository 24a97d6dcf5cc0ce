"""The StatsD bridge against real UDP packets: the lines Airflow's own StatsD client sends, and the
statsd_exporter semantics the mapping file relies on (glob captures, first match wins, drops,
histograms in seconds, counters, gauges with deltas, sample rates, unmapped names)."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from stack.processes import free_port
from stack.statsd_bridge import Bridge, escape_metric_name, go_float
from stack.statsd_mapping import MappingError, MetricMapper

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "monitoring" / "statsd" / "mapping.yml"
AIRFLOW_REGISTRY = "airflow/_shared/observability/metrics/metrics_template.yaml"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Running:
    """A bridge on free ports, with helpers to send packets and read /metrics."""

    def __init__(self, bridge: Bridge):
        self.bridge = bridge
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @property
    def udp(self) -> tuple[str, int]:
        return self.bridge.udp_address

    def send(self, *packets: str) -> None:
        """Send UDP packets and wait until the bridge has read them all."""
        before = self.bridge.exporter.stats.get("udp_packets", 0)
        for packet in packets:
            self.socket.sendto(packet.encode(), self.udp)
        self.wait_for_packets(before + len(packets))

    def wait_for_packets(self, count: float, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while self.bridge.exporter.stats.get("udp_packets", 0) < count:
            assert time.monotonic() < deadline, "the bridge did not receive the packets"
            time.sleep(0.01)

    def text(self) -> str:
        response = httpx.get(f"http://127.0.0.1:{self.bridge.http_address[1]}/metrics", timeout=5)
        response.raise_for_status()
        return response.text

    def samples(self) -> Samples:
        found: Samples = {}
        for family in text_string_to_metric_families(self.text()):
            for sample in family.samples:
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return found

    def value(self, name: str, **labels: str) -> float:
        return self.samples()[(name, frozenset(labels.items()))]

    def names(self) -> set[str]:
        return {name for name, _ in self.samples()}


@pytest.fixture
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    """The bridge with the project's mapping, or with the mapping text given by the test's parameter."""
    mapping = MAPPING
    if getattr(request, "param", None):
        mapping = tmp_path / "mapping.yml"
        mapping.write_text(request.param)
    with Bridge(mapping, ("127.0.0.1", 0), ("127.0.0.1", 0)) as running:
        yield Running(running)


@pytest.fixture
def airflow_stats(bridge: Running) -> Iterator[object]:
    """Airflow's own stats module (legacy names on, its default), sending to the bridge with StatsClient."""
    from airflow._shared.observability.metrics import stats
    from airflow._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow._shared.observability.metrics.statsd_logger import get_statsd_logger
    from statsd import StatsClient

    host, port = bridge.udp

    def factory() -> object:
        return get_statsd_logger(stats_class=StatsClient, host=host, port=port, prefix="airflow")

    stats.initialize(factory=factory, export_legacy_names=True)
    yield stats
    stats.initialize(factory=NoStatsLogger, export_legacy_names=True)


def test_airflow_dag_run_and_task_metrics_become_labelled_histograms_in_seconds(
    bridge: Running, airflow_stats: object
) -> None:
    stats = airflow_stats
    stats.timing("dagrun.duration.success", dt.timedelta(seconds=42.5), tags={"dag_id": "etl", "run_type": "manual"})
    stats.timing("dagrun.duration.failed", dt.timedelta(seconds=3), tags={"dag_id": "etl"})
    stats.timing("task.duration", 1234.5, tags={"dag_id": "train", "task_id": "train_candidate"})
    # each timing is sent twice (legacy name with the DAG, new name without it)
    bridge.wait_for_packets(6)

    assert bridge.value("airflow_dagrun_duration_seconds_count", dag_id="etl", state="success") == 1
    assert bridge.value("airflow_dagrun_duration_seconds_sum", dag_id="etl", state="success") == pytest.approx(42.5)
    assert bridge.value("airflow_dagrun_duration_seconds_bucket", dag_id="etl", state="success", le="60") == 1
    assert bridge.value("airflow_dagrun_duration_seconds_bucket", dag_id="etl", state="success", le="30") == 0
    assert bridge.value("airflow_dagrun_duration_seconds_count", dag_id="etl", state="failed") == 1
    assert bridge.value(
        "airflow_task_duration_seconds_sum", dag_id="train", task_id="train_candidate"
    ) == pytest.approx(1.2345)
    names = bridge.names()
    assert not names & {"airflow_dagrun_duration_success", "airflow_dagrun_duration_failed", "airflow_task_duration"}
    # the tag-less copies are dropped, not added to the labelled series
    assert all(dict(labels).get("dag_id") for name, labels in bridge.samples() if name.startswith("airflow_dagrun"))


def test_airflow_task_outcomes_assets_and_gauges(bridge: Running, airflow_stats: object) -> None:
    stats = airflow_stats
    stats.incr("ti.finish", tags={"dag_id": "etl", "task_id": "extract", "state": "failed"})
    stats.incr("ti.finish", tags={"dag_id": "etl", "task_id": "extract", "state": "failed"})
    stats.incr("ti.start", tags={"dag_id": "etl", "task_id": "extract"})
    stats.incr("ti_failures", tags={"dag_id": "etl", "task_id": "extract"})
    stats.incr("ti_successes")
    stats.incr("asset.updates")
    stats.incr("asset.triggered_dagruns")
    stats.incr("scheduler_heartbeat", 1, 1)
    stats.gauge("pool.open_slots", 128, tags={"pool_name": "default_pool"})
    stats.gauge("executor.open_slots", 30, tags={"executor_class_name": "LocalExecutor"})
    stats.gauge("dag_processing.import_errors", 0)
    stats.timing("dag_processing.last_duration", 1.5, tags={"bundle_name": "dags-folder", "file_name": "etl"})
    bridge.wait_for_packets(17)

    assert bridge.value("airflow_ti_finish_total", dag_id="etl", task_id="extract", state="failed") == 2
    assert bridge.value("airflow_ti_start_total", dag_id="etl", task_id="extract") == 1
    assert bridge.value("airflow_ti_failures_total") == 1
    assert bridge.value("airflow_ti_successes_total") == 1
    assert bridge.value("airflow_asset_updates_total") == 1
    assert bridge.value("airflow_asset_triggered_dagruns_total") == 1
    assert bridge.value("airflow_scheduler_heartbeat_total") == 1
    assert bridge.value("airflow_pool_open_slots", pool="default_pool") == 128
    assert bridge.value("airflow_executor_open_slots", executor="LocalExecutor") == 30
    assert bridge.value("airflow_dag_processing_import_errors") == 0
    # Airflow sends this one in seconds where StatsD means milliseconds: the mapping scales it back
    assert bridge.value(
        "airflow_dag_processing_last_duration_seconds_sum", bundle="dags-folder", file="etl"
    ) == pytest.approx(1.5)
    families = {f.name: f.type for f in text_string_to_metric_families(bridge.text())}
    assert families["airflow_ti_finish"] == "counter"
    assert families["airflow_pool_open_slots"] == "gauge"
    assert families["airflow_dag_processing_last_duration_seconds"] == "histogram"


def test_raw_statsd_lines(bridge: Running) -> None:
    """Lines as the statsd client writes them: sample rates, gauge deltas, several per packet, bad lines."""
    bridge.send(
        "airflow.ti_failures:1|c|@0.5",
        "airflow.pool.open_slots.default_pool:10|g\nairflow.pool.open_slots.default_pool:-3|g",
        "airflow.pool.open_slots.default_pool:+1|g",
        "airflow.scheduler.tasks.executable:4|g",
        "airflow.dag.etl.clean.duration:250|ms|@0.5",
        "this is not statsd\nairflow.asset.updates:2|c",
        "airflow.operator_successes_PythonOperator:1|c",
        "airflow.some-thing.with-dashes:1|g",
    )
    assert bridge.value("airflow_ti_failures_total") == 2  # 1 event sampled at 50%
    assert bridge.value("airflow_pool_open_slots", pool="default_pool") == 8  # 10, -3, +1
    assert bridge.value("airflow_scheduler_tasks_executable") == 4
    assert bridge.value("airflow_task_duration_seconds_count", dag_id="etl", task_id="clean") == 2
    assert bridge.value("airflow_task_duration_seconds_sum", dag_id="etl", task_id="clean") == pytest.approx(0.5)
    assert bridge.value("airflow_asset_updates_total") == 2
    # unmapped: the StatsD name, escaped; a counter without _total is exposed under exactly that name
    assert bridge.value("airflow_operator_successes_PythonOperator") == 1
    assert bridge.value("airflow_some_thing_with_dashes") == 1
    assert bridge.value("statsd_exporter_sample_errors_total", reason="malformed_line") == 1
    assert bridge.value("statsd_exporter_events_unmapped_total") == 2


@pytest.mark.parametrize(
    "bridge",
    [
        """
defaults:
  observer_type: histogram
mappings:
  - match: app.*.request.*
    name: app_requests_total
    labels: {service: "$1", outcome: "${2}", fixed: "x${3}y"}
  - match: app.web.request.*
    name: never_used_total
  - match: app.*.wait
    name: app_wait_seconds
    labels: {service: "$1"}
    histogram_options: {buckets: [1, 10, 100]}
  - match: app.dropped.*
    name: dropped
    action: drop
  - match: app.scaled.*
    name: app_scaled_seconds
    scale: 1000
    labels: {kind: "$1"}
"""
    ],
    indirect=True,
)
def test_statsd_exporter_mapping_semantics(bridge: Running) -> None:
    bridge.send(
        "app.web.request.ok:1|c",
        "app.web.request.ok:2|c",
        "app.disk.wait:5000|ms\napp.disk.wait:50000|ms\napp.disk.wait:500000|ms",
        "app.dropped.anything:1|c",
        "app.scaled.parse:2|ms",
        "app.web.request.ok:1|g",  # a gauge under a counter's name: a conflict, dropped
        "app.web.request.fail:-1|c",  # a negative counter: refused
    )
    # captures, ${n}, text around them (a capture that does not exist is ""); the first matching mapping wins
    assert bridge.value("app_requests_total", service="web", outcome="ok", fixed="xy") == 3
    assert "never_used_total" not in bridge.names()
    # timers in seconds, into the mapping's own buckets
    assert bridge.value("app_wait_seconds_bucket", service="disk", le="10") == 1
    assert bridge.value("app_wait_seconds_bucket", service="disk", le="100") == 2
    assert bridge.value("app_wait_seconds_bucket", service="disk", le="+Inf") == 3
    assert not any(name.startswith("app_dropped") or name == "dropped" for name in bridge.names())
    assert bridge.value("app_scaled_seconds_sum", kind="parse") == pytest.approx(2.0)
    assert bridge.value("statsd_exporter_events_conflict_total", type="gauge") == 1
    assert ("app_requests_total", frozenset({("service", "web"), ("outcome", "fail"), ("fixed", "xy")})) not in (
        bridge.samples()
    )


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        ("mappings: [{match: airflow.operator_*, name: x}]", "invalid match"),
        ("mappings: [{match: a.b, name: x, timer_type: histogram}]", "unknown field"),
        ("mappings: [{match: a.b, name: x, colour: red}]", "unknown field"),
        ("mappings: [{match: a.b}]", "didn't set a metric name"),
        ("mappings: [{match: a.b, name: 1x}]", "not valid"),
        ("mappings: [{match: a.b, name: x, labels: {a: b}}]", "invalid label key"),
        ("mappings: [{match: 'a\\.(.*)', name: x, match_type: regex}]", "only glob"),
        ("mappings: [{match: a.b, name: x, ttl: 1m}]", "ttl"),
        ("mappings: [{match: a.b, name: x, observer_type: timer}]", "invalid observer type"),
        ("defaults: {ttl: 5m}\nmappings: []", "ttl"),
    ],
)
def test_mapping_files_the_bridge_cannot_honour_are_refused(mapping: str, error: str) -> None:
    with pytest.raises(MappingError, match=error):
        MetricMapper.from_yaml(mapping)


def _legacy_names() -> dict[str, dict]:
    import airflow

    registry = Path(airflow.__file__).parent.parent / AIRFLOW_REGISTRY
    return {m["name"]: m for m in yaml.safe_load(registry.read_text())["metrics"]}


def test_every_mapping_matches_a_metric_the_installed_airflow_defines() -> None:
    """Each glob of mapping.yml is a name (or a legacy name, variables as *) of Airflow's metrics registry."""
    patterns = set()
    for metric in _legacy_names().values():
        for name in (metric["name"], metric.get("legacy_name", "-")):
            if name != "-":
                patterns.add("airflow." + re.sub(r"\{[a-z_]+\}", "*", name))
    mapper = MetricMapper.from_file(MAPPING)
    unknown = [m.match for m in mapper.mappings if m.match not in patterns]
    assert not unknown, f"mapped names Airflow 3.3 does not send: {unknown}"


def test_every_per_dag_metric_is_mapped_once_with_its_labels_and_its_tagless_copy_dropped() -> None:
    """For the registry metrics the dashboards use, the legacy name maps to labels and the plain name is dropped."""
    mapper = MetricMapper.from_file(MAPPING)
    registry = _legacy_names()
    expected = {
        "dagrun.duration.success": ("airflow_dagrun_duration_seconds", {"dag_id": "etl", "state": "success"}),
        "dagrun.duration.failed": ("airflow_dagrun_duration_seconds", {"dag_id": "etl", "state": "failed"}),
        "task.duration": ("airflow_task_duration_seconds", {"dag_id": "etl", "task_id": "clean"}),
        "ti.finish": ("airflow_ti_finish_total", {"dag_id": "etl", "task_id": "clean", "state": "failed"}),
        "dag_processing.last_duration": ("airflow_dag_processing_last_duration_seconds", {"bundle": "b", "file": "f"}),
    }
    values = {"dag_id": "etl", "task_id": "clean", "state": "failed", "bundle_name": "b", "file_name": "f"}
    for name, (metric, labels) in expected.items():
        entry = registry[name]
        variables = {k: values[k] for k in entry["name_variables"]}
        legacy = "airflow." + entry["legacy_name"].format(**variables)
        mapping, found_labels = mapper.get_mapping(legacy)
        assert mapper.metric_name(mapping, legacy) == metric, legacy
        assert found_labels == labels, legacy
        plain, _ = mapper.get_mapping(f"airflow.{name}")
        assert plain.action == "drop", f"airflow.{name} would be exported beside its labelled copy"


def test_escaping_and_float_formatting_follow_statsd_exporter_and_go() -> None:
    assert escape_metric_name("airflow.dag.my-dag.x") == "airflow_dag_my_dag_x"
    assert escape_metric_name("a--b") == "a_b"
    assert escape_metric_name("1abc") == "_1abc"
    assert [go_float(v) for v in (1.0, 0.005, 3600.0, 1e6, 1e-05, float("inf"))] == [
        "1", "0.005", "3600", "1e+06", "1e-05", "+Inf",
    ]  # fmt: skip


def test_the_bridge_runs_as_a_module_and_stops_on_sigterm(tmp_path: Path) -> None:
    udp, http = free_port(), free_port()
    command = [
        sys.executable, "-m", "stack.statsd_bridge",
        "--mapping", str(MAPPING), "--udp", f"127.0.0.1:{udp}", "--http", f"127.0.0.1:{http}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None, "the bridge did not start"
                time.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"airflow.dagrun.duration.success.deploy:1500|ms", ("127.0.0.1", udp))
        text = ""
        while 'dag_id="deploy"' not in text:
            assert time.monotonic() < deadline, text
            text = httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=1).text
            time.sleep(0.05)
        assert 'airflow_dagrun_duration_seconds_sum{dag_id="deploy",state="success"} 1.5' in text
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
