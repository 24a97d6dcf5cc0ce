"""The generic ETL steps on a temporary lake: extract, clean, features, no-data days, idempotent reruns;
for data by day (the flights replay) and for a snapshot (the penguin table, loaded whole on a run's day)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.flight_delay import PROBLEM, features, schemas, sources
from include.mlpipeline.core.problem import Source
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data import etl
from include.mlpipeline.data.lake import MANIFEST, Lake
from include.mlpipeline.data.quality import FAILED_CHECKS_COLUMN, DataQualityError, apply_gate
from include.penguins import PROBLEM as PENGUINS

DAYS = ["2028-02-28", "2028-02-29", "2028-03-01"]  # replayed as 2013-02-28, (none), 2013-03-01


@dataclasses.dataclass
class EtlRun:
    lake: Lake
    settings: Settings
    extracts: dict[str, dict[str, Any]]
    clean: dict[str, dict[str, Any]]
    features: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def etl_run(tmp_path_factory: pytest.TempPathFactory) -> EtlRun:
    """Two real days and a 29 February through every ETL step, on a lake of their own."""
    root = tmp_path_factory.mktemp("etl")
    lake = Lake(f"file://{root}/lake")
    settings = Settings(lake_uri=lake.root_uri, quarantine_max_share=0.01)
    extracts = {
        source.name: etl.extract_source(source.name, DAYS, problem=PROBLEM, lake=lake, settings=settings)
        for source in PROBLEM.sources
    }
    clean = {day: etl.transform_partition(day, problem=PROBLEM, lake=lake, settings=settings) for day in DAYS}
    built = {
        day: etl.build_feature_partition(day, problem=PROBLEM, lake=lake, settings=settings)
        for day, summary in clean.items()
        if summary["status"] == "published"
    }
    return EtlRun(lake, settings, extracts, clean, built)


def test_extract_marks_february_29_no_data_for_daily_sources(etl_run: EtlRun) -> None:
    for name in ("flights", "weather"):
        statuses = {day: s["status"] for day, s in etl_run.extracts[name]["days"].items()}
        assert statuses == {"2028-02-28": "published", "2028-02-29": "no_data", "2028-03-01": "published"}
        assert etl_run.lake.manifest(f"raw/{name}", "2028-02-29")["meta"] == {"no_data": True}
    assert {s["status"] for s in etl_run.extracts["planes"]["days"].values()} == {"published"}


def test_extract_publishes_the_replayed_rows(etl_run: EtlRun) -> None:
    summary = etl_run.extracts["flights"]["days"]["2028-03-01"]
    raw = etl_run.lake.read("raw/flights", "2028-03-01")

    assert summary["rows_out"] == len(raw) == 958
    assert summary["rows_quarantined"] == 0
    assert set(raw["day"]) == {1}
    assert etl_run.lake.read("quarantine/raw/flights", "2028-03-01").empty


def test_transform_is_no_data_on_february_29_and_published_otherwise(etl_run: EtlRun) -> None:
    assert {day: s["status"] for day, s in etl_run.clean.items()} == {
        "2028-02-28": "published",
        "2028-02-29": "no_data",
        "2028-03-01": "published",
    }
    assert etl_run.lake.partitions(etl.CLEAN) == [dt.date(2028, 2, 28), dt.date(2028, 3, 1)]
    for day in ("2028-02-28", "2028-03-01"):
        summary = etl_run.clean[day]
        assert summary["rows_in"] == summary["rows_out"] + summary["rows_quarantined"]
        assert summary["content_hash"] == etl_run.lake.manifest(etl.CLEAN, day)["content_hash"]


def test_feature_partitions_hold_the_contract(etl_run: EtlRun) -> None:
    assert etl_run.lake.partitions(etl.FEATURES) == [dt.date(2028, 2, 28), dt.date(2028, 3, 1)]
    frame = etl_run.lake.read(etl.FEATURES, "2028-03-01")

    assert apply_gate(frame, schemas.FlightFeatures, gate="check", max_quarantine_share=0.0).report.rows_out == len(
        frame
    )
    assert frame["flight_id"].str.startswith("2013-03-01_").all()
    assert etl_run.features["2028-03-01"]["rows_out"] == len(frame)


def test_rerunning_transform_is_idempotent(etl_run: EtlRun) -> None:
    day = "2028-03-01"
    before = etl_run.clean[day]

    again = etl.transform_partition(day, problem=PROBLEM, lake=etl_run.lake, settings=etl_run.settings)

    assert again["content_hash"] == before["content_hash"]
    assert again["rows_out"] == before["rows_out"]
    assert len(etl_run.lake.read(etl.CLEAN, day)) == before["rows_out"]
    partition = Path(etl_run.lake.partition_path(etl.CLEAN, day))
    assert (
        sorted(p.name for p in partition.iterdir() if p.name != MANIFEST)
        == etl_run.lake.manifest(etl.CLEAN, day)["files"]
    )


def test_rerunning_extract_is_idempotent(etl_run: EtlRun) -> None:
    again = etl.extract_source("weather", ["2028-02-28"], problem=PROBLEM, lake=etl_run.lake, settings=etl_run.settings)

    assert (
        again["days"]["2028-02-28"]["content_hash"] == etl_run.extracts["weather"]["days"]["2028-02-28"]["content_hash"]
    )


def test_summarize_partitions_of_the_run(etl_run: EtlRun) -> None:
    summary = etl.summarize_partitions([list(etl_run.clean.values())])

    assert summary["partitions"] == ["2028-02-28", "2028-03-01"]
    assert summary["no_data"] == ["2028-02-29"]
    assert summary["rows_out"] == sum(etl_run.clean[d]["rows_out"] for d in summary["partitions"])
    assert summary["content_hashes"] == {d: etl_run.clean[d]["content_hash"] for d in summary["partitions"]}


def test_feature_step_names_leaked_columns(etl_run: EtlRun) -> None:
    def leaky(clean: pd.DataFrame) -> pd.DataFrame:
        return features.build_features(clean).assign(dep_delay=clean["dep_delay"].to_numpy())

    problem = dataclasses.replace(PROBLEM, build_features=leaky)

    with pytest.raises(DataQualityError, match=r"quality gate 'features' failed: no_leakage_columns:dep_delay"):
        etl.build_feature_partition("2028-03-01", problem=problem, lake=etl_run.lake, settings=etl_run.settings)


def test_transform_without_extract_says_which_source_is_missing(lake: Lake, settings: Settings) -> None:
    with pytest.raises(FileNotFoundError, match=r"raw/flights has no partition for 2028-03-01: run its extract first"):
        etl.transform_partition("2028-03-01", problem=PROBLEM, lake=lake, settings=settings)


# ----------------------------------------------------------------------------- a snapshot
SNAPSHOT_DAYS = ["2026-06-01", "2026-06-02"]  # the penguin table, loaded on two days


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory: pytest.TempPathFactory) -> EtlRun:
    """The penguin table through every ETL step on two days, on a lake of its own."""
    lake = Lake(f"file://{tmp_path_factory.mktemp('snapshot')}/lake")
    settings = Settings(problem="include.penguins", lake_uri=lake.root_uri, quarantine_max_share=0.01)
    (source,) = PENGUINS.sources
    extracts = {
        source.name: etl.extract_source(source.name, SNAPSHOT_DAYS, problem=PENGUINS, lake=lake, settings=settings)
    }
    clean = {day: etl.transform_partition(day, problem=PENGUINS, lake=lake, settings=settings) for day in SNAPSHOT_DAYS}
    built = {day: etl.build_feature_partition(day, problem=PENGUINS, lake=lake, settings=settings) for day in clean}
    return EtlRun(lake, settings, extracts, clean, built)


def test_a_snapshot_loads_its_whole_table_on_each_day(snapshot_run: EtlRun) -> None:
    lake = snapshot_run.lake
    for day in SNAPSHOT_DAYS:
        assert snapshot_run.extracts["penguins"]["days"][day]["rows_out"] == len(lake.read("raw/penguins", day)) == 344
        clean = snapshot_run.clean[day]
        assert (clean["status"], clean["rows_in"], clean["rows_out"], clean["rows_quarantined"]) == (
            "published", 344, 342, 2,
        )  # fmt: skip
        frame = lake.read(etl.FEATURES, day)
        assert apply_gate(frame, PENGUINS.feature_schema, gate="check", max_quarantine_share=0.0).report.rows_out == 342
        assert snapshot_run.features[day]["rows_out"] == len(frame)
    assert lake.partitions(etl.FEATURES) == [dt.date.fromisoformat(day) for day in SNAPSHOT_DAYS]


def test_each_load_of_an_unchanged_snapshot_is_the_same_content(snapshot_run: EtlRun) -> None:
    first, second = (snapshot_run.clean[day]["content_hash"] for day in SNAPSHOT_DAYS)
    assert first == second
    first, second = (snapshot_run.features[day]["content_hash"] for day in SNAPSHOT_DAYS)
    assert first == second


def test_rerunning_a_snapshot_day_is_idempotent(snapshot_run: EtlRun) -> None:
    day, run = SNAPSHOT_DAYS[0], snapshot_run
    extract = etl.extract_source("penguins", [day], problem=PENGUINS, lake=run.lake, settings=run.settings)
    clean = etl.transform_partition(day, problem=PENGUINS, lake=run.lake, settings=run.settings)

    assert extract["days"][day]["content_hash"] == run.extracts["penguins"]["days"][day]["content_hash"]
    assert (clean["content_hash"], clean["rows_out"]) == (run.clean[day]["content_hash"], run.clean[day]["rows_out"])
    assert len(run.lake.read("quarantine/clean", day)) == 2  # the two birds without a body mass, once


def test_the_snapshot_feature_step_names_leaked_columns(snapshot_run: EtlRun) -> None:
    problem = dataclasses.replace(PENGUINS, build_features=_with_an_isotope_result)

    with pytest.raises(DataQualityError, match=r"quality gate 'features' failed: no_leakage_columns:delta_15_n"):
        etl.build_feature_partition(
            SNAPSHOT_DAYS[0], problem=problem, lake=snapshot_run.lake, settings=snapshot_run.settings
        )


def _with_an_isotope_result(clean: pd.DataFrame) -> pd.DataFrame:
    """The penguin features, plus a lab result known only weeks after the bird was measured."""
    return PENGUINS.build_features(clean).assign(delta_15_n=clean["delta_15_n"].to_numpy())


# ------------------------------------------------------------------- raw gates with bad rows
def _problem_with_flights(frame: pd.DataFrame) -> Any:
    source = Source("flights", lambda days: {d: frame for d in days}, schemas.RawFlights)
    return dataclasses.replace(PROBLEM, sources=(source,))


@pytest.fixture(scope="module")
def real_flights() -> pd.DataFrame:
    day = dt.date(2013, 3, 1)
    return sources.extract_flights([day])[day]


def test_extract_quarantines_a_bad_raw_row_and_publishes_the_rest(
    real_flights: pd.DataFrame, lake: Lake, settings: Settings
) -> None:
    frame = real_flights.copy()
    frame.loc[1, "carrier"] = None

    summary = etl.extract_source(
        "flights", ["2026-03-01"], problem=_problem_with_flights(frame), lake=lake, settings=settings
    )

    assert summary["days"]["2026-03-01"]["rows_out"] == len(frame) - 1
    quarantined = lake.read("quarantine/raw/flights", "2026-03-01")
    assert quarantined[FAILED_CHECKS_COLUMN].tolist() == ["carrier:not_nullable"]
    assert quarantined["flight"].tolist() == [frame.loc[1, "flight"]]


def test_extract_fails_when_too_many_raw_rows_are_bad(
    real_flights: pd.DataFrame, lake: Lake, settings: Settings
) -> None:
    frame = real_flights.copy()
    frame.loc[:49, "carrier"] = None

    with pytest.raises(DataQualityError, match=r"raw_flights.*carrier:not_nullable \(50 rows\)"):
        etl.extract_source(
            "flights", ["2026-03-01"], problem=_problem_with_flights(frame), lake=lake, settings=settings
        )

    assert lake.partitions("raw/flights") == []


def test_extract_quarantines_rows_with_mixed_type_bad_values(
    real_flights: pd.DataFrame, lake: Lake, settings: Settings
) -> None:
    frame = real_flights.copy()
    frame["distance"] = frame["distance"].astype(object)
    frame.loc[0, "distance"] = "n/a"  # cannot be coerced to float
    frame.loc[1, "carrier"] = None  # another bad row, whose distance is a number

    summary = etl.extract_source(
        "flights", ["2026-03-01"], problem=_problem_with_flights(frame), lake=lake, settings=settings
    )

    assert summary["days"]["2026-03-01"]["rows_quarantined"] == 2
    assert len(lake.read("quarantine/raw/flights", "2026-03-01")) == 2


# -------------------------------------------------------------------------------- planning
def _commit_clean(lake: Lake, *days: str) -> None:
    """Days fully processed: a clean partition and its features."""
    for day in days:
        lake.write(etl.CLEAN, day, pd.DataFrame({"x": [1]}))
        lake.write(etl.FEATURES, day, pd.DataFrame({"x": [1]}))


def test_plan_on_an_empty_lake_bootstraps_the_days_before(lake: Lake) -> None:
    assert etl.plan_partitions("2013-03-10", bootstrap_days=3, lake=lake) == [
        "2013-03-07",
        "2013-03-08",
        "2013-03-09",
        "2013-03-10",
    ]


def test_plan_on_a_lake_holding_the_history_is_only_the_run_day(lake: Lake) -> None:
    _commit_clean(lake, "2013-03-07", "2013-03-08", "2013-03-09")

    assert etl.plan_partitions("2013-03-10", bootstrap_days=3, lake=lake) == ["2013-03-10"]


def test_plan_fills_only_the_gaps_and_always_rebuilds_the_run_day(lake: Lake) -> None:
    _commit_clean(lake, "2013-03-08", "2013-03-10")

    assert etl.plan_partitions(dt.date(2013, 3, 10), bootstrap_days=3, lake=lake) == [
        "2013-03-07",
        "2013-03-09",
        "2013-03-10",
    ]


def test_plan_rebuilds_a_published_day_that_never_got_features(lake: Lake) -> None:
    """A day published by a run that failed on another day was never announced, so never featurised."""
    _commit_clean(lake, "2013-03-07", "2013-03-09")
    lake.write(etl.CLEAN, "2013-03-08", pd.DataFrame({"x": [1]}))  # clean, no features

    assert etl.plan_partitions("2013-03-10", bootstrap_days=3, lake=lake) == ["2013-03-08", "2013-03-10"]


def test_plan_without_bootstrap_is_the_run_day(lake: Lake) -> None:
    assert etl.plan_partitions("2013-03-10T00:00:00+00:00", bootstrap_days=0, lake=lake) == ["2013-03-10"]


def test_plan_of_a_snapshot_is_the_run_day_alone(lake: Lake) -> None:
    """A snapshot has no history to bootstrap: the run loads the whole table as its own day."""
    assert etl.plan_partitions("2026-06-10", bootstrap_days=3, lake=lake, problem=PENGUINS) == ["2026-06-10"]


def test_plan_takes_bootstrap_days_from_settings_by_default(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.mlpipeline.core.settings import get_settings

    monkeypatch.setenv("MLP_BOOTSTRAP_DAYS", "2")
    get_settings.cache_clear()

    assert etl.plan_partitions("2013-03-10", lake=lake) == ["2013-03-08", "2013-03-09", "2013-03-10"]


# ------------------------------------------------------------------------ many days, one task
def test_for_each_day_runs_every_day_and_names_every_failure() -> None:
    seen = []

    def step(day: dt.date) -> dict[str, Any]:
        seen.append(day.isoformat())
        if day.day == 2:
            raise DataQualityError("clean", {"distance:greater_than(0)": 40})
        return {"partition": day.isoformat(), "status": "published"}

    with pytest.raises(DataQualityError, match=r"2013-03-02 distance:greater_than\(0\) \(40 rows\)") as raised:
        etl._for_each_day(step, ["2013-03-01", "2013-03-02", "2013-03-03"])

    assert seen == ["2013-03-01", "2013-03-02", "2013-03-03"]
    assert raised.value.gate == "clean"
    assert "1 of 3 days failed; the other 2 were published." in str(raised.value)


def test_for_each_day_returns_every_summary_when_all_pass() -> None:
    results = etl._for_each_day(lambda day: {"partition": day.isoformat()}, [dt.date(2013, 3, 1), "2013-03-02"])

    assert results == [{"partition": "2013-03-01"}, {"partition": "2013-03-02"}]


def test_for_each_day_lets_other_errors_through() -> None:
    def step(day: dt.date) -> dict[str, Any]:
        raise FileNotFoundError(day.isoformat())

    with pytest.raises(FileNotFoundError, match="2013-03-01"):
        etl._for_each_day(step, ["2013-03-01", "2013-03-02"])


def test_summarize_partitions_flattens_chunks_and_sorts_days() -> None:
    def published(day: str, rows: int) -> dict[str, Any]:
        return {
            "partition": day,
            "status": "published",
            "rows_in": rows + 1,
            "rows_out": rows,
            "rows_quarantined": 1,
            "content_hash": f"h{day[-1]}",
        }

    summary = etl.summarize_partitions(
        [
            [published("2013-03-03", 10), {"partition": "2013-03-02", "status": "no_data"}],
            published("2013-03-01", 5),
            None,
            [],
        ]
    )

    assert summary == {
        "partitions": ["2013-03-01", "2013-03-03"],
        "no_data": ["2013-03-02"],
        "rows_in": 17,
        "rows_out": 15,
        "rows_quarantined": 2,
        "content_hashes": {"2013-03-01": "h1", "2013-03-03": "h3"},
    }


def test_dataset_names() -> None:
    assert etl.raw_dataset("flights") == "raw/flights"
    assert etl.quarantine_dataset(etl.CLEAN) == "quarantine/clean"
