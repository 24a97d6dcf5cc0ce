"""The day-partitioned Parquet lake: round trips, idempotent rewrites, commits through the manifest."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from include.mlpipeline.data.lake import (
    MANIFEST,
    ORPHAN_GRACE_S,
    PARTITION_COLUMN,
    Lake,
    PartitionNotFoundError,
    content_hash,
)

DAY = "2013-03-01"


def _frame(rows: int = 3, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64") + offset,
            "value": np.linspace(0.5, 2.5, rows) + offset,
            "name": [f"row-{i + offset}" for i in range(rows)],
            "flag": [i % 2 == 0 for i in range(rows)],
            "ts": pd.date_range("2013-03-01 06:00", periods=rows, freq="h"),
        }
    )


def _files(lake: Lake, dataset: str, day: str) -> set[str]:
    return {p.rsplit("/", 1)[-1] for p in lake.fs.ls(lake.partition_path(dataset, day), detail=False)}


def _plant_part_file(lake: Lake, dataset: str, day: str, frame: pd.DataFrame, name: str) -> str:
    """A part file no manifest names, as a writer that died before its commit leaves behind."""
    path = f"{lake.partition_path(dataset, day)}/{name}"
    lake.fs.makedirs(lake.partition_path(dataset, day), exist_ok=True)
    with lake.fs.open(path, "wb") as handle:
        frame.to_parquet(handle, index=False)
    return path


def test_write_then_read_round_trips_values_and_dtypes(lake: Lake) -> None:
    frame = _frame()

    info = lake.write("events", DAY, frame, meta={"source": "test"})

    pd.testing.assert_frame_equal(lake.read("events", DAY), frame)
    assert info.rows == 3
    assert info.partition == DAY
    assert info.uri == f"{lake.root_uri}/events/date={DAY}"
    assert info.content_hash == content_hash(frame)
    assert info.meta == {"source": "test"}
    manifest = lake.manifest("events", DAY)
    assert manifest["files"] == info.files
    assert manifest["columns"] == ["id", "value", "name", "flag", "ts"]
    assert manifest["content_hash"] == content_hash(lake.read("events", DAY))


def test_read_selects_columns(lake: Lake) -> None:
    lake.write("events", DAY, _frame())

    assert list(lake.read("events", DAY, columns=["name", "id"]).columns) == ["name", "id"]


def test_day_accepts_date_objects_and_iso_strings_alike(lake: Lake) -> None:
    lake.write("events", dt.date(2013, 3, 1), _frame())

    pd.testing.assert_frame_equal(lake.read("events", "2013-03-01"), _frame())
    assert lake.partitions("events") == [dt.date(2013, 3, 1)]


def test_day_given_as_datetime_writes_the_day_partition(lake: Lake) -> None:
    lake.write("events", dt.datetime(2013, 3, 1, 12, 0), _frame())

    assert lake.partitions("events") == [dt.date(2013, 3, 1)]
    pd.testing.assert_frame_equal(lake.read("events", "2013-03-01"), _frame())


def test_rerun_of_a_day_replaces_the_partition_never_appends(lake: Lake) -> None:
    frame = _frame(rows=4)

    first = lake.write("events", DAY, frame)
    second = lake.write("events", DAY, frame)

    assert len(lake.read("events", DAY)) == 4
    assert first.content_hash == second.content_hash
    assert first.files != second.files


def test_rewrite_with_other_content_serves_only_the_new_content(lake: Lake) -> None:
    lake.write("events", DAY, _frame(rows=5))

    lake.write("events", DAY, _frame(rows=2, offset=100))

    pd.testing.assert_frame_equal(lake.read("events", DAY), _frame(rows=2, offset=100))


def test_partitions_lists_only_committed_days_oldest_first(lake: Lake) -> None:
    lake.write("events", "2013-03-02", _frame())
    lake.write("events", "2013-02-27", _frame())
    _plant_part_file(lake, "events", "2013-03-05", _frame(), "part-deadwriter.parquet")

    assert lake.partitions("events") == [dt.date(2013, 2, 27), dt.date(2013, 3, 2)]
    with pytest.raises(PartitionNotFoundError, match=r"no committed partition events/date=2013-03-05"):
        lake.read("events", "2013-03-05")


def test_partitions_of_an_unknown_dataset_is_empty(lake: Lake) -> None:
    assert lake.partitions("nothing") == []


def test_stale_uncommitted_part_file_does_not_affect_reads(lake: Lake) -> None:
    lake.write("events", DAY, _frame(rows=3))
    orphan = _plant_part_file(lake, "events", DAY, _frame(rows=7, offset=50), "part-orphan.parquet")

    pd.testing.assert_frame_equal(lake.read("events", DAY), _frame(rows=3))
    assert lake.fs.exists(orphan)


def test_superseded_part_files_are_removed_after_rewrite(lake: Lake) -> None:
    first = lake.write("events", DAY, _frame())

    second = lake.write("events", DAY, _frame(offset=10))

    assert _files(lake, "events", DAY) == {MANIFEST, *second.files}
    assert not set(first.files) & _files(lake, "events", DAY)


def test_rewrite_keeps_young_orphans_and_removes_old_ones(lake: Lake) -> None:
    """An unnamed part file may belong to a writer still at work: it goes only after the grace period."""
    lake.write("events", DAY, _frame())
    young = _plant_part_file(lake, "events", DAY, _frame(), "part-young.parquet")
    old = _plant_part_file(lake, "events", DAY, _frame(), "part-old.parquet")
    long_ago = time.time() - ORPHAN_GRACE_S - 60
    os.utime(old, (long_ago, long_ago))

    info = lake.write("events", DAY, _frame(offset=1))

    assert _files(lake, "events", DAY) == {MANIFEST, *info.files, "part-young.parquet"}
    assert lake.fs.exists(young)


def test_read_many_concatenates_in_day_order_with_partition_date(lake: Lake) -> None:
    lake.write("events", "2013-03-02", _frame(rows=2, offset=20))
    lake.write("events", "2013-03-01", _frame(rows=3))

    frame = lake.read_many("events", ["2013-03-02", dt.date(2013, 3, 1)])

    assert frame[PARTITION_COLUMN].tolist() == [pd.Timestamp("2013-03-01")] * 3 + [pd.Timestamp("2013-03-02")] * 2
    assert frame["id"].tolist() == [0, 1, 2, 20, 21]
    assert frame.index.tolist() == [0, 1, 2, 3, 4]


def test_read_many_of_no_days_raises(lake: Lake) -> None:
    with pytest.raises(PartitionNotFoundError, match="no partitions of events requested"):
        lake.read_many("events", [])


def test_partition_not_found_error_names_dataset_day_and_lake(lake: Lake) -> None:
    with pytest.raises(PartitionNotFoundError) as raised:
        lake.read("clean", "2013-01-05")

    assert str(raised.value) == f"no committed partition clean/date=2013-01-05 in {lake.root_uri}"
    assert isinstance(raised.value, FileNotFoundError)


def test_manifest_of_missing_partition_is_none(lake: Lake) -> None:
    assert lake.manifest("events", DAY) is None


def test_delete_removes_the_partition(lake: Lake) -> None:
    lake.write("events", DAY, _frame())
    lake.write("events", "2013-03-02", _frame())

    lake.delete("events", DAY)

    assert lake.partitions("events") == [dt.date(2013, 3, 2)]


def test_empty_frame_round_trips_as_an_empty_partition(lake: Lake) -> None:
    info = lake.write("raw/flights", DAY, pd.DataFrame(), meta={"no_data": True})

    assert info.rows == 0
    assert lake.read("raw/flights", DAY).empty
    assert lake.manifest("raw/flights", DAY)["meta"] == {"no_data": True}


def test_manifest_is_complete_json_and_no_staging_file_is_left(lake: Lake) -> None:
    lake.write("events", DAY, _frame())

    names = _files(lake, "events", DAY)
    with lake.fs.open(f"{lake.partition_path('events', DAY)}/{MANIFEST}", "rb") as handle:
        manifest = json.loads(handle.read())

    assert not [n for n in names if n.endswith(".tmp")]
    assert manifest["rows"] == 3
    assert manifest["dataset"] == "events"


# ------------------------------------------------------------------------------ content hash
def test_content_hash_is_stable_for_equal_frames() -> None:
    assert content_hash(_frame()) == content_hash(_frame())
    assert content_hash(_frame().copy(deep=True)) == content_hash(_frame())


def test_content_hash_ignores_the_index() -> None:
    assert content_hash(_frame().set_axis([10, 11, 12])) == content_hash(_frame())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.assign(value=f["value"] + 0.001), id="one-value-changed"),
        pytest.param(lambda f: f.iloc[::-1].reset_index(drop=True), id="rows-reordered"),
        pytest.param(lambda f: f.iloc[:2], id="row-dropped"),
        pytest.param(lambda f: f.rename(columns={"value": "amount"}), id="column-renamed"),
        pytest.param(lambda f: f.assign(id=f["id"].astype("float64")), id="dtype-changed"),
        pytest.param(lambda f: f[["value", "id", "name", "flag", "ts"]], id="columns-reordered"),
    ],
)
def test_content_hash_differs_for_different_frames(change: object) -> None:
    assert content_hash(change(_frame())) != content_hash(_frame())


def test_content_hash_differs_when_values_swap_between_columns() -> None:
    a = pd.DataFrame({"x": [1, 2], "y": [3, 4]})
    b = pd.DataFrame({"x": [3, 4], "y": [1, 2]})

    assert content_hash(a) != content_hash(b)


def test_content_hash_of_empty_frames_depends_on_their_columns() -> None:
    assert content_hash(pd.DataFrame({"a": []})) != content_hash(pd.DataFrame({"b": []}))
    assert content_hash(pd.DataFrame({"a": []})) == content_hash(pd.DataFrame({"a": []}))
