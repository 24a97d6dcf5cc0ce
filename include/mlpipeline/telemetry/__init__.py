"""Telemetry: what the pipeline and the API say about themselves (Pushgateway metrics, Sentry errors)."""
