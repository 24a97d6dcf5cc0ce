"""`make run`'s progress line: the total is the DAG's task count, known before the run starts, and a
mapped task shows its instances once it has expanded."""

from __future__ import annotations

import pytest
from stack.chain_monitor import task_progress

TASKS = [
    {"task_id": "select", "is_mapped": False},
    {"task_id": "fit", "is_mapped": True},
    {"task_id": "register", "is_mapped": False},
]


def instance(task_id: str, state: str | None, map_index: int = -1) -> dict:
    return {"task_id": task_id, "state": state, "map_index": map_index}


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        ([], "0/3 tasks done"),
        ([instance("select", "running"), instance("fit", None), instance("register", None)], "0/3 tasks done"),
        (
            [instance("select", "success"), *(instance("fit", s, i) for i, s in enumerate(["success", "running"]))],
            "1/3 tasks done; fit 1/2",
        ),
        (
            [
                instance("select", "success"),
                *(instance("fit", "success", i) for i in range(4)),
                instance("register", "skipped"),
            ],
            "3/3 tasks done; fit 4/4",
        ),
        (
            [
                instance("select", "success"),
                instance("fit", "failed", 0),
                instance("fit", "success", 1),
                instance("register", "upstream_failed"),
            ],
            "1/3 tasks done, 2 failed; fit 1/2",
        ),
    ],
    ids=["not-started", "before-expansion", "expanding", "done", "failed"],
)
def test_the_total_is_the_dags_task_count_from_the_start(instances: list[dict], expected: str):
    assert task_progress(TASKS, instances) == expected
