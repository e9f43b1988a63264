"""Listing tasks page by page, with filters."""

from __future__ import annotations

from queue_support import FakeClock

from buquet import keys
from buquet.queue import Queue, TaskStatus
from buquet.store import MemoryStore, iter_keys


def test_list_pages_through_all(queue: Queue) -> None:
    for index in range(2500):
        queue.submit("resize", task_id=f"t{index:05d}")
    listed = list(queue.list())
    assert len(listed) == 2500
    assert listed[0].id == "t00000"
    assert listed[-1].id == "t02499"


def test_list_filters(queue: Queue) -> None:
    queue.submit("resize", task_id="a1")
    queue.submit("crop", task_id="a2")
    queue.submit("resize", task_id="b1")
    queue.cancel("b1")
    assert [t.id for t in queue.list(task_type="resize")] == ["a1", "b1"]
    assert [t.id for t in queue.list(status="cancelled")] == ["b1"]
    assert [t.id for t in queue.list(status=TaskStatus.PENDING)] == ["a1", "a2"]
    assert [t.id for t in queue.list(prefix="a")] == ["a1", "a2"]
    assert [t.id for t in queue.list(limit=1)] == ["a1"]


def test_sweep_sees_every_page(queue: Queue, clock: FakeClock) -> None:
    for index in range(2500):
        queue.submit("resize", task_id=f"t{index:05d}", lease="10s")
    claimed = 0
    while queue.claim(["resize"], "worker-a") is not None:
        claimed += 1
    clock.advance(11)

    report = queue.sweep()

    assert claimed == 2500
    assert report.checked == 2500
    assert report.requeued == 2500
    assert len(list(queue.list(status=TaskStatus.PENDING))) == 2500


def test_repair_sees_every_page(queue: Queue, memory: MemoryStore) -> None:
    for index in range(2500):
        queue.submit("resize", task_id=f"t{index:05d}")
    for key in list(iter_keys(memory, keys.READY)):
        memory.delete(key)

    report = queue.repair()

    assert report.restored == 2500
    assert sum(1 for _ in iter_keys(memory, keys.READY)) == 2500
