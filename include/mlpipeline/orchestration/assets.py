"""Every Asset of the pipeline, defined once. DAGs import them from here; nobody spells a URI twice.

The chain: ``etl`` -> clean_data -> ``features`` -> feature_data -> ``train`` -> approved_model ->
``deploy`` -> served_model; beside it ``batch_score`` turns clean_data and served_model into
batch_predictions. Data assets point into the lake (``MLP_LAKE_URI``), so their URIs follow the
storage the deployment uses.
"""

from __future__ import annotations

from airflow.sdk import Asset

from include.mlpipeline.core.settings import get_settings

_settings = get_settings()
GROUP = "ml_pipeline"

CLEAN_DATA = Asset(name="clean_data", uri=f"{_settings.lake_uri}/clean", group=GROUP)
"""Cleaned, quality-gated daily partitions. Extra: partitions, rows in/out/quarantined, content hashes."""

FEATURE_DATA = Asset(name="feature_data", uri=f"{_settings.lake_uri}/features", group=GROUP)
"""Model-ready daily feature partitions. Extra: partitions, rows, content hashes."""

APPROVED_MODEL = Asset(name="approved_model", uri="x-mlflow://registry/approved_model", group=GROUP)
"""A registered model version that passed the promotion gate. Extra: version, metrics, decision."""

SERVED_MODEL = Asset(name="served_model", uri="x-serving://prediction-api/served_model", group=GROUP)
"""The version the live API serves after a verified deploy. Extra: version, previous, smoke test."""

RETRAIN_REQUESTED = Asset(name="retrain_requested", uri="x-monitoring://drift/retrain_requested", group=GROUP)
"""The monitor found drift or degraded live performance. Extra: reasons, drift scores, live metrics."""

BATCH_PREDICTIONS = Asset(name="batch_predictions", uri=f"{_settings.lake_uri}/batch_predictions", group=GROUP)
"""The champion's answers to clean partitions' rows (batch scoring). Extra: partitions, rows, model version, seconds."""
