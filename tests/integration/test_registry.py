"""Training runs, the registry and the promotion gate against a real MLflow tracking server, for each example.

Once per module: start ``mlflow server`` (SQLite in a temporary folder). Once per example
(``tests.support.examples``): fill a lake (flights: 12 replayed days, 6 train, 3 validation, 3 test;
penguins: its table, split 60/20/20 by key) and train the two cheap candidates (the baseline and
logistic regression; ridge) with the pipeline's own code. The gate scores the problem's primary
metric (ROC AUC; R²). Every test registers under a model name of its own, so the tests do not depend
on each other's order; the environment is restored afterwards.

Losing and winning challengers are the real logged model with a changed test score in the
results dict that ``register_best`` receives: the gate decides on those numbers, and a real model
makes the champion's score on the same test rows real too. A tie is real: the same candidate
retrained on the same data version.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from stack.mlflow_server import running_mlflow_server

from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import get_settings
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.deployment import deploy
from include.mlpipeline.ml import evaluation, registry, tracking, training
from include.mlpipeline.ml.candidates import find_candidate
from include.mlpipeline.ml.model_card import threshold_rule
from include.mlpipeline.ml.training import train_candidate
from include.mlpipeline.ml.window import load_training_set, select_window
from tests.support.examples import EXAMPLES, Example, example_id
from tests.support.pipeline import environment

EVALUATION_FILES = {
    "binary": {
        "roc_curve.png",
        "precision_recall_curve.png",
        "confusion_matrix.png",
        "calibration.png",
        "calibration.csv",
        "permutation_importance.png",
        "permutation_importance.csv",
        "model_card.md",
    },
    "regression": {
        "predicted_vs_actual.png",
        "residuals.png",
        "residuals.csv",
        "permutation_importance.png",
        "permutation_importance.csv",
        "model_card.md",
    },
}
PER_PART_TABLE = {"binary": "calibration.csv", "regression": "residuals.csv"}  # a "rows" column per part


@dataclass
class Trained:
    example: Example
    window: dict[str, Any]
    parent_run_id: str
    results: list[dict[str, Any]]

    def result(self, name: str) -> dict[str, Any]:
        return next(r for r in self.results if r["name"] == name)

    @property
    def model(self) -> dict[str, Any]:
        """The cheap learner's result (flights: logistic regression; penguins: ridge)."""
        return self.result(self.example.cheap_model)

    def score(self, name: str) -> float:
        """A candidate's test score on the primary metric."""
        return self.result(name)["test"][self.example.primary_metric]


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


MIN_GAIN_OVER_BASELINE = 0.02


@pytest.fixture(scope="module", params=EXAMPLES, ids=example_id)
def example(request: pytest.FixtureRequest) -> Example:
    return request.param


@pytest.fixture(scope="module")
def lake_uri(mlflow_server: str, example: Example, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The module's settings for the example in the environment, and its lake (12 replayed feature days;
    the penguin table)."""
    uri = f"file://{tmp_path_factory.mktemp('lake')}"
    with environment(
        MLP_PROBLEM=example.module,
        MLP_MLFLOW_TRACKING_URI=mlflow_server,
        MLP_LAKE_URI=uri,
        MLP_EXPERIMENT_NAME=f"registry_tests_{example.name}",
        **example.split_settings(),
        MLP_TRAIN_WINDOW_DAYS="60",
        MLP_RANDOM_SEED="42",
        MLP_PROMOTION_MIN_GAIN="0.002",
        MLP_MIN_GAIN_OVER_BASELINE=str(MIN_GAIN_OVER_BASELINE),
    ):
        example.fill_lake()
        yield uri


def cheap(example: Example) -> tuple[str, str]:
    return ("baseline", example.cheap_model)


@pytest.fixture(scope="module")
def trained(lake_uri: str, example: Example) -> Trained:
    window = select_window().to_dict()
    parent = tracking.start_parent_run(window, run_name="registry tests")
    results = [train_candidate(name, window, parent) for name in cheap(example)]
    trained = Trained(example, window, parent, results)
    # The loser/winner/floor scenarios shift this score by 0.01 and must stay above the floor
    # (flights: ROC AUC 0.535 or more over the baseline's 0.5).
    floor = trained.score("baseline") + example.better * (MIN_GAIN_OVER_BASELINE + 0.015)
    assert example.better * (trained.score(example.cheap_model) - floor) >= 0, "the real model must pass the floor"
    return trained


@pytest.fixture(scope="module")
def retrained(trained: Trained) -> Trained:
    """The cheap learner again, on the same window (same data version), in a new training run."""
    parent = tracking.start_parent_run(trained.window, run_name="registry tests, retrained")
    name = trained.example.cheap_model
    return Trained(trained.example, trained.window, parent, [train_candidate(name, trained.window, parent)])


@pytest.fixture
def client(mlflow_server: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server)


@pytest.fixture
def model_name(lake_uri: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A registered model name of this test's own (``register_best`` and ``deploy`` read it from settings)."""
    name = f"m_{request.node.name}".replace("[", "_").replace("]", "").replace("-", "_")
    with environment(MLP_REGISTERED_MODEL_NAME=name):
        yield name


