"""Batch scoring (include/mlpipeline/deployment/batch_scoring.py) and the batch_score DAG: each shipped
example's clean partitions scored with a real fitted pipeline, as the API would answer their rows; the
partition committed whole and replaced by a rerun; refused rows quarantined; and the monitor's live
check reading the batch predictions once the outcomes land.

Examples: flights (binary, days), penguins (regression, a snapshot) and a multiclass toy made from the
penguins (species from the other measurements), each a small lake built by the ETL's own steps.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data import etl
from include.mlpipeline.data.etl import CLEAN, FEATURES, quarantine_dataset
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.deployment import batch_scoring
from include.mlpipeline.deployment.batch_scoring import BATCH_SCHEMA, BatchScorer
from include.mlpipeline.ml import candidates
from include.mlpipeline.monitoring import drift, live_outcomes
from include.mlpipeline.monitoring.live_outcomes import BATCH_PREDICTIONS
from include.mlpipeline.monitoring.reconcile_stack import collect_lake
from include.mlpipeline.monitoring.reconciliation import check_events, check_partitions
from include.mlpipeline.serving.answers import ScoredRequest
from include.mlpipeline.serving.metrics import ServingMetrics
from include.mlpipeline.serving.model_store import LoadedModel, ModelStore
from include.mlpipeline.serving.prediction_log import PREDICTIONS, PredictionLog
from include.mlpipeline.serving.request_parsing import PredictBodyParser, predict_request_model
from include.mlpipeline.serving.scoring import Scorer, ScoringJob

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-9
FLIGHT_DAYS = ("2013-06-13", "2013-06-14")  # the canary flights fly on the 14th
PENGUIN_LOAD = "2026-06-01"
ANSWERS = ("probability", "label", "value", "probabilities")


@dataclasses.dataclass(frozen=True)
class Example:
    """One problem, its small lake's days, and the lake (built once per module)."""

    problem: ProblemSpec
    days: tuple[str, ...]
    root: Path

    @property
    def day(self) -> str:
        """The partition the tests score: the newest."""
        return self.days[-1]


def _species(penguins: ProblemSpec) -> ProblemSpec:
    """A multiclass toy: the penguin's species from its island, sex and measurements."""
    return dataclasses.replace(
        penguins,
        name="penguin_species",
        task="multiclass",
        target="species",
        categorical_features=tuple(c for c in penguins.categorical_features if c != "species"),
        primary_metric=None,
        candidates=None,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, tuple[str, ...], Path]]:
    """A lake per shipped example (raw, clean and feature partitions), built by the ETL steps."""
    lakes = {}
    for name, module, days in (
        ("flights", "include.flight_delay", FLIGHT_DAYS),
        ("penguins", "include.penguins", (PENGUIN_LOAD,)),
    ):
        root = tmp_path_factory.mktemp(f"{name}-lake")
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MLP_PROBLEM", module)
            env.setenv("MLP_LAKE_URI", f"file://{root}")
            env.setenv("MLP_DVC_ENABLED", "false")
            get_settings.cache_clear()
            load_problem.cache_clear()  # load_problem() is cached by the settings' problem
            try:
                etl.replay_days(list(days))
            finally:
                get_settings.cache_clear()
                load_problem.cache_clear()
        lakes[name] = (module, days, root)
    return lakes


@pytest.fixture(params=["flights", "penguins", "penguin_species"])
def example(request: pytest.FixtureRequest, built: dict, tmp_path: Path) -> Example:
    """One example on a copy of its lake, so each test changes only its own."""
    name = request.param
    module, days, root = built["flights" if name == "flights" else "penguins"]
    problem = load_problem(module)
    copy = tmp_path / "lake"
    shutil.copytree(root, copy)
    return Example(_species(problem) if name == "penguin_species" else problem, days, copy)


def lake_of(example: Example) -> Lake:
    return Lake(f"file://{example.root}")


def fitted(example: Example, version: str = "1", lineage: dict[str, Any] | None = None) -> LoadedModel:
    """A real pipeline of the problem's kind fitted on the example's feature partitions, as the API loads it."""
    problem = example.problem
    train = lake_of(example).read_many(FEATURES, example.days)
    candidate = candidates.ridge() if problem.task == "regression" else candidates.logistic_regression()
    pipeline = candidate.build(problem, candidate.params, 0).fit(train[problem.feature_columns], train[problem.target])
    threshold = 0.5 if problem.task == "binary" else None
    features = problem.feature_columns
    return LoadedModel(problem.name, version, None, pipeline, threshold, features, lineage or {}, task=problem.task)


def scorer(example: Example, model: LoadedModel, **kwargs: Any) -> BatchScorer:
    problem = example.problem
    settings = kwargs.pop("settings", Settings(lake_uri=f"file://{example.root}"))
    context = problem.load_serving_context()
    return BatchScorer(model, problem=problem, context=context, lake=lake_of(example), settings=settings, **kwargs)


