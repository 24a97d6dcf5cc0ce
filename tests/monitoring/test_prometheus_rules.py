"""promtool on the Prometheus configuration and the alert rules (no server needed).

``promtool test rules`` runs monitoring/prometheus/alerts_test.yml: every alert rule fires on the
series the pipeline really pushes (and stays quiet otherwise). ``promtool check config`` validates
the compose configuration and the local one scripts/stack/monitoring.py derives from it for `make run`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from stack.monitoring import prometheus_config

from tests.monitoring.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> str:
    result = subprocess.run([require_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def test_alert_rules_pass_their_unit_tests() -> None:
    output = promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in output


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert {"PipelineRunFailed", "QualityGateBlocked", "DataDriftAboveThreshold", "ServingErrors"} <= alerts
    assert alerts == tested, f"alerts never seen firing in a test: {sorted(alerts - tested)}"


def test_rules_and_the_compose_prometheus_config_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


def test_the_local_config_of_make_run_is_valid(tmp_path: Path) -> None:
    config = prometheus_config(
        {
            "pushgateway": "127.0.0.1:9091",
            "statsd-exporter": "127.0.0.1:9102",
            "prediction-api": "127.0.0.1:8000",
            "prometheus": "127.0.0.1:9090",
        },
        scrape_interval="5s",
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["prediction-api"]["static_configs"] == [{"targets": ["127.0.0.1:8000"]}]
    assert config["global"]["scrape_interval"] == "5s"
    assert config["rule_files"] == [str(PROMETHEUS_DIR / "alerts.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    assert "SUCCESS" in promtool("check", "config", str(path), cwd=tmp_path)
