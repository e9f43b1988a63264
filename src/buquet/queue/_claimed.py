"""A task held by a worker under a lease."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from buquet.queue._task import Task


@dataclass(eq=False)
class ClaimedTask:
    """A claimed task: the latest read of it, its ETag and the lease token that fences it.

    Queue operations on one ClaimedTask are serialised by its lock, so a
    renewal thread and the handler's completion can share it.
    """

    task: Task
    etag: str
    token: str
    lease_seconds: float
    hint: str
    """Key of the task's ready hint, deleted once the task has finished and settled."""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def task_id(self) -> str:
        """Id of the claimed task."""
        return self.task.id

    @property
    def attempt(self) -> int:
        """Number of the running attempt, from 1."""
        return self.task.attempts

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancellation was requested, as of the latest read or renewal."""
        return self.task.cancel_requested
