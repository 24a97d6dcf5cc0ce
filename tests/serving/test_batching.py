"""Request coalescing (include/mlpipeline/serving/batching.py), driven step by step with real threads."""

from __future__ import annotations

import threading
import time

import pytest

from include.mlpipeline.serving.batching import Coalescer


class Recorder:
    """A ``process`` function that records its batches and can hold the first one until released."""

    def __init__(self, hold_first: bool = False):
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, jobs):
        self.batches.append(list(jobs))
        self.entered.set()
        self.release.wait(timeout=60)
        if any(job.startswith("bad") for job in jobs):
            raise ValueError(f"cannot process {[j for j in jobs if j.startswith('bad')]}")
        return [job.upper() for job in jobs]


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def call_all(coalescer: Coalescer, jobs: list[str], results: dict) -> list[threading.Thread]:
    def call(job: str) -> None:
        try:
            results[job] = coalescer.run(job)
        except Exception as error:
            results[job] = error

    threads = [threading.Thread(target=call, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    return threads


def run_behind_a_held_batch(coalescer: Coalescer, held: Recorder, jobs: list[str]) -> dict:
    """Job "first" runs alone and is held while ``jobs`` queue, then all finish: each job's result or error."""
    results: dict = {}
    (leader,) = call_all(coalescer, ["first"], results)
    held.entered.wait(timeout=30)
    waiting = call_all(coalescer, jobs, results)
    wait_until(lambda: coalescer.waiting == len(jobs))
    held.release.set()
    for thread in [leader, *waiting]:
        thread.join(timeout=60)
    return results


def test_a_lone_job_is_processed_at_once():
    process = Recorder()
    coalescer = Coalescer(process, len, max_size=100)
    assert coalescer.run("a") == "A"
    assert process.batches == [["a"]]


def test_jobs_arriving_during_a_batch_are_processed_together_in_the_next():
    process = Recorder(hold_first=True)
    coalescer = Coalescer(process, lambda job: 1, max_size=100)
    results: dict = {}
    (leader,) = call_all(coalescer, ["first"], results)
    process.entered.wait(timeout=30)  # the first batch is running (and held)
    waiting = call_all(coalescer, ["b", "c", "d"], results)
    wait_until(lambda: coalescer.waiting == 3)
    process.release.set()
    for thread in [leader, *waiting]:
        thread.join(timeout=60)

    assert process.batches[0] == ["first"]
    assert sorted(process.batches[1]) == ["b", "c", "d"]
    assert len(process.batches) == 2
    assert results == {"first": "FIRST", "b": "B", "c": "C", "d": "D"}


def test_batches_respect_the_size_limit():
    process = Recorder(hold_first=True)
    coalescer = Coalescer(process, lambda job: 2, max_size=4)
    results: dict = {}
    (leader,) = call_all(coalescer, ["first"], results)
    process.entered.wait(timeout=30)
    waiting = call_all(coalescer, ["b", "c", "d", "e", "f"], results)
    wait_until(lambda: coalescer.waiting == 5)
    process.release.set()
    for thread in [leader, *waiting]:
        thread.join(timeout=60)

    assert all(len(batch) <= 2 for batch in process.batches)
    assert sorted(job for batch in process.batches for job in batch) == ["b", "c", "d", "e", "f", "first"]
    assert results == {job: job.upper() for job in ["first", "b", "c", "d", "e", "f"]}


def test_a_failing_job_fails_only_its_own_caller():
    process = Recorder(hold_first=True)
    coalescer = Coalescer(process, lambda job: 1, max_size=100)
    results = run_behind_a_held_batch(coalescer, process, ["b", "bad-one", "d"])

    assert {job: results[job] for job in ("first", "b", "d")} == {"first": "FIRST", "b": "B", "d": "D"}
    assert isinstance(results["bad-one"], ValueError)
    assert "bad-one" in str(results["bad-one"])
    # the shared batch failed, then each of its jobs ran alone
    assert sorted(map(tuple, process.batches[2:])) == [("b",), ("bad-one",), ("d",)]


def test_the_error_of_a_lone_job_is_raised_to_its_caller():
    coalescer = Coalescer(Recorder(), len, max_size=100)
    with pytest.raises(ValueError, match="bad"):
        coalescer.run("bad")
    assert coalescer.run("ok") == "OK"  # and the coalescer keeps working


def test_an_exception_returned_for_a_job_fails_that_job_alone():
    """``process`` may answer a job with an exception: no retry, the others keep their results."""
    batches = []

    def process(jobs):
        batches.append(list(jobs))
        return [KeyError(job) if job.startswith("refused") else job.upper() for job in jobs]

    held = Recorder(hold_first=True)
    coalescer = Coalescer(lambda jobs: held(jobs) if jobs == ["first"] else process(jobs), lambda job: 1, 100)
    results = run_behind_a_held_batch(coalescer, held, ["b", "refused-c", "d"])

    assert {job: results[job] for job in ("first", "b", "d")} == {"first": "FIRST", "b": "B", "d": "D"}
    assert isinstance(results["refused-c"], KeyError)
    assert len(batches) == 1 and sorted(batches[0]) == ["b", "d", "refused-c"]  # one pass, no retries
