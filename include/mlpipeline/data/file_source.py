"""A generic file source: one CSV or Parquet file per source table and day, behind any fsspec URL.

A URI template names the files, for example ``s3://bucket/raw/{table}/{date}.csv``. ``{table}`` is the
source table's name, ``{date}`` the logical day (a ``datetime.date``, so ``{date:%Y/%m/%d}`` works too).
A template without ``{date}`` is one file for every day (a reference table such as an airline list).
The format follows the extension (``.csv``, ``.parquet``; ``.gz``, ``.bz2``, ``.xz`` or ``.zip`` on a
CSV decompress it) unless given explicitly.

What comes back is what :attr:`include.mlpipeline.core.problem.Source.extract` must return:

- ``{day: frame}`` for every requested day;
- ``None`` for a day whose file does not exist: a legitimate gap (logged), which the ETL records as a
  ``no_data`` partition;
- :class:`~include.mlpipeline.data.quality.DataQualityError` for a file that exists but cannot be read: empty
  (0 bytes), truncated, corrupt, not the format its name says. The message names the file and the parse
  error. Reading it again cannot help, so orchestrators fail the task without retrying.

Anything else, a refused connection, a timeout, missing permissions, stays an ordinary exception,
which orchestrators retry. To keep that line sharp, a file is read in two phases: its bytes are
fetched first (every error there is I/O: transient or configuration), then parsed from memory (every
error there is about the bytes: deterministic). Source files are daily slices, so holding one in
memory is cheap.
"""

from __future__ import annotations

import bz2
import csv
import datetime as dt
import gzip
import io
import logging
import lzma
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fsspec
import pandas as pd

from include.mlpipeline.data.quality import DataQualityError

log = logging.getLogger(__name__)

CSV = "csv"
PARQUET = "parquet"
FORMATS = (CSV, PARQUET)
READABLE_FILE_CHECK = "readable_file"

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def file_uri(uri_template: str, table: str, day: dt.date | None = None) -> str:
    """The URI of one table's file for one day.

    Args:
        uri_template: Template with ``{table}`` and optionally ``{date}`` placeholders.
        table: Source table name.
        day: The logical day; needed only if the template has ``{date}``.

    Returns:
        The file's URI.

    Raises:
        ValueError: if the template needs a day and none is given, or has an unknown placeholder.
    """
    if is_daily(uri_template) and day is None:
        raise ValueError(f"{uri_template!r} has a {{date}} placeholder: a day is needed")
    try:
        return uri_template.format(table=table, date=day)
    except (KeyError, IndexError) as error:
        raise ValueError(f"{uri_template!r}: only {{table}} and {{date}} can be filled in ({error!r})") from None


def is_daily(uri_template: str) -> bool:
    """Whether the template names one file per day (it has a ``{date}`` placeholder).

    Args:
        uri_template: The URI template.

    Returns:
        True for ``.../{date}.csv`` (also with a format spec such as ``{date:%Y%m%d}``).
    """
    return "{date}" in uri_template or "{date:" in uri_template


def file_format(uri: str, configured: str | None = None) -> str:
    """The format of a file: the configured one, else the one its extension says.

    Args:
        uri: The file's URI.
        configured: ``"csv"``, ``"parquet"`` or None (decide by extension).

    Returns:
        ``"csv"`` or ``"parquet"``.

    Raises:
        ValueError: for an unknown configured format or an extension that names neither.
    """
    if configured:
        if configured.lower() not in FORMATS:
            raise ValueError(f"unknown file format {configured!r}; use one of {FORMATS}")
        return configured.lower()
    name = uri.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith(".csv"):
        return CSV
    if name.endswith(_PARQUET_SUFFIXES):
        return PARQUET
    raise ValueError(f"cannot tell the format of {uri} from its extension: name the format (csv or parquet)")


def fetch_bytes(uri: str, storage_options: Mapping[str, Any] | None = None) -> bytes | None:
    """The bytes of a file, or None if it does not exist.

    Args:
        uri: Any fsspec URL.
        storage_options: fsspec options of its filesystem (endpoint, credentials, ...).

    Returns:
        The file's content, or None when there is no such file.

    Raises:
        Exception: whatever the filesystem raises for other failures (connection refused, timeout,
            access denied); those are left alone so that orchestrators retry them.
    """
    fs, path = fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
    try:
        with fs.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def parse_file(data: bytes, uri: str, *, fmt: str, gate: str) -> pd.DataFrame:
    """Parse a file's bytes into a frame; any problem with the bytes is a :class:`DataQualityError`.

    Args:
        data: The file's content.
        uri: Where it came from (named in errors and logs).
        fmt: ``"csv"`` or ``"parquet"``.
        gate: Gate name for the error (``raw_<table>`` in the ETL).

    Returns:
        The file as a frame, values as the file spells them (the raw contract coerces them).

    Raises:
        DataQualityError: for an empty, truncated or corrupt file, naming the file and the parse error.
    """

    def unreadable(reason: str) -> DataQualityError:
        return DataQualityError(gate, {READABLE_FILE_CHECK: 0}, f"Cannot read {uri}: {reason}")

    if not data:
        raise unreadable("the file is empty (0 bytes)")
    try:
        if fmt == PARQUET:
            return pd.read_parquet(io.BytesIO(data))
        return _parse_csv(_decompress(data, uri))
    except MemoryError:
        raise
    except _MalformedCsvError as error:
        raise unreadable(str(error)) from None
    except Exception as error:  # parsing in memory: every failure is about the bytes, none is transient
        raise unreadable(f"{type(error).__name__}: {error}") from error


