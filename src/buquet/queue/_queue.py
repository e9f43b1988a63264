"""The Queue: submit, inspect and cancel tasks, and the operations workers use."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from buquet import _time
from buquet.errors import TaskNotFound
from buquet.queue import _owned
from buquet.queue._backoff import Backoff
from buquet.queue._cancel import cancel as _cancel
from buquet.queue._claim import Claimer, ClaimOptions
from buquet.queue._claimed import ClaimedTask
from buquet.queue._io import TaskIO
from buquet.queue._listing import iter_tasks
from buquet.queue._repair import repair as _repair
from buquet.queue._submit import (
    SubmitOptions,
    build_task,
    check_lease,
    check_max_attempts,
)
from buquet.queue._submit import submit as _submit
from buquet.queue._submit import submit_claimed as _submit_claimed
from buquet.queue._sweep import SettleHook, Settlement, SweepReport
from buquet.queue._sweep import sweep as _sweep
from buquet.queue._task import Task, TaskStatus
from buquet.store import ObjectStore

logger = logging.getLogger(__name__)

Duration = float | str | dt.timedelta


class Queue:
    """A task queue stored in an object store.

    ``default_max_attempts`` and ``default_lease`` apply to tasks submitted
    without their own values. Every time decision uses ``store.now()``.
    With ``hint_snapshots`` False, hints never carry a snapshot of their
    task: small inputs then stay out of object keys, which anyone allowed to
    list the bucket can read, at the cost of one read per claim.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        default_max_attempts: int = 3,
        default_lease: Duration = "30s",
        hint_snapshots: bool = True,
    ) -> None:
        self.store = store
        self.default_max_attempts = check_max_attempts(default_max_attempts)
        self.default_lease = check_lease(_time.parse_duration(default_lease, name="lease"))
        self._io = TaskIO(store)
        self._io.snapshots = hint_snapshots
        self._finished_ids: set[str] = set()
        self._repair_lock = threading.Lock()
        self._claimers: dict[tuple[object, ...], Claimer] = {}
        self._claimers_lock = threading.Lock()

    def submit(
        self,
        task_type: str,
        input: Any = None,
        *,
        delay: Duration = 0,
        idempotency_key: str | None = None,
        task_id: str | None = None,
        max_attempts: int | None = None,
        timeout: Duration | None = None,
        lease: Duration | None = None,
        backoff: Backoff | None = None,
    ) -> Task:
        """Submit a task; with ``task_id`` or ``idempotency_key``, submitting again is a no-op.

        Raises TaskConflict when that id already names a task of another type
        or input, SerializationError when ``input`` is not JSON-serialisable,
        and InvalidKeyError for an invalid type or id. Nothing is written when
        a value is invalid.
        """
        task = self.prepare(
            task_type,
            input,
            delay=delay,
            idempotency_key=idempotency_key,
            task_id=task_id,
            max_attempts=max_attempts,
            timeout=timeout,
            lease=lease,
            backoff=backoff,
        )
        return _submit(self._io, task)

    def prepare(
        self,
        task_type: str,
        input: Any = None,
        *,
        delay: Duration = 0,
        idempotency_key: str | None = None,
        task_id: str | None = None,
        max_attempts: int | None = None,
        timeout: Duration | None = None,
        lease: Duration | None = None,
        backoff: Backoff | None = None,
    ) -> Task:
        """Validate the arguments of :meth:`submit` and build the pending task, writing nothing."""
        options = SubmitOptions(
            delay=_time.parse_duration(delay, name="delay"),
            max_attempts=check_max_attempts(
                self.default_max_attempts if max_attempts is None else max_attempts
            ),
            lease=self.parse_lease(lease),
            timeout=None if timeout is None else _time.parse_duration(timeout, name="timeout"),
            backoff=backoff or Backoff(),
            task_id=task_id,
            idempotency_key=idempotency_key,
        )
        return build_task(task_type, input, options, self.store.now())

    def submit_prepared(self, task: Task, *, hint: bool = True) -> Task:
        """Submit a task built by :meth:`prepare`; the same rules as :meth:`submit`.

        With ``hint`` False the task is created without its ready hint, and
        the caller must call :meth:`write_hint` with the returned task: until
        then no worker finds it, except a repair pass.
        """
        return _submit(self._io, task, hint=hint)

    def write_hint(self, task: Task) -> None:
        """Write the ready hint of a task submitted with ``hint=False``, if it is live."""
        if not task.status.is_terminal:
            self._io.put_ready_hint(task)

    def get(self, task_id: str) -> Task:
        """Read a task; raise TaskNotFound when it does not exist."""
        return self.get_with_etag(task_id)[0]

    def get_with_etag(self, task_id: str) -> tuple[Task, str]:
        """Read a task and the ETag for a conditional write; raise TaskNotFound."""
        found = self._io.read(task_id)
        if found is None:
            raise TaskNotFound(f"task {task_id!r} not found", task_id=task_id)
        return found

    def list(
        self,
        status: TaskStatus | str | None = None,
        task_type: str | None = None,
        prefix: str = "",
        limit: int | None = None,
    ) -> Iterator[Task]:
        """Yield tasks in id order, filtered by status, type and id prefix.

        Each task is one read, so listing is slow on large queues.
        """
        status_filter = None if status is None else TaskStatus(status)
        return iter_tasks(self._io, status_filter, task_type, prefix, limit)

    def cancel(self, task_id: str) -> Task:
        """Cancel a pending task, or request cancellation of a running one."""
        return _cancel(self._io, task_id)

    def claim(
        self,
        types: Collection[str] | None,
        worker_id: str,
        *,
        lease: Duration | None = None,
        rng: random.Random | None = None,
    ) -> ClaimedTask | None:
        """Claim a due task of one of ``types`` (any type when None); None when none is due.

        ``lease`` overrides the lease length stored in the task. Calls with the
        same arguments share one :class:`Claimer`, and so its listing.
        """
        if rng is not None:
            return self.claimer(types, worker_id, lease=lease, rng=rng).claim()
        claimer_key = (None if types is None else tuple(sorted(types)), worker_id, lease)
        with self._claimers_lock:
            shared = self._claimers.get(claimer_key)
            if shared is None:
                shared = self._claimers[claimer_key] = self.claimer(types, worker_id, lease=lease)
            return shared.claim()

    def claimer(
        self,
        types: Collection[str] | None,
        worker_id: str,
        *,
        lease: Duration | None = None,
        settle_hooks: Mapping[str, SettleHook] | None = None,
        rng: random.Random | None = None,
        relist_after: float = 0.0,
        before_claim: Callable[[Task], None] | None = None,
    ) -> Claimer:
        """Return a claimer that keeps its listing between claims, as a worker uses.

        It applies the sweep rules to the hints it reads, calling
        ``settle_hooks`` for finished tasks whose owner died. A used-up
        listing younger than ``relist_after`` seconds is not listed again.
        ``before_claim`` is called with each task just before its claim is written.
        """
        seconds = None if lease is None else self.parse_lease(lease)
        options = ClaimOptions(worker_id, types, seconds)
        settlement = Settlement(settle_hooks or {}, types)
        return Claimer(
            self._io,
            options,
            settlement,
            rng,
            relist_after=relist_after,
            before_claim=before_claim,
        )

    def submit_claimed(
        self, task: Task, worker_id: str, lease: float | None = None, *, replayed: bool = False
    ) -> ClaimedTask | None:
        """Create ``task`` (from :meth:`prepare`) already claimed by ``worker_id``.

        ``replayed`` is for settle hooks: the hook's own task keeps its hint
        until the hook returns, so a crash makes a sweeper call the hook, and
        submit the task, again. The task's hint and object are then written
        at the same time instead of one after the other.

        Returns None when an equal task with that id exists already; raises
        TaskConflict when it differs.
        """
        options = ClaimOptions(worker_id, None, lease)
        return _submit_claimed(self._io, task, options, replayed=replayed)

    def renew(self, claimed: ClaimedTask) -> Task:
        """Extend the lease of a claimed task; raise LeaseLost when it was taken over."""
        return _owned.renew(self._io, claimed)

    def complete(self, claimed: ClaimedTask, result: Any = None) -> Task:
        """Mark a claimed task succeeded; raise LeaseLost or SerializationError.

        The ready hint stays until :meth:`drop_hint`, or until a sweep
        deletes it, so a settle hook can run in between.
        """
        return _owned.complete(self._io, claimed, result)

    def fail(self, claimed: ClaimedTask, error: str, *, retryable: bool = True) -> Task:
        """Record a failed attempt: retry after the task's backoff, or fail it for good."""
        return _owned.fail(self._io, claimed, error, retryable=retryable)

    def release(self, claimed: ClaimedTask) -> Task:
        """Return a claimed task to pending, due now, without counting the attempt."""
        return _owned.release(self._io, claimed)

    def drop_hint(self, claimed: ClaimedTask) -> bool:
        """Delete the ready hint of a claimed task that finished and settled; False on failure."""
        return _owned.drop_hint(self._io, claimed)

    def sweep(
        self,
        now: dt.datetime | None = None,
        *,
        settle_hooks: Mapping[str, SettleHook] | None = None,
        types: Collection[str] | None = None,
    ) -> SweepReport:
        """Requeue or fail tasks whose lease lapsed, and clean the due ready hints.

        The hint of a task that finished a lease ago is deleted after its
        type's settle hook ran. With ``types``, hints of finished tasks of other types that
        have no hook here are left for the sweeper of the process that
        handles them.
        """
        return _sweep(self._io, Settlement(settle_hooks or {}, types), now)

    def repair(self) -> SweepReport:
        """Write the missing hints of pending and running tasks (a full listing)."""
        with self._repair_lock:
            return _repair(self._io, self._finished_ids)

    def parse_lease(self, lease: Duration | None) -> float:
        """Return a lease length in seconds; the queue's default when ``lease`` is None."""
        if lease is None:
            return self.default_lease
        return check_lease(_time.parse_duration(lease, name="lease"))