def api_log(problem: ProblemSpec, model: LoadedModel, records: list[dict[str, Any]], folder: Path) -> pd.DataFrame:
    """What the API logs for ``records``: /predict bodies through its parser, one scoring pass, its log."""
    settings, lake = Settings(), Lake(f"file://{folder}")
    store = ModelStore(settings, problem, problem.load_serving_context(), problem.name)  # not started
    store.current = model
    prediction_log = PredictionLog(lambda: lake, flush_s=3600)
    body_model = predict_request_model(problem, settings)
    bodies = PredictBodyParser(problem, settings, body_model)
    jobs = []
    for start in range(0, len(records), settings.api_max_batch):
        body = orjson.dumps({problem.request_key: records[start : start + settings.api_max_batch]})
        checked = getattr(bodies.parse(body) or body_model.model_validate_json(body), problem.request_key)
        jobs.append(ScoringJob(bodies.columns(checked), checked, None, store, prediction_log, time.perf_counter()))
    today = pd.Timestamp.now("UTC").date()
    assert all(isinstance(answer, ScoredRequest) for answer in Scorer(problem, settings, ServingMetrics()).score(jobs))
    assert prediction_log.flush() == len(records)
    return lake.read_appended(PREDICTIONS, [today, today + dt.timedelta(days=1)])


def assert_same_answers(batch: pd.DataFrame, api: pd.DataFrame) -> None:
    """Row for row by id, the batch answers equal the API's logged ones (floats within 1e-9)."""
    api = api.set_index("id").loc[batch["id"]]
    for column in ("probability", "value"):
        np.testing.assert_allclose(batch[column], api[column], rtol=0, atol=TOLERANCE, equal_nan=True)
    assert batch["label"].tolist() == api["label"].tolist()
    for mine, theirs in zip(batch["probabilities"], api["probabilities"], strict=True):
        assert (mine == "") == (theirs == "")
        if mine:
            left, right = json.loads(mine), json.loads(theirs)
            assert list(left) == list(right)
            np.testing.assert_allclose(list(left.values()), list(right.values()), rtol=0, atol=TOLERANCE)


# ------------------------------------------------------------------------------------------ scoring
def test_every_clean_row_gets_the_answer_the_api_gives_it(example: Example, tmp_path: Path) -> None:
    problem, lake, model = example.problem, lake_of(example), fitted(example)
    clean = lake.read(CLEAN, example.day)

    summary = scorer(example, model, chunk_rows=128).score([example.day])  # several chunks a day

    written = lake.read(BATCH_PREDICTIONS, example.day)
    assert list(written.columns) == list(BATCH_SCHEMA)
    assert len(written) == len(clean) and written["id"].is_unique
    assert set(written["model_version"]) == {"1"} and not written["seen_in_training"].any()
    assert set(written["data_version"]) == {lake.manifest(CLEAN, example.day)["content_hash"]}
    assert_same_answers(written, api_log(problem, model, problem.requests_for(clean), tmp_path / "api"))
    canaries = problem.canary_records()
    served = api_log(problem, model, canaries, tmp_path / "canaries")
    assert len(served) == len(canaries) and set(served["id"]) <= set(written["id"])  # the canaries are real rows
    assert_same_answers(written[written["id"].isin(served["id"])], served)
    assert summary["partitions"] == [example.day]
    assert (summary["rows"], summary["rows_in"], summary["rows_quarantined"]) == (len(clean), len(clean), 0)
    assert summary["model_version"] == "1" and summary["seconds"] > 0


def test_a_rerun_replaces_the_partition(example: Example) -> None:
    lake = lake_of(example)
    first = scorer(example, fitted(example, "1")).score([example.day])
    second = scorer(example, fitted(example, "2")).score([example.day])

    written = lake.read(BATCH_PREDICTIONS, example.day)
    assert len(written) == len(lake.read(CLEAN, example.day)) and written["id"].is_unique
    assert set(written["model_version"]) == {"2"}
    assert len(lake.manifest(BATCH_PREDICTIONS, example.day)["files"]) == 1
    assert first["content_hashes"] != second["content_hashes"]


