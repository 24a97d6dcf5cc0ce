"""Metrics beside a local stack: Prometheus, a Pushgateway and the StatsD bridge, on 127.0.0.1.

The configuration is the one ``astro dev start`` uses (``monitoring/``), pointed at local ports, so
jobs, labels and alert rules are the same everywhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

from stack.config import MONITORING_PORTS, ROOT, busy_ports
from stack.processes import wait_for_http

log = logging.getLogger(__name__)

MONITORING_DIR = ROOT / "monitoring"


def monitoring_binaries() -> dict[str, str | None]:
    """Paths of prometheus, promtool and the Pushgateway (Debian names it prometheus-pushgateway)."""
    import shutil

    return {
        "prometheus": shutil.which("prometheus"),
        "promtool": shutil.which("promtool"),
        "pushgateway": shutil.which("prometheus-pushgateway") or shutil.which("pushgateway"),
    }


def prometheus_config(
    targets: dict[str, str],
    *,
    rules_dir: Path = MONITORING_DIR / "prometheus",
    scrape_interval: str | None = None,
) -> dict[str, Any]:
    """``monitoring/prometheus/prometheus.yml`` (written for docker compose) with local targets.

    ``targets`` maps a scrape job of that file (pushgateway, statsd-exporter, prediction-api,
    prometheus) to a host:port; jobs without a target are left out. Rule files become absolute paths,
    so the same alert rules are loaded; everything else (honor_labels, paths) stays as in the file.
    """
    import yaml

    config = yaml.safe_load((MONITORING_DIR / "prometheus" / "prometheus.yml").read_text())
    if scrape_interval:
        config.setdefault("global", {}).update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    config["rule_files"] = [str(rules_dir / name) for name in config.get("rule_files") or []]
    config.pop("alerting", None)  # no Alertmanager locally: Prometheus shows the alerts itself
    jobs = []
    for job in config.get("scrape_configs") or []:
        if job["job_name"] in targets:
            jobs.append({**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]})
    config["scrape_configs"] = jobs
    return config


class Monitoring:
    """Prometheus, a Pushgateway and the StatsD bridge on 127.0.0.1: what `make run` adds when installed.

    Prometheus scrapes the Pushgateway (``honor_labels``), the bridge and the API, with the alert rules
    of ``monitoring/prometheus/alerts.yml``; pipeline tasks push to the Pushgateway, Airflow sends StatsD
    to the bridge (see :meth:`pipeline_env`). Grafana is not packaged for Debian: the dashboards of
    ``monitoring/grafana`` run under ``astro dev start``; locally, query Prometheus (:9090,
    ``MLP_STACK_PROMETHEUS_PORT``) directly.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        prometheus_port: int,
        pushgateway_port: int,
        statsd_port: int,
        statsd_http_port: int,
        api_port: int,
        scrape_interval: str | None = None,
        persist: bool = False,
    ):
        self.folder = state_dir / "monitoring"
        self.logs = state_dir / "logs"
        self.prometheus_port, self.pushgateway_port = prometheus_port, pushgateway_port
        self.statsd_port, self.statsd_http_port, self.api_port = statsd_port, statsd_http_port, api_port
        self.scrape_interval = scrape_interval
        self.persist = persist
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://127.0.0.1:{self.pushgateway_port}"

    @property
    def statsd_address(self) -> str:
        return f"127.0.0.1:{self.statsd_port}"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.statsd_http_port}"

    def pipeline_env(self) -> dict[str, str]:
        """Where the pipeline pushes its metrics and Airflow sends StatsD (turned into AIRFLOW__METRICS__*)."""
        return {"MLP_PUSHGATEWAY_URL": self.pushgateway_url, "MLP_STATSD_ADDRESS": self.statsd_address}

    def unavailable(self) -> str | None:
        """Why monitoring cannot start here (a missing binary, a busy port), or None."""
        binaries = monitoring_binaries()
        missing = [name for name in ("prometheus", "pushgateway") if not binaries[name]]
        if missing:
            return (
                f"{' and '.join(missing)} not installed (`make monitoring-tools` installs the Debian packages "
                "prometheus and prometheus-pushgateway)"
            )
        busy = self.busy_ports()
        return ", ".join(busy) if busy else None

    def busy_ports(self) -> list[str]:
        """One message per taken port (Prometheus, Pushgateway, the bridge's UDP and HTTP), naming its setting."""
        return busy_ports({name: getattr(self, name) for name in MONITORING_PORTS})

    def prometheus_config(self) -> dict[str, Any]:
        return prometheus_config(
            {
                "prometheus": f"127.0.0.1:{self.prometheus_port}",
                "pushgateway": f"127.0.0.1:{self.pushgateway_port}",
                "statsd-exporter": f"127.0.0.1:{self.statsd_http_port}",
                "prediction-api": f"127.0.0.1:{self.api_port}",
            },
            scrape_interval=self.scrape_interval,
        )

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        handle = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed when the process is stopped
        self.processes[name] = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )

    def start(self, timeout: float = 30) -> Monitoring:
        import yaml

        binaries = monitoring_binaries()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
        # make run: pushed metrics survive a restart, like the rest of the state folder. Always explicit: Debian's
        # build defaults to /var/lib/prometheus/pushgateway.data, shared by every Pushgateway on the machine.
        persistence = self.folder / "pushgateway.db" if self.persist else ""
        self._spawn(
            "pushgateway",
            [
                str(binaries["pushgateway"]), f"--web.listen-address=127.0.0.1:{self.pushgateway_port}",
                f"--persistence.file={persistence}",
            ],
        )  # fmt: skip
        # The bridge is the module stack.statsd_bridge: the child needs scripts/ on its path to find it.
        self._spawn(
            "statsd-bridge",
            [
                sys.executable, "-m", "stack.statsd_bridge",
                "--mapping", str(MONITORING_DIR / "statsd" / "mapping.yml"),
                "--udp", self.statsd_address, "--http", f"127.0.0.1:{self.statsd_http_port}",
            ],
            {**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
        )  # fmt: skip
        self._spawn(
            "prometheus",
            [
                str(binaries["prometheus"]), f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            ],
        )  # fmt: skip
        try:
            for name, url in (
                ("pushgateway", f"{self.pushgateway_url}/-/ready"),
                ("statsd-bridge", f"{self.bridge_url}/metrics"),
                ("prometheus", f"{self.prometheus_url}/-/ready"),
            ):
                wait_for_http(url, timeout, self.processes[name])
        except Exception:
            self.stop()
            raise
        log.info("metrics: Prometheus %s, Pushgateway %s, StatsD bridge udp %s", self.prometheus_url,
                 self.pushgateway_url, self.statsd_address)  # fmt: skip
        return self

    def stop(self, timeout: float = 10) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
