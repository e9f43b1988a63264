"""Running one claimed task in a worker thread and writing its outcome.

Exactly one outcome is written per claim: the handler's result or error, a
timeout, or a release at shutdown. :class:`Held` records which one won, so
that a handler that returns after its lease was lost or its timeout passed
has its result discarded instead of written.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from buquet.errors import (
    BuquetError,
    InvalidTransition,
    LeaseLost,
    NonRetryableError,
    SerializationError,
)
from buquet.queue._claimed import ClaimedTask
from buquet.queue._context import TaskContext
from buquet.queue._handoff import Handoff, handing_off
from buquet.queue._invoke import HandlerCall
from buquet.queue._queue import Queue
from buquet.queue._registry import HandlerSpec, SettleHook
from buquet.queue._task import Task, TaskStatus

logger = logging.getLogger(__name__)

SETTLE_RETRY_DELAYS = (0.1, 0.3, 1.0)
"""Waits before the owner calls a failed settle hook again."""


@dataclass(eq=False)
class Held:
    """A task this worker holds: its claim, handler and the bookkeeping of its attempt."""

    claimed: ClaimedTask
    spec: HandlerSpec
    call: HandlerCall
    started: float = field(default_factory=time.monotonic)
    last_renewal: float = field(default_factory=time.monotonic)
    decided: bool = False
    """Whether an outcome was written, or the attempt was fenced off."""
    ctx: TaskContext | None = None
    """The context passed to the handler, once the attempt runs."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def decide(self) -> bool:
        """Take the right to write this attempt's outcome; False when it was already taken."""
        with self.lock:
            if self.decided:
                return False
            self.decided = True
            return True

    @property
    def label(self) -> str:
        """The task id and attempt, for log messages."""
        return f"{self.claimed.task_id} (attempt {self.claimed.attempt})"


class Outcomes:
    """Writes the outcome of attempts, then runs the settle hook and drops the ready hint.

    ``handoff`` is published to settle hooks (see ``_handoff``). ``drop_hint``
    deletes the hint of a settled task; by default at once.
    """

    def __init__(
        self,
        queue: Queue,
        worker_id: str,
        handoff: Handoff | None = None,
        drop_hint: Callable[[ClaimedTask], object] | None = None,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.handoff = handoff
        self._drop_hint = drop_hint or queue.drop_hint

    def execute(self, held: Held) -> None:
        """Run the handler of ``held`` and write what came of it."""
        ctx = TaskContext(held.claimed, self.worker_id)
        held.ctx = ctx
        try:
            self._run(held, ctx)
        finally:
            ctx.finish()

    def _run(self, held: Held, ctx: TaskContext) -> None:
        try:
            result = held.call(held.claimed.task.input, ctx)
        except (NonRetryableError, SerializationError) as error:
            message = _describe(error)
            self.write(held, lambda c: self.queue.fail(c, message, retryable=False))
        except Exception as error:
            logger.exception("task %s raised an unexpected error", held.label)
            message = _describe(error)
            self.write(held, lambda c: self.queue.fail(c, message))
        else:
            self.write(held, lambda c: self._complete(c, result))

    def _complete(self, claimed: ClaimedTask, result: object) -> Task:
        try:
            return self.queue.complete(claimed, result)
        except SerializationError as error:
            message = f"result is not JSON-serialisable: {error}"
            return self.queue.fail(claimed, message, retryable=False)

    def write(self, held: Held, outcome: Callable[[ClaimedTask], Task]) -> None:
        """Write an outcome unless another one was written first, then settle."""
        if not held.decide():
            logger.info(
                "the outcome of task %s is discarded: it timed out or lost its lease", held.label
            )
            return
        try:
            task = outcome(held.claimed)
        except LeaseLost:
            logger.warning("lost the lease of task %s; its result is discarded", held.label)
            return
        except (BuquetError, OSError) as error:
            logger.error(
                "could not record the outcome of task %s (%s); the sweeper returns it to "
                "pending when its lease lapses",
                held.label,
                error,
            )
            return
        self._log_outcome(held, task)
        self.settle(held, task)

    def settle(self, held: Held, task: Task) -> None:
        """Call the settle hook of a finished task, then delete its ready hint."""
        if not task.status.is_terminal:
            return
        hook = held.spec.on_settled
        if hook is not None and not self._settle_with_retries(held, hook, task):
            return
        if held.ctx is None:
            self._drop_hint(held.claimed)
        else:
            held.ctx.drop_hint_when_released(lambda: self._drop_hint(held.claimed))

    def _settle_with_retries(self, held: Held, hook: SettleHook, task: Task) -> bool:
        """Call the hook, again after a short wait when it fails; return whether it succeeded.

        The sweep rules call a failed hook again only a lease after the task
        finished, so the owner, which is alive, retries a brief store outage itself.
        """
        for delay in SETTLE_RETRY_DELAYS:
            try:
                self._call_hook(hook, task)
            except Exception as error:
                logger.warning(
                    "settle hook of task %s failed (%s); calling it again in %.1f s",
                    held.label,
                    _describe(error),
                    delay,
                )
                time.sleep(delay)
            else:
                return True
        try:
            self._call_hook(hook, task)
        except Exception:
            logger.exception(
                "settle hook of task %s failed; the sweeper calls it again later", held.label
            )
            return False
        return True

    def _call_hook(self, hook: SettleHook, task: Task) -> None:
        if self.handoff is None:
            hook(task)
            return
        with handing_off(self.handoff):
            hook(task)

    def release(self, held: Held) -> None:
        """Return a task whose handler is still running at shutdown to pending."""
        if not held.decide():
            return
        try:
            self.queue.release(held.claimed)
        except (LeaseLost, InvalidTransition):
            return
        except BuquetError as error:
            logger.error("could not release task %s (%s); its lease will lapse", held.label, error)
            return
        logger.warning("released task %s back to pending; the attempt is not counted", held.label)

    def _log_outcome(self, held: Held, task: Task) -> None:
        if task.status is TaskStatus.SUCCEEDED:
            logger.debug("task %s succeeded", held.label)
        elif task.status is TaskStatus.PENDING:
            delay = (task.available_at - self.queue.store.now()) / dt.timedelta(seconds=1)
            logger.info(
                "task %s failed: %s; retry scheduled in %.1f s",
                held.label,
                task.error,
                max(delay, 0.0),
            )
        else:
            logger.info("task %s %s: %s", held.label, task.status.value, task.error)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