# ------------------------------------------------------------------------------------- helpers
def register(results: list[dict[str, Any]], window: dict[str, Any], run_name: str) -> tuple[dict[str, Any], str]:
    """``register_best`` under a parent run of its own (so its tags and metrics are this call's alone)."""
    parent = tracking.start_parent_run(window, run_name=run_name)
    return registry.register_best(results, window, parent), parent


def with_test_score(result: dict[str, Any], metric: str, score: float) -> dict[str, Any]:
    changed = copy.deepcopy(result)
    changed["test"][metric] = score
    return changed


def make_champion(trained: Trained) -> dict[str, Any]:
    registration, _ = register(trained.results, trained.window, "first model")
    assert registration["decision"]["promote"], registration["decision"]
    deploy.promote(registration["version"])
    return registration


def aliases() -> tuple[str | None, str | None]:
    """(champion, challenger) versions of the current model name."""
    return registry.alias_version("champion"), registry.alias_version("challenger")


def versions(client, name: str) -> list[str]:
    return sorted(v.version for v in client.search_model_versions(f"name='{name}'"))


def run_train_dag(example: Example, run_name: str, *, newest: str | None = None) -> dict[str, Any]:
    """What the train DAG does, in order, in this process: window, parent run, candidates, register."""
    window = select_window(newest).to_dict()
    parent = tracking.start_parent_run(window, run_name=run_name)
    results = [train_candidate(name, window, parent) for name in cheap(example)]
    return registry.register_best(results, window, parent)


def runs_named(client, run_name: str) -> list:
    experiment = client.get_experiment_by_name(get_settings().experiment_name)
    return client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{run_name}'")


def child_runs(client, parent_run_id: str) -> list:
    experiment = client.get_experiment_by_name(get_settings().experiment_name)
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")


def copy_lake(
    source_uri: str, target: Path, days: Sequence[str], change: Callable[[str, pd.DataFrame], pd.DataFrame]
) -> str:
    """A copy of the feature partitions of ``days`` with ``change(day, frame)`` applied to each; returns its URI."""
    source, uri = Lake(source_uri), f"file://{target}"
    copied = Lake(uri)
    for day in days:
        copied.write(FEATURES, day, change(day, source.read(FEATURES, day)))
    return uri


# ------------------------------------------------------------------------------ tracking runs
def test_child_runs_keep_their_lineage_and_log_evaluation_artifacts(trained: Trained, client) -> None:
    import mlflow

    example, metric = trained.example, trained.example.primary_metric
    result = trained.model
    run = client.get_run(result["run_id"])

    assert run.data.tags["mlflow.parentRunId"] == trained.parent_run_id
    assert run.data.tags["data_version"] == trained.window["data_version"]
    assert run.data.tags["code_version"]
    assert run.data.params["candidate"] == example.cheap_model
    assert run.data.params["data_version"] == trained.window["data_version"]
    if example.binary:
        assert float(run.data.params["threshold"]) == pytest.approx(result["threshold"], abs=1e-6)
    else:
        assert result["threshold"] is None and "threshold" not in run.data.params
    assert run.data.metrics[f"test_{metric}"] == result["test"][metric]  # flights: test_roc_auc
    assert {f"validation_{k}" for k in result["validation"]} | {f"test_{k}" for k in result["test"]} <= set(
        run.data.metrics
    )
    top_level = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"feature_list.json", "evaluation"} <= top_level
    evaluation_files = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert evaluation_files == EVALUATION_FILES[example.problem.task]
    info = mlflow.models.get_model_info(result["model_uri"])
    assert info.signature is not None
    assert info.saved_input_example_info is not None
    assert info.metadata["threshold"] == result["threshold"]

    card = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="evaluation/model_card.md")
    ).read_text()
    assert trained.window["data_version"] in card
    assert f"| {metric} | {result['validation'][metric]:.4f} | {result['test'][metric]:.4f} |" in card
    if example.binary:
        assert f"{result['threshold']:.4f}" in card
        assert threshold_rule().startswith("the probability cut-off that maximizes F1")
    else:
        assert "## Decision threshold" not in card


