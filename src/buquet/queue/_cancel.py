"""Cancelling a task by id."""

from __future__ import annotations

import logging

from buquet.errors import (
    AmbiguousWrite,
    InvalidTransition,
    PreconditionFailed,
    StoreError,
    TaskNotFound,
)
from buquet.queue._io import TaskIO, stamp
from buquet.queue._task import Task, TaskStatus

logger = logging.getLogger(__name__)

MAX_CANCEL_CONFLICTS = 10


def cancel(io: TaskIO, task_id: str) -> Task:
    """Cancel a pending task now, or ask the worker of a running task to stop.

    A running task only gets ``cancel_requested``; its handler can read
    it after the next lease renewal. Raises TaskNotFound, or InvalidTransition for a task
    that already succeeded or failed. Cancelling a cancelled task returns it.
    """
    for _ in range(MAX_CANCEL_CONFLICTS):
        found = io.read(task_id)
        if found is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        task, etag = found
        changed = _cancelled(task, io)
        if changed is None:
            return task
        try:
            io.replace(changed, etag)
        except (PreconditionFailed, AmbiguousWrite):
            # Read again: a lost response may hide a write that was applied, and then
            # the task is already cancelled or has cancel_requested set.
            continue
        if changed.status is TaskStatus.CANCELLED:
            io.delete_hint(io.hint_key(task))
        logger.debug("cancel of task %s recorded (%s)", task_id, changed.status)
        return changed
    raise StoreError(
        f"task {task_id!r} changed {MAX_CANCEL_CONFLICTS} times while cancelling it; try again",
        key=task_id,
    )


def _cancelled(task: Task, io: TaskIO) -> Task | None:
    """Build the cancelled task to write; return None when nothing needs to change."""
    if task.status is TaskStatus.CANCELLED:
        return None
    if task.status.is_terminal:
        raise InvalidTransition(
            f"task {task.id!r} already {task.status.value}; only pending or running tasks "
            "can be cancelled",
            task_id=task.id,
        )
    now = io.now()
    if task.status is TaskStatus.PENDING:
        update: dict[str, object] = {"status": TaskStatus.CANCELLED, "finished_at": now}
        return stamp(task.model_copy(update=update), now)
    if task.cancel_requested:
        return None
    return stamp(task.model_copy(update={"cancel_requested": True}), now)
