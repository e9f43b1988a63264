"""Submitting tasks, idempotently when the caller names the task."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from buquet import _json, keys
from buquet._time import whole_millis
from buquet.errors import AmbiguousWrite, ConfigError, PreconditionFailed, StoreError, TaskConflict
from buquet.queue._backoff import Backoff
from buquet.queue._claim import ClaimOptions, running_copy
from buquet.queue._claimed import ClaimedTask
from buquet.queue._io import TaskIO, ready_hint_key, stamp
from buquet.queue._task import Task, TaskStatus

logger = logging.getLogger(__name__)

HINT_THREADS = 8
"""Threads that write hints beside task creations (see ``replayed``)."""
CLOCK_SLACK = dt.timedelta(seconds=1)
"""How far two processes' estimates of the store's clock may differ."""


@dataclass(frozen=True)
class SubmitOptions:
    """Validated options of one submission; durations in seconds."""

    delay: float
    max_attempts: int
    lease: float
    timeout: float | None
    backoff: Backoff
    task_id: str | None
    idempotency_key: str | None


def check_max_attempts(value: int) -> int:
    """Validate a number of attempts."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"invalid max_attempts {value!r}: use an integer of at least 1")
    return value


def check_lease(seconds: float) -> float:
    """Validate a lease length in seconds."""
    if seconds <= 0:
        raise ConfigError(f"invalid lease {seconds!r} s: it must be longer than zero")
    return seconds


def build_task(task_type: str, payload: Any, options: SubmitOptions, now: dt.datetime) -> Task:
    """Build a pending task; raise InvalidKeyError or SerializationError on bad values."""
    task_type = keys.check_task_type(task_type)
    task_id = _choose_id(options)
    # Whole milliseconds, as in hint keys, so that a hint's snapshot can carry the times.
    now = whole_millis(now)
    return Task(
        id=task_id,
        type=task_type,
        input=_json.to_json_value(payload),
        status=TaskStatus.PENDING,
        max_attempts=options.max_attempts,
        lease_seconds=options.lease,
        timeout_seconds=options.timeout,
        backoff=options.backoff,
        idempotency_key=options.idempotency_key,
        created_at=now,
        updated_at=now,
        available_at=_due_time(now, options.delay),
        version=1,
    )


def _due_time(now: dt.datetime, delay: float) -> dt.datetime:
    """Return when a task becomes claimable.

    Each process estimates the store's clock from one-second ``Date``
    headers, so two estimates can differ by up to about a second. A task
    without a delay is dated that much in the past, so that a worker whose
    estimate lags the submitter's still lists it at once.
    """
    if delay > 0:
        return whole_millis(now + dt.timedelta(seconds=delay))
    return now - CLOCK_SLACK


def _choose_id(options: SubmitOptions) -> str:
    if options.task_id is not None:
        return keys.check_task_id(options.task_id)
    if options.idempotency_key is not None:
        return keys.idempotent_task_id(options.idempotency_key)
    return uuid.uuid4().hex


def submit(io: TaskIO, task: Task, *, hint: bool = True) -> Task:
    """Create the task, then write its ready hint; an equal existing task is returned as is.

    The task comes first, so a claimer never reads a hint whose task is
    still being written. A crash between the two writes leaves a task
    without a hint, which the next repair pass finds (see ``_repair``).
    Submitting again writes the hint of a live existing task, so a retried
    submission also repairs it. With ``hint`` False the caller writes the
    hint itself, with :meth:`TaskIO.put_ready_hint`.
    """
    try:
        io.create(task)
    except PreconditionFailed:
        stored = _existing(io, task)
    except AmbiguousWrite:
        stored = _after_lost_create(io, task)
    else:
        stored = task
        logger.debug("submitted task %s of type %s", task.id, task.type)
    if hint and not stored.status.is_terminal:
        io.put_ready_hint(stored)
    return stored


def _put_hint(io: TaskIO, task: Task, *, replayed: bool) -> Callable[[], object]:
    """Write the task's ready hint now, or beside the next write; return a wait for it."""
    if not replayed:
        io.put_ready_hint(task)
        return lambda: None
    return _hint_pool().submit(io.put_ready_hint, task).result


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _hint_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(HINT_THREADS, thread_name_prefix="buquet-hints")
        return _pool


def _after_lost_create(io: TaskIO, task: Task) -> Task:
    """Resolve a create whose response was lost: compare it if stored, else create it again."""
    if io.read(task.id) is not None:
        return _existing(io, task)
    logger.info("create of task %s was not applied; creating it again", task.id)
    try:
        io.create(task)
    except PreconditionFailed:
        return _existing(io, task)
    return task


def _existing(io: TaskIO, task: Task) -> Task:
    found = io.read(task.id)
    if found is None:
        raise StoreError(
            f"task {task.id!r} existed during submission and is now missing; submit it again",
            key=task.id,
        )
    existing = found[0]
    if existing.type != task.type or existing.input != task.input:
        raise TaskConflict(
            f"task {task.id!r} already exists with another type or input "
            f"(stored type {existing.type!r}); use a new task id or idempotency key",
            task_id=task.id,
        )
    logger.debug("task %s already submitted; returning the stored task", task.id)
    return existing


def submit_claimed(
    io: TaskIO, task: Task, options: ClaimOptions, *, replayed: bool = False
) -> ClaimedTask | None:
    """Create ``task`` already claimed by ``options.worker_id``, for a worker to run at once.

    A worker that creates the next task of a chain saves the poll, the read
    and the claim write a claimer would need. The ready hint is written
    first, so a crash leaves a task the sweep rules return to pending once
    the lease lapses. With ``replayed``, the caller promises that a crash
    makes it submit the task again (a settle hook, whose own task keeps its
    hint until the hook returns), so both writes go out at the same time.
    Returns None, writing nothing more, when the id names an existing equal
    task: another worker submitted it (raises TaskConflict when it differs).
    """
    now = io.now()
    lease_seconds = options.lease if options.lease is not None else task.lease_seconds
    running = stamp(running_copy(task, options.worker_id, now, lease_seconds), now)
    hint_written = _put_hint(io, running, replayed=replayed)
    try:
        etag = _create_claimed(io, task, running)
    finally:
        hint_written()
    if etag is None:
        return None
    assert running.lease_token is not None
    logger.debug("submitted task %s claimed by %s", task.id, options.worker_id)
    return ClaimedTask(running, etag, running.lease_token, lease_seconds, ready_hint_key(running))


def _create_claimed(io: TaskIO, task: Task, running: Task) -> str | None:
    """Create the claimed task; its ETag, or None when an equal task exists already."""
    try:
        return io.create(running)
    except PreconditionFailed:
        _existing(io, task)
        return None
    except AmbiguousWrite:
        found = io.read(task.id)
        if found is None or found[0].lease_token != running.lease_token:
            _existing(io, task)
            return None
        return found[1]
