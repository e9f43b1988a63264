"""The sweeper: brings the tasks behind due ready hints up to date.

A task keeps its ready hint ``ready/<due ms>~<type>~<id>`` from submission
until it has finished and its settle hook ran, so the hints that are due on
the store's clock lead to every live task. For each due hint the sweeper
reads the task and:

- returns a running task whose lease lapsed to pending (it keeps its due
  time, so the same hint stays valid), or fails it when no attempts are left;
- calls the settle hook of a task that finished more than a lease ago, then
  deletes the hint (the owner does both within milliseconds, unless it died);
- replaces a hint that no longer matches its task's due time or type by the
  current one, and deletes hints whose task is missing for a minute.

Claimers apply the same rules to the hints they meet (see ``_claim``), so an
idle worker sweeps with the listing it polls with anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass

from buquet import keys
from buquet._time import millis
from buquet.errors import AmbiguousWrite, PreconditionFailed
from buquet.queue._io import TaskIO, hint_matches, stamp
from buquet.queue._task import Task, TaskStatus
from buquet.store import iter_keys

logger = logging.getLogger(__name__)

SettleHook = Callable[[Task], None]
MAX_SWEEP_CONFLICTS = 5
"""Lost CAS races tolerated per hint before it is left for the next sweep."""
MISSING_TASK_GRACE_MS = 60_000
"""Age after which a hint whose task is missing is deleted; a submission may be in between."""
MISSING_TASK_RETRY_MS = 20
"""Wait before a claimer reads again the task of a young hint that had none."""


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
    """Hints replaced by the current hint of their task."""
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
    """The rule for the hints of finished tasks, with the settle hooks to call.

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


@dataclass(frozen=True)
class Read:
    """The outcome of reading a task: the task and its ETag, or None when it is missing."""

    found: tuple[Task, str] | None


@dataclass(frozen=True)
class ReadyHint:
    """A parsed ``ready/`` key."""

    key: str
    due_ms: int
    task_type: str
    task_id: str
    snapshot: str | None = None
    """The task as submitted, for a claim without a read (see ``_snapshot``)."""


@dataclass(frozen=True)
class Verdict:
    """The finding of a sweeper about the task behind one hint.

    ``claimable`` contains a pending task that is due and its ETag. ``revisit_ms``
    is a store time before which the hint needs no new look (a healthy
    lease, a task that finished recently); None when nothing is left to do.
    """

    claimable: tuple[Task, str] | None = None
    revisit_ms: int | None = None


DONE = Verdict()


def due_hints(io: TaskIO, now_ms: int, page_size: int = 1000) -> Iterator[ReadyHint]:
    """Yield the ready hints due at or before ``now_ms``, oldest first."""
    cutoff = keys.ready_key_cutoff(now_ms)
    for key in iter_keys(io.store, keys.READY, end_before=cutoff, page_size=page_size):
        try:
            due, task_type, task_id, snapshot = keys.split_ready_key(key)
        except ValueError:
            logger.warning("ignoring malformed ready hint %s", key)
            continue
        yield ReadyHint(key, due, task_type, task_id, snapshot)


def sweep(io: TaskIO, settlement: Settlement, now: dt.datetime | None = None) -> SweepReport:
    """Check every ready hint due at or before ``now`` (the store's clock by default)."""
    sweeper = Sweeper(io, settlement, now)
    for hint in list(due_hints(io, millis(sweeper.now))):
        sweeper.report.checked += 1
        sweeper.check(hint)
    return sweeper.report