def test_child_runs_log_their_input_dataset_and_task(trained: Trained, client) -> None:
    import mlflow

    result = trained.model
    run = client.get_run(result["run_id"])

    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == f"features@{trained.window['data_version']}"
    assert dataset.dataset.source.endswith("/features") or "features" in dataset.dataset.source
    assert [tag.value for tag in dataset.tags if tag.key == "mlflow.data.context"] == ["training"]
    metadata = mlflow.models.get_model_info(result["model_uri"]).metadata
    expected = ("binary", [0, 1]) if trained.example.binary else (trained.example.problem.task, None)
    assert (metadata["task"], metadata["classes"]) == expected


def test_a_search_logs_its_trials_as_nested_runs_and_trains_the_best(trained: Trained, client) -> None:
    example = trained.example
    validation = f"validation_{example.primary_metric}"
    (searched, *_) = find_candidate(example.problem, example.cheap_model).search_space  # flights: C; penguins: alpha
    with environment(MLP_SEARCH_TRIALS="3"):
        result = train_candidate(example.cheap_model, trained.window, trained.parent_run_id, evaluation_artifacts=False)

    run = client.get_run(result["run_id"])
    trials = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert run.data.tags["mlflow.parentRunId"] == trained.parent_run_id
    assert run.data.params["search_trials"] == "3"
    assert len(trials) == 3
    assert all(validation in trial.data.metrics and searched in trial.data.params for trial in trials)
    best = max(trials, key=lambda trial: example.better * trial.data.metrics[validation])
    assert float(best.data.params[searched]) == pytest.approx(result["params"][searched])
    assert run.data.metrics[validation] == pytest.approx(best.data.metrics[validation])


def test_evaluation_report_needs_no_mlflow(lake_uri: str, example: Example, tmp_path: Path) -> None:
    problem = load_problem()
    assert problem is example.problem
    window = select_window()
    data = load_training_set(window, problem=problem)
    fitted = training.fit_candidate(example.cheap_model, data, problem=problem, seed=42)

    written = evaluation.write_evaluation(
        tmp_path, problem=problem, candidate=example.cheap_model, window=window, data=data, fitted=fitted, seed=42
    )

    assert {path.name for path in written} == EVALUATION_FILES[problem.task]
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name
    importance = pd.read_csv(tmp_path / "permutation_importance.csv")
    assert sorted(importance["feature"]) == sorted(problem.feature_columns)
    per_part = pd.read_csv(tmp_path / PER_PART_TABLE[problem.task])  # flights: calibration.csv
    assert per_part.groupby("part")["rows"].sum().to_dict() == {
        "test": len(data.test),
        "validation": len(data.validation),
    }
    card = (tmp_path / "model_card.md").read_text()
    sections = ["## Problem", "## Data", "## Metrics", "## Intended use", "## Known limits"]
    if example.binary:
        sections.insert(3, "## Decision threshold")
    for section in sections:
        assert section in card
    assert problem.description in card


def test_retraining_on_the_same_data_version_logs_identical_metrics(
    trained: Trained, retrained: Trained, client
) -> None:
    import mlflow

    first = client.get_run(trained.model["run_id"])
    second = client.get_run(retrained.model["run_id"])

    assert first.info.run_id != second.info.run_id
    assert first.data.tags["data_version"] == second.data.tags["data_version"]
    assert first.data.metrics == second.data.metrics  # every metric, exactly
    assert first.data.params == second.data.params
    tables = [
        pd.read_csv(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="evaluation/permutation_importance.csv"
            )
        )
        for run in (first, second)
    ]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_retraining_a_seeded_forest_logs_identical_metrics(trained: Trained, client) -> None:
    parent = tracking.start_parent_run(trained.window, run_name="forest twice")
    # Metrics only (the artifacts' reproducibility is shown above): keeps this test to two forest fits.
    runs = [
        train_candidate("random_forest", trained.window, parent, evaluation_artifacts=False)["run_id"] for _ in range(2)
    ]

    first, second = (client.get_run(run_id).data for run_id in runs)

    assert first.metrics == second.metrics
    assert first.params == second.params
    assert sorted(r.info.run_id for r in child_runs(client, parent)) == sorted(runs)


