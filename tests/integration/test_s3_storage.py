"""The ETL on real S3: source files and the lake in a bucket of a moto S3 server (a separate process).

The server is moto's standalone ``moto_server`` on 127.0.0.1 and a free port: a real HTTP endpoint
spoken to by s3fs/botocore exactly as AWS or MinIO would be, with credentials from the environment
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) or from an Airflow connection, and the endpoint
passed through storage options. Nothing is mocked inside the test process.

For each example (``tests.support.examples``; its package's own source, the flights replay or the
penguin table):

- an ETL run writing every step to a lake on S3 publishes partitions identical (content hash) to the
  same run on a local lake;
- rerunning a day on S3 replaces it atomically: same rows, the manifest names the one part file left.

For the flights' source files (``MLP_FLIGHTS_SOURCE=files``, read through the file source; the
penguin table has no such option):

- round trip: the four source tables for two days as CSV files on S3, read with the credentials of
  an Airflow connection (as the ``extract`` task does), every step writing to a lake on S3, publishes
  partitions identical (content hash) to the package replay on a local lake;
- a day whose source file is missing is a ``no_data`` day;
- a corrupt Parquet file on S3 is a DataQualityError naming the file.

And, whatever the problem: a connection that assumes a role (moto's STS) gives a session that reads
the bucket, and the lake takes its credentials from an Airflow connection.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pytest

from include.flight_delay import PROBLEM
from include.flight_delay import sources as flight_sources
from include.mlpipeline.core.problem import load_problem
from include.mlpipeline.core.settings import Settings, get_settings
from include.mlpipeline.data import etl, file_source
from include.mlpipeline.data.lake import MANIFEST, Lake, content_hash
from include.mlpipeline.data.quality import DataQualityError
from tests.support.examples import EXAMPLES, FLIGHTS, Example, example_id
from tests.support.pipeline import clear_caches

BUCKET = "mlp-test"
DAYS = [dt.date(2028, 3, 2), dt.date(2028, 3, 3)]  # replays 2013-03-02 and 2013-03-03
EXAMPLE_DAYS = {"flights": DAYS, "penguins": [dt.date(2026, 6, 1)]}  # the penguin table, loaded once
MISSING_DAY = dt.date(2028, 3, 10)
CORRUPT_DAY = dt.date(2028, 3, 11)
TEMPLATE = f"s3://{BUCKET}/raw/{{table}}/{{date}}.csv"
CONN_ID = "moto_s3"
STARTUP_TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server process on a free port; its URL once it answers."""
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if executable is None:
        pytest.fail("moto_server is not installed (moto[server] is in requirements-dev.txt)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log_file, stderr=log_file)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as answer:  # noqa: S310 (local URL)
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server did not answer within {STARTUP_TIMEOUT_S} s: {log_path.read_text()}")
            try:  # waits between polls, and notices a server that died
                process.wait(timeout=0.1)
                pytest.fail(f"moto_server exited with {process.returncode}: {log_path.read_text()}")
            except subprocess.TimeoutExpired:
                pass
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def aws_env(s3_endpoint: str) -> Iterator[dict[str, str]]:
    """Credentials from the environment, and the Airflow connection the extract task would resolve."""
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in [n for n in os.environ if n.startswith("AWS_") and n not in env]:
            patch.delenv(name)  # no developer profile or session token may leak in
        yield env


@pytest.fixture(scope="module")
def s3_options(s3_endpoint: str, aws_env: dict[str, str]) -> dict[str, Any]:
    """Storage options for the moto endpoint; the credentials come from the environment."""
    return {"endpoint_url": s3_endpoint}


@pytest.fixture(scope="module")
def bucket(s3_options: dict[str, Any]) -> fsspec.AbstractFileSystem:
    """The test bucket, holding the source files: four tables for two days, weather also for the days around."""
    fs = fsspec.filesystem("s3", **s3_options)
    fs.mkdir(BUCKET)
    weather = flight_sources.whole_table("weather")
    for day in DAYS:
        for name in ("flights", "planes", "airlines"):
            frame = getattr(flight_sources, f"extract_{name}")([day])[day]
            fs.pipe(file_source.file_uri(TEMPLATE, name, day), frame.to_csv(index=False).encode())
    # A day's weather file holds that day only; the extract takes the margin from the neighbours.
    for day in [DAYS[0] - dt.timedelta(days=1), *DAYS, DAYS[-1] + dt.timedelta(days=1)]:
        replayed = flight_sources.replay_date(day)
        own = weather[(weather["month"] == replayed.month) & (weather["day"] == replayed.day)]
        fs.pipe(file_source.file_uri(TEMPLATE, "weather", day), own.to_csv(index=False).encode())
    return fs


def _clear_pipeline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLP_* variable of the developer's shell reaches a run (the package's data folder may)."""
    for name in [n for n in os.environ if n.startswith("MLP_") and n != "MLP_FLIGHTS_DATA_DIR"]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the MLP_* variables a test sets; settings caches (and the settings' problem) cleared around every test."""
    _clear_pipeline_env(monkeypatch)
    clear_caches()
    flight_sources.source_settings.cache_clear()
    yield
    clear_caches()
    flight_sources.source_settings.cache_clear()


