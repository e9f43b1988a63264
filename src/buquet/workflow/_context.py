"""The context of the step attempt running in this thread: ``buquet.workflow.step_context()``."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from buquet.errors import WorkflowError
from buquet.queue import TaskContext


@dataclass(frozen=True)
class StepContext:
    """The running attempt of a step: its run, node, item index and task."""

    run_id: str
    step: str
    index: int | None
    """The item's position, for one item of a ``.map()``; None otherwise."""
    task: TaskContext

    @property
    def attempt(self) -> int:
        """Number of this attempt, from 1."""
        return self.task.attempt

    @property
    def idempotency_key(self) -> str:
        """A key that is the same in every attempt of this step: pass it to side effects."""
        return self.task.task_id

    @property
    def cancel_requested(self) -> bool:
        """Whether the run was cancelled; refreshed on each lease renewal."""
        return self.task.cancel_requested


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "buquet_step_context", default=None
)


def step_context() -> StepContext:
    """Return the context of the step running in this thread, or raise WorkflowError outside one."""
    current = _current.get()
    if current is None:
        raise WorkflowError("step_context() is only available while a step runs on a worker")
    return current


@contextmanager
def running_step(context: StepContext) -> Iterator[None]:
    """Make ``context`` the current step context inside the block."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)
