"""Handing the next task of a chain straight to the worker that settles the previous one.

While a worker runs a settle hook it publishes a :class:`Handoff`. Code in
the hook (the workflow engine) submits through it: the task is created
already claimed by this worker and starts at once, with no poll, listing,
read or claim write in between. When the worker has no free slot, the
caller submits the task for any worker to claim.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from buquet.queue._claimed import ClaimedTask
from buquet.queue._queue import Queue
from buquet.queue._task import Task

logger = logging.getLogger(__name__)

_current: ContextVar[Handoff | None] = ContextVar("buquet_handoff", default=None)


class Handoff:
    """Creates tasks claimed by one worker and starts them there, while it has room."""

    def __init__(
        self,
        queue: Queue,
        *,
        worker_id: str,
        lease: float | None,
        room: Callable[[], int],
        start: Callable[[ClaimedTask], None],
        handles: Callable[[str], bool],
    ) -> None:
        self._queue = queue
        self._worker_id = worker_id
        self._lease = lease
        self._room = room
        self._start = start
        self._handles = handles

    def room(self) -> int:
        """Return how many more tasks the worker can start now."""
        return max(self._room(), 0)

    def take(self, task: Task) -> bool:
        """Create ``task`` claimed by this worker and start it; False when there is no room
        or the worker has no handler for its type.

        True also when an equal task with that id exists already: then another
        worker submitted it, and it runs there or is claimed from the queue.
        """
        if not self._handles(task.type) or self.room() <= 0:
            return False
        # Only settle hooks hand tasks over, and a crash replays them: see Queue.submit_prepared.
        claimed = self._queue.submit_claimed(task, self._worker_id, self._lease, replayed=True)
        if claimed is not None:
            self._start(claimed)
        return True


def current_handoff() -> Handoff | None:
    """The handoff of the worker whose settle hook is running in this thread, if any."""
    return _current.get()


@contextlib.contextmanager
def handing_off(handoff: Handoff) -> Iterator[None]:
    """Publish ``handoff`` to the code run inside the block."""
    token = _current.set(handoff)
    try:
        yield
    finally:
        _current.reset(token)