def _configure(
    monkeypatch: pytest.MonkeyPatch,
    lake: Lake,
    storage_options: dict[str, Any],
    example: Example = FLIGHTS,
    **flights: str,
) -> None:
    """Point the settings (which transform_partitions and build_feature_partitions read) at ``lake``
    and the example's problem."""
    monkeypatch.setenv("MLP_PROBLEM", example.module)
    monkeypatch.setenv("MLP_LAKE_URI", lake.root_uri)
    monkeypatch.setenv("MLP_LAKE_STORAGE_OPTIONS", json.dumps(storage_options))
    for name, value in flights.items():
        monkeypatch.setenv(f"MLP_FLIGHTS_{name.upper()}", value)
    clear_caches()
    flight_sources.source_settings.cache_clear()


def _endpoint(s3_options: dict[str, Any]) -> dict[str, str]:
    """The source files' storage options as a setting: the endpoint only, credentials from the environment."""
    return {"source_storage_options": json.dumps(s3_options)}


def _run_etl(
    lake: Lake, days: list[dt.date], storage_options: dict[str, Any] | None = None, example: Example = FLIGHTS
) -> dict[str, Any]:
    """The etl DAG's steps, in order: extract every source, clean the days, build their features."""
    problem = example.problem
    settings = get_settings()
    assert settings.lake_uri == lake.root_uri
    assert load_problem() is problem
    extracts = {
        source.name: etl.extract_source(
            source.name, days, problem=problem, lake=lake, settings=settings, storage_options=storage_options
        )
        for source in problem.sources
    }
    return {
        "extract": extracts,
        "clean": etl.transform_partitions(days),
        "features": etl.build_feature_partitions(days),
    }


def _read_back(lake: Lake, days: list[dt.date] = DAYS, example: Example = FLIGHTS) -> dict[tuple[str, str], str]:
    """The content hash of every partition of the run, read back from the lake."""
    datasets = [f"raw/{source.name}" for source in example.problem.sources] + [etl.CLEAN, etl.FEATURES]
    return {(dataset, day.isoformat()): content_hash(lake.read(dataset, day)) for dataset in datasets for day in days}


def _local_run(lake: Lake, days: list[dt.date], example: Example) -> dict[tuple[str, str], str]:
    """The problem's package sources (the flights replay; the penguin table) for ``days`` into a local
    file:// lake; the content hashes of what it published."""
    with pytest.MonkeyPatch.context() as patch:
        _clear_pipeline_env(patch)
        _configure(patch, lake, {}, example)
        _run_etl(lake, days, example=example)
    clear_caches()
    flight_sources.source_settings.cache_clear()
    return _read_back(lake, days, example)


@pytest.fixture(scope="module")
def replay_hashes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """The same two days from the package replay, on a local file:// lake."""
    return _local_run(Lake(f"file://{tmp_path_factory.mktemp('replay')}/lake"), DAYS, FLIGHTS)


@pytest.fixture(scope="module", params=EXAMPLES, ids=example_id)
def example(request: pytest.FixtureRequest) -> Example:
    return request.param