@pytest.mark.parametrize("failure", ["a chunk fails", "the commit fails"])
def test_a_failure_mid_way_leaves_the_previous_partition(
    example: Example, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = lake_of(example)
    scorer(example, fitted(example, "1")).score([example.day])
    before = lake.manifest(BATCH_PREDICTIONS, example.day)
    failing = scorer(example, fitted(example, "2"), chunk_rows=100)
    if failure == "a chunk fails":
        score_rows, calls = failing.score_rows, []

        def second_chunk_fails(rows: pd.DataFrame) -> Any:
            calls.append(len(rows))
            if len(calls) == 2:
                raise MemoryError("killed mid-way")
            return score_rows(rows)

        monkeypatch.setattr(failing, "score_rows", second_chunk_fails)
    else:
        move, moves = failing.lake.fs.mv, []

        def commit_fails(source: str, target: str, **kwargs: Any) -> Any:
            moves.append(target)
            if target.endswith(f"{BATCH_PREDICTIONS}/date={example.day}/_manifest.json"):
                raise OSError("killed before the commit")
            return move(source, target, **kwargs)

        monkeypatch.setattr(failing.lake.fs, "mv", commit_fails)

    with pytest.raises((MemoryError, OSError), match="killed"):
        failing.score([example.day])

    assert lake.manifest(BATCH_PREDICTIONS, example.day) == before
    assert set(lake.read(BATCH_PREDICTIONS, example.day)["model_version"]) == {"1"}


def test_refused_rows_are_quarantined_and_too_many_fail_the_day(example: Example) -> None:
    problem, lake = example.problem, lake_of(example)
    field = "culmen_length_mm" if problem.snapshot else "flight"

    def refuse_a_few(requests: pd.DataFrame) -> pd.Series:
        few = requests[field].rank(method="first").to_numpy() <= 5  # five rows the API would refuse
        return pd.Series(np.where(few, "refused by the test", None), index=requests.index, dtype=object)

    refusing = dataclasses.replace(example, problem=dataclasses.replace(problem, request_checks=refuse_a_few))
    rows = len(lake.read(CLEAN, example.day))
    lenient = Settings(lake_uri=f"file://{example.root}", quarantine_max_share=0.5)

    extra = scorer(refusing, fitted(example), settings=lenient).score([example.day])

    assert (extra["rows_in"], extra["rows_out"], extra["rows_quarantined"]) == (rows, rows - 5, 5)
    assert len(lake.read(BATCH_PREDICTIONS, example.day)) == rows - 5
    quarantined = lake.read(quarantine_dataset(BATCH_PREDICTIONS), example.day)
    assert quarantined["_failed_checks"].tolist() == ["refused by the test"] * 5
    # The lake and the event add up as every gated dataset's do (monitoring/reconciliation.py).
    snapshot = collect_lake(lake)
    event = {"name": "batch_predictions", "uri": f"{lake.root_uri}/{BATCH_PREDICTIONS}", "extra": extra}
    assert check_partitions(snapshot)[1] == []
    assert check_events([event], snapshot, lake.root_uri)[1] == []

    strict = Settings(lake_uri=f"file://{example.root}", quarantine_max_share=0.001)
    with pytest.raises(DataQualityError, match=r"request checks refuse 5 of \d+ clean rows .*make the clean contract"):
        scorer(refusing, fitted(example), settings=strict).score([example.day])


def test_a_day_without_data_is_no_partition(example: Example) -> None:
    extra = scorer(example, fitted(example)).score(["2012-01-01"])

    assert extra["partitions"] == [] and extra["no_data"] == ["2012-01-01"] and extra["rows"] == 0


@pytest.mark.parametrize(
    ("clean_days", "rescore", "lookback", "expected"),
    [
        (["2013-06-14"], False, 7, ["2013-06-14"]),  # a clean_data event: its partitions
        ([], True, 1, ["2013-06-14"]),  # a new champion: the newest days
        (["2013-06-01"], True, 7, ["2013-06-01", "2013-06-13", "2013-06-14"]),  # both
    ],
)
def test_a_run_scores_the_new_partitions_and_a_new_champion_the_newest(
    built: dict, clean_days: list[str], rescore: bool, lookback: int, expected: list[str]
) -> None:
    module, _, root = built["flights"]
    settings = Settings(lake_uri=f"file://{root}", batch_lookback_days=lookback)

    planned = batch_scoring.plan_days(
        clean_days, rescore_recent=rescore, settings=settings, problem=load_problem(module)
    )

    assert planned["days"] == expected


def test_a_snapshot_rescores_its_newest_load_and_batch_scoring_can_be_off(built: dict) -> None:
    module, _, root = built["penguins"]
    penguins, settings = load_problem(module), Settings(lake_uri=f"file://{root}", batch_lookback_days=7)

    assert batch_scoring.plan_days([], rescore_recent=True, settings=settings, problem=penguins)["days"] == [
        PENGUIN_LOAD
    ]
    off = batch_scoring.plan_days([PENGUIN_LOAD], rescore_recent=True, settings=Settings(batch_scoring_enabled=False))
    assert off["days"] == [] and "MLP_BATCH_SCORING_ENABLED" in off["reason"]


# --------------------------------------------------------------------------------- live performance
def test_the_live_check_reads_batch_predictions_once_outcomes_land(example: Example) -> None:
    problem, lake = example.problem, lake_of(example)
    model = fitted(example)
    outcomes = lake.read(FEATURES, example.day)
    lake.delete(FEATURES, example.day)  # the outcomes of the scored day have not landed yet
    scorer(example, model).score([example.day])

    assert drift.live_performance(lake, problem, "1", lookback_days=14) == {}
    lake.write(FEATURES, example.day, outcomes)  # a later ETL run landed them
    live = drift.live_performance(lake, problem, "1", lookback_days=14)

    rows = len(lake.read(BATCH_PREDICTIONS, example.day))
    assert live["predictions"] == live["predictions_batch"] == rows and live["predictions_api"] == 0
    assert live_outcomes.live_source(live) == "batch"
    loss = "mean_loss" if problem.task != "binary" else "log_loss"
    assert np.isfinite(live[loss])
    assert drift.live_performance(lake, problem, "2", lookback_days=14) == {}  # another version's predictions
    assert live_outcomes.recent_days(lake, 14) == []  # the A/B test reads the API's log only: it has none


def test_the_api_answer_wins_and_both_sources_are_counted(example: Example) -> None:
    problem, lake = example.problem, lake_of(example)
    scorer(example, fitted(example)).score([example.day])
    batch = lake.read(BATCH_PREDICTIONS, example.day)
    served = batch.head(40).assign(request_id="r", variant="champion", latency_ms=1.0)
    lake.append(PREDICTIONS, pd.Timestamp.now("UTC").date(), served.drop(columns=["seen_in_training"]))

    live = drift.live_performance(lake, problem, "1", lookback_days=14)

    assert (live["predictions_api"], live["predictions_batch"]) == (40, len(batch) - 40)
    assert live["predictions"] == len(batch)
    assert live_outcomes.live_source(live) == "api+batch"


def test_rows_the_model_was_trained_on_are_no_live_outcome(example: Example) -> None:
    problem, lake = example.problem, lake_of(example)
    window = {"params": {"window_start": example.days[0], "window_end": example.days[-1]}}
    scorer(example, fitted(example, lineage=window)).score([example.day])

    assert lake.read(BATCH_PREDICTIONS, example.day)["seen_in_training"].all()
    assert drift.live_performance(lake, problem, "1", lookback_days=14) == {}
    if problem.snapshot:  # a later load of the same table holds the same birds: still seen, by key
        later = scorer(example, fitted(example, lineage=window))
        ids = pd.Series([*lake.read(BATCH_PREDICTIONS, example.day)["id"].head(3), "a-new-bird"])
        assert later.seen_in_training(dt.date(2026, 7, 1), ids).tolist() == [True, True, True, False]


# ------------------------------------------------------------------------------------------- the DAG
def test_the_dag_runs_on_new_clean_data_or_a_new_champion() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.asset import AssetAny

    bag = DagBag(dag_folder=str(ROOT / "dags" / "batch_score.py"))
    assert bag.import_errors == {}
    dag = bag.dags["batch_score"]

    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {asset.name for asset in condition.objects} == {"clean_data", "served_model"}
    assert {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks} == {
        "plan": [],
        "score": ["plan"],
        "publish": ["score"],
    }
    assert {task.task_id: [outlet.name for outlet in task.outlets] for task in dag.tasks} == {
        "plan": [],
        "score": [],
        "publish": ["batch_predictions"],
    }


def _steps_called(function: ast.FunctionDef) -> list[str]:
    """The steps a task body calls: functions of the batch_scoring module, or ``emit``."""
    calls = [node.func for node in ast.walk(function) if isinstance(node, ast.Call)]
    return [
        ast.unparse(call)
        for call in calls
        if (isinstance(call, ast.Attribute) and ast.unparse(call.value) == "batch_scoring")
        or (isinstance(call, ast.Name) and call.id == "emit")
    ]


def test_each_task_of_the_dag_calls_one_step() -> None:
    tree = ast.parse((ROOT / "dags" / "batch_score.py").read_text())
    tasks = {
        node.name: _steps_called(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any("task" in ast.unparse(d) for d in node.decorator_list)
    }

    assert tasks == {
        "plan": ["batch_scoring.plan_days"],
        "score": ["batch_scoring.score_days"],
        "publish": ["emit"],
    }


def test_scoring_without_a_champion_scores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchScorer, "for_champion", classmethod(lambda cls, settings=None: None))

    assert batch_scoring.score_days(["2013-06-14"]) == {
        "partitions": [],
        "reason": "no champion yet: nothing to score with",
    }


def test_a_bad_chunk_size_is_refused(example: Example) -> None:
    with pytest.raises(ValueError, match="chunk_rows must be at least 1, got 0"):
        scorer(example, fitted(example), chunk_rows=0)
