"""Monitoring: the served model against live outcomes and drift, and the reconciliation of the whole pipeline."""
