"""Request coalescing: concurrent requests share one pass through the feature code and the model.

The problem's feature code (``serving_frame`` + ``build_features``) and the model pipeline cost
about the same for 1 record as for 1,000: the time goes to per-call work (joins, lookups, column
transformers), not to rows. So when requests arrive together, one caller scores all of them in one
pass instead of each paying that cost alone.

No extra thread: a caller queues its job; if no batch is running it becomes the leader and runs
``process`` over its own job and the oldest queued ones (up to ``max_size`` rows); callers that
arrive meanwhile wait and are scored together in the next batch, led by one of them. A lone caller
is processed at once, exactly as without coalescing. Under concurrency (the last batch had several
jobs) a new leader first waits briefly, at most ``GATHER_SHARE`` of the last batch's time, for as
many callers as the last batch had: otherwise the first caller to come back would run alone and
the others in a batch of their own, twice the work. Batches run one after another, so a batch
never sees an older model than the batch before it.

If ``process`` fails for a batch, each of its jobs is retried alone, so a bad request fails only
its own caller, with the error it would have had on its own. ``process`` may also return an
exception in place of a job's result: that job fails with it, the others get their results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

GATHER_SHARE = 0.2  # under concurrency, a leader waits at most this share of the last batch's time for callers
Job = TypeVar("Job")
Result = TypeVar("Result")


class _Slot(Generic[Job, Result]):
    __slots__ = ("done", "error", "job", "result")

    def __init__(self, job: Job):
        self.job = job
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None

    def settle(self, outcome: Result | BaseException) -> None:
        """Keep what processing gave this job: its result, or the exception it fails with."""
        if isinstance(outcome, BaseException):
            self.result, self.error = None, outcome
        else:
            self.result, self.error = outcome, None

    def get(self) -> Result:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class Coalescer(Generic[Job, Result]):
    """Runs ``process(jobs) -> results`` (same order) over the jobs of concurrent callers together."""

    def __init__(self, process: Callable[[Sequence[Job]], Sequence[Result]], size: Callable[[Job], int], max_size: int):
        self._process = process
        self._size = size
        self._max_size = max_size
        self._queue: list[_Slot[Job, Result]] = []
        self._busy = False
        self._changed = threading.Condition()
        self._last_jobs = 0  # jobs in the last batch, and how long it took
        self._last_seconds = 0.0

    @property
    def waiting(self) -> int:
        """Jobs queued for the next batch."""
        return len(self._queue)

    def run(self, job: Job) -> Result:
        """Process ``job``, together with whatever other callers queued meanwhile; its result or its error."""
        slot: _Slot[Job, Result] = _Slot(job)
        with self._changed:
            self._queue.append(slot)
            self._changed.notify_all()  # a leader may be gathering
            while self._busy and not slot.done:
                self._changed.wait()
            if slot.done:
                return slot.get()
            self._busy = True  # this caller leads the next batch
            if self._last_jobs > 1:  # callers are concurrent: let the last batch's callers come back first
                self._changed.wait_for(
                    lambda: len(self._queue) >= self._last_jobs, timeout=min(GATHER_SHARE * self._last_seconds, 0.05)
                )
            batch = self._take(slot)
        try:
            self._run(batch)
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
        return slot.get()

    def _take(self, leader: _Slot[Job, Result]) -> list[_Slot[Job, Result]]:
        """The leader's own job, then queued jobs in arrival order while the batch stays within ``max_size`` rows."""
        batch, rows = [leader], self._size(leader.job)
        for slot in self._queue:
            if slot is leader:
                continue
            if rows + self._size(slot.job) > self._max_size:
                break
            batch.append(slot)
            rows += self._size(slot.job)
        self._queue = [slot for slot in self._queue if slot not in batch]
        return batch

    def _run(self, batch: list[_Slot[Job, Result]]) -> None:
        started = time.perf_counter()
        try:
            try:
                results = self._process([slot.job for slot in batch])
                for slot, result in zip(batch, results, strict=True):
                    slot.settle(result)
            except Exception as error:
                if len(batch) == 1:
                    batch[0].error = error
                else:
                    for slot in batch:  # isolate the failure: each job alone, its own answer or error
                        try:
                            slot.settle(self._process([slot.job])[0])
                        except Exception as own_error:
                            slot.error = own_error
        finally:
            for slot in batch:
                if slot.result is None and slot.error is None:
                    slot.error = RuntimeError("the batch this request was part of was aborted")
                slot.done = True
            self._last_jobs, self._last_seconds = len(batch), time.perf_counter() - started
