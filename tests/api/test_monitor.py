"""The drift monitor against the real registry and lake of the API tests, for each example: reports,
decision, MLflow run."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.lake import Lake

from .conftest import RegisteredModel

NEWEST_ROWS_AT_LEAST = {"flights": 5000, "penguins": 300}  # the 7 newest days; the one load of the table
# Whether a drift share threshold asks for a retrain. The penguins' newest load is the table its champion
# was trained on: nothing drifts, so not even a threshold of 1% asks for one.
RETRAIN = {"flights": {0.01: True, 1.0: False}, "penguins": {0.01: False, 1.0: False}}


@pytest.mark.parametrize("threshold", [0.01, 1.0])
def test_monitor_decides_and_keeps_its_reports(
    registered_model: RegisteredModel, threshold: float, monkeypatch: pytest.MonkeyPatch
):
    from include.mlpipeline.monitoring import drift

    example = registered_model.example
    retrain = RETRAIN[example.name][threshold]
    monkeypatch.setenv("MLP_DRIFT_SHARE_THRESHOLD", str(threshold))
    get_settings.cache_clear()
    try:
        summary = drift.monitor([example.days[-1]])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    newest = summary["newest_days"]
    assert newest["rows"] > NEWEST_ROWS_AT_LEAST[example.name]
    assert set(newest["scores"]) == set(drift.monitored_features(drift.load_problem()))
    assert summary["retrain"] is retrain
    assert bool(summary["reasons"]) is retrain
    assert summary["champion_version"] == registered_model.version
    assert example.primary_metric in summary["offline"]  # flights: roc_auc
    lake = Lake(registered_model.lake_uri)
    assert lake.fs.exists(newest["report_uri"].removeprefix("file://"))
    assert lake.fs.size(newest["report_uri"].removeprefix("file://")) > 100_000  # a real Evidently report

    client = MlflowClient(registered_model.tracking_uri)
    experiment = client.get_experiment_by_name(f"{registered_model.name}-monitoring")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert runs[0].data.tags["retrain"] == str(retrain).lower()
    assert runs[0].data.metrics["newest_days_drift_share"] == pytest.approx(newest["drift_share"])
    artifacts = [a.path for a in client.list_artifacts(runs[0].info.run_id, "drift")]
    assert "drift/drift-newest_days.html" in artifacts
