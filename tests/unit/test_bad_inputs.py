"""Bad source files through the real ETL steps: each one fails clearly or is quarantined, and never costs
what is already published.

Every case starts from the same lake, on which a good run of the day (2028-03-02, replaying 2013-03-02)
was published from good files through the file source. The case then rewrites the flights file with
one kind of bad input and runs the steps again (extract, then clean and features while they pass):

- failures raise DataQualityError naming the check or the file, and commit nothing: every manifest of
  the day (raw, quarantine, clean, features) is the one the good run wrote;
- tolerated inputs (bad rows added to the good ones) are dropped or quarantined, the run goes on, and
  the republished clean and feature partitions hold exactly the good rows again: same content hash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.flight_delay import PROBLEM
from include.flight_delay import sources as flight_sources
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data import etl
from include.mlpipeline.data.lake import Lake, content_hash
from include.mlpipeline.data.quality import FAILED_CHECKS_COLUMN, DataQualityError

DAY = dt.date(2028, 3, 2)  # replays 2013-03-02
DATASETS = ("raw/flights", "quarantine/raw/flights", etl.CLEAN, "quarantine/clean", etl.FEATURES)
PUBLISHED = (etl.CLEAN, etl.FEATURES)


@dataclasses.dataclass(frozen=True)
class Baseline:
    source_dir: Path
    lake_dir: Path
    flights: pd.DataFrame  # the good flights file of the day
    hashes: dict[str, str]  # content hash of each published dataset's partition


def _env(source_dir: Path, flights_template: str | None = None) -> dict[str, str]:
    env = {
        "MLP_FLIGHTS_SOURCE": "files",
        "MLP_FLIGHTS_SOURCE_URI_TEMPLATE": f"file://{source_dir}/{{table}}/{{date}}.csv",
    }
    if flights_template:
        env["MLP_FLIGHTS_SOURCE_URI_TEMPLATES"] = f'{{"flights": "file://{source_dir}/{flights_template}"}}'
    return env


def _run(lake: Lake, sources: tuple[str, ...]) -> dict[str, Any]:
    """The ETL steps for the day on ``lake``: extract the given sources, then clean, then features."""
    settings = Settings(lake_uri=lake.root_uri, quarantine_max_share=0.01)
    steps: dict[str, Any] = {"problem": PROBLEM, "lake": lake, "settings": settings}
    extracts = {name: etl.extract_source(name, [DAY], **steps)["days"][DAY.isoformat()] for name in sources}
    clean = etl.transform_partition(DAY, **steps)
    built = etl.build_feature_partition(DAY, **steps)
    return {"extract": extracts, "clean": clean, "features": built}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baseline]:
    """Good files for the day (weather with its neighbouring days) and a lake with the day published from them."""
    root = tmp_path_factory.mktemp("bad-inputs")
    source_dir = root / "source"
    weather = flight_sources.whole_table("weather")
    for name in ("flights", "planes", "airlines"):
        frame = getattr(flight_sources, f"extract_{name}")([DAY])[DAY]
        (source_dir / name).mkdir(parents=True, exist_ok=True)
        frame.to_csv(source_dir / name / f"{DAY}.csv", index=False)
    (source_dir / "weather").mkdir()
    for shift in (-1, 0, 1):
        day = DAY + dt.timedelta(days=shift)
        replayed = flight_sources.replay_date(day)
        own = weather[(weather["month"] == replayed.month) & (weather["day"] == replayed.day)]
        own.to_csv(source_dir / "weather" / f"{day}.csv", index=False)

    lake = Lake(f"file://{root}/lake")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _env(source_dir).items():
            patch.setenv(name, value)
        flight_sources.source_settings.cache_clear()
        _run(lake, tuple(source.name for source in PROBLEM.sources))
    flight_sources.source_settings.cache_clear()
    hashes = {dataset: lake.manifest(dataset, DAY)["content_hash"] for dataset in PUBLISHED}
    yield Baseline(source_dir, root / "lake", pd.read_csv(source_dir / "flights" / f"{DAY}.csv"), hashes)


@dataclasses.dataclass
class Case:
    lake: Lake
    source_dir: Path
    good: pd.DataFrame
    manifests: dict[str, dict[str, Any] | None]

    def write_flights(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.source_dir / "flights" / f"{DAY}.csv", index=False)

    def flights_path(self, suffix: str = "csv") -> Path:
        return self.source_dir / "flights" / f"{DAY}.{suffix}"


@pytest.fixture
def case(baseline: Baseline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    """A copy of the baseline's lake and source files for one case, the file source switched on."""
    shutil.copytree(baseline.lake_dir, tmp_path / "lake")
    shutil.copytree(baseline.source_dir, tmp_path / "source")
    for name, value in _env(tmp_path / "source").items():
        monkeypatch.setenv(name, value)
    flight_sources.source_settings.cache_clear()
    lake = Lake(f"file://{tmp_path}/lake")
    manifests = {dataset: lake.manifest(dataset, DAY) for dataset in DATASETS}
    return Case(lake, tmp_path / "source", baseline.flights.copy(), manifests)


