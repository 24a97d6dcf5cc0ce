"""A Parquet data lake partitioned by day, on any fsspec filesystem (file://, s3://, gs://).

Layout::

    <lake>/<dataset>/date=YYYY-MM-DD/part-<uuid>.parquet
    <lake>/<dataset>/date=YYYY-MM-DD/_manifest.json

A partition exists for readers only through its manifest. A writer first writes a new, uniquely
named part file (invisible: no manifest names it), then commits by moving a complete manifest into
place (a rename on local disks, a single-object PUT on object stores; both are atomic). So:

- rerunning a day replaces its partition, it never appends (idempotent);
- a writer killed mid-write leaves the previous manifest, hence the previous data, untouched;
- part files no manifest names are removed by later writers once they are older than a grace period
  (a concurrent writer's part file is never removed under it).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import fsspec
import pandas as pd

from include.mlpipeline.data.file_source import merge_storage_options

if TYPE_CHECKING:
    from include.mlpipeline.core.settings import Settings

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
PARTITION_COLUMN = "partition_date"
ORPHAN_GRACE_S = 15 * 60
WRITE_CHUNK = 4 * 1024 * 1024


class PartitionNotFoundError(FileNotFoundError):
    """The partition has no committed manifest."""


@dataclass(frozen=True)
class PartitionInfo:
    """What a committed partition holds; small enough for XCom and asset event extras."""

    dataset: str
    partition: str
    uri: str
    rows: int
    content_hash: str
    files: list[str]
    committed_at: str
    meta: dict[str, Any] = field(default_factory=dict)
    md5: str = ""
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def content_hash(frame: pd.DataFrame) -> str:
    """A hash of the frame's content (values, column names and dtypes), independent of file encoding.

    Two partitions with the same rows in the same order hash the same even if written by different
    library versions, so the hash is a stable data version.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def as_day(value: dt.date | dt.datetime | str) -> dt.date:
    """A calendar day from a date, a datetime (its date part) or an ISO string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


class Lake:
    """Day-partitioned Parquet datasets under one root URI."""

    def __init__(self, root_uri: str, storage_options: dict[str, Any] | None = None):
        self.root_uri = root_uri.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.root_uri, **(storage_options or {}))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Lake:
        """The lake of ``MLP_LAKE_URI``: the one way every part of the pipeline opens it.

        With ``MLP_LAKE_CONN_ID`` set, that connection's credentials are merged over
        ``MLP_LAKE_STORAGE_OPTIONS``; the orchestrator registers how to resolve a connection
        (:func:`register_connection_resolver`), so outside it give credentials as storage options
        or through the storage provider's environment variables.
        """
        from include.mlpipeline.core.settings import get_settings

        settings = settings or get_settings()
        options = settings.lake_storage_options
        if settings.lake_conn_id:
            options = merge_storage_options(options, _connection_options(settings.lake_conn_id))
        return cls(settings.lake_uri, options)

    # paths -----------------------------------------------------------------------------------
    def dataset_path(self, dataset: str) -> str:
        return f"{self.root}/{dataset}"

    def partition_path(self, dataset: str, day: dt.date | str) -> str:
        return f"{self.dataset_path(dataset)}/date={as_day(day).isoformat()}"

    def uri(self, path: str) -> str:
        """The URI of a path inside the lake, with the lake's protocol."""
        relative = path[len(self.root) :].lstrip("/")
        return f"{self.root_uri}/{relative}" if relative else self.root_uri

    # reading ---------------------------------------------------------------------------------
    def manifest(self, dataset: str, day: dt.date | str) -> dict[str, Any] | None:
        path = f"{self.partition_path(dataset, day)}/{MANIFEST}"
        try:
            with self.fs.open(path, "rb") as handle:
                return json.loads(handle.read())
        except FileNotFoundError:
            return None

    def partitions(self, dataset: str) -> list[dt.date]:
        """Days that have a committed partition, oldest first."""
        try:
            entries = self.fs.ls(self.dataset_path(dataset), detail=False)
        except FileNotFoundError:
            return []
        days = []
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("date=") and self.fs.exists(f"{entry.rstrip('/')}/{MANIFEST}"):
                days.append(dt.date.fromisoformat(name[5:]))
        return sorted(days)

    def read(self, dataset: str, day: dt.date | str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One committed partition as a frame.

        If a rewrite of the partition commits while we read, the file our manifest named is gone:
        we then read the new manifest once more.
        """
        for attempt in (1, 2):
            manifest = self.manifest(dataset, day)
            if manifest is None:
                raise PartitionNotFoundError(f"no committed partition {dataset}/date={as_day(day)} in {self.root_uri}")
            try:
                return self._read_files(self.partition_path(dataset, day), manifest, columns)
            except FileNotFoundError:
                if attempt == 2:
                    raise
                log.info("partition %s/date=%s was rewritten while reading; reading it again", dataset, day)
        raise AssertionError("unreachable")

    def _read_files(self, base: str, manifest: dict[str, Any], columns: Sequence[str] | None) -> pd.DataFrame:
        frames = []
        for name in manifest["files"]:
            with self.fs.open(f"{base}/{name}", "rb") as handle:
                frames.append(pd.read_parquet(handle, columns=list(columns) if columns else None))
        if not frames:
            return pd.DataFrame(columns=manifest.get("columns", []))
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def read_many(
        self, dataset: str, days: Iterable[dt.date | str], columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Several partitions, concatenated in day order, with a ``partition_date`` column added."""
        frames = []
        for day in sorted(as_day(d) for d in days):
            frame = self.read(dataset, day, columns)
            frame[PARTITION_COLUMN] = pd.Timestamp(day)
            frames.append(frame)
        if not frames:
            raise PartitionNotFoundError(f"no partitions of {dataset} requested")
        return pd.concat(frames, ignore_index=True)

    # writing ---------------------------------------------------------------------------------
    def write(
        self, dataset: str, day: dt.date | str, frame: pd.DataFrame, meta: dict[str, Any] | None = None
    ) -> PartitionInfo:
        """Write ``frame`` as the partition ``dataset/date=day``, replacing what was there, atomically."""
        day = as_day(day)
        base = self.partition_path(dataset, day)
        self.fs.makedirs(base, exist_ok=True)
        previous = self.manifest(dataset, day)
        part = f"part-{uuid.uuid4().hex}.parquet"
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        payload = buffer.getbuffer()
        with self.fs.open(f"{base}/{part}", "wb") as handle:
            for start in range(0, len(payload), WRITE_CHUNK):
                handle.write(payload[start : start + WRITE_CHUNK])
        info = PartitionInfo(
            dataset=dataset,
            partition=day.isoformat(),
            uri=self.uri(base),
            rows=len(frame),
            content_hash=content_hash(frame),
            files=[part],
            committed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            meta=meta or {},
            # The md5 of the file's bytes is also its DVC content address (see versioning.py).
            md5=hashlib.md5(payload, usedforsecurity=False).hexdigest(),
            bytes=len(payload),
        )
        manifest = {**info.to_dict(), "columns": [str(c) for c in frame.columns]}
        staged = f"{base}/.{MANIFEST}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(staged, "wb") as handle:
            handle.write(json.dumps(manifest, indent=1).encode())
        self.fs.mv(staged, f"{base}/{MANIFEST}")  # the commit point
        superseded = set(previous["files"]) - {part} if previous else set()
        self._remove_stale_files(base, keep={part, MANIFEST}, superseded=superseded)
        log.info("committed %s/date=%s: %d rows, hash %s", dataset, day, info.rows, info.content_hash[:12])
        return info

    # append-only datasets (logs) ---------------------------------------------------------------
    def append(self, dataset: str, day: dt.date | str, frame: pd.DataFrame) -> str:
        """Add ``frame`` as a new immutable file to an append-only dataset (no manifest: every file counts).

        The file is written under a hidden name and renamed into place, so a reader never sees half of it.

        Returns:
            The new file's URI.
        """
        day = as_day(day)
        base = self.partition_path(dataset, day)
        self.fs.makedirs(base, exist_ok=True)
        name = f"part-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        staged = f"{base}/.{name}.tmp"
        with self.fs.open(staged, "wb") as handle:
            frame.to_parquet(handle, index=False)
        self.fs.mv(staged, f"{base}/{name}")
        return self.uri(f"{base}/{name}")

    def read_appended(
        self, dataset: str, days: Iterable[dt.date | str], columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Every file of an append-only dataset for ``days`` (empty frame if there are none); only
        ``columns`` if given."""
        frames = []
        for day in sorted({as_day(d) for d in days}):
            base = self.partition_path(dataset, day)
            try:
                names = sorted(self.fs.ls(base, detail=False))
            except FileNotFoundError:
                continue
            for path in names:
                if path.rsplit("/", 1)[-1].startswith("part-") and path.endswith(".parquet"):
                    with self.fs.open(path, "rb") as handle:
                        frames.append(pd.read_parquet(handle, columns=columns))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def delete(self, dataset: str, day: dt.date | str) -> None:
        path = self.partition_path(dataset, day)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def _remove_stale_files(self, base: str, keep: set[str], superseded: set[str]) -> None:
        """Drop the files the previous manifest named, and leftovers of dead writers.

        A file no manifest ever named may belong to a writer still at work, so it goes only once it
        is older than ``ORPHAN_GRACE_S``.
        """
        now = time.time()
        for entry in self.fs.ls(base, detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if name in keep:
                continue
            if name in superseded or now - _modified_ts(entry, default=now) > ORPHAN_GRACE_S:
                self.fs.rm(entry["name"])


ConnectionResolver = Callable[[str], dict[str, Any]]
_resolvers: list[ConnectionResolver] = []


def register_connection_resolver(resolver: ConnectionResolver) -> None:
    """Say how a connection id becomes fsspec storage options (the orchestrator does, when it loads).

    Args:
        resolver: ``resolver(conn_id) -> storage options``; replaces any earlier one.
    """
    _resolvers[:] = [resolver]
    _connection_options.cache_clear()


@functools.cache
def _connection_options(conn_id: str) -> dict[str, Any]:
    """Storage options of a connection, resolved once per process."""
    if not _resolvers:
        raise RuntimeError(
            f"MLP_LAKE_CONN_ID={conn_id} needs the orchestrator to resolve the connection; outside it give the "
            "credentials through MLP_LAKE_STORAGE_OPTIONS or the storage provider's environment variables"
        )
    return _resolvers[0](conn_id)


def _modified_ts(entry: dict[str, Any], default: float) -> float:
    """Modification time of an ``fs.ls`` entry as epoch seconds (local, S3 and GCS spell it differently)."""
    value = entry.get("mtime") or entry.get("LastModified") or entry.get("updated")
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value) if value is not None else default
