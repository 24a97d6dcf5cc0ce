"""The generic file source, the example's source selection, and Airflow connections as storage options.

Files live on a temporary file:// folder; the connections are real Airflow Connection objects read from
AIRFLOW_CONN_* environment variables (no metadata database). The S3 side runs in
tests/integration/test_s3_storage.py against a real (moto) S3 server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import logging
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from include.flight_delay import PROBLEM, schemas
from include.flight_delay import sources as flight_sources
from include.mlpipeline.core.problem import Source
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data import etl, file_source
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError

DAY = dt.date(2028, 3, 2)
NEXT = dt.date(2028, 3, 3)
FRAME = pd.DataFrame({"carrier": ["AA", "B6", "UA"], "name": ["American", "JetBlue", "United"], "n": [1, 2, 3]})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "files"


def _put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    return frame.to_parquet(index=False)


# ------------------------------------------------------------------------------ templates, formats
@pytest.mark.parametrize(
    ("template", "day", "uri"),
    [
        ("s3://b/raw/{table}/{date}.csv", DAY, "s3://b/raw/airlines/2028-03-02.csv"),
        ("gs://b/{table}/{date:%Y/%m/%d}.parquet", DAY, "gs://b/airlines/2028/03/02.parquet"),
        ("file:///data/{table}.csv", None, "file:///data/airlines.csv"),
        ("file:///data/{table}.csv", DAY, "file:///data/airlines.csv"),
    ],
)
def test_file_uri_fills_table_and_date(template: str, day: dt.date | None, uri: str) -> None:
    assert file_source.file_uri(template, "airlines", day) == uri


def test_file_uri_refuses_a_daily_template_without_a_day_and_unknown_placeholders() -> None:
    with pytest.raises(ValueError, match=r"has a \{date\} placeholder: a day is needed"):
        file_source.file_uri("s3://b/{table}/{date}.csv", "flights")
    with pytest.raises(ValueError, match=r"only \{table\} and \{date\} can be filled in"):
        file_source.file_uri("s3://b/{bucket}/{table}.csv", "flights")


@pytest.mark.parametrize(
    ("uri", "configured", "fmt"),
    [
        ("s3://b/x.csv", None, "csv"),
        ("s3://b/x.CSV.GZ", None, "csv"),
        ("file:///d/flights.csv.zip", None, "csv"),
        ("gs://b/x.parquet", None, "parquet"),
        ("gs://b/x.pq", None, "parquet"),
        ("s3://b/x.data", "parquet", "parquet"),
        ("s3://b/x.parquet", "CSV", "csv"),
    ],
)
def test_file_format_by_extension_or_setting(uri: str, configured: str | None, fmt: str) -> None:
    assert file_source.file_format(uri, configured) == fmt


def test_file_format_refuses_an_unknown_extension_or_format() -> None:
    with pytest.raises(ValueError, match=r"cannot tell the format of s3://b/x.json"):
        file_source.file_format("s3://b/x.json")
    with pytest.raises(ValueError, match=r"unknown file format 'json'"):
        file_source.file_format("s3://b/x.csv", "json")


# ---------------------------------------------------------------------------------------- reading
@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("{table}/{date}.csv", _csv),
        ("{table}/{date}.csv.gz", lambda f: gzip.compress(_csv(f))),
        ("{table}/{date}.parquet", _parquet),
    ],
)
def test_extract_files_reads_one_file_per_day(folder: Path, name: str, encode: Callable[[pd.DataFrame], bytes]) -> None:
    template = f"file://{folder}/{name}"
    for day, rows in ((DAY, FRAME), (NEXT, FRAME.iloc[:1])):
        _put(Path(file_source.file_uri(template, "airlines", day).removeprefix("file://")), encode(rows))

    frames = file_source.extract_files("airlines", [DAY, NEXT], template)

    pd.testing.assert_frame_equal(frames[DAY], FRAME)
    pd.testing.assert_frame_equal(frames[NEXT], FRAME.iloc[:1])


def test_a_template_without_date_is_one_file_read_once_for_every_day(folder: Path) -> None:
    _put(folder / "airlines.csv", _csv(FRAME))

    frames = file_source.extract_files("airlines", [DAY, NEXT], f"file://{folder}/{{table}}.csv")

    assert frames[DAY] is frames[NEXT]
    pd.testing.assert_frame_equal(frames[DAY], FRAME)


def test_a_missing_file_is_a_day_without_data_and_is_logged(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    template = f"file://{folder}/{{table}}/{{date}}.csv"
    _put(folder / "airlines" / f"{DAY}.csv", _csv(FRAME))

    with caplog.at_level(logging.INFO, logger="include.mlpipeline.data.file_source"):
        frames = file_source.extract_files("airlines", [DAY, NEXT], template)

    assert frames[NEXT] is None
    assert frames[DAY] is not None
    assert f"airlines: no file at file://{folder}/airlines/{NEXT}.csv; no data for {NEXT}" in caplog.text


def test_storage_options_reach_the_filesystem(folder: Path) -> None:
    # fsspec's local filesystem takes auto_mkdir; an unknown option would raise TypeError
    _put(folder / "a.csv", _csv(FRAME))

    frame = file_source.read_file(f"file://{folder}/a.csv", storage_options={"auto_mkdir": True})

    pd.testing.assert_frame_equal(frame, FRAME)


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


UNREADABLE = {
    "empty csv": ("x.csv", b"", r"the file is empty \(0 bytes\)"),
    "empty parquet": ("x.parquet", b"", r"the file is empty \(0 bytes\)"),
    "csv cut mid-row": ("x.csv", _csv(FRAME)[:-9], r"the last line has no line break: the file looks truncated"),
    "csv short row": ("x.csv", b"carrier,name,n\nAA,American,1\nB6,Jet\n", r"line 3 has 2 of the header's 3 fields"),
    "csv cut in a quote": ("x.csv", b'carrier,name\nAA,"Amer\n', r"Cannot read .*x\.csv: (ParserError|Error)"),
    "csv not text": ("x.csv", b"\xff\xfe\x00\x81garbage\n", r"Cannot read .*x\.csv: UnicodeDecodeError"),
    "truncated gzip": ("x.csv.gz", _truncate(gzip.compress(_csv(FRAME) * 50)), r"x\.csv\.gz: (EOFError|BadGzipFile)"),
    "truncated parquet": ("x.parquet", _truncate(_parquet(FRAME)), r"Cannot read .*x\.parquet: ArrowInvalid"),
    "csv named parquet": ("x.parquet", _csv(FRAME), r"Cannot read .*x\.parquet: ArrowInvalid"),
}


@pytest.mark.parametrize("case", UNREADABLE, ids=list(UNREADABLE))
def test_an_unreadable_file_is_a_data_quality_error_naming_the_file(folder: Path, case: str) -> None:
    name, data, reason = UNREADABLE[case]
    path = _put(folder / name, data)
    uri = f"file://{path}"

    with pytest.raises(DataQualityError) as first:
        file_source.read_file(uri, gate="raw_airlines")
    with pytest.raises(DataQualityError) as second:
        file_source.read_file(uri, gate="raw_airlines")

    message = str(first.value)
    assert message.startswith(f"quality gate 'raw_airlines' failed: readable_file. Cannot read {uri}: ")
    assert first.value.failed_checks == {"readable_file": 0}
    assert re.search(reason, message), message
    assert str(second.value) == message, "the same file must fail the same way (deterministic)"


def test_a_header_only_file_is_an_empty_frame_for_the_raw_gate_to_judge(folder: Path) -> None:
    _put(folder / "x.csv", b"carrier,name\n")

    frame = file_source.read_file(f"file://{folder}/x.csv")

    assert frame.empty
    assert list(frame.columns) == ["carrier", "name"]


def test_a_refused_connection_stays_an_ordinary_error_for_the_orchestrator_to_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        # one attempt: botocore's own retries would only slow the test down
        "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 2},
    }

    with pytest.raises(Exception, match="Could not connect to the endpoint URL") as raised:
        file_source.extract_files("flights", [DAY], "s3://bucket/raw/{table}/{date}.csv", storage_options=options)

    assert not isinstance(raised.value, DataQualityError | FileNotFoundError)


def test_merge_storage_options_later_layers_win_and_nested_options_merge() -> None:
    merged = file_source.merge_storage_options(
        {"endpoint_url": "http://a", "client_kwargs": {"region_name": "eu-west-1", "verify": False}},
        None,
        {"key": "k", "client_kwargs": {"region_name": "us-east-1"}},
    )

    assert merged == {
        "endpoint_url": "http://a",
        "key": "k",
        "client_kwargs": {"region_name": "us-east-1", "verify": False},
    }


# ---------------------------------------------------------------------- the example's selection
def _use_files(monkeypatch: pytest.MonkeyPatch, template: str, **more: str) -> None:
    monkeypatch.setenv("MLP_FLIGHTS_SOURCE", "files")
    monkeypatch.setenv("MLP_FLIGHTS_SOURCE_URI_TEMPLATE", template)
    for name, value in more.items():
        monkeypatch.setenv(f"MLP_FLIGHTS_{name.upper()}", value)
    flight_sources.source_settings.cache_clear()


def test_the_source_is_chosen_when_extracting_not_when_importing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    airlines = PROBLEM.source("airlines")
    replayed = airlines.extract([DAY])[DAY]
    _put(folder / "airlines" / f"{DAY}.csv", _csv(FRAME[["carrier", "name"]]))

    _use_files(monkeypatch, f"file://{folder}/{{table}}/{{date}}.csv")
    from_files = airlines.extract([DAY])[DAY]

    assert len(replayed) == 16
    pd.testing.assert_frame_equal(from_files, FRAME[["carrier", "name"]])


def test_files_mode_needs_a_template_and_a_daily_one_for_flights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_FLIGHTS_SOURCE", "files")
    flight_sources.source_settings.cache_clear()
    with pytest.raises(ValueError, match=r"needs MLP_FLIGHTS_SOURCE_URI_TEMPLATE"):
        flight_sources.extract_flights([DAY])

    _use_files(monkeypatch, "file:///data/{table}.csv")
    with pytest.raises(ValueError, match=r"flights has a slice per day: .* needs a \{date\} placeholder"):
        flight_sources.extract_flights([DAY])


def test_per_table_templates_and_settings_storage_options(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(folder / "reference" / "planes.parquet", _parquet(FRAME))
    _use_files(
        monkeypatch,
        f"file://{folder}/{{table}}/{{date}}.csv",
        source_uri_templates=json.dumps({"planes": f"file://{folder}/reference/{{table}}.parquet"}),
        source_storage_options=json.dumps({"auto_mkdir": True}),
    )

    planes = flight_sources.extract_planes([DAY, NEXT])

    pd.testing.assert_frame_equal(planes[NEXT], FRAME)


def _weather_day(source_day: dt.date) -> pd.DataFrame:
    whole = flight_sources.whole_table("weather")
    mask = (whole["year"] == source_day.year) & (whole["month"] == source_day.month) & (whole["day"] == source_day.day)
    return whole.loc[mask]


def test_weather_files_give_what_the_replay_gives(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file holds its own day; the extract adds the neighbours' margin, in the replay's order."""
    replayed = flight_sources.extract_weather([DAY])[DAY]
    for shift in (-1, 0, 1):
        day = DAY + dt.timedelta(days=shift)
        _put(folder / "weather" / f"{day}.csv", _csv(_weather_day(flight_sources.replay_date(day))))

    _use_files(monkeypatch, f"file://{folder}/{{table}}/{{date}}.csv")
    from_files = flight_sources.extract_weather([DAY])[DAY]

    pd.testing.assert_frame_equal(from_files, replayed, check_dtype=False)