def _assert_published_unchanged(case: Case, baseline: Baseline) -> None:
    """Read back, the day's clean and feature partitions hold what the good run published."""
    for dataset in PUBLISHED:
        assert content_hash(case.lake.read(dataset, DAY)) == baseline.hashes[dataset], dataset


# ------------------------------------------------------------------------------------- failures
def _missing_column(case: Case) -> None:
    case.write_flights(case.good.drop(columns=["sched_dep_time"]))


def _renamed_column(case: Case) -> None:
    case.write_flights(case.good.rename(columns={"carrier": "airline"}))


def _wrong_dtype(case: Case) -> None:
    case.write_flights(case.good.assign(distance="far"))


def _empty_file(case: Case) -> None:
    case.flights_path().write_bytes(b"")


def _truncated_csv(case: Case) -> None:
    data = case.good.to_csv(index=False).encode()
    case.flights_path().write_bytes(data[: int(len(data) * 0.6)])


def _corrupt_parquet(case: Case) -> None:
    data = case.good.to_parquet(index=False)
    case.flights_path("parquet").write_bytes(data[: len(data) // 2])  # cut: no footer


def _bad_rows(share: float) -> Callable[[Case], None]:
    """Add bad rows (scheduled departure "10:30", not an HHMM number) making up ``share`` of the file."""

    def write(case: Case) -> None:
        count = math.ceil(share * len(case.good) / (1 - share))
        bad = case.good.head(count).assign(sched_dep_time="10:30", flight=range(9000, 9000 + count))
        case.write_flights(pd.concat([case.good, bad], ignore_index=True))

    return write


FAILURES = {
    "missing column": (_missing_column, None, r"quality gate 'raw_flights' failed: column_in_dataframe:sched_dep_time"),
    "renamed column": (_renamed_column, None, r"quality gate 'raw_flights' failed: column_in_dataframe:carrier"),
    "wrong dtype": (
        _wrong_dtype,
        None,
        r"quality gate 'raw_flights' failed: distance:coerce_dtype\('float64'\) \((\d+) rows\); "
        r"distance:dtype\('float64'\) \(\1 rows\)\. \1 of \1 rows \(100\.00%\) broke row-level checks",
    ),
    "empty file": (
        _empty_file,
        None,
        r"readable_file\. Cannot read file://.*/flights/2028-03-02\.csv: the file is empty",
    ),
    "truncated csv": (
        _truncated_csv,
        None,
        r"readable_file\. Cannot read file://.*/flights/2028-03-02\.csv: the last line has no line break",
    ),
    "corrupt parquet": (
        _corrupt_parquet,
        "{table}/{date}.parquet",
        r"readable_file\. Cannot read file://.*/flights/2028-03-02\.parquet: ArrowInvalid: .*Parquet magic bytes",
    ),
    "5% bad rows": (
        _bad_rows(0.05),
        None,
        r"quality gate 'raw_flights' failed: sched_dep_time:coerce_dtype\('int64'\) \((\d+) rows\); "
        r"sched_dep_time:dtype\('int64'\) \(\1 rows\)\. \1 of \d+ rows \(5\.\d\d%\) broke row-level checks; "
        r"the limit is 1\.00%",
    ),
}


@pytest.mark.parametrize("name", FAILURES, ids=list(FAILURES))
def test_a_bad_input_fails_clearly_and_commits_nothing(
    name: str, case: Case, baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_bad, flights_template, message = FAILURES[name]
    if flights_template:
        for variable, value in _env(case.source_dir, flights_template).items():
            monkeypatch.setenv(variable, value)
        flight_sources.source_settings.cache_clear()
    make_bad(case)

    with pytest.raises(DataQualityError) as raised:
        _run(case.lake, ("flights",))

    assert re.search(message, str(raised.value)), str(raised.value)
    assert {dataset: case.lake.manifest(dataset, DAY) for dataset in DATASETS} == case.manifests, "a new commit"
    _assert_published_unchanged(case, baseline)


# ------------------------------------------------------------------------- tolerated: the run goes on
def test_nulls_in_key_columns_are_quarantined_at_the_raw_gate(case: Case, baseline: Baseline) -> None:
    bad = case.good.head(3).assign(flight=[9001, 9002, 9003], carrier=[None, None, "UA"], origin=["EWR", "JFK", None])
    case.write_flights(pd.concat([case.good, bad], ignore_index=True))

    run = _run(case.lake, ("flights",))

    assert run["extract"]["flights"]["rows_quarantined"] == 3
    assert run["extract"]["flights"]["failed_checks"] == {"carrier:not_nullable": 2, "origin:not_nullable": 1}
    quarantined = case.lake.read("quarantine/raw/flights", DAY)
    assert sorted(zip(quarantined["flight"], quarantined[FAILED_CHECKS_COLUMN], strict=True)) == [
        (9001, "carrier:not_nullable"),
        (9002, "carrier:not_nullable"),
        (9003, "origin:not_nullable"),
    ]
    assert run["clean"]["status"] == run["features"]["status"] == "published"
    _assert_published_unchanged(case, baseline)


def test_duplicate_rows_are_dropped_and_counted(
    case: Case, baseline: Baseline, caplog: pytest.LogCaptureFixture
) -> None:
    case.write_flights(pd.concat([case.good, case.good.sample(7, random_state=1)], ignore_index=True))

    with caplog.at_level(logging.WARNING, logger="include.flight_delay.cleaning"):
        run = _run(case.lake, ("flights",))

    assert run["extract"]["flights"]["rows_out"] == len(case.good) + 7  # raw mirrors the source
    assert run["clean"]["rows_in"] == len(case.good)
    assert "dropped 7 exact and 0 key duplicate flights" in caplog.text
    _assert_published_unchanged(case, baseline)


def test_out_of_range_values_are_quarantined_at_the_clean_gate(case: Case, baseline: Baseline) -> None:
    bad = case.good.head(2).assign(distance=[-80.0, 25_000.0], flight=[9001, 9002])
    case.write_flights(pd.concat([case.good, bad], ignore_index=True))

    run = _run(case.lake, ("flights",))

    assert run["clean"]["status"] == "published"
    assert run["clean"]["failed_checks"] == {"distance:greater_than(0)": 1, "distance:less_than_or_equal_to(10000)": 1}
    quarantined = case.lake.read("quarantine/clean", DAY)
    assert sorted(zip(quarantined["flight"], quarantined[FAILED_CHECKS_COLUMN], strict=True)) == [
        (9001, "distance:greater_than(0)"),
        (9002, "distance:less_than_or_equal_to(10000)"),
    ]
    _assert_published_unchanged(case, baseline)


def test_half_a_percent_bad_rows_are_quarantined_and_the_run_goes_on(case: Case, baseline: Baseline) -> None:
    _bad_rows(0.005)(case)

    run = _run(case.lake, ("flights",))

    summary = run["extract"]["flights"]
    assert summary["rows_quarantined"] == 4
    assert summary["rows_quarantined"] / summary["rows_in"] <= 0.01
    assert summary["failed_checks"] == {
        "sched_dep_time:coerce_dtype('int64')": 4,
        "sched_dep_time:dtype('int64')": 4,
    }
    quarantined = case.lake.read("quarantine/raw/flights", DAY)
    assert quarantined["flight"].tolist() == [9000, 9001, 9002, 9003]
    assert set(quarantined[FAILED_CHECKS_COLUMN]) == {
        "sched_dep_time:coerce_dtype('int64');sched_dep_time:dtype('int64')"
    }
    assert run["clean"]["status"] == run["features"]["status"] == "published"
    _assert_published_unchanged(case, baseline)
