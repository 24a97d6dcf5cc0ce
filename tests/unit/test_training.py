"""Training: the day split, the training set checks, threshold choice, metrics, reproducible fits; and
the same on a snapshot (the penguin table: its newest load, split by key)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from include.flight_delay import PROBLEM
from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data.etl import FEATURES
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.data.versioning import window_version
from include.mlpipeline.ml import training
from include.mlpipeline.ml.candidates import chosen_candidates, default_candidates, find_candidate, problem_candidates
from include.mlpipeline.ml.metrics import choose_threshold, evaluate, rank_candidates
from include.mlpipeline.ml.sampling import sample_quotas, sample_rows
from include.mlpipeline.ml.window import (
    TrainingSet,
    TrainingWindow,
    load_training_set,
    select_window,
)
from include.penguins import PROBLEM as PENGUINS

DAYS = [f"2013-03-{d:02d}" for d in range(1, 9)]


@pytest.fixture
def split_settings(tmp_path: Path) -> Settings:
    return Settings(
        lake_uri=f"file://{tmp_path}/lake", train_window_days=6, validation_size="2 days", test_size="2 days"
    )


@pytest.fixture
def feature_lake(lake: Lake, make_features: Callable[..., pd.DataFrame]) -> Lake:
    for day in DAYS:
        lake.write(FEATURES, day, make_features(day, rows=150))
    return lake


# ---------------------------------------------------------------------------------- window
def test_select_window_splits_by_day_without_overlap(feature_lake: Lake, split_settings: Settings) -> None:
    window = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    assert window.train_days == ["2013-03-03", "2013-03-04"]
    assert window.validation_days == ["2013-03-05", "2013-03-06"]
    assert window.test_days == ["2013-03-07", "2013-03-08"]
    assert not set(window.train_days) & set(window.validation_days)
    assert not set(window.validation_days) & set(window.test_days)
    assert max(window.train_days) < min(window.validation_days)
    assert max(window.validation_days) < min(window.test_days)
    assert window.days == DAYS[2:]


def test_select_window_ignores_days_after_newest(feature_lake: Lake, split_settings: Settings) -> None:
    window = select_window(dt.date(2013, 3, 6), window_days=5, lake=feature_lake, settings=split_settings)

    assert window.days == DAYS[1:6]
    assert window.train_days == ["2013-03-02"]


def test_select_window_records_the_data_version(feature_lake: Lake, split_settings: Settings) -> None:
    window = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    assert window.content_hashes == {day: feature_lake.manifest(FEATURES, day)["content_hash"] for day in window.days}
    assert window.md5s == {day: feature_lake.manifest(FEATURES, day)["md5"] for day in window.days}
    assert window.data_version == window_version(window.md5s)
    assert select_window("2013-03-08", lake=feature_lake, settings=split_settings) == window
    assert TrainingWindow.from_dict(window.to_dict()) == window


def test_data_version_changes_when_a_day_is_rewritten(
    feature_lake: Lake, split_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    before = select_window("2013-03-08", lake=feature_lake, settings=split_settings)
    feature_lake.write(FEATURES, "2013-03-05", make_features("2013-03-05", rows=149))

    after = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    assert after.days == before.days
    assert after.data_version != before.data_version


def test_select_window_with_too_few_days_fails_naming_the_check(
    lake: Lake, split_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    for day in DAYS[:4]:
        lake.write(FEATURES, day, make_features(day, rows=10))

    with pytest.raises(DataQualityError, match=r"enough_days.*4 feature partitions available, 5 needed"):
        select_window("2013-03-08", lake=lake, settings=split_settings)


# ------------------------------------------------------------------------------ training set
def test_load_training_set_splits_rows_by_day(feature_lake: Lake, split_settings: Settings) -> None:
    window = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    data = load_training_set(window, problem=PROBLEM, lake=feature_lake)

    assert (len(data.train), len(data.validation), len(data.test)) == (300, 300, 300)
    for part, days in (
        (data.train, window.train_days),
        (data.validation, window.validation_days),
        (data.test, window.test_days),
    ):
        assert sorted(part["sched_dep_ts"].dt.strftime("%Y-%m-%d").unique()) == days
        assert "partition_date" not in part.columns


def test_single_class_train_days_fail_naming_the_check(
    lake: Lake, split_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    for day in DAYS[:5]:
        lake.write(FEATURES, day, make_features(day, rows=50, label=0 if day == DAYS[0] else None))
    window = select_window("2013-03-05", lake=lake, settings=split_settings)

    with pytest.raises(
        DataQualityError, match=r"train_has_both_classes\. The train days 2013-03-01\.\.2013-03-01 hold 50"
    ):
        load_training_set(window, problem=PROBLEM, lake=lake)


def test_training_set_rechecks_the_feature_contract(
    feature_lake: Lake, split_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    broken = make_features("2013-03-07", rows=150)
    broken.loc[0, "dep_hour"] = 31
    feature_lake.write(FEATURES, "2013-03-07", broken)
    window = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    with pytest.raises(DataQualityError, match=r"training_set.*dep_hour:less_than_or_equal_to\(23\) \(1 rows\)"):
        load_training_set(window, problem=PROBLEM, lake=feature_lake)


# --------------------------------------------------------------- training set over the row cap
def test_a_window_under_the_row_cap_is_loaded_whole(feature_lake: Lake, split_settings: Settings) -> None:
    window = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    default = load_training_set(window, problem=PROBLEM, lake=feature_lake, settings=split_settings)
    at_cap = load_training_set(window, problem=PROBLEM, lake=feature_lake, max_rows=900)

    assert split_settings.train_max_rows == 1_000_000
    assert (len(at_cap.train), len(at_cap.validation), len(at_cap.test)) == (300, 300, 300)
    assert (at_cap.window_rows, at_cap.max_rows, at_cap.sampled) == (900, 900, False)
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(at_cap, name), getattr(default, name))
        expected = pd.concat([feature_lake.read(FEATURES, d) for d in getattr(window, f"{name}_days")])
        pd.testing.assert_frame_equal(getattr(at_cap, name), expected.reset_index(drop=True), check_dtype=False)


def test_a_window_over_the_row_cap_is_sampled_deterministically_from_every_day(
    feature_lake: Lake, split_settings: Settings
) -> None:
    window = select_window("2013-03-08", lake=feature_lake, settings=split_settings)

    first = load_training_set(window, problem=PROBLEM, lake=feature_lake, max_rows=301)
    second = load_training_set(window, problem=PROBLEM, lake=feature_lake, max_rows=301)

    assert first.rows <= 301
    assert (first.window_rows, first.max_rows, first.sampled) == (900, 301, True)
    for name, days in (
        ("train", window.train_days),
        ("validation", window.validation_days),
        ("test", window.test_days),
    ):
        part = getattr(first, name)
        pd.testing.assert_frame_equal(part, getattr(second, name))
        per_day = part["sched_dep_ts"].dt.strftime("%Y-%m-%d").value_counts()
        assert sorted(per_day.index) == days
        assert per_day.max() - per_day.min() <= 1  # equal days keep equal shares
        full = pd.concat([feature_lake.read(FEATURES, d) for d in days])
        assert set(part["flight_id"]) <= set(full["flight_id"])


def test_sampling_keeps_each_days_share_and_a_thin_day(
    lake: Lake, split_settings: Settings, make_features: Callable[..., pd.DataFrame]
) -> None:
    sizes = dict(zip(DAYS[2:], [400, 40, 200, 200, 200, 200], strict=True))
    for day, rows in sizes.items():
        lake.write(FEATURES, day, make_features(day, rows=rows))
    window = select_window("2013-03-08", lake=lake, settings=split_settings)

    data = load_training_set(window, problem=PROBLEM, lake=lake, max_rows=250, settings=split_settings)

    kept = pd.concat([data.train, data.validation, data.test])["sched_dep_ts"].dt.strftime("%Y-%m-%d").value_counts()
    assert kept.sum() <= 250
    assert set(kept.index) == set(sizes)
    assert kept[DAYS[2]] > 5 * kept[DAYS[3]] >= 5  # 10x the rows, about 10x the sample; the thin day stays
    assert sample_quotas({"a": 3, "b": 1000, "c": 1000}, 100) == {"a": 1, "b": 49, "c": 49}
    assert sample_quotas({"a": 0, "b": 10}, 5) == {"a": 0, "b": 5}


def test_the_sample_follows_the_seed_and_nests(make_features: Callable[..., pd.DataFrame]) -> None:
    frame = make_features("2013-03-01", rows=200)
    key = PROBLEM.key_columns

    small, large = sample_rows(frame, 20, key, seed=42), sample_rows(frame, 60, key, seed=42)
    shuffled = sample_rows(frame.sample(frac=1, random_state=0), 20, key, seed=42)

    assert len(small) == 20
    assert set(small["flight_id"]) <= set(large["flight_id"])
    assert set(shuffled["flight_id"]) == set(small["flight_id"])  # the keys decide, not the row order
    assert set(sample_rows(frame, 20, key, seed=7)["flight_id"]) != set(small["flight_id"])
    assert small["flight_id"].tolist() == [f for f in frame["flight_id"] if f in set(small["flight_id"])]  # in order
    assert sample_rows(frame, 500, key, seed=42) is frame


# -------------------------------------------------------------------------------- threshold
def test_choose_threshold_maximises_f1() -> None:
    # cut-off 0.1 -> F1 0.67; 0.35 -> 0.80 (2 TP, 1 FP); 0.4 -> 0.50; 0.8 -> 0.67
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.4, 0.35, 0.8])

    assert choose_threshold(y, proba) == 0.35


def test_choose_threshold_breaks_ties_towards_the_highest_cut_off() -> None:
    # cut-off 0.2 -> P 2/4, R 1 -> F1 0.667; 0.6 -> P 1/1, R 1/2 -> F1 0.667; 0.3 and 0.4 lower
    y = np.array([1, 0, 0, 1])
    proba = np.array([0.6, 0.4, 0.3, 0.2])

    assert choose_threshold(y, proba) == 0.6


# ---------------------------------------------------------------------------------- metrics
def test_evaluate_a_perfect_classifier() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    proba = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])

    metrics = evaluate(y, proba, threshold=0.5)

    for name in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
        assert metrics[name] == 1.0, name
    assert metrics["brier"] == 0.0
    assert metrics["log_loss"] < 1e-6
    assert metrics["positive_rate"] == 0.5
    assert metrics["rows"] == 6.0


def test_evaluate_a_random_classifier() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    proba = rng.uniform(0, 1, 4000)

    metrics = evaluate(y, proba, threshold=0.5)

    assert metrics["roc_auc"] == pytest.approx(0.5, abs=0.03)
    assert metrics["pr_auc"] == pytest.approx(y.mean(), abs=0.03)
    assert metrics["brier"] == pytest.approx(1 / 3, abs=0.02)
    assert metrics["recall"] == pytest.approx(0.5, abs=0.03)
    assert all(isinstance(value, float) for value in metrics.values())


def test_evaluate_counts_a_probability_at_the_threshold_as_positive() -> None:
    metrics = evaluate(np.array([0, 1]), np.array([0.2, 0.5]), threshold=0.5)

    assert metrics["precision"] == metrics["recall"] == 1.0


# ------------------------------------------------------------------------------- candidates
@pytest.fixture(scope="module")
def training_set(make_features: Callable[..., pd.DataFrame]) -> TrainingSet:
    def days(*names: str) -> pd.DataFrame:
        return pd.concat([make_features(day, rows=250) for day in names], ignore_index=True)

    return TrainingSet(
        train=days("2013-03-01", "2013-03-02", "2013-03-03"),
        validation=days("2013-03-04"),
        test=days("2013-03-05"),
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """OpenMP spin-waits make multi-threaded fits slow on a busy 2-CPU machine; results do not depend on it."""
    with threadpool_limits(limits=1):
        yield


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["hist_gradient_boosting", "random_forest"])
def test_fit_candidate_is_reproducible_with_the_same_seed(name: str, training_set: TrainingSet) -> None:
    first = training.fit_candidate(name, training_set, problem=PROBLEM, seed=7)
    second = training.fit_candidate(name, training_set, problem=PROBLEM, seed=7)

    assert first.validation == second.validation
    assert first.test == second.test
    assert first.threshold == second.threshold
    features = training_set.test[PROBLEM.feature_columns]
    np.testing.assert_array_equal(first.pipeline.predict_proba(features), second.pipeline.predict_proba(features))
    assert first.test["roc_auc"] > 0.75, "the synthetic label is learnable"


@pytest.mark.usefixtures("one_thread")
def test_baseline_candidate_ranks_at_chance(training_set: TrainingSet) -> None:
    fitted = training.fit_candidate("baseline", training_set, problem=PROBLEM, seed=7)

    assert fitted.test["roc_auc"] == 0.5
    assert fitted.validation["roc_auc"] == 0.5


def test_unknown_candidate_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown candidate 'xgboost'; flight_delay has \['baseline', 'hist_gradient"):
        find_candidate(PROBLEM, "xgboost")
    with pytest.raises(ValueError, match=r"unknown candidates \['xgboost'\]; flight_delay has \['baseline'"):
        chosen_candidates(PROBLEM, ["random_forest", "xgboost"])


def test_a_run_always_fits_the_baseline_beside_the_chosen_candidates() -> None:
    assert chosen_candidates(PROBLEM, ["random_forest"]) == ["baseline", "random_forest"]
    assert chosen_candidates(PROBLEM, []) == list(problem_candidates(PROBLEM))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_default_candidate_is_buildable_for_every_task(task: str) -> None:
    problem = dataclasses.replace(PROBLEM, task=task, candidates=None)
    names = [candidate.name for candidate in default_candidates(task)]
    assert names[0] == "baseline" and len(names) == 4
    for name in names:
        assert find_candidate(problem, name).pipeline(problem, seed=1).steps[-1][0] == "model"


@pytest.mark.parametrize(
    ("problem", "learner"), [(PROBLEM, "logistic_regression"), (PENGUINS, "ridge")], ids=["flights", "penguins"]
)
def test_every_candidate_of_the_example_is_buildable(problem: ProblemSpec, learner: str) -> None:
    assert set(problem_candidates(problem)) == {"baseline", learner, "hist_gradient_boosting", "random_forest"}
    for candidate in problem_candidates(problem).values():
        assert candidate.pipeline(problem, seed=1).steps[-1][0] == "model"


# ------------------------------------------------------------------------------- a snapshot
SNAPSHOT_DAYS = ["2026-06-01", "2026-06-08"]  # two loads of the penguin table


@pytest.fixture(scope="module")
def penguin_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The penguin table's features, loaded on two days (the clean contract's 342 birds each time)."""
    from include.mlpipeline.data import etl

    lake = Lake(f"file://{tmp_path_factory.mktemp('penguins')}/lake")
    settings = Settings(problem="include.penguins", lake_uri=lake.root_uri)
    etl.extract_source("penguins", SNAPSHOT_DAYS, problem=PENGUINS, lake=lake, settings=settings)
    for day in SNAPSHOT_DAYS:
        etl.transform_partition(day, problem=PENGUINS, lake=lake, settings=settings)
        etl.build_feature_partition(day, problem=PENGUINS, lake=lake, settings=settings)
    return lake


