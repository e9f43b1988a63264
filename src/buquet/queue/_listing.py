"""Listing task objects."""

from __future__ import annotations

from collections.abc import Iterator

from buquet import keys
from buquet.queue._io import TaskIO
from buquet.queue._task import Task, TaskStatus
from buquet.store import iter_keys


def iter_tasks(
    io: TaskIO,
    status: TaskStatus | None,
    task_type: str | None,
    prefix: str,
    limit: int | None,
) -> Iterator[Task]:
    """Yield the tasks whose id starts with ``prefix`` and match the filters, up to ``limit``."""
    count = 0
    for key in iter_keys(io.store, keys.TASKS + prefix):
        if limit is not None and count >= limit:
            return
        found = io.read(keys.task_id_from_key(key))
        if found is None:
            continue
        task = found[0]
        if status is not None and task.status is not status:
            continue
        if task_type is not None and task.type != task_type:
            continue
        count += 1
        yield task