# --------------------------------------------------------------------------------- the gate
def test_first_model_passes_the_gate_and_deploy_makes_it_champion(trained: Trained, model_name: str, client) -> None:
    example, metric = trained.example, trained.example.primary_metric
    assert aliases() == (None, None)

    registration, parent = register(trained.results, trained.window, "first model")

    decision = registration["decision"]
    assert decision["promote"] is True
    assert decision["reason"].startswith("first model")
    assert (registration["version"], registration["candidate"]) == ("1", example.cheap_model)
    assert aliases() == (None, "1"), "the gate marks the challenger; only deploy moves the champion"
    assert client.get_model_version(model_name, "1").tags["promotion_decision"] == "promote"

    assert deploy.promote(registration["version"]) == {"version": "1", "previous": None}
    assert aliases() == ("1", "1")

    run = client.get_run(parent).data
    assert run.tags["promotion_decision"] == "promote"
    assert run.tags["registered_version"] == "1"
    assert run.tags["best_candidate"] == example.cheap_model
    assert run.metrics[f"challenger_test_{metric}"] == trained.score(example.cheap_model)
    assert run.metrics[f"baseline_test_{metric}"] == trained.score("baseline")
    assert_a_constant_score(example, trained.score("baseline"))
    assert f"champion_test_{metric}" not in run.metrics


def assert_a_constant_score(example: Example, score: float) -> None:
    """The baseline predicts a constant: ROC AUC exactly 0.5; R² at most 0 on the test rows."""
    if example.binary:
        assert score == example.constant_score == 0.5
    else:
        assert score <= example.constant_score


def test_a_losing_challenger_takes_the_challenger_alias_and_the_champion_stays(
    trained: Trained, model_name: str, client
) -> None:
    example, metric = trained.example, trained.example.primary_metric
    make_champion(trained)
    champion_score = trained.score(example.cheap_model)
    loser = with_test_score(trained.model, metric, champion_score - example.better * 0.01)

    registration, parent = register([trained.result("baseline"), loser], trained.window, "loser")

    assert registration["version"] == "2"
    assert registration["previous_champion"] == "1"
    assert registration["decision"]["promote"] is False
    assert "does not beat the champion" in registration["decision"]["reason"]
    assert aliases() == ("1", "2")
    assert client.get_model_version(model_name, "2").tags["promotion_decision"] == "keep_champion"
    run = client.get_run(parent).data
    assert run.tags["promotion_decision"] == "keep_champion"
    assert run.tags["promotion_reason"] == registration["decision"]["reason"]
    assert run.metrics[f"challenger_test_{metric}"] == pytest.approx(champion_score - example.better * 0.01, abs=1e-12)
    # The champion was re-scored by loading it from the registry, on the same test rows.
    assert run.metrics[f"champion_test_{metric}"] == pytest.approx(champion_score, abs=1e-12)
    assert run.metrics[f"baseline_test_{metric}"] == trained.score("baseline")
    assert_a_constant_score(example, run.metrics[f"baseline_test_{metric}"])


def test_a_winning_challenger_is_approved_and_deploy_moves_the_champion(
    trained: Trained, model_name: str, client
) -> None:
    example, metric = trained.example, trained.example.primary_metric
    make_champion(trained)
    champion_score = trained.score(example.cheap_model)
    winner = with_test_score(trained.model, metric, champion_score + example.better * 0.01)

    registration, parent = register([trained.result("baseline"), winner], trained.window, "winner")

    assert registration["decision"]["promote"] is True
    assert "beats the champion" in registration["decision"]["reason"]
    assert aliases() == ("1", "2")
    assert deploy.promote(registration["version"]) == {"version": "2", "previous": "1"}
    assert aliases() == ("2", "2")
    run = client.get_run(parent).data
    assert run.tags["promotion_decision"] == "promote"
    assert run.metrics[f"challenger_test_{metric}"] == pytest.approx(champion_score + example.better * 0.01, abs=1e-12)
    assert run.metrics[f"champion_test_{metric}"] == pytest.approx(champion_score, abs=1e-12)