@pytest.fixture(scope="module")
def penguin_set(penguin_lake: Lake) -> TrainingSet:
    settings = Settings(problem="include.penguins", lake_uri=penguin_lake.root_uri, random_seed=42)
    window = select_window(lake=penguin_lake, settings=settings, problem=PENGUINS)
    return load_training_set(window, lake=penguin_lake, settings=settings, problem=PENGUINS)


def test_a_snapshot_window_is_its_newest_load_split_by_rows(penguin_lake: Lake) -> None:
    settings = Settings(problem="include.penguins", lake_uri=penguin_lake.root_uri, random_seed=42)

    window = select_window(lake=penguin_lake, settings=settings, problem=PENGUINS)

    assert window.train_days == window.validation_days == window.test_days == [SNAPSHOT_DAYS[-1]]
    assert window.row_split == {"validation": "20%", "test": "20%", "seed": 42, "group_by": None}
    assert select_window(SNAPSHOT_DAYS[0], lake=penguin_lake, settings=settings, problem=PENGUINS).days == [
        SNAPSHOT_DAYS[0]
    ]


def test_a_snapshot_training_set_splits_every_bird_into_one_part(penguin_set: TrainingSet) -> None:
    parts = {name: set(getattr(penguin_set, name)["penguin_id"]) for name in ("train", "validation", "test")}

    assert {name: len(ids) for name, ids in parts.items()} == {"train": 204, "validation": 69, "test": 69}
    assert not parts["train"] & parts["validation"] and not parts["train"] & parts["test"]
    assert not parts["validation"] & parts["test"]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", ["hist_gradient_boosting", "random_forest"])
