"""notebooks/analysis.ipynb runs headless, top to bottom, against a real lake and a real MLflow server.

Once per module: start ``mlflow server`` (SQLite in a temporary folder), replay 12 days into a lake,
run what the train DAG runs (window, parent run, baseline and logistic regression, register the
best). The notebook is executed with nbclient in a ``python3`` kernel of this interpreter (the
venv's), whose environment points at that lake and server, exactly as a user's would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from stack.mlflow_server import running_mlflow_server
from stack.processes import free_port

from tests.support.pipeline import environment, replay_and_open_run, small_pipeline

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"
EXPERIMENT = "notebook_tests"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="module")
def pipeline_env(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The MLP_* variables of a lake with 12 feature days and an experiment with one training run."""
    from include.mlpipeline.ml import registry
    from include.mlpipeline.ml.training import train_candidate

    values = small_pipeline(mlflow_server, f"file://{tmp_path_factory.mktemp('lake')}", EXPERIMENT)
    with environment(**values):
        window, parent = replay_and_open_run("notebook tests")
        results = [train_candidate(name, window, parent) for name in ("baseline", "logistic_regression")]
        registry.register_best(results, window, parent)
        yield values


def execute(env: dict[str, str]) -> nbformat.NotebookNode:
    """Run the notebook in a fresh kernel with ``env`` added to this process's environment.

    Raises:
        nbclient.exceptions.CellExecutionError: if any cell raises.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute(env={**os.environ, **env})
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def image_count(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs(notebook))


def shown_text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook said: markdown notes and logs."""
    parts = []
    for output in outputs(notebook):
        parts.append(output.get("data", {}).get("text/markdown", ""))
        parts.append(output.get("text", ""))
    return "\n".join(parts)


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_notebook_plots_the_runs_and_the_lake(pipeline_env: dict[str, str]) -> None:
    notebook = execute(pipeline_env)

    assert not [output for output in outputs(notebook) if output.output_type == "error"]
    # candidate metrics, ROC AUC over runs, class balance per day, a feature by label
    assert image_count(notebook) == 4
    text = shown_text(notebook)
    assert f"Lake `{pipeline_env['MLP_LAKE_URI']}`" in text
    assert "over 12 days, 2013-06-01..2013-06-12" in text
    assert "Training runs: 1, candidate runs: 2." in text
    assert "Feature shown: `" in text


@pytest.mark.parametrize("case", ["no_runs_yet", "mlflow_down"])
def test_the_notebook_says_what_is_missing_instead_of_failing(
    pipeline_env: dict[str, str], tmp_path: Path, case: str
) -> None:
    env = {**pipeline_env, "MLP_LAKE_URI": f"file://{tmp_path}/empty-lake", "MLP_EXPERIMENT_NAME": "never_trained"}
    if case == "mlflow_down":
        env["MLP_MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"

    notebook = execute(env)

    assert not [output for output in outputs(notebook) if output.output_type == "error"]
    assert image_count(notebook) == 0
    text = shown_text(notebook)
    assert "No feature partitions in" in text
    assert "No candidate runs in experiment `never_trained` yet" in text
    assert ("Could not read runs from MLflow" in text) == (case == "mlflow_down")
