"""Prometheus metrics of the prediction API (one registry per app, so tests can run several apps)."""

from __future__ import annotations

from collections import Counter as CountOf

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
KNOWN_PATHS = {"/predict", "/health", "/ready", "/model", "/metrics", "/admin/reload", "/docs", "/openapi.json"}


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlp_api_requests_total",
            "HTTP requests by path and status code.",
            ["path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlp_api_request_seconds",
            "HTTP request latency by path.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlp_api_predictions_total",
            "Predictions by model version and label.",
            ["model_version", "label"],
            registry=self.registry,
        )
        self.served = Gauge(
            "mlp_api_model_served", "1 for the model version being served.", ["model_version"], registry=self.registry
        )

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        label = path if path in KNOWN_PATHS else "other"  # bounded label values, whatever clients send
        self.requests.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)

    def observe_predictions(self, version: str, labels: list[str]) -> None:
        for label, count in CountOf(labels).items():
            self.predictions.labels(version, label).inc(count)

    def set_served(self, version: str | None) -> None:
        self.served.clear()
        if version is not None:
            self.served.labels(version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