def test_an_approval_shows_the_registrys_numbers_and_a_rejection_moves_nothing(
    trained: Trained, model_name: str, client
) -> None:
    """deploy's approval step against the real registry: the request's scores and model card, a
    rejection tagged on the version with the alias untouched, an approval tagged before the alias moves."""
    import mlflow

    from include.mlpipeline.deployment import approval

    example, metric = trained.example, trained.example.primary_metric
    make_champion(trained)
    winner = with_test_score(trained.model, metric, trained.score(example.cheap_model) + example.better * 0.01)
    registration, _ = register([trained.result("baseline"), winner], trained.window, "candidate to approve")

    request = approval.gather_request("2", registration)

    assert (request.version, request.champion, request.source, request.metric) == ("2", "1", "promotion gate", metric)
    decision = registration["decision"]
    assert (request.candidate_score, request.champion_score) == (
        decision["challenger_score"],
        decision["champion_score"],
    )
    assert request.same_rows
    assert request.card_uri == f"runs:/{winner['run_id']}/evaluation/model_card.md"
    assert trained.window["data_version"] in Path(mlflow.artifacts.download_artifacts(request.card_uri)).read_text()
    experiment = client.get_run(winner["run_id"]).info.experiment_id
    assert request.card_url == (
        f"{get_settings().mlflow_tracking_uri}/#/experiments/{experiment}/runs/{winner['run_id']}"
        "/artifactPath/evaluation/model_card.md"
    )

    rejected = approval.decide(["Reject"], {"id": "alice", "name": "alice"}, {"reason": "worse on one segment"})
    result = approval.keep_champion("2", rejected.to_dict(), run_id="deploy-run-1")

    assert (result["version"], result["champion"]) == ("2", "1")
    assert aliases() == ("1", "2")
    tags = client.get_model_version(model_name, "2").tags
    assert (tags["deploy_approval"], tags["deploy_approval_by"], tags["deploy_approval_reason"]) == (
        "rejected",
        "alice",
        "worse on one segment",
    )
    assert tags["deploy_approval_run"] == "deploy-run-1"
    assert "earlier decision: rejected by alice" in approval.gather_request("2", None).markdown()
    with pytest.raises(ValueError, match="version 2 was rejected"):
        deploy.promote("2", rejected.to_dict())
    assert aliases() == ("1", "2")

    approved = approval.decide(["Approve"], None, timed_out=True)  # the timeout policy approved it
    assert deploy.promote("2", approved.to_dict(), "deploy-run-2") == {"version": "2", "previous": "1"}
    tags = client.get_model_version(model_name, "2").tags
    assert (tags["deploy_approval"], tags["deploy_approval_by"], tags["deploy_approval_run"]) == (
        "approved",
        "timeout",
        "deploy-run-2",
    )
    assert aliases() == ("2", "2")


def test_a_tie_keeps_the_champion(trained: Trained, retrained: Trained, model_name: str, client) -> None:
    make_champion(trained)

    registration, parent = register([trained.result("baseline"), retrained.model], trained.window, "tie")

    decision = registration["decision"]
    assert decision["promote"] is False
    assert decision["challenger_score"] == pytest.approx(decision["champion_score"], abs=1e-12)
    assert "does not beat the champion" in decision["reason"]
    assert aliases() == ("1", "2")
    assert client.get_run(parent).data.tags["promotion_decision"] == "keep_champion"


def test_a_first_model_below_the_baseline_floor_is_not_approved(trained: Trained, model_name: str, client) -> None:
    example = trained.example
    # Half the required gain over the baseline (flights: ROC AUC 0.51 against 0.5 + 0.02).
    weak_score = trained.score("baseline") + example.better * MIN_GAIN_OVER_BASELINE / 2
    weak = with_test_score(trained.model, example.primary_metric, weak_score)

    registration, parent = register([trained.result("baseline"), weak], trained.window, "weak")

    assert registration["decision"]["promote"] is False
    assert registration["decision"]["reason"].startswith("below the floor")
    assert aliases() == (None, "1")
    assert client.get_run(parent).data.tags["promotion_decision"] == "keep_champion"


