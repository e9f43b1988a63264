"""Claiming a due task: find it through the ready hints, take it with a CAS.

A claimer lists ``ready/`` up to the current time on the store's clock and
keeps the hints of the types it handles. Every hint it reads goes through the
sweep rules (``_sweep``), so claiming also returns lapsed leases to pending
and settles tasks whose owner died; there is no separate sweep listing.

A :class:`Claimer` keeps its listing between claims and remembers hints that
need no look before a known time (a healthy lease), so a busy worker lists
once per many tasks. A hint with a snapshot (``_snapshot``) leads to a claim
without a read; other tasks are read about once. It walks its listing from
a random position and jumps elsewhere when it meets a task another worker
took, so that workers sharing one listing spread over different tasks.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass

from buquet._time import millis
from buquet.errors import AmbiguousWrite, PreconditionFailed
from buquet.queue._claimed import ClaimedTask
from buquet.queue._io import TaskIO, stamp
from buquet.queue._snapshot import task_from_snapshot
from buquet.queue._sweep import (
    Read,
    ReadyHint,
    Settlement,
    Sweeper,
    Verdict,
    due_hints,
)
from buquet.queue._task import Task, TaskStatus, encode_task
from buquet.store._memory import content_etag

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 1000
"""Hints kept from one listing."""
LISTING_TTL = 2.0
"""Seconds a listing is used before listing again, so older hints are not starved."""
MAX_MISSES = 4
"""Hints in a row that gave nothing before the claimer lists again."""
MAX_SKIPPED = 50_000
"""Hints remembered as needing no look before a known time."""
MAX_TRIED = 50_000
"""Hints remembered as having had their snapshot tried."""


@dataclass(frozen=True)
class ClaimOptions:
    """The claiming worker, the task types it takes, and the lease length (None: the task's own)."""

    worker_id: str
    types: Collection[str] | None = None
    lease: float | None = None


class Claimer:
    """Claims tasks for one worker, keeping its listing between claims."""

    def __init__(
        self,
        io: TaskIO,
        options: ClaimOptions,
        settlement: Settlement | None = None,
        rng: random.Random | None = None,
        *,
        relist_after: float = 0.0,
        before_claim: Callable[[Task], None] | None = None,
    ) -> None:
        self._io = io
        self._relist_after = relist_after
        self._before_claim = before_claim
        self._options = options
        types = options.types
        self._sweeper = Sweeper(io, settlement or Settlement({}, types))
        self._rng = rng or random.Random()
        self._candidates: list[ReadyHint] = []
        self._position = 0
        self._listed_at = 0.0
        self._misses = 0
        self._skipped: dict[str, int] = {}
        self._held: set[str] = set()
        self._tried: set[str] = set()

    def hold(self, hint_key: str) -> None:
        """Skip ``hint_key`` until :meth:`drop`: it belongs to a task this worker runs."""
        self._held.add(hint_key)

    def drop(self, hint_key: str) -> None:
        """Stop skipping a hint passed to :meth:`hold`."""
        self._held.discard(hint_key)

    def claim(self) -> ClaimedTask | None:
        """Claim one due task; return None when a fresh listing contains nothing claimable.

        A listing younger than ``relist_after`` seconds counts as fresh even
        when used up, so claims in quick succession do not list again.
        """
        if not self._candidates and time.monotonic() - self._listed_at < self._relist_after:
            return None
        fresh = self._stale_listing()
        if fresh:
            self._list()
        while True:
            while self._candidates:
                claimed = self._try(self._pop())
                if claimed is not None:
                    self._misses = 0
                    return claimed
                self._misses += 1
                if self._misses >= MAX_MISSES and self._candidates:
                    self._list()
                    fresh = True
            if fresh:
                return None
            self._list()
            fresh = True

    def _stale_listing(self) -> bool:
        return not self._candidates or time.monotonic() - self._listed_at > LISTING_TTL

    def _list(self) -> None:
        self._misses = 0
        now_ms = millis(self._io.now())
        self._prune(now_ms)
        types = self._options.types
        found: list[ReadyHint] = []
        for hint in due_hints(self._io, now_ms):
            if types is not None and hint.task_type not in types:
                continue
            if hint.key in self._held or self._skipped.get(hint.key, 0) > now_ms:
                continue
            found.append(hint)
            if len(found) == MAX_CANDIDATES:
                break
        self._candidates = found
        self._position = self._rng.randrange(len(found)) if found else 0
        self._listed_at = time.monotonic()

    def _prune(self, now_ms: int) -> None:
        if len(self._skipped) > MAX_SKIPPED // 2:
            self._skipped = {k: t for k, t in self._skipped.items() if t > now_ms}
        if len(self._skipped) > MAX_SKIPPED:
            self._skipped.clear()

    def _pop(self) -> ReadyHint:
        """Take the hint at the current position; after a miss, jump to a random one."""
        if self._misses:
            self._position = self._rng.randrange(len(self._candidates))
        self._position %= len(self._candidates)
        return self._candidates.pop(self._position)

    def _try(self, hint: ReadyHint) -> ClaimedTask | None:
        read: Read | None = None
        if hint.snapshot is not None and self._first_try(hint.key):
            claimed, read = self._take_snapshot(hint, hint.snapshot)
            if claimed is not None:
                return self._took(claimed)
        verdict = self._sweeper.check(hint, read)
        if verdict.claimable is None:
            self._remember(hint, verdict)
            return None
        if self._before_claim is not None:
            self._before_claim(verdict.claimable[0])
        claimed = take(self._io, verdict.claimable, self._options, hint.key)
        return None if claimed is None else self._took(claimed)

    def _first_try(self, hint_key: str) -> bool:
        """Record a snapshot try; False if ``hint_key`` had one: its task has changed since."""
        if hint_key in self._tried:
            return False
        if len(self._tried) >= MAX_TRIED:
            self._tried.clear()
        self._tried.add(hint_key)
        return True

    def _take_snapshot(
        self, hint: ReadyHint, snapshot: str
    ) -> tuple[ClaimedTask | None, Read | None]:
        """Claim the task a hint's snapshot describes; on a conflict, also return the re-read."""
        task = task_from_snapshot(hint.due_ms, hint.task_type, hint.task_id, snapshot)
        if task is None:
            return None, None
        if self._before_claim is not None:
            self._before_claim(task)
        etag = content_etag(encode_task(task))
        return _take(self._io, (task, etag), self._options, hint.key)

    def _took(self, claimed: ClaimedTask) -> ClaimedTask:
        expires = claimed.task.lease_expires_at
        assert expires is not None
        self._skipped[claimed.hint] = millis(expires)
        return claimed

    def _remember(self, hint: ReadyHint, verdict: Verdict) -> None:
        if verdict.revisit_ms is not None:
            self._skipped[hint.key] = verdict.revisit_ms


def take(
    io: TaskIO, found: tuple[Task, str], options: ClaimOptions, hint_key: str
) -> ClaimedTask | None:
    """Write the claim of a pending task read with ``etag``; None when another claimer won.

    ``hint_key`` is the key of the task's ready hint, dropped once the task settles.
    """
    return _take(io, found, options, hint_key)[0]


def _take(
    io: TaskIO, found: tuple[Task, str], options: ClaimOptions, hint_key: str
) -> tuple[ClaimedTask | None, Read | None]:
    """Like :func:`take`; after a lost race, also return the read that showed it."""
    task, etag = found
    now = io.now()
    lease_seconds = options.lease if options.lease is not None else task.lease_seconds
    running = stamp(running_copy(task, options.worker_id, now, lease_seconds), now)
    new_etag, read = _write_claim(io, running, etag)
    if new_etag is None:
        return None, read
    assert running.lease_token is not None
    logger.debug("claimed task %s (attempt %d) as %s", task.id, running.attempts, options.worker_id)
    return ClaimedTask(running, new_etag, running.lease_token, lease_seconds, hint_key), None


def running_copy(task: Task, worker_id: str, now: dt.datetime, lease_seconds: float) -> Task:
    """Return ``task`` as running under a new lease token, one attempt further."""
    return task.model_copy(
        update={
            "status": TaskStatus.RUNNING,
            "attempts": task.attempts + 1,
            "lease_token": uuid.uuid4().hex,
            "worker_id": worker_id,
            "lease_expires_at": now + dt.timedelta(seconds=lease_seconds),
        }
    )


def _write_claim(io: TaskIO, running: Task, etag: str) -> tuple[str | None, Read | None]:
    """Write the claim; return the new ETag, or None and the re-read when another claimer won.

    A claim whose response was lost may have been applied: the store then
    reports a conflict (or an ambiguous write), and only a re-read that finds
    this claim's lease token shows whether it won.
    """
    try:
        return io.replace(running, etag), None
    except (PreconditionFailed, AmbiguousWrite):
        found = io.read(running.id)
    if found is None:
        return None, Read(None)
    stored, stored_etag = found
    if stored.status is TaskStatus.RUNNING and stored.lease_token == running.lease_token:
        logger.debug("claim of task %s was applied although its response was lost", running.id)
        return stored_etag, None
    return None, Read(found)
