"""The context a task handler receives about the attempt it runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from buquet.queue._claimed import ClaimedTask
from buquet.queue._task import Task

logger = logging.getLogger(__name__)


class TaskContext:
    """The running attempt of a task, passed to handlers that declare a ``ctx`` parameter."""

    def __init__(self, claimed: ClaimedTask, worker_id: str) -> None:
        self._claimed = claimed
        self.worker_id = worker_id
        self._when_over: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._over = False
        self._hint_holds = 0
        self._drop_hint: Callable[[], object] | None = None

    def when_over(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this attempt is over: its outcome written and its
        settle hook run, or the attempt given up (lease lost, outcome not
        written). Called at once when the attempt is over already."""
        with self._lock:
            if not self._over:
                self._when_over.append(callback)
                return
        callback()

    def finish(self) -> None:
        """Mark the attempt over and run the callbacks of :meth:`when_over`; the worker calls it."""
        with self._lock:
            self._over = True
            callbacks, self._when_over = self._when_over, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("a callback at the end of task %s failed", self.task_id)

    def hold_hint(self) -> Callable[[], None]:
        """Keep the task's ready hint after its settle hook, until the returned function is called.

        A settle hook that leaves part of its work to another task of this
        process keeps the hint this way: should the process die before that
        work is done, the hint remains and a sweeper calls the hook again.
        """
        with self._lock:
            self._hint_holds += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._hint_holds -= 1
                drop = self._drop_hint if self._hint_holds == 0 else None
                if drop is not None:
                    self._drop_hint = None
            if drop is not None:
                drop()

        return release

    def drop_hint_when_released(self, drop: Callable[[], object]) -> None:
        """Call ``drop`` now, or once every hold of :meth:`hold_hint` is released.

        The worker calls it with the deletion of the hint.
        """
        with self._lock:
            if self._hint_holds:
                self._drop_hint = drop
                return
        drop()

    @property
    def task(self) -> Task:
        """The task as of the claim or the latest lease renewal."""
        return self._claimed.task

    @property
    def input(self) -> Any:
        """The task's input, as decoded from JSON."""
        return self._claimed.task.input

    @property
    def task_id(self) -> str:
        """Id of the task."""
        return self._claimed.task_id

    @property
    def attempt(self) -> int:
        """Number of this attempt, from 1."""
        return self._claimed.attempt

    @property
    def idempotency_key(self) -> str:
        """A key that stays the same across attempts: pass it to side effects that dedupe."""
        return self._claimed.task.idempotency_key or self._claimed.task_id

    @property
    def cancel_requested(self) -> bool:
        """Whether cancellation was requested; refreshed on each lease renewal."""
        return self._claimed.cancel_requested
