"""The context a task handler receives about the attempt it runs."""

from __future__ import annotations

from typing import Any

from buquet.queue._claimed import ClaimedTask
from buquet.queue._task import Task


class TaskContext:
    """The running attempt of a task, passed to handlers that declare a ``ctx`` parameter."""

    def __init__(self, claimed: ClaimedTask, worker_id: str) -> None:
        self._claimed = claimed
        self.worker_id = worker_id

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