# --------------------------------------------------------------------------------- bad inputs
@pytest.fixture
def champion(trained: Trained, model_name: str) -> str:
    """This test's model name, with version 1 registered and champion (so "nothing new" is visible)."""
    make_champion(trained)
    return model_name


WINDOW_FAILURES = {
    "flights": {
        "too_few_days": ("2013-06-05", "the lake", r"enough_days.*5 feature partitions available, 7 needed"),
        "empty_lake": (None, "an empty lake", r"enough_days.*0 feature partitions available, 7 needed"),
    },
    "penguins": {
        # A snapshot trains on its newest load: one day is enough, so there is no "too few days".
        "empty_lake": (None, "an empty lake", r"enough_days.*0 feature partitions available: run etl"),
    },
}


@pytest.mark.parametrize("case", ["too_few_days", "empty_lake"])
def test_a_window_without_enough_days_registers_nothing(
    champion: str, example: Example, client, tmp_path: Path, case: str
) -> None:
    if case not in WINDOW_FAILURES[example.name]:
        pytest.skip(f"{example.name} is a snapshot: its newest load alone is a whole window")
    newest, which_lake, message = WINDOW_FAILURES[example.name][case]
    lake = f"file://{tmp_path}/empty-lake" if which_lake == "an empty lake" else os.environ["MLP_LAKE_URI"]

    with environment(MLP_LAKE_URI=lake), pytest.raises(DataQualityError, match=message):
        run_train_dag(example, "not enough days", newest=newest)

    assert versions(client, champion) == ["1"]
    assert aliases() == ("1", "1")
    assert runs_named(client, "not enough days") == [], "the window fails before any run opens"


def _unlearnable_target(example: Example, day: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Flights: one class on the test days. Penguins (one load): every bird of the same mass."""
    if not example.binary:
        return frame.assign(**{example.problem.target: 3000.0})
    return frame.assign(**{example.problem.target: 0}) if day in example.days[-3:] else frame


def _renamed_column(example: Example, day: str, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={example.numeric_field: f"{example.numeric_field}_renamed"})  # flights: distance


LEAKS = {"flights": ("arr_delay", "2013-06-05"), "penguins": ("delta_15_n", "2026-06-01")}  # a column, a train day


def _leakage_column(example: Example, day: str, frame: pd.DataFrame) -> pd.DataFrame:
    column, train_day = LEAKS[example.name]
    return frame.assign(**{column: np.float64(0.0)}) if day == train_day else frame


BAD_DATA = {
    "unlearnable_target": (
        _unlearnable_target,
        {
            "flights": r"test_has_both_classes\. The test days 2013-06-10\.\.2013-06-12 hold \d+ rows",
            "penguins": r"train_target\. The train part of 2026-06-01 holds \d+ rows: the train part's target is const",
        },
    ),
    "renamed_feature_column": (
        _renamed_column,
        {
            "flights": r"quality gate 'training_set' failed: .*column_in_dataframe:distance",
            "penguins": r"quality gate 'training_set' failed: .*column_in_dataframe:flipper_length_mm",
        },
    ),
    "leakage_column": (
        _leakage_column,
        {
            "flights": r"quality gate 'training_set' failed: .*no_leakage_columns",
            "penguins": r"quality gate 'training_set' failed: .*no_leakage_columns",
        },
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_training_data_fails_with_a_clear_message_and_registers_nothing(
    champion: str, example: Example, client, tmp_path: Path, case: str
) -> None:
    make_change, messages = BAD_DATA[case]
    run_name = f"bad data {case}"
    change = functools.partial(make_change, example)
    broken = copy_lake(os.environ["MLP_LAKE_URI"], tmp_path / "lake", example.days, change)

    with environment(MLP_LAKE_URI=broken), pytest.raises(DataQualityError, match=messages[example.name]):
        run_train_dag(example, run_name)

    assert versions(client, champion) == ["1"]
    assert aliases() == ("1", "1")
    (parent,) = runs_named(client, run_name)
    assert child_runs(client, parent.info.run_id) == [], "no candidate run (and no model) was logged"