def test_a_regression_fit_is_reproducible_with_the_same_seed(name: str, penguin_set: TrainingSet) -> None:
    first = training.fit_candidate(name, penguin_set, problem=PENGUINS, seed=7)
    second = training.fit_candidate(name, penguin_set, problem=PENGUINS, seed=7)

    assert first.validation == second.validation
    assert first.test == second.test
    assert first.threshold is second.threshold is None
    features = penguin_set.test[PENGUINS.feature_columns]
    np.testing.assert_array_equal(first.pipeline.predict(features), second.pipeline.predict(features))
    assert first.test["r2"] > 0.7, "species, sex and flipper length say much of a penguin's mass"


@pytest.mark.usefixtures("one_thread")
def test_the_regression_baseline_predicts_the_training_mean(penguin_set: TrainingSet) -> None:
    fitted = training.fit_candidate("baseline", penguin_set, problem=PENGUINS, seed=7)

    predicted = fitted.pipeline.predict(penguin_set.test[PENGUINS.feature_columns])
    np.testing.assert_allclose(predicted, penguin_set.train[PENGUINS.target].mean())
    assert fitted.test["r2"] <= 0.0  # no constant does better than the test part's own mean


def test_rank_candidates_by_validation_auc_then_name() -> None:
    results = [
        {"name": "b", "validation": {"roc_auc": 0.7}},
        {"name": "c", "validation": {"roc_auc": 0.8}},
        {"name": "a", "validation": {"roc_auc": 0.7}},
    ]

    assert [r["name"] for r in rank_candidates(results)] == ["c", "a", "b"]