def test_weather_files_that_carry_their_margin_are_not_doubled(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replayed = flight_sources.extract_weather([DAY, NEXT])
    _put(folder / "weather" / f"{DAY}.csv", _csv(replayed[DAY]))  # already day +- 2 hours
    _put(folder / "weather" / f"{NEXT}.csv", _csv(_weather_day(flight_sources.replay_date(NEXT))))

    _use_files(monkeypatch, f"file://{folder}/{{table}}/{{date}}.csv")
    from_files = flight_sources.extract_weather([DAY])[DAY]

    pd.testing.assert_frame_equal(from_files, replayed[DAY], check_dtype=False)


def test_weather_without_its_own_file_is_no_data_even_if_neighbours_exist(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(folder / "weather" / f"{NEXT}.csv", _csv(_weather_day(flight_sources.replay_date(NEXT))))
    _use_files(monkeypatch, f"file://{folder}/{{table}}/{{date}}.csv")

    assert flight_sources.extract_weather([DAY]) == {DAY: None}


def test_source_conn_id_only_in_files_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_FLIGHTS_SOURCE_CONN_ID", "source_files")
    flight_sources.source_settings.cache_clear()
    assert PROBLEM.source_conn_id() is None  # replay reads the package

    _use_files(monkeypatch, "s3://b/{table}/{date}.csv")
    assert PROBLEM.source_conn_id() == "source_files"


# ------------------------------------------------------------------- extract_source's options
def _recording_problem(extract: Callable[..., Any]) -> Any:
    return dataclasses.replace(PROBLEM, sources=(Source("airlines", extract, schemas.RawAirlines, partitioned=False),))


def test_extract_source_passes_storage_options_to_a_source_that_takes_them(tmp_path: Path) -> None:
    seen: list[Any] = []

    def extract(days: list[dt.date], *, storage_options: dict[str, Any] | None = None) -> dict[dt.date, Any]:
        seen.append(storage_options)
        return dict.fromkeys(days, FRAME[["carrier", "name"]])

    lake, settings = Lake(f"file://{tmp_path}/lake"), Settings(lake_uri=f"file://{tmp_path}/lake")
    problem = _recording_problem(extract)
    etl.extract_source("airlines", [DAY], problem=problem, lake=lake, settings=settings)
    etl.extract_source("airlines", [DAY], problem=problem, lake=lake, settings=settings, storage_options={"key": "k"})

    assert seen == [None, {"key": "k"}]


def test_extract_source_calls_a_source_without_the_keyword_plainly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def extract(days: list[dt.date]) -> dict[dt.date, Any]:
        return dict.fromkeys(days, FRAME[["carrier", "name"]])

    lake, settings = Lake(f"file://{tmp_path}/lake"), Settings(lake_uri=f"file://{tmp_path}/lake")
    with caplog.at_level(logging.WARNING, logger="include.mlpipeline.data.etl"):
        summary = etl.extract_source(
            "airlines", [DAY], problem=_recording_problem(extract), lake=lake, settings=settings, storage_options={}
        )

    assert summary["days"][DAY.isoformat()]["status"] == "published"
    assert "source airlines takes no storage_options" in caplog.text


# ------------------------------------------------------------- connections -> storage options
@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str | dict[str, Any]], None]:
    """``connection(conn_id, uri_or_json)``: define an Airflow connection the way deployments do."""

    def define(conn_id: str, value: str | dict[str, Any]) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", text)

    return define


