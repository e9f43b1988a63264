"""The sweeper: returns tasks whose lease lapsed and cleans lease hints.

A lease hint ``leases/<expiry ms>~<id>`` that sorts before the store's
current time is checked against its task. A renewed lease moves the hint. A
lapsed lease sends the task back to pending, or fails it when no attempts
are left. A finished task gets its settle hook called before the hint is
deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from buquet import keys
from buquet.errors import AmbiguousWrite, PreconditionFailed
from buquet.queue._io import TaskIO, lease_hint_key, millis, ready_hint_key, stamp
from buquet.queue._task import Task, TaskStatus
from buquet.store import iter_keys

logger = logging.getLogger(__name__)

SettleHook = Callable[[Task], None]
MAX_SWEEP_CONFLICTS = 5
"""Lost CAS races tolerated per hint before it is left for the next sweep."""


@dataclass
class SweepReport:
    """Counts of what one sweep or repair pass did."""

    checked: int = 0
    """Hints (or, for a repair, task objects) examined."""
    requeued: int = 0
    """Tasks whose lease lapsed, returned to pending."""
    dead: int = 0
    """Tasks whose lease lapsed on their last attempt, now failed."""
    moved: int = 0
    """Lease hints moved to a renewed lease's expiry."""
    settled: int = 0
    """Settle hooks called successfully."""
    hook_errors: int = 0
    """Settle hooks that raised; their hints are kept for the next sweep."""
    removed: int = 0
    """Stale hints deleted."""
    restored: int = 0
    """Missing hints written again by a repair."""


@dataclass(frozen=True)
class Settlement:
    """The rule for the lease hints of finished tasks, with the settle hooks to call.

    A type with a hook gets the hook called, then the hint deleted. A type in
    ``types`` without a hook just gets the hint deleted. Other types are left
    for a sweeper that handles them, so that a worker of other task types
    never drops the hint before the hook of the owning process ran. With
    ``types`` None every type is this sweeper's.
    """

    hooks: Mapping[str, SettleHook]
    types: Collection[str] | None = None

    def owns(self, task_type: str) -> bool:
        """Check whether this sweeper may delete the hints of ``task_type``."""
        return task_type in self.hooks or self.types is None or task_type in self.types


def sweep(io: TaskIO, settlement: Settlement, now: dt.datetime | None = None) -> SweepReport:
    """Check every lease hint that lapsed at or before ``now`` (the store's clock by default)."""
    sweeper = _Sweeper(io, settlement, now or io.now())
    cutoff = keys.lease_key_cutoff(millis(sweeper.now))
    for key in list(iter_keys(io.store, keys.LEASES, end_before=cutoff)):
        sweeper.report.checked += 1
        try:
            _expires, task_id = keys.parse_lease_key(key)
        except ValueError:
            logger.warning("ignoring malformed lease hint %s", key)
            continue
        sweeper.sweep_hint(key, task_id)
    return sweeper.report


class _Sweeper:
    """One sweep pass at one moment of the store's clock."""

    def __init__(self, io: TaskIO, settlement: Settlement, now: dt.datetime) -> None:
        self.io = io
        self.settlement = settlement
        self.now = now
        self.report = SweepReport()

    def sweep_hint(self, key: str, task_id: str) -> None:
        """Bring the task behind one lapsed lease hint, and the hint, up to date."""
        for _ in range(MAX_SWEEP_CONFLICTS):
            found = self.io.read(task_id)
            if found is None:
                self.remove(key)
                return
            try:
                self._apply(key, *found)
            except (PreconditionFailed, AmbiguousWrite):
                # Lost the race, or the write's response was lost: the re-read
                # at the top of the loop shows which, and what is left to do.
                continue
            return
        logger.info("task %s kept changing during the sweep; it is checked next sweep", task_id)

    def _apply(self, key: str, task: Task, etag: str) -> None:
        if task.status is TaskStatus.RUNNING:
            self._sweep_running(key, task, etag)
        elif task.status is TaskStatus.PENDING:
            # A retry or release that stopped before deleting the lease hint: make sure
            # the ready hint exists (the key the retry wrote) before dropping this one.
            self.io.put_ready_hint(task)
            self.remove(key)
        else:
            self.settle(key, task)

    def _sweep_running(self, key: str, task: Task, etag: str) -> None:
        expires = task.lease_expires_at
        if expires is not None and expires > self.now:
            new_key = self.io.put_lease_hint(task.id, expires)
            if new_key != key:
                self.io.delete_hint(key)
            self.report.moved += 1
            return
        if task.attempts >= task.max_attempts:
            dead = _expire(task, self.now, TaskStatus.FAILED)
            self.io.replace(stamp(dead, self.now), etag)
            logger.warning("task %s failed: %s", task.id, dead.error)
            self.report.dead += 1
            self.settle(key, dead)
            return
        pending = _expire(task, self.now, TaskStatus.PENDING)
        self.io.put_ready_hint(pending)
        self.io.replace(stamp(pending, self.now), etag)
        logger.warning("task %s returned to pending: %s", task.id, pending.error)
        self.report.requeued += 1
        self.remove(key)

    def settle(self, key: str, task: Task) -> None:
        """Call the settle hook of a finished task if this sweeper owns its type, drop the hint."""
        if not self.settlement.owns(task.type):
            return
        hook = self.settlement.hooks.get(task.type)
        if hook is not None:
            try:
                hook(task)
            except Exception:
                logger.exception(
                    "settle hook of task %s (%s) failed; it is called again next sweep",
                    task.id,
                    task.type,
                )
                self.report.hook_errors += 1
                return
            self.report.settled += 1
        self.remove(key)

    def remove(self, key: str) -> None:
        """Delete a hint and count it."""
        if self.io.delete_hint(key):
            self.report.removed += 1


def _expire(task: Task, now: dt.datetime, status: TaskStatus) -> Task:
    error = (
        f"lease expired after attempt {task.attempts} (worker {task.worker_id} stopped renewing)"
    )
    update: dict[str, object] = {
        "status": status,
        "error": error,
        "lease_token": None,
        "lease_expires_at": None,
    }
    if status is TaskStatus.PENDING:
        update["available_at"] = now
    else:
        update["finished_at"] = now
    return task.model_copy(update=update)


def expected_hint(task: Task) -> str | None:
    """Key of the hint that should exist for ``task``; None for a finished task."""
    if task.status is TaskStatus.PENDING:
        return ready_hint_key(task)
    if task.status is TaskStatus.RUNNING and task.lease_expires_at is not None:
        return lease_hint_key(task.id, task.lease_expires_at)
    return None
