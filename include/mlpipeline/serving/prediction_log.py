"""A/B routing and the prediction log.

Routing: a record goes to the challenger when the hash of its key falls in the first
``ab_challenger_share`` of the hash space. The hash is SHA-256 of the key, so the assignment is
sticky (the same flight always sees the same variant, in every API process and after restarts) and
independent of the order or batch a record arrives in.

Prediction log: every answered record is logged, with the same columns whatever the task kind
(:data:`LOG_SCHEMA`; the A/B evaluation and monitoring read them): time, request id, key, variant,
model version, the answer (``probability``, ``label``, ``value``, ``probabilities``, each filled or
empty by kind), latency, features hash, and the feature values themselves (``f_<feature>``), which
monitoring compares with the training data. Records wait in memory and are flushed to the append-only lake
dataset ``predictions/date=YYYY-MM-DD`` every ``prediction_log_flush_s`` seconds and at shutdown,
so logging never slows a request down. A scoring pass hands over its arrays as they are
(:class:`ScoredBatch`); the log rows, and the features hash, are built for all passes of a flush at
once in the flush thread, since building them cost a pass about as much as its model did, whatever
its size. Outcomes posted to ``/feedback`` go to ``feedback/``.

Idempotent logging: a caller may name its request (``X-Request-Id``, :data:`REQUEST_ID_PATTERN`),
and a request the log has already logged under that id is answered again but not logged again,
so a retry adds no prediction twice (the traffic replay names each batch by its Airflow run, see
``deployment/traffic.py``). The log remembers the newest :data:`REMEMBERED_REQUESTS` ids it wrote;
what it wrote before the API last started is in the lake, where the replay looks itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
CHAMPION, CHALLENGER = "champion", "challenger"
SHADOW = "shadow"  # the challenger's answer to a record the champion answered (serving/shadow.py)
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""A caller's request id: 1 to 128 letters, digits and ``._:-``, not starting with punctuation."""
REMEMBERED_REQUESTS = 100_000
"""Request ids the log remembers, newest first, to skip a repeat (a retry comes within minutes)."""


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a key (first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def assign_variants(keys: Sequence[str], challenger_share: float) -> np.ndarray:
    """``challenger`` for keys whose bucket is below the share, else ``champion``."""
    if challenger_share <= 0:
        return np.full(len(keys), CHAMPION, dtype=object)
    return np.array([CHALLENGER if bucket(str(k)) < challenger_share else CHAMPION for k in keys], dtype=object)


def features_hash(features: pd.DataFrame) -> pd.Series:
    """A short hash of each row's feature values (to spot identical inputs without storing them twice)."""
    values = pd.util.hash_pandas_object(features, index=False).to_numpy(dtype="uint64")
    # 16 hex digits per row, formatted for all rows at once (a per-row f-string cost microseconds a row).
    digits = np.frombuffer(values.astype(">u8").tobytes().hex().encode(), dtype="S16").astype(str)
    return pd.Series(digits.astype(object), index=features.index)


LOG_SCHEMA = {
    "ts": "time of the scoring pass (UTC)",
    "request_id": "the /predict request that asked",
    "id": "key of the record",
    "variant": "A/B variant that answered (champion or challenger), or shadow: the challenger's unserved answer",
    "model_version": "registered model version that answered",
    "probability": "float64: binary p(positive); multiclass the predicted label's probability; regression NaN",
    "label": "text: binary the positive or negative label; multiclass the class; regression empty",
    "value": "float64: regression's prediction; NaN otherwise",
    "probabilities": 'text: multiclass every class\'s probability as JSON {"class": probability}; empty otherwise',
    "latency_ms": "milliseconds from the request's arrival to its answer",
    "features_hash": "16 hex digits hashing the record's feature values",
}
"""The prediction log's columns (then one ``f_<feature>`` column per feature), by kind of task."""

_ANSWER_DEFAULTS = {"probability": np.nan, "label": "", "value": np.nan, "probabilities": ""}  # when a kind has none
# The schema's columns a scoring pass hands over (the log adds ts and features_hash).
_PASSED = ("request_id", "id", "variant", "model_version", *_ANSWER_DEFAULTS, "latency_ms")


def _logged_column(name: str, parts: Sequence[np.ndarray | None], counts: Sequence[int]) -> np.ndarray:
    """One log column of several passes: their values, or the column's empty value where a pass's task
    kind has none; multiclass class probabilities (dicts) become JSON text."""
    values = []
    for part, count in zip(parts, counts, strict=True):
        if part is None:
            empty = _ANSWER_DEFAULTS[name]
            values.append(np.full(count, empty, dtype="float64" if isinstance(empty, float) else object))
        elif name == "probabilities":
            values.append(np.array([orjson.dumps(row).decode() for row in part.tolist()], dtype=object))
        else:
            values.append(part)
    return values[0] if len(values) == 1 else np.concatenate(values)


@dataclass(frozen=True)
class ScoredBatch:
    """The records one scoring pass answered, as the log will need them; becomes rows at flush time.

    ``columns`` holds one array per log column (one value per record, in the order of
    ``features``' rows): the :data:`LOG_SCHEMA` columns a scoring pass knows, logged in the schema's
    order (an answer column its task kind lacks is logged empty; multiclass ``probabilities`` come as
    dicts and are logged as JSON text; columns outside the schema, like binary's ``positive``, which
    its label says, are not logged), ``ts`` the time of the pass, and ``features`` at least the
    ``feature_columns`` (logged with an ``f_`` prefix and hashed into ``features_hash``): a frame, or
    a mapping of column name to array as the API's array path builds them (made a frame here, at
    flush time: a frame per pass cost a one-record pass a fifth of its time).
    """

    ts: pd.Timestamp
    columns: dict[str, np.ndarray]
    features: pd.DataFrame | Mapping[str, Any]
    feature_columns: tuple[str, ...]

    @property
    def count(self) -> int:
        """Records the pass answered."""
        features = self.features
        return len(features) if isinstance(features, pd.DataFrame) else len(features[self.feature_columns[0]])

    def feature_frame(self) -> pd.DataFrame:
        """The feature columns as a frame."""
        if isinstance(self.features, pd.DataFrame):
            return self.features[list(self.feature_columns)]
        return pd.DataFrame({name: self.features[name] for name in self.feature_columns})

    @staticmethod
    def rows(batches: Sequence[ScoredBatch]) -> pd.DataFrame:
        """The log rows of several passes, in order: one hash call and one frame for all of them."""
        counts = [batch.count for batch in batches]
        feature_columns = list(batches[0].feature_columns)
        if len(batches) == 1:
            features = batches[0].feature_frame().reset_index(drop=True)
        elif not any(isinstance(batch.features, pd.DataFrame) for batch in batches):  # arrays: joined per column
            parts = [batch.features for batch in batches]
            features = pd.DataFrame({name: np.concatenate([part[name] for part in parts]) for name in feature_columns})
        else:
            features = pd.concat([batch.feature_frame() for batch in batches], ignore_index=True)
        times = np.repeat(np.array([batch.ts.to_datetime64() for batch in batches]), counts)  # UTC, naive
        frame = pd.DataFrame(
            {
                "ts": pd.Series(times).dt.tz_localize("UTC"),
                **{
                    name: _logged_column(name, [batch.columns.get(name) for batch in batches], counts)
                    for name in _PASSED
                    if name in _ANSWER_DEFAULTS or name in batches[0].columns
                },
                "features_hash": features_hash(features).to_numpy(),
            }
        )
        return frame.join(features.add_prefix("f_"))


class PredictionLog:
    """Buffers prediction records and appends them to the lake in the background."""

    def __init__(self, lake_factory: Callable[[], object], flush_s: float, enabled: bool = True):
        self._lake_factory = lake_factory
        self._lake = None
        self.flush_s = flush_s
        self.enabled = enabled
        self._pending: list[pd.DataFrame | ScoredBatch] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged: OrderedDict[str, None] = OrderedDict()  # request ids written, oldest first
        self.flushed_rows = 0
        self.repeated_rows = 0  # rows of requests logged before, left out
        self.last_error: str | None = None

    def record(self, records: pd.DataFrame | ScoredBatch) -> None:
        """Queue records: log rows, or a scoring pass's arrays to turn into rows at flush; cheap, no I/O."""
        size = records.count if isinstance(records, ScoredBatch) else len(records)
        if self.enabled and size:
            with self._lock:
                self._pending.append(records)

    def flush(self) -> int:
        """Write what is queued, one file per day; returns rows written. Keeps what was queued if building
        the rows or writing them fails (the rows are built again on the next try)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            unlogged, written_ids, repeated = self._first_answers(pending)
            if not unlogged:
                self.repeated_rows += repeated
                return 0
            frame = _log_rows(unlogged)
            if self._lake is None:
                self._lake = self._lake_factory()
            first, last = frame["ts"].min(), frame["ts"].max()
            if first.date() == last.date():  # the usual flush: no split, no copy
                self._lake.append(PREDICTIONS, first.date(), frame)
            else:
                for day, rows in frame.groupby(frame["ts"].dt.date):
                    self._lake.append(PREDICTIONS, day, rows.reset_index(drop=True))
        except Exception as error:  # the log must never take the API down; retry on the next flush
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("prediction log flush failed (%d batches kept for the next try): %s", len(pending), error)
            with self._lock:
                self._pending[:0] = pending
            return 0
        self.flushed_rows += len(frame)
        self.repeated_rows += repeated
        self.last_error = None
        self._remember(written_ids)
        return len(frame)

    def _first_answers(self, pending: Sequence[pd.DataFrame | ScoredBatch]) -> tuple[list, list[str], int]:
        """The queued records without the requests logged before (in an earlier flush or earlier in
        ``pending``), the request ids they log (remembered once written, :meth:`_remember`) and the
        number of records left out."""
        kept: list[pd.DataFrame | ScoredBatch] = []
        written: list[str] = []
        seen: set[str] = set()
        repeated = 0
        for records in pending:
            ids = _request_ids(records)
            if ids is None:  # rows without a request id: nothing to repeat
                kept.append(records)
                continue
            mask, fresh = _first_requests(ids, seen, self._logged)
            seen.update(fresh)
            written.extend(fresh)
            if mask is None:
                kept.append(records)
            elif mask.any():
                kept.append(_rows_where(records, mask))
            repeated += 0 if mask is None else len(ids) - int(mask.sum())
        return kept, written, repeated

    def _remember(self, request_ids: Sequence[str]) -> None:
        for request in request_ids:
            self._logged[request] = None
        while len(self._logged) > REMEMBERED_REQUESTS:
            self._logged.popitem(last=False)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.flush_s):
                self.flush()

        self._thread = threading.Thread(target=loop, name="prediction-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self.flush()


def _request_ids(records: pd.DataFrame | ScoredBatch) -> np.ndarray | None:
    """The request id of each queued record, or None when they have none."""
    if isinstance(records, ScoredBatch):
        ids = records.columns.get("request_id")
        variants = records.columns.get("variant")
        if ids is not None and variants is not None and len(variants) and variants[0] == SHADOW:
            # A shadow pass shares its request's id: logged once per request too, apart from the answer.
            ids = np.array([f"{SHADOW}:{request}" for request in ids.tolist()], dtype=object)
    else:
        ids = records["request_id"].to_numpy() if "request_id" in records.columns else None
    return None if ids is None else np.asarray(ids)


def _first_requests(ids: np.ndarray, *logged: set[str] | OrderedDict[str, None]) -> tuple[np.ndarray | None, list[str]]:
    """Which records to log: a request is a run of equal ids, and the first run of each id is logged
    unless an id of ``logged`` holds it. Returns the mask (None: every record) and the ids it logs."""
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    fresh: dict[str, None] = {}
    keep = np.zeros(len(starts), dtype=bool)
    for index, request in enumerate(ids[starts].tolist()):
        if request not in fresh and not any(request in known for known in logged):
            fresh[request] = None
            keep[index] = True
    if keep.all():
        return None, list(fresh)
    return np.repeat(keep, np.diff(np.r_[starts, len(ids)])), list(fresh)


def _rows_where(records: pd.DataFrame | ScoredBatch, mask: np.ndarray) -> pd.DataFrame | ScoredBatch:
    """The queued records where ``mask`` holds."""
    if isinstance(records, pd.DataFrame):
        return records[mask].reset_index(drop=True)
    rows = np.flatnonzero(mask)
    columns = {name: np.asarray(values)[rows] for name, values in records.columns.items()}
    return ScoredBatch(records.ts, columns, records.feature_frame().iloc[rows], records.feature_columns)


def _log_rows(pending: Sequence[pd.DataFrame | ScoredBatch]) -> pd.DataFrame:
    """Queued records as one frame of log rows, in the order they were queued."""
    frames: list[pd.DataFrame] = []
    batches: list[ScoredBatch] = []
    for records in pending:
        if isinstance(records, ScoredBatch):
            batches.append(records)
            continue
        if batches:
            frames.append(ScoredBatch.rows(batches))
            batches = []
        frames.append(records)
    if batches:
        frames.append(ScoredBatch.rows(batches))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.UTC))
