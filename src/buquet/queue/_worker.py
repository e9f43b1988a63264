"""The worker: claims tasks of its registered types and runs their handlers in threads."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from types import FrameType, ModuleType
from typing import Any

from buquet import _time, keys
from buquet.errors import BuquetError, ConfigError
from buquet.queue._claim import Claimer
from buquet.queue._claimed import ClaimedTask
from buquet.queue._execution import Held, Outcomes
from buquet.queue._handoff import Handoff
from buquet.queue._invoke import HandlerCall
from buquet.queue._keeper import LeaseKeeper
from buquet.queue._polling import Poll
from buquet.queue._queue import Duration, Queue
from buquet.queue._reaper import HintReaper
from buquet.queue._registry import ClaimHook, HandlerSpec, SettleHook, registered_handlers
from buquet.queue._task import Task
from buquet.store import ObjectStore

logger = logging.getLogger(__name__)

FULL_WAIT = 1.0
"""Seconds to wait for a free slot before checking the stop event again."""
STOP_CHECK = 0.2
"""Maximum seconds between two checks of the stop event."""
BUSY_POLL = 0.05
"""Shortest seconds between empty claims while some of the worker's tasks run."""


class Worker:
    """Runs the handlers of registered task types, ``concurrency`` at a time.

    ``lease`` overrides the lease length stored in each task; by default a
    task keeps the lease it was submitted with. Each claim applies the sweep
    rules to the hints it reads (lapsed leases, tasks whose owner died before
    settling), so a worker with free slots sweeps as it polls; a worker whose
    slots are all busy runs a full sweep every ``sweep_interval`` (half the
    lease by default). A full repair runs once at start and every
    ``repair_interval``. ``grace`` is how long :meth:`run` waits for running
    handlers after a stop before releasing their tasks back to pending.
    The hints of settled tasks are deleted in batches every few tens of
    milliseconds, unless ``batch_hint_deletes`` is False.

    Polling adapts. For a quarter of a second after it found or finished
    work, a worker with nothing running polls every ``poll_min`` (5 ms), about
    50 listings; while some of its tasks run, at most every 50 ms. Then each
    empty claim waits half as long again as the one before, up to
    ``poll_max``, so an idle worker sends one listing request per
    ``poll_max`` and a task submitted to an idle worker waits at most
    ``poll_max`` plus the time of one listing and claim.
    A settle hook may hand the next task of a chain straight to this worker
    (see :func:`~buquet.queue.current_handoff`).
    """

    def __init__(
        self,
        store_or_queue: ObjectStore | Queue,
        *,
        concurrency: int = 4,
        worker_id: str | None = None,
        lease: Duration | None = None,
        poll_min: Duration = "5ms",
        poll_max: Duration = "6s",
        sweep_interval: Duration | None = None,
        repair_interval: Duration = "10m",
        grace: Duration = "30s",
        batch_hint_deletes: bool = True,
    ) -> None:
        queue = store_or_queue if isinstance(store_or_queue, Queue) else Queue(store_or_queue)
        if concurrency < 1:
            raise ConfigError(f"invalid concurrency {concurrency!r}: use at least 1")
        self.queue = queue
        self.concurrency = concurrency
        self.worker_id = worker_id or _default_worker_id()
        self.lease = None if lease is None else queue.parse_lease(lease)
        lease_seconds = self.lease or queue.default_lease
        self._poll = Poll(_seconds(poll_min, "poll_min"), _seconds(poll_max, "poll_max"))
        self._sweep_every = _seconds(sweep_interval or lease_seconds / 2, "sweep_interval")
        self._repair_every = _seconds(repair_interval, "repair_interval")
        self._grace = _seconds(grace, "grace")
        self._handlers: dict[str, HandlerSpec] = {}
        self._calls: dict[str, HandlerCall] = {}
        self._held: dict[str, tuple[Held, Future[None]]] = {}
        self._held_lock = threading.Lock()
        self._keeper: LeaseKeeper | None = None
        self._stop_event = threading.Event()
        self._slot_freed = threading.Event()
        handoff = Handoff(
            queue,
            worker_id=self.worker_id,
            lease=self.lease,
            room=self._handoff_room,
            start=self._start,
            handles=self._handlers.__contains__,
        )
        self._reaper: HintReaper | None = None
        self._batch_hint_deletes = batch_hint_deletes
        self._outcomes = Outcomes(queue, self.worker_id, handoff, self._reap_hint)
        self._claimer: Claimer | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def task_types(self) -> list[str]:
        """The registered task types, sorted."""
        return sorted(self._handlers)

    def register(
        self,
        task_type: str,
        fn: Callable[..., Any],
        *,
        on_settled: SettleHook | None = None,
        on_claim: ClaimHook | None = None,
    ) -> None:
        """Handle ``task_type`` with ``fn``; ``on_settled`` runs once the task has finished.

        ``on_settled(task)`` runs after a terminal write (succeeded, failed,
        cancelled) and before the ready hint is deleted. When it raises, the
        hint stays and a sweeper calls it again, so it must be idempotent.
        ``on_claim(task)`` runs in the claiming thread just before the claim
        is written; it must return at once and must not raise.
        """
        checked = keys.check_task_type(task_type)
        self._handlers[checked] = HandlerSpec(checked, fn, on_settled, on_claim)

    def register_module(self, module: ModuleType | str) -> list[str]:
        """Register every handler declared with ``@handler`` in ``module``; return the types."""
        specs = registered_handlers(module)
        for spec in specs.values():
            self.register(spec.task_type, spec.fn, on_settled=spec.on_settled)
        return sorted(specs)

    def stop(self) -> None:
        """Stop claiming; :meth:`run` then waits for running handlers and returns."""
        self._stop_event.set()
        self._slot_freed.set()

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM call :meth:`stop`; call this from the main thread."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("received signal %s; stopping", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def run(
        self, *, stop_event: threading.Event | None = None, idle_exit: float | None = None
    ) -> None:
        """Claim and run tasks until stopped, or idle for ``idle_exit`` seconds."""
        if not self._handlers:
            raise ConfigError("the worker has no handlers; register at least one task type")
        if stop_event is not None:
            self._stop_event = stop_event
        logger.info(
            "worker %s started: types %s, concurrency %d, store %s",
            self.worker_id,
            ", ".join(self.task_types),
            self.concurrency,
            self.queue.store.url,
        )
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"buquet-{self.worker_id}")
        self._pool = pool
        self._claimer = self.queue.claimer(
            self.task_types,
            self.worker_id,
            lease=self.lease,
            settle_hooks=self._settle_hooks(),
            relist_after=self._poll.minimum,
            before_claim=self._before_claim,
        )
        keeper = LeaseKeeper(self._outcomes, self._held_snapshot)
        self._keeper = keeper
        keeper.start()
        reaper = HintReaper(self.queue.store, self._hints_deleted)
        if self._batch_hint_deletes:
            self._reaper = reaper
            reaper.start()
        try:
            self._loop(pool, idle_exit)
        finally:
            self._shut_down(pool, keeper, reaper)

    def _loop(self, pool: ThreadPoolExecutor, idle_exit: float | None) -> None:
        last_scan = time.monotonic()
        next_repair = time.monotonic()
        idle_since: float | None = None
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now - last_scan >= self._sweep_every:
                # Every slot was busy for a while, so no claim read the due hints.
                self._sweep()
                last_scan = now
            if now >= next_repair:
                self._repair()
                next_repair = now + self._repair_every
            self._slot_freed.clear()
            if self._held_count() >= self.concurrency:
                self._slot_freed.wait(FULL_WAIT)
                continue
            last_scan = now
            if self._claim_one(pool):
                idle_since = None
                continue
            idle_since = self._idle_since(idle_since)
            if _idle_too_long(idle_since, idle_exit):
                logger.info("worker %s idle for %s s; exiting", self.worker_id, idle_exit)
                return
            self._wait_after_empty_claim()

    def _wait_after_empty_claim(self) -> None:
        """Sleep until the next poll, or until the last running task finishes.

        While tasks run, their settle hooks hand the next steps over directly,
        so the worker polls at most every BUSY_POLL; when none is left, it
        polls at once.
        """
        delay = self._poll.next_delay()
        if self._held_count():
            delay = max(delay, BUSY_POLL)
        deadline = time.monotonic() + delay
        # In slices, because a stop event passed to run() does not wake this wait.
        while not self._stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._slot_freed.wait(min(left, STOP_CHECK)):
                self._slot_freed.clear()
                if not self._held_count():
                    return

    def _idle_since(self, idle_since: float | None) -> float | None:
        if self._held_count() > 0:
            return None
        return idle_since if idle_since is not None else time.monotonic()

    def _claim_one(self, pool: ThreadPoolExecutor) -> bool:
        assert self._claimer is not None
        try:
            claimed = self._claimer.claim()
        except BuquetError as error:
            logger.warning("claim failed (%s); polling again later", error)
            return False
        if claimed is None:
            return False
        self._poll.reset()
        self._start(claimed)
        return True

    def _start(self, claimed: ClaimedTask) -> None:
        pool = self._pool
        assert pool is not None
        if self._claimer is not None:
            self._claimer.hold(claimed.hint)
        spec = self._handlers[claimed.task.type]
        held = Held(claimed, spec, self._call_of(spec))
        with self._held_lock:
            future = pool.submit(self._execute, held)
            self._held[claimed.task_id] = (held, future)
        future.add_done_callback(lambda _future: self._forget(held))
        if self._keeper is not None:
            self._keeper.wake()

    def _call_of(self, spec: HandlerSpec) -> HandlerCall:
        """Return how to call the handler of ``spec``, inspecting its signature once."""
        call = self._calls.get(spec.task_type)
        if call is None or call.fn is not spec.fn:
            call = HandlerCall(spec.fn)
            self._calls[spec.task_type] = call
        return call

    def _execute(self, held: Held) -> None:
        try:
            self._outcomes.execute(held)
        except Exception:
            logger.exception("unexpected error while running task %s", held.label)

    def _forget(self, held: Held) -> None:
        with self._held_lock:
            entry = self._held.get(held.claimed.task_id)
            if entry is not None and entry[0] is held:
                del self._held[held.claimed.task_id]
        reaper = self._reaper
        if self._claimer is not None and not (reaper and reaper.queued(held.claimed.hint)):
            self._claimer.drop(held.claimed.hint)
        # A worker that just finished a task polls at the shortest interval again.
        self._poll.reset()
        self._slot_freed.set()

    def _reap_hint(self, claimed: ClaimedTask) -> None:
        if self._reaper is None:
            self.queue.drop_hint(claimed)
        else:
            self._reaper.add(claimed.hint)

    def _hints_deleted(self, hint_keys: list[str]) -> None:
        if self._claimer is not None:
            for key in hint_keys:
                self._claimer.drop(key)

    def _handoff_room(self) -> int:
        # Called from a settle hook, whose own task still occupies a slot it is about to free.
        return self.concurrency - self._held_count() + 1

    def _before_claim(self, task: Task) -> None:
        spec = self._handlers.get(task.type)
        if spec is None or spec.on_claim is None:
            return
        try:
            spec.on_claim(task)
        except Exception:
            logger.exception("claim hook of task type %s failed", task.type)

    def _settle_hooks(self) -> dict[str, SettleHook]:
        return {t: s.on_settled for t, s in self._handlers.items() if s.on_settled is not None}

    def _held_snapshot(self) -> list[Held]:
        with self._held_lock:
            return [held for held, _future in self._held.values()]

    def _held_count(self) -> int:
        with self._held_lock:
            return len(self._held)

    def _sweep(self) -> None:
        try:
            report = self.queue.sweep(settle_hooks=self._settle_hooks(), types=self.task_types)
        except BuquetError as error:
            logger.warning("sweep failed (%s); trying again next interval", error)
            return
        if report.requeued or report.dead:
            logger.info(
                "sweep requeued %d and failed %d tasks whose lease lapsed",
                report.requeued,
                report.dead,
            )

    def _repair(self) -> None:
        try:
            report = self.queue.repair()
        except BuquetError as error:
            logger.warning("repair failed (%s); trying again next interval", error)
            return
        if report.restored:
            logger.info("repair restored %d missing hints", report.restored)

    def _shut_down(self, pool: ThreadPoolExecutor, keeper: LeaseKeeper, reaper: HintReaper) -> None:
        self._stop_event.set()
        with self._held_lock:
            futures = [future for _held, future in self._held.values()]
        if futures:
            logger.info(
                "worker %s stopping; waiting up to %.0f s for %d running tasks",
                self.worker_id,
                self._grace,
                len(futures),
            )
            wait_futures(futures, timeout=self._grace)
        for held in self._held_snapshot():
            self._outcomes.release(held)
        keeper.stop()
        keeper.join()
        if reaper.is_alive():
            reaper.stop()
            reaper.join()
        # NOTE: a handler that ignores its timeout keeps its thread until it returns;
        # the interpreter waits for that thread at exit.
        pool.shutdown(wait=False, cancel_futures=True)
        logger.info("worker %s stopped", self.worker_id)


def _idle_too_long(idle_since: float | None, idle_exit: float | None) -> bool:
    if idle_since is None or idle_exit is None:
        return False
    return time.monotonic() - idle_since >= idle_exit


def _seconds(value: Duration, name: str) -> float:
    return _time.parse_duration(value, name=name)


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
