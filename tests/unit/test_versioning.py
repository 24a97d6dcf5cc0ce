"""DVC data versions: partitions pushed content-addressed to a real DVC remote, and restored by md5."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data import etl
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.versioning import DataVersionError, restore, version_partitions, window_version


@pytest.fixture
def dvc_settings(tmp_path: Path, lake: Lake) -> Settings:
    return Settings(lake_uri=lake.root_uri, dvc_workdir=str(tmp_path / "work"), dvc_remote_url=str(tmp_path / "remote"))


def frame(rows: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(seed, seed + rows), "y": [f"v{i % 7}" for i in range(rows)]})


def file_md5(lake: Lake, dataset: str, day: str) -> str:
    manifest = lake.manifest(dataset, day)
    with lake.fs.open(f"{lake.partition_path(dataset, day)}/{manifest['files'][0]}", "rb") as handle:
        return hashlib.md5(handle.read(), usedforsecurity=False).hexdigest()


def test_manifest_md5_is_the_file_md5(lake: Lake):
    info = lake.write("features", "2013-03-01", frame(50, 0))
    assert info.md5 == file_md5(lake, "features", "2013-03-01")
    assert info.bytes == lake.fs.size(f"{lake.partition_path('features', '2013-03-01')}/{info.files[0]}")


def test_versions_are_pushed_and_restorable(lake: Lake, dvc_settings: Settings, tmp_path: Path):
    days = ["2013-03-01", "2013-03-02"]
    for n, day in enumerate(days):
        lake.write("features", day, frame(40 + n, n))
    versions = version_partitions("features", days, lake=lake, settings=dvc_settings)

    assert versions == {day: lake.manifest("features", day)["md5"] for day in days}
    remote = Path(dvc_settings.dvc_remote_url)
    stored = {p.parent.name + p.name for p in remote.rglob("*") if p.is_file()}
    assert set(versions.values()) <= stored, "content-addressed objects on the remote"

    out = restore("features", days[0], versions[days[0]], tmp_path / "restored.parquet", settings=dvc_settings)
    pd.testing.assert_frame_equal(pd.read_parquet(out), lake.read("features", days[0]))


def test_old_version_survives_a_rewrite(lake: Lake, dvc_settings: Settings, tmp_path: Path):
    day = "2013-03-01"
    lake.write("clean", day, frame(30, 0))
    first = version_partitions("clean", [day], lake=lake, settings=dvc_settings)[day]
    lake.write("clean", day, frame(31, 5))
    second = version_partitions("clean", [day], lake=lake, settings=dvc_settings)[day]

    assert first != second
    old = restore("clean", day, first, tmp_path / "old.parquet", settings=dvc_settings)
    pd.testing.assert_frame_equal(pd.read_parquet(old), frame(30, 0))


def test_restore_of_an_unknown_version_fails(dvc_settings: Settings, tmp_path: Path):
    with pytest.raises(DataVersionError, match=r"version 0123456789abcdef0123456789abcdef of clean/date=2013-03-01"):
        restore("clean", "2013-03-01", "0123456789abcdef0123456789abcdef", tmp_path / "x", settings=dvc_settings)


def test_unversioned_partition_is_refused(lake: Lake, dvc_settings: Settings):
    with pytest.raises(DataVersionError, match="no committed manifest"):
        version_partitions("features", ["2013-03-09"], lake=lake, settings=dvc_settings)


def test_disabled_versioning_does_nothing(lake: Lake, tmp_path: Path):
    lake.write("features", "2013-03-01", frame(5, 0))
    settings = Settings(dvc_enabled=False, dvc_workdir=str(tmp_path / "w"), dvc_remote_url=str(tmp_path / "r"))
    assert version_partitions("features", ["2013-03-01"], lake=lake, settings=settings) == {}
    assert not (tmp_path / "r").exists()


def test_window_version_is_order_independent_and_content_sensitive():
    a = {"2013-03-01": "aa", "2013-03-02": "bb"}
    assert window_version(a) == window_version(dict(reversed(list(a.items()))))
    assert window_version(a) != window_version({**a, "2013-03-02": "bc"})


def test_publish_summary_carries_the_versions(lake: Lake, dvc_settings: Settings, monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "MLP_LAKE_URI": lake.root_uri,
        "MLP_DVC_WORKDIR": dvc_settings.dvc_workdir,
        "MLP_DVC_REMOTE_URL": dvc_settings.dvc_remote_url,
    }.items():
        monkeypatch.setenv(key, value)
    from include.mlpipeline.core.settings import get_settings

    get_settings.cache_clear()
    info = lake.write("features", "2013-03-01", frame(12, 3))
    summary = {
        "partition": "2013-03-01",
        "status": "published",
        "rows_in": 12,
        "rows_out": 12,
        "rows_quarantined": 0,
        "content_hash": info.content_hash,
    }
    extra = etl.publish_summary("features", [[summary]])
    assert extra["dvc_md5"] == {"2013-03-01": info.md5}
    assert extra["data_version"] == window_version({"2013-03-01": info.md5})
