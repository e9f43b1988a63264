"""Map items that leave their group listing to another item running in the same process."""

from __future__ import annotations

import datetime as dt

from buquet.queue import TaskContext
from buquet.queue._claimed import ClaimedTask
from buquet.queue._task import Task
from buquet.workflow._local_items import LocalItems

NOW = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)
FIRST = ("run-1", "double", 0)
SECOND = ("run-1", "double", 1)
OTHER_GROUP = ("run-1", "double", 100)


def context(task_id: str) -> TaskContext:
    task = Task(id=task_id, type="step", created_at=NOW, updated_at=NOW, available_at=NOW)
    return TaskContext(ClaimedTask(task, '"e"', "token", 30.0, f"ready/{task_id}"), "w1")


def hint_drops(ctx: TaskContext) -> list[str]:
    dropped: list[str] = []
    ctx.drop_hint_when_released(lambda: dropped.append(ctx.task_id))
    return dropped


def test_item_alone_lists_at_once() -> None:
    items = LocalItems()
    items.start(FIRST, context("a"))

    assert items.settle(FIRST, 2) == []


def first_waits_for_second() -> tuple[LocalItems, list[str]]:
    """Run two items of one group; the first finishes and leaves the listing to the second.

    Returns the items and the list that records the first item's hint drop.
    """
    items = LocalItems()
    first, second = context("a"), context("b")
    items.start(FIRST, first)
    items.start(SECOND, second)
    assert items.settle(FIRST, 2) is None
    return items, hint_drops(first)


def test_item_waits_for_running_neighbour() -> None:
    items, dropped = first_waits_for_second()
    assert dropped == []

    waiting = items.settle(SECOND, 2)
    assert waiting is not None
    for release in waiting:
        release()
    assert dropped == ["a"]
    assert items.end(FIRST) is None
    assert items.end(SECOND) is None


def test_neighbour_ending_without_listing_owes_it() -> None:
    # The neighbour's attempt lost its lease, so it never settles here.
    items, dropped = first_waits_for_second()

    owed = items.end(SECOND)

    assert owed is not None
    width, releases = owed
    assert width == 2
    assert dropped == []
    for release in releases:
        release()
    assert dropped == ["a"]


def test_other_group_does_not_defer() -> None:
    items = LocalItems()
    items.start(FIRST, context("a"))
    items.start(OTHER_GROUP, context("c"))

    assert items.settle(FIRST, 200) == []


def test_untracked_item_lists_at_once() -> None:
    # A sweeper settles an item that did not run here: it never waits.
    items = LocalItems()
    items.start(SECOND, context("b"))

    assert items.settle(FIRST, 2) == []


def test_release_twice_drops_once() -> None:
    ctx = context("a")
    release = ctx.hold_hint()
    dropped = hint_drops(ctx)

    release()
    release()

    assert dropped == ["a"]