def test_aws_connection_json_becomes_s3fs_options(connection: Callable[..., None]) -> None:
    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    connection(
        "minio",
        {
            "conn_type": "aws",
            "login": "AKIDEXAMPLE",
            "password": "secret-key-example",
            "extra": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-central-1", "verify": False},
        },
    )

    assert storage_options_from_connection("minio") == {
        "key": "AKIDEXAMPLE",
        "secret": "secret-key-example",
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-central-1", "verify": False},
    }


def test_aws_connection_uri_with_session_token_service_endpoint_and_config(connection: Callable[..., None]) -> None:
    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    extra = {
        "aws_session_token": "session-token-example",
        "service_config": {"s3": {"endpoint_url": "http://s3.internal:9000"}},
        "endpoint_url": "http://other-services:4566",
        "config_kwargs": {"signature_version": "unsigned", "connect_timeout": 5},
    }
    connection(
        "s3_uri",
        {"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "secret/with+chars", "extra": extra},
    )

    options = storage_options_from_connection("s3_uri")

    assert options == {
        "key": "AKIDEXAMPLE",
        "secret": "secret/with+chars",
        "token": "session-token-example",
        "endpoint_url": "http://s3.internal:9000",  # the S3-specific endpoint wins, as in the provider
        "anon": True,
        "config_kwargs": {"connect_timeout": 5},
    }


def test_aws_connection_as_a_uri(connection: Callable[..., None]) -> None:
    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    connection(
        "from_uri", "aws://AKIDEXAMPLE:secret%2Fkey@/?region_name=us-east-1&endpoint_url=http%3A%2F%2Fminio%3A9000"
    )

    assert storage_options_from_connection("from_uri") == {
        "key": "AKIDEXAMPLE",
        "secret": "secret/key",
        "endpoint_url": "http://minio:9000",
        "client_kwargs": {"region_name": "us-east-1"},
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"key_path": "/secrets/sa.json", "project": "p1"}, {"token": "/secrets/sa.json", "project": "p1"}),
        (
            {"extra__google_cloud_platform__keyfile_dict": json.dumps({"type": "service_account", "x": 1})},
            {"token": {"type": "service_account", "x": 1}},
        ),
        ({"keyfile_dict": {"type": "service_account"}}, {"token": {"type": "service_account"}}),
        ({"is_anonymous": True}, {"token": "anon"}),
        (
            {"gcs.endpoint": "http://127.0.0.1:4443", "gcs.requester-pays": True, "gcs.version-aware": "true"},
            {"endpoint_url": "http://127.0.0.1:4443", "requester_pays": True, "version_aware": True},
        ),
        ({}, {}),  # Application Default Credentials
    ],
)
def test_google_connection_becomes_gcsfs_options(
    connection: Callable[..., None], extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    connection("gcs", {"conn_type": "google_cloud_platform", "extra": extra})

    assert storage_options_from_connection("gcs") == expected


def test_unsupported_and_missing_connections_fail_clearly(connection: Callable[..., None]) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from include.mlpipeline.orchestration.connections import storage_options_from_connection

    connection("web", "http://user:pw@example.org:80/x")
    with pytest.raises(ValueError, match=r"connection 'web' has type 'http'; object storage needs one of"):
        storage_options_from_connection("web")
    with pytest.raises(AirflowNotFoundException, match="no_such_connection"):
        storage_options_from_connection("no_such_connection")


def test_source_storage_options_follow_the_problem_setting(
    connection: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.mlpipeline.orchestration.connections import source_storage_options

    connection("source_files", {"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "secret-key-example"})
    assert source_storage_options(PROBLEM) is None  # replay: nothing to resolve

    _use_files(monkeypatch, "s3://b/{table}/{date}.csv", source_conn_id="source_files")

    assert source_storage_options(PROBLEM) == {"key": "AKIDEXAMPLE", "secret": "secret-key-example"}
    assert source_storage_options(dataclasses.replace(PROBLEM, source_conn_id=None)) is None


def test_lake_conn_id_adds_the_connection_credentials_to_the_lake_options(connection: Callable[..., None]) -> None:
    from include.mlpipeline.data.lake import Lake
    from include.mlpipeline.orchestration.connections import resolve_lake_connections

    connection("lake", {"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "secret-key-example"})
    settings = Settings(
        lake_uri="s3://lake-bucket/lake",
        lake_storage_options={"endpoint_url": "http://127.0.0.1:1"},
        lake_conn_id="lake",
    )
    resolve_lake_connections()

    lake = Lake.from_settings(settings)

    assert lake.root_uri == "s3://lake-bucket/lake"
    assert (lake.fs.key, lake.fs.secret, lake.fs.endpoint_url) == (
        "AKIDEXAMPLE",
        "secret-key-example",
        "http://127.0.0.1:1",
    )
