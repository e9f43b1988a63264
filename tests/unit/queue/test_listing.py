"""Listing tasks page by page, with filters."""

from __future__ import annotations

from buquet.queue import Queue, TaskStatus


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
