"""Shadow deployment: the challenger scores every request off the response path.

With ``MLP_SHADOW_ENABLED`` the model store also serves the ``challenger`` alias, and after each
scoring pass (:class:`~include.mlpipeline.serving.scoring.Scorer`) the pass's feature rows that the
champion answered are handed to :class:`ShadowScorer`: one ``put_nowait`` on a bounded queue, so the
answer never waits for the shadow model. One worker thread scores the queued passes with the
challenger and logs its answers to the prediction log as variant ``shadow``, with the same request
id and record id as the champion's, so the two join (``monitoring/shadow_report.py`` compares them).

Bounded in time: a pass that finds the queue full (``MLP_SHADOW_QUEUE_SIZE`` passes) is dropped, and
so is one that waited longer than ``MLP_SHADOW_MAX_AGE_S`` when the worker reaches it; a shadow
model that fails is counted and logged, never raised. Drops, errors, scored records and the
shadow's latency are Prometheus metrics on the API's ``/metrics``:

- ``mlp_api_shadow_scored_total``: records the shadow model answered;
- ``mlp_api_shadow_dropped_total{reason}``: records not shadow-scored (``queue_full``, ``stale``);
- ``mlp_api_shadow_errors_total``: records whose shadow scoring raised;
- ``mlp_api_shadow_latency_seconds``: from a request's arrival to its shadow answer (per pass);
- ``mlp_api_shadow_model_seconds``: the shadow model's own time per pass.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from include.mlpipeline.core.problem import ProblemSpec
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.serving.answers import task_answers
from include.mlpipeline.serving.feature_arrays import FeatureColumns, take_rows
from include.mlpipeline.serving.model_store import LoadedModel
from include.mlpipeline.serving.prediction_log import CHAMPION, SHADOW, PredictionLog, ScoredBatch, now_utc

log = logging.getLogger(__name__)

SHADOW_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
QUEUE_FULL, STALE = "queue_full", "stale"


@dataclass(frozen=True)
class ShadowWork:
    """One scoring pass, as the shadow model gets it: what the champion answered it from."""

    model: LoadedModel  # the challenger the pass read (one snapshot of the store per pass)
    frame: FeatureColumns  # the pass's feature rows (shared, never changed after the pass)
    keys: np.ndarray  # each record's key
    variants: np.ndarray  # each record's A/B variant: only the champion's records are shadow-scored
    request_ids: Sequence[str]  # per request of the pass
    counts: np.ndarray  # records per request
    arrivals: Sequence[float]  # time.perf_counter() when each request arrived
    prediction_log: PredictionLog
    queued: float  # time.perf_counter() when it was queued


class ShadowMetrics:
    """The shadow's Prometheus metrics, on the API's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.scored = Counter(
            "mlp_api_shadow_scored_total", "Records the shadow model answered.", ["model_version"], registry=registry
        )
        self.dropped = Counter(
            "mlp_api_shadow_dropped_total",
            "Records not shadow-scored: queue_full (the queue was full) or stale (waited past MLP_SHADOW_MAX_AGE_S).",
            ["reason"],
            registry=registry,
        )
        self.errors = Counter("mlp_api_shadow_errors_total", "Records whose shadow scoring raised.", registry=registry)
        self.latency = Histogram(
            "mlp_api_shadow_latency_seconds",
            "From a request's arrival to its shadow answer (per scoring pass).",
            buckets=SHADOW_BUCKETS,
            registry=registry,
        )
        self.model_seconds = Histogram(
            "mlp_api_shadow_model_seconds",
            "The shadow model's own time per scoring pass.",
            buckets=SHADOW_BUCKETS,
            registry=registry,
        )


class ShadowScorer:
    """A bounded queue of scoring passes and the worker thread that shadow-scores them (module doc)."""

    def __init__(self, problem: ProblemSpec, settings: Settings, registry: CollectorRegistry):
        self.problem = problem
        self.answers = task_answers(problem)
        self.max_age_s = settings.shadow_max_age_s
        self.metrics = ShadowMetrics(registry)
        self._queue: queue.Queue[ShadowWork | None] = queue.Queue(maxsize=settings.shadow_queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def offer(
        self, model: LoadedModel, frame: FeatureColumns, *, keys: np.ndarray, variants: np.ndarray, jobs: Sequence[Any],
        counts: np.ndarray,
    ) -> bool:  # fmt: skip
        """Queue a scoring pass (its ``ScoringJob`` s, ``counts`` records each) for ``model``; see :meth:`submit`."""
        request_ids, arrivals = [job.request_id for job in jobs], [job.started for job in jobs]
        work = ShadowWork(model, frame, keys, variants, request_ids, counts, arrivals, jobs[0].prediction_log,
                          time.perf_counter())  # fmt: skip
        return self.submit(work)

    def submit(self, work: ShadowWork) -> bool:
        """Queue a pass for the shadow model without waiting; False (and counted) when the queue is full."""
        if self._thread is None:
            self.start()
        try:
            self._queue.put_nowait(work)
        except queue.Full:
            self.metrics.dropped.labels(QUEUE_FULL).inc(int(work.counts.sum()))
            return False
        return True

    def start(self) -> None:
        """Start the worker thread (once; :meth:`submit` starts it on the first pass)."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="shadow-scoring", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the worker finish what is queued, then end it."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("shadow queue still full after %.0f s at shutdown: its passes are not scored", timeout)
        self._thread.join(timeout=timeout)
        self._thread = None

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued pass has been handled (tests, benches); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def _work(self) -> None:
        while True:
            work = self._queue.get()
            try:
                if work is None:
                    return
                self.score(work)
            finally:
                self._queue.task_done()

    def score(self, work: ShadowWork) -> None:
        """Shadow-score one pass and log it; drops it when stale, counts (never raises) a failure."""
        rows = work.variants == CHAMPION
        records = int(rows.sum())
        if not records:
            return
        if time.perf_counter() - work.queued > self.max_age_s:
            self.metrics.dropped.labels(STALE).inc(records)
            return
        try:
            self._log(work, rows)
        except Exception as error:  # the shadow never fails anything: count it, say why, go on
            self.metrics.errors.inc(records)
            log.warning("shadow model %s failed on %d records: %s: %s", work.model.version, records,
                        type(error).__name__, error)  # fmt: skip

    def _log(self, work: ShadowWork, rows: np.ndarray) -> None:
        model, every = work.model, bool(rows.all())
        frame = work.frame if every else take_rows(work.frame, rows)
        started = time.perf_counter()
        columns = self.answers.columns(model, model.predict(frame))
        done = time.perf_counter()
        records = len(columns[next(iter(columns))])
        latency_ms = np.repeat([(done - arrival) * 1000 for arrival in work.arrivals], work.counts)
        request_ids = np.repeat(np.asarray(work.request_ids, dtype=object), work.counts)
        logged: dict[str, Any] = {
            "request_id": request_ids if every else request_ids[rows],
            "id": work.keys if every else work.keys[rows],
            "variant": np.full(records, SHADOW, dtype=object),
            "model_version": np.full(records, model.version, dtype=object),
            **columns,
            "latency_ms": latency_ms if every else latency_ms[rows],
        }
        work.prediction_log.record(ScoredBatch(now_utc(), logged, frame, tuple(self.problem.feature_columns)))
        self.metrics.scored.labels(model.version).inc(records)
        self.metrics.model_seconds.observe(done - started)
        self.metrics.latency.observe(done - min(work.arrivals))
