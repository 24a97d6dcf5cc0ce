"""Monitoring: drift and live performance of the served model, and the pipeline's own metrics."""