def read_file(
    uri: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    fmt: str | None = None,
    gate: str = "raw",
) -> pd.DataFrame | None:
    """One source file as a frame, or None if it does not exist.

    Args:
        uri: Any fsspec URL (``file://``, ``s3://``, ``gs://``, ...).
        storage_options: fsspec options of its filesystem.
        fmt: ``"csv"``, ``"parquet"`` or None (by extension).
        gate: Gate name used in a :class:`DataQualityError`.

    Returns:
        The frame, or None when the file does not exist.

    Raises:
        DataQualityError: the file exists but cannot be read (deterministic: do not retry).
    """
    fmt = file_format(uri, fmt)
    data = fetch_bytes(uri, storage_options)
    if data is None:
        return None
    frame = parse_file(data, uri, fmt=fmt, gate=gate)
    log.info("read %s: %d rows, %d columns (%d bytes)", uri, len(frame), len(frame.columns), len(data))
    return frame


def extract_files(
    table: str,
    days: Sequence[dt.date],
    uri_template: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    fmt: str | None = None,
) -> dict[dt.date, pd.DataFrame | None]:
    """A source table's file for each day, in the shape ``Source.extract`` returns.

    Args:
        table: Source table name (fills ``{table}``; the error gate is ``raw_<table>``).
        days: Logical days to extract.
        uri_template: Where the files are, e.g. ``s3://bucket/raw/{table}/{date}.csv``. Without
            ``{date}`` one file serves every day (a reference table), read once.
        storage_options: fsspec options of the files' filesystem.
        fmt: ``"csv"``, ``"parquet"`` or None (by extension).

    Returns:
        ``{day: frame}``, with None for a day whose file does not exist.

    Raises:
        DataQualityError: a file exists but cannot be read.
    """
    gate = f"raw_{table}"
    if not is_daily(uri_template):
        uri = file_uri(uri_template, table)
        frame = read_file(uri, storage_options=storage_options, fmt=fmt, gate=gate)
        if frame is None:
            log.info("%s: no file at %s; no data for %d days", table, uri, len(days))
        return dict.fromkeys(days, frame)
    slices: dict[dt.date, pd.DataFrame | None] = {}
    for day in days:
        uri = file_uri(uri_template, table, day)
        slices[day] = read_file(uri, storage_options=storage_options, fmt=fmt, gate=gate)
        if slices[day] is None:
            log.info("%s: no file at %s; no data for %s", table, uri, day)
    return slices


def merge_storage_options(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """fsspec storage options from several layers, later layers winning.

    Nested option dicts (``client_kwargs``, ``config_kwargs``) are merged key by key, so a connection
    can add credentials and an endpoint without dropping a configured ``client_kwargs`` entry.

    Args:
        layers: Option dicts, lowest precedence first; None is skipped.

    Returns:
        The merged options (a new dict).
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged


# ----------------------------------------------------------------------------------- parsing
class _MalformedCsvError(ValueError):
    """A CSV whose structure shows it was cut off or mangled."""


def _unzip_single_member(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise _MalformedCsvError(f"a zipped CSV must hold exactly one file, this one holds {members}")
        return archive.read(members[0])


def _decompress(data: bytes, uri: str) -> bytes:
    decompressors: dict[str, Callable[[bytes], bytes]] = {
        ".gz": gzip.decompress,
        ".bz2": bz2.decompress,
        ".xz": lzma.decompress,
        ".zip": _unzip_single_member,
    }
    for suffix, decompress in decompressors.items():
        if uri.lower().endswith(suffix):
            return decompress(data)
    return data


def _parse_csv(data: bytes) -> pd.DataFrame:
    """Parse CSV bytes, refusing files that were cut off.

    pandas pads a short row with NaN and reads a half-written last value as if complete, so a
    truncated file would pass as data with a few odd rows. Two signs of truncation are checked
    first: the file does not end with a line break (every CSV writer ends its last row with one),
    and a row has fewer fields than the header.
    """
    if not data.endswith((b"\n", b"\r")):
        raise _MalformedCsvError("the last line has no line break: the file looks truncated")
    text = data.decode("utf-8-sig")
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise _MalformedCsvError("no header line")
    for row in rows:
        if row and len(row) < len(header):
            raise _MalformedCsvError(
                f"line {rows.line_num} has {len(row)} of the header's {len(header)} fields: "
                "the file looks truncated or malformed"
            )
    # Same NA spelling as the package replay (pandas' defaults, which include "NA").
    return pd.read_csv(io.StringIO(text), low_memory=False)
