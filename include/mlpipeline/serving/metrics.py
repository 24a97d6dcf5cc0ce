"""Prometheus metrics of the prediction API (one registry per app, so tests can run several apps)."""

from __future__ import annotations

from collections.abc import Mapping

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
            "Predictions by A/B variant, model version and label (the predicted class; empty for a regression).",
            ["variant", "model_version", "label"],
            registry=self.registry,
        )
        self.pass_requests = Histogram(
            "mlp_api_scoring_pass_requests",
            "Requests scored together in one pass through features and model (concurrent requests share one).",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.served = Gauge(
            "mlp_api_model_served",
            "1 for each model version being served, by A/B variant.",
            ["variant", "model_version"],
            registry=self.registry,
        )

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        label = path if path in KNOWN_PATHS else "other"  # bounded label values, whatever clients send
        self.requests.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)

    def observe_predictions(self, variant: str, version: str, label_counts: Mapping[str, int]) -> None:
        """Count one pass's predictions of one variant (served by one model version), per label: the
        predicted class for a classifier; a regression has no label and counts all under ``""``."""
        for label, count in label_counts.items():
            if count:
                self.predictions.labels(variant, version, label).inc(count)

    def observe_pass(self, requests: int) -> None:
        self.pass_requests.observe(requests)

    def set_served(self, champion: str | None, challenger: str | None = None) -> None:
        self.served.clear()
        for variant, version in (("champion", champion), ("challenger", challenger)):
            if version is not None:
                self.served.labels(variant, version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
