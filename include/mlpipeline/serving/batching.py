"""Request coalescing: concurrent requests share one pass through the feature code and the model.

The problem's feature code (``serving_frame`` + ``build_features``) and the model pipeline cost
about the same for 1 record as for 1,000: the time goes to per-call work (joins, lookups, column
transformers), not to rows. So when requests arrive together, one caller scores all of them in one
pass instead of each paying that cost alone.

No timer and no extra thread: a caller queues its job; if no batch is running it becomes the
leader, takes every queued job (up to ``max_size`` rows) and runs ``process`` over them; callers
that arrive meanwhile wait and are scored together in the next batch, by one of them (its own job first, then the oldest). A lone
request is therefore processed at once, exactly as without coalescing. Batches run one after
another, so a batch never sees an older model than the batch before it.

If ``process`` fails for a batch, each of its jobs is retried alone, so a bad request fails only
its own caller, with the error it would have had on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


class _Slot(Generic[Job, Result]):
    __slots__ = ("done", "error", "job", "result")

    def __init__(self, job: Job):
        self.job = job
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None

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
        self.batches = 0  # batches run so far (for tests and metrics)

    @property
    def waiting(self) -> int:
        """Jobs queued for the next batch."""
        return len(self._queue)

    def run(self, job: Job) -> Result:
        """Process ``job``, together with whatever other callers queued meanwhile; its result or its error."""
        slot: _Slot[Job, Result] = _Slot(job)
        with self._changed:
            self._queue.append(slot)
            while self._busy and not slot.done:
                self._changed.wait()
            if slot.done:
                return slot.get()
            self._busy = True  # this caller leads the next batch
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
        self.batches += 1
        try:
            try:
                results = self._process([slot.job for slot in batch])
                for slot, result in zip(batch, results, strict=True):
                    slot.result = result
            except Exception as error:
                if len(batch) == 1:
                    batch[0].error = error
                else:
                    for slot in batch:  # isolate the failure: each job alone, its own answer or error
                        try:
                            slot.result = self._process([slot.job])[0]
                        except Exception as own_error:
                            slot.error = own_error
        finally:
            for slot in batch:
                if slot.result is None and slot.error is None:
                    slot.error = RuntimeError("the batch this request was part of was aborted")
                slot.done = True