class Sweeper:
    """Applies the sweep rules to hints, at one moment of the store's clock or at each read."""

    def __init__(self, io: TaskIO, settlement: Settlement, now: dt.datetime | None = None) -> None:
        self.io = io
        self.settlement = settlement
        self._fixed_now = now
        self.report = SweepReport()

    @property
    def now(self) -> dt.datetime:
        """The time the rules are applied at."""
        return self._fixed_now or self.io.now()

    def check(self, hint: ReadyHint, read: Read | None = None) -> Verdict:
        """Bring the task behind ``hint``, and the hint, up to date; return what is left to do.

        ``read`` is a read of the task the caller just made, used instead of the first read.
        """
        for _ in range(MAX_SWEEP_CONFLICTS):
            found = self.io.read(hint.task_id) if read is None else read.found
            read = None
            try:
                return self._apply(hint, found, self.now)
            except (PreconditionFailed, AmbiguousWrite):
                # Lost the race, or the write's response was lost: the re-read
                # at the top of the loop shows which, and what is left to do.
                continue
        logger.info("task %s kept changing during the sweep; it is checked later", hint.task_id)
        return DONE

    def _apply(self, hint: ReadyHint, found: tuple[Task, str] | None, now: dt.datetime) -> Verdict:
        if found is None:
            return self._missing(hint, now)
        task, etag = found
        if not hint_matches(hint.key, task):
            return self._replace_stale(hint, task)
        if task.status is TaskStatus.PENDING:
            return self._pending(hint, task, etag, now)
        if task.status is TaskStatus.RUNNING:
            return self._running(hint, task, etag, now)
        return self._finished(hint, task, now)

    def _missing(self, hint: ReadyHint, now: dt.datetime) -> Verdict:
        now_ms = millis(now)
        if now_ms < hint.due_ms + MISSING_TASK_GRACE_MS:
            # The hint is written first: its task may be created any moment now.
            return Verdict(revisit_ms=now_ms + MISSING_TASK_RETRY_MS)
        self.remove(hint.key)
        return DONE

    def _replace_stale(self, hint: ReadyHint, task: Task) -> Verdict:
        """Drop a hint left from an earlier due time, making sure the current one exists."""
        if not task.status.is_terminal:
            self.io.put_ready_hint(task)
            self.report.moved += 1
        self.remove(hint.key)
        return DONE

    def _pending(self, hint: ReadyHint, task: Task, etag: str, now: dt.datetime) -> Verdict:
        if task.available_at > now:
            return Verdict(revisit_ms=millis(task.available_at))
        if task.cancel_requested:
            cancelled = task.model_copy(update={"status": TaskStatus.CANCELLED, "finished_at": now})
            self.io.replace(stamp(cancelled, now), etag)
            logger.debug("task %s cancelled before it started", task.id)
            self.remove(hint.key)
            return DONE
        return Verdict(claimable=(task, etag))

    def _running(self, hint: ReadyHint, task: Task, etag: str, now: dt.datetime) -> Verdict:
        expires = task.lease_expires_at
        if expires is not None and expires > now:
            return Verdict(revisit_ms=millis(expires))
        if task.attempts >= task.max_attempts:
            dead = stamp(_expire(task, now, TaskStatus.FAILED), now)
            self.io.replace(dead, etag)
            logger.warning("task %s failed: %s", task.id, dead.error)
            self.report.dead += 1
            return self._settle(hint, dead)
        pending = stamp(_expire(task, now, TaskStatus.PENDING), now)
        new_etag = self.io.replace(pending, etag)
        logger.warning("task %s returned to pending: %s", task.id, pending.error)
        self.report.requeued += 1
        return Verdict(claimable=(pending, new_etag))

    def _finished(self, hint: ReadyHint, task: Task, now: dt.datetime) -> Verdict:
        """Settle a finished task once its owner, if it had one, had a lease's time to."""
        if task.lease_token is None:
            # Cancelled while pending, or failed by a sweeper: no owner settles it.
            return self._settle(hint, task)
        finished = task.finished_at or task.updated_at
        grace_end = millis(finished) + int(task.lease_seconds * 1000)
        if millis(now) < grace_end:
            return Verdict(revisit_ms=grace_end)
        return self._settle(hint, task)

    def _settle(self, hint: ReadyHint, task: Task) -> Verdict:
        """Call the settle hook of a finished task if this sweeper owns its type, drop the hint."""
        if not self.settlement.owns(task.type):
            return DONE
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
                return DONE
            self.report.settled += 1
        self.remove(hint.key)
        return DONE

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
    if status is not TaskStatus.PENDING:
        update["finished_at"] = now
    return task.model_copy(update=update)
