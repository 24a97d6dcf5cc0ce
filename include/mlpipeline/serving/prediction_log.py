"""A/B routing and the prediction log.

Routing: a record goes to the challenger when the hash of its key falls in the first
``ab_challenger_share`` of the hash space. The hash is SHA-256 of the key, so the assignment is
sticky (the same flight always sees the same variant, in every API process and after restarts) and
independent of the order or batch a record arrives in.

Prediction log: every answered record is logged (request id, time, key, variant, model version,
features hash, probability, label, latency, and the feature values themselves, which monitoring
compares with the training data). Records wait in memory and are flushed to the append-only lake
dataset ``predictions/date=YYYY-MM-DD`` every ``prediction_log_flush_s`` seconds and at shutdown,
so logging never slows a request down. Outcomes posted to ``/feedback`` go to ``feedback/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
CHAMPION, CHALLENGER = "champion", "challenger"


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


class PredictionLog:
    """Buffers prediction records and appends them to the lake in the background."""

    def __init__(self, lake_factory: Callable[[], object], flush_s: float, enabled: bool = True):
        self._lake_factory = lake_factory
        self._lake = None
        self.flush_s = flush_s
        self.enabled = enabled
        self._pending: list[pd.DataFrame] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushed_rows = 0
        self.last_error: str | None = None

    def record(self, frame: pd.DataFrame) -> None:
        """Queue records (one row per prediction); cheap, never blocks on I/O."""
        if self.enabled and len(frame):
            with self._lock:
                self._pending.append(frame)

    def flush(self) -> int:
        """Write what is queued, one file per day; returns rows written. Keeps the rows if writing fails."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        frame = pd.concat(pending, ignore_index=True)
        try:
            if self._lake is None:
                self._lake = self._lake_factory()
            for day, rows in frame.groupby(frame["ts"].dt.date):
                self._lake.append(PREDICTIONS, day, rows.reset_index(drop=True))
        except Exception as error:  # the log must never take the API down; retry on the next flush
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("prediction log flush failed (%d rows kept for the next try): %s", len(frame), self.last_error)
            with self._lock:
                self._pending.insert(0, frame)
            return 0
        self.flushed_rows += len(frame)
        self.last_error = None
        return len(frame)

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


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.UTC))
