"""Claiming a due task: find it through the ready hints, take it with a CAS.

Claimers list ``ready/`` up to the current time on the store's clock and keep
the hints of the types they handle. They try the oldest few in random order,
so that workers spread over different tasks instead of racing for the first.
Hints that no longer match their task are deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from buquet import keys
from buquet.errors import AmbiguousWrite, PreconditionFailed
from buquet.queue._claimed import ClaimedTask
from buquet.queue._io import TaskIO, millis, stamp
from buquet.queue._task import Task, TaskStatus
from buquet.store import iter_keys

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
"""Ready hints read per listing request."""
MAX_CANDIDATES = 100
"""Hints considered by one claim."""
SHUFFLE_WINDOW = 8
"""The oldest hints tried in random order."""
MISSING_TASK_GRACE = dt.timedelta(seconds=60)
"""Age after which a hint whose task is missing is deleted; a submission may be in between."""


@dataclass(frozen=True)
class ReadyHint:
    """A parsed ``ready/`` key."""

    key: str
    due_ms: int
    task_type: str
    task_id: str


def claim(
    io: TaskIO,
    types: Collection[str] | None,
    worker_id: str,
    *,
    lease: float | None = None,
    rng: random.Random | None = None,
) -> ClaimedTask | None:
    """Claim one due task of ``types`` (any type when None); None when there is none."""
    now = io.now()
    for hint in _ordered(_candidates(io, types, now), rng or random.Random()):
        claimed = _try_hint(io, hint, worker_id, lease)
        if claimed is not None:
            return claimed
    return None


def _candidates(io: TaskIO, types: Collection[str] | None, now: dt.datetime) -> list[ReadyHint]:
    found: list[ReadyHint] = []
    for hint in _due_hints(io, now):
        if types is None or hint.task_type in types:
            found.append(hint)
        if len(found) == MAX_CANDIDATES:
            break
    return found


def _due_hints(io: TaskIO, now: dt.datetime) -> Iterator[ReadyHint]:
    cutoff = keys.ready_key_cutoff(millis(now))
    for key in iter_keys(io.store, keys.READY, end_before=cutoff, page_size=PAGE_SIZE):
        try:
            due, task_type, task_id = keys.parse_ready_key(key)
        except ValueError:
            logger.warning("ignoring malformed ready hint %s", key)
            continue
        yield ReadyHint(key, due, task_type, task_id)


def _ordered(hints: list[ReadyHint], rng: random.Random) -> list[ReadyHint]:
    window = hints[:SHUFFLE_WINDOW]
    rng.shuffle(window)
    return window + hints[SHUFFLE_WINDOW:]


def _try_hint(
    io: TaskIO, hint: ReadyHint, worker_id: str, lease: float | None
) -> ClaimedTask | None:
    found = io.read(hint.task_id)
    now = io.now()
    if found is None:
        if millis(now) - hint.due_ms > MISSING_TASK_GRACE.total_seconds() * 1000:
            io.delete_hint(hint.key)
        return None
    task, etag = found
    if not _claimable(task, hint, now):
        if _stale(task, hint):
            io.delete_hint(hint.key)
        return None
    if task.cancel_requested:
        _cancel_pending(io, task, etag, hint, now)
        return None
    return _take(io, found, hint, worker_id=worker_id, lease=lease)


def _claimable(task: Task, hint: ReadyHint, now: dt.datetime) -> bool:
    return (
        task.status is TaskStatus.PENDING
        and task.type == hint.task_type
        and task.available_at <= now
        and millis(task.available_at) <= hint.due_ms
    )


def _stale(task: Task, hint: ReadyHint) -> bool:
    """Check whether another hint, or none at all, now stands for this task."""
    return (
        task.status is not TaskStatus.PENDING
        or task.type != hint.task_type
        or millis(task.available_at) > hint.due_ms
    )


def _cancel_pending(io: TaskIO, task: Task, etag: str, hint: ReadyHint, now: dt.datetime) -> None:
    cancelled = task.model_copy(update={"status": TaskStatus.CANCELLED, "finished_at": now})
    try:
        io.replace(stamp(cancelled, now), etag)
    except (PreconditionFailed, AmbiguousWrite):
        # The hint stays, and the next claimer that finds it stale deletes it.
        return
    logger.debug("task %s cancelled before it started", task.id)
    io.delete_hint(hint.key)


def _write_claim(io: TaskIO, running: Task, etag: str) -> str | None:
    """Write the claim; return the new ETag, or None when another claimer won.

    A claim whose response was lost may have been applied: the store then
    reports a conflict (or an ambiguous write), and only a re-read that finds
    this claim's lease token shows whether it won.
    """
    try:
        return io.replace(running, etag)
    except (PreconditionFailed, AmbiguousWrite):
        found = io.read(running.id)
    if found is None:
        return None
    stored, stored_etag = found
    if stored.status is TaskStatus.RUNNING and stored.lease_token == running.lease_token:
        logger.debug("claim of task %s was applied although its response was lost", running.id)
        return stored_etag
    return None


def _take(
    io: TaskIO,
    found: tuple[Task, str],
    hint: ReadyHint,
    *,
    worker_id: str,
    lease: float | None,
) -> ClaimedTask | None:
    task, etag = found
    now = io.now()
    lease_seconds = lease if lease is not None else task.lease_seconds
    expires = now + dt.timedelta(seconds=lease_seconds)
    lease_hint = io.put_lease_hint(task.id, expires)
    running = task.model_copy(
        update={
            "status": TaskStatus.RUNNING,
            "attempts": task.attempts + 1,
            "lease_token": uuid.uuid4().hex,
            "worker_id": worker_id,
            "lease_expires_at": expires,
        }
    )
    running = stamp(running, now)
    new_etag = _write_claim(io, running, etag)
    if new_etag is None:
        io.delete_hint(lease_hint)
        return None
    io.delete_hint(hint.key)
    assert running.lease_token is not None
    logger.debug("claimed task %s (attempt %d) as %s", task.id, running.attempts, worker_id)
    return ClaimedTask(running, new_etag, running.lease_token, lease_seconds, lease_hint)
