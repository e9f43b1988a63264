"""Writes by the lease owner: renew, complete, fail and release a claimed task.

Each write is a compare-and-swap on the ETag of the owner's latest read. When
it loses the race, the task is read again. If it is still running under the
owner's lease token, another writer only set ``cancel_requested``, so the
change is applied again on the new ETag. Otherwise the lease was taken over
and :class:`~buquet.errors.LeaseLost` is raised, so a fenced worker never
overwrites its successor's work.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from buquet import _json
from buquet.errors import (
    AmbiguousWrite,
    InvalidTransition,
    LeaseLost,
    PreconditionFailed,
    StoreError,
)
from buquet.queue._claimed import ClaimedTask
from buquet.queue._io import TaskIO, ready_hint_key, stamp
from buquet.queue._task import Task, TaskStatus

logger = logging.getLogger(__name__)

MAX_WRITE_CONFLICTS = 10
"""Conflicting writes tolerated in one operation before giving up."""

Change = Callable[[Task, dt.datetime], Task]
BeforeWrite = Callable[[Task], None]


def _no_hint(task: Task) -> None:
    """Write nothing before the task write."""


def write_owned(
    io: TaskIO, claimed: ClaimedTask, change: Change, before_write: BeforeWrite = _no_hint
) -> Task:
    """Apply ``change`` to the claimed task with a CAS, re-reading on conflicts; return it."""
    with claimed.lock:
        _check_running(claimed)
        for _ in range(MAX_WRITE_CONFLICTS):
            now = io.now()
            new = stamp(change(claimed.task, now), now)
            before_write(new)
            try:
                etag = io.replace(new, claimed.etag)
            except (PreconditionFailed, AmbiguousWrite):
                if not _refresh(io, claimed, new):
                    continue
                return claimed.task
            claimed.task, claimed.etag = new, etag
            return new
    raise StoreError(
        f"task {claimed.task_id!r} changed {MAX_WRITE_CONFLICTS} times during one write; "
        "try again later",
        key=claimed.task_id,
    )


def _check_running(claimed: ClaimedTask) -> None:
    """Reject a second outcome, or a renewal, after this owner already finished the task."""
    status = claimed.task.status
    if status is not TaskStatus.RUNNING:
        raise InvalidTransition(
            f"task {claimed.task_id!r} is already {status.value} through this claim; "
            "a claimed task takes one outcome",
            task_id=claimed.task_id,
        )


def _refresh(io: TaskIO, claimed: ClaimedTask, attempted: Task) -> bool:
    """Re-read after a lost CAS; return True if the stored task is our own write.

    A write whose response was lost shows up here as an ambiguous write or a
    conflict, with a stored object equal to ``attempted`` when it was applied.
    """
    found = io.read(claimed.task_id)
    if found is not None and found[0] == attempted:
        claimed.task, claimed.etag = found
        return True
    if found is None or not _owned_by(found[0], claimed.token):
        raise LeaseLost(
            f"lost the lease of task {claimed.task_id!r} (attempt {claimed.attempt}): "
            "another worker took it over, so this write was rejected",
            task_id=claimed.task_id,
        )
    claimed.task, claimed.etag = found
    return False


def _owned_by(task: Task, token: str) -> bool:
    return task.status is TaskStatus.RUNNING and task.lease_token == token


def renew(io: TaskIO, claimed: ClaimedTask) -> Task:
    """Extend the lease by its length from now; one conditional write, no hint changes."""

    def extend(task: Task, now: dt.datetime) -> Task:
        expires = now + dt.timedelta(seconds=claimed.lease_seconds)
        return task.model_copy(update={"lease_expires_at": expires})

    return write_owned(io, claimed, extend)


def complete(io: TaskIO, claimed: ClaimedTask, result: Any = None) -> Task:
    """Mark the task succeeded with ``result``.

    Raises SerializationError, before any write, when ``result`` is not
    JSON-serialisable. The ready hint is kept: the caller deletes it with
    :func:`drop_hint` once its settle hook has run.
    """
    value = _json.to_json_value(result)

    def succeed(task: Task, now: dt.datetime) -> Task:
        return task.model_copy(
            update={
                "status": TaskStatus.SUCCEEDED,
                "result": value,
                "error": None,
                "finished_at": now,
                "lease_expires_at": None,
            }
        )

    return write_owned(io, claimed, succeed)


def fail(io: TaskIO, claimed: ClaimedTask, error: str, *, retryable: bool = True) -> Task:
    """Record a failed attempt: retry after the backoff delay, or fail the task for good.

    A task whose cancellation was requested becomes cancelled instead. On a
    retry the hint at the new due time is written first and the old one
    deleted after. On a terminal outcome the hint is kept for the caller to
    drop once its settle hook has run.
    """

    def record(task: Task, now: dt.datetime) -> Task:
        if task.cancel_requested:
            return _finished(task, TaskStatus.CANCELLED, error, now)
        if retryable and task.attempts < task.max_attempts:
            delay = task.backoff.delay(task.attempts)
            return _to_pending(task, now + dt.timedelta(seconds=delay), error)
        return _finished(task, TaskStatus.FAILED, error, now)

    task = write_owned(io, claimed, record, _put_ready_if_pending(io))
    if task.status is TaskStatus.PENDING:
        _move_hint(io, claimed, ready_hint_key(task))
    return task


def release(io: TaskIO, claimed: ClaimedTask) -> Task:
    """Give the task back without counting the attempt (graceful shutdown).

    It keeps its due time, which has passed, so its hint stays valid.
    """

    def give_back(task: Task, now: dt.datetime) -> Task:
        pending = _to_pending(task, task.available_at, task.error)
        return pending.model_copy(update={"attempts": max(task.attempts - 1, 0)})

    return write_owned(io, claimed, give_back)


def drop_hint(io: TaskIO, claimed: ClaimedTask) -> bool:
    """Delete the ready hint of a task that finished through this owner and settled."""
    return io.delete_hint(claimed.hint)


def _move_hint(io: TaskIO, claimed: ClaimedTask, current: str) -> None:
    if current != claimed.hint:
        io.delete_hint(claimed.hint)
        claimed.hint = current


def _put_ready_if_pending(io: TaskIO) -> BeforeWrite:
    def put(task: Task) -> None:
        if task.status is TaskStatus.PENDING:
            io.put_hint(ready_hint_key(task))

    return put


def _to_pending(task: Task, available_at: dt.datetime, error: str | None) -> Task:
    return task.model_copy(
        update={
            "status": TaskStatus.PENDING,
            "available_at": available_at,
            "error": error,
            "lease_token": None,
            "lease_expires_at": None,
        }
    )


def _finished(task: Task, status: TaskStatus, error: str, now: dt.datetime) -> Task:
    return task.model_copy(
        update={"status": status, "error": error, "finished_at": now, "lease_expires_at": None}
    )