@pytest.fixture(scope="module")
def local_hashes(example: Example, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """The example's days from its package sources, on a local file:// lake."""
    lake = Lake(f"file://{tmp_path_factory.mktemp('local')}/lake")
    return _local_run(lake, EXAMPLE_DAYS[example.name], example)


@pytest.fixture
def s3_lake(bucket: fsspec.AbstractFileSystem, s3_options: dict[str, Any]) -> Lake:
    """A fresh lake on S3 for each test, in the test bucket."""
    return Lake(f"s3://{BUCKET}/lake-{uuid.uuid4().hex[:8]}", s3_options)


def test_an_etl_run_into_a_lake_on_s3_publishes_what_a_local_lake_holds(
    example: Example,
    s3_lake: Lake,
    s3_options: dict[str, Any],
    local_hashes: dict[tuple[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    days = EXAMPLE_DAYS[example.name]
    _configure(monkeypatch, s3_lake, s3_options, example)

    run = _run_etl(s3_lake, days, example=example)

    assert [s["status"] for s in run["clean"]] == ["published"] * len(days)
    assert _read_back(s3_lake, days, example) == local_hashes
    for summary in [*run["clean"], *run["features"]]:
        assert s3_lake.manifest(summary["dataset"], summary["partition"])["content_hash"] == summary["content_hash"]
    assert s3_lake.partitions(etl.CLEAN) == days
    assert s3_lake.root_uri.startswith("s3://")


def test_files_on_s3_into_a_lake_on_s3_publish_what_the_replay_publishes(
    bucket: fsspec.AbstractFileSystem,
    s3_lake: Lake,
    s3_options: dict[str, Any],
    replay_hashes: dict[tuple[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flights only: its source files (MLP_FLIGHTS_SOURCE=files) on S3; the penguin table has no file source."""
    from include.mlpipeline.orchestration.connections import source_storage_options

    _configure(monkeypatch, s3_lake, s3_options, source="files", source_uri_template=TEMPLATE, source_conn_id=CONN_ID)
    assert load_problem() is PROBLEM
    # What the extract task does when it runs: the connection's credentials and endpoint as options.
    options = source_storage_options()
    assert options == {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": s3_options["endpoint_url"],
        "client_kwargs": {"region_name": "us-east-1"},
    }

    run = _run_etl(s3_lake, DAYS, options)

    assert [s["status"] for s in run["clean"]] == ["published", "published"]
    assert _read_back(s3_lake) == replay_hashes
    for summary in [*run["clean"], *run["features"]]:
        day, dataset = summary["partition"], summary["dataset"]
        assert summary["content_hash"] == replay_hashes[(dataset, day)]
        assert s3_lake.manifest(dataset, day)["content_hash"] == replay_hashes[(dataset, day)]
    assert s3_lake.partitions(etl.CLEAN) == DAYS
    assert s3_lake.root_uri.startswith("s3://")


def test_rerunning_a_day_on_s3_replaces_it_atomically(
    example: Example, s3_lake: Lake, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, s3_lake, s3_options, example)
    day = EXAMPLE_DAYS[example.name][0]
    first = _run_etl(s3_lake, [day], example=example)["clean"][0]
    before = s3_lake.read(etl.CLEAN, day)

    again = _run_etl(s3_lake, [day], example=example)["clean"][0]

    after = s3_lake.read(etl.CLEAN, day)
    assert again["rows_out"] == first["rows_out"] == len(after) == len(before)
    assert again["content_hash"] == first["content_hash"] == content_hash(after)
    manifest = s3_lake.manifest(etl.CLEAN, day)
    base = s3_lake.partition_path(etl.CLEAN, day)
    listed = sorted(p.rsplit("/", 1)[-1] for p in s3_lake.fs.ls(base, detail=False, refresh=True))
    assert len(manifest["files"]) == 1
    assert listed == sorted([MANIFEST, *manifest["files"]]), "the superseded part file must be gone"


def test_a_day_without_its_source_file_on_s3_is_no_data(
    bucket: fsspec.AbstractFileSystem, s3_lake: Lake, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flights only: a day of its source files is missing (the penguin table is always there, whole)."""
    _configure(monkeypatch, s3_lake, s3_options, source="files", source_uri_template=TEMPLATE, **_endpoint(s3_options))
    settings = Settings(lake_uri=s3_lake.root_uri, lake_storage_options=s3_options)

    summary = etl.extract_source("flights", [MISSING_DAY], problem=PROBLEM, lake=s3_lake, settings=settings)

    assert summary["days"] == {MISSING_DAY.isoformat(): {"partition": MISSING_DAY.isoformat(), "status": "no_data"}}
    assert s3_lake.manifest("raw/flights", MISSING_DAY)["meta"] == {"no_data": True}
    for source in ("weather", "planes", "airlines"):
        etl.extract_source(source, [MISSING_DAY], problem=PROBLEM, lake=s3_lake, settings=settings)
    assert etl.transform_partitions([MISSING_DAY]) == [
        {"partition": MISSING_DAY.isoformat(), "status": "no_data", "dataset": etl.CLEAN}
    ]
    assert s3_lake.partitions(etl.CLEAN) == []


def test_a_corrupt_parquet_file_on_s3_fails_naming_the_file(
    bucket: fsspec.AbstractFileSystem, s3_lake: Lake, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flights only: its source files are read through the file source (the penguin table is not)."""
    flights = flight_sources.extract_flights([DAYS[0]])[DAYS[0]]
    good = flights.to_parquet(index=False)
    uri = f"s3://{BUCKET}/raw-parquet/flights/{CORRUPT_DAY}.parquet"
    bucket.pipe(uri, good[: len(good) // 2])
    templates = json.dumps({"flights": f"s3://{BUCKET}/raw-parquet/{{table}}/{{date}}.parquet"})
    _configure(
        monkeypatch,
        s3_lake,
        s3_options,
        source="files",
        source_uri_template=TEMPLATE,
        source_uri_templates=templates,
        **_endpoint(s3_options),
    )
    settings = Settings(lake_uri=s3_lake.root_uri, lake_storage_options=s3_options)

    with pytest.raises(DataQualityError, match=rf"readable_file\. Cannot read {uri}: ArrowInvalid: .*magic bytes"):
        etl.extract_source("flights", [CORRUPT_DAY], problem=PROBLEM, lake=s3_lake, settings=settings)

    assert s3_lake.partitions("raw/flights") == []


def test_a_connection_assuming_a_role_reads_the_bucket_through_the_hooks_session(
    bucket: fsspec.AbstractFileSystem, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    extra = {
        "role_arn": "arn:aws:iam::123456789012:role/pipeline-reader",
        "region_name": "us-east-1",
        "service_config": {"sts": {"endpoint_url": s3_endpoint}, "s3": {"endpoint_url": s3_endpoint}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ASSUMED", json.dumps({"conn_type": "aws", "extra": extra}))

    options = storage_options_from_connection("assumed")
    frame = file_source.read_file(file_source.file_uri(TEMPLATE, "airlines", DAYS[0]), storage_options=options)

    assert "session" in options
    assert "key" not in options
    assert len(frame) == 16


def test_the_lake_takes_its_credentials_from_an_airflow_connection(
    s3_endpoint: str, aws_env: dict[str, str], bucket: fsspec.AbstractFileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLP_LAKE_CONN_ID alone (no storage options, no AWS_* variables) is enough to reach the lake."""
    from include.mlpipeline.orchestration.connections import resolve_lake_connections

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLP_LAKE_URI", f"s3://{BUCKET}/conn-lake")
    monkeypatch.setenv("MLP_LAKE_CONN_ID", CONN_ID)
    get_settings.cache_clear()
    resolve_lake_connections()  # what every task's on_execute_callback does
    lake = Lake.from_settings()
    frame = pd.DataFrame({"a": [1, 2, 3]})
    info = lake.write("clean", "2013-06-01", frame)
    assert lake.read("clean", "2013-06-01").equals(frame)
    assert info.uri == f"s3://{BUCKET}/conn-lake/clean/date=2013-06-01"
