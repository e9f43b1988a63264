"""The task queue: submit, claim, lease, complete, fail, retry, cancel and sweep tasks.

Tasks live at ``tasks/<id>.json``; a ready hint per live task points claimers
and sweepers at it. See :mod:`buquet.keys` for the layout.
"""

from buquet.queue._backoff import Backoff
from buquet.queue._claim import Claimer
from buquet.queue._claimed import ClaimedTask
from buquet.queue._context import TaskContext
from buquet.queue._handoff import Handoff, current_handoff
from buquet.queue._queue import Queue
from buquet.queue._registry import HandlerSpec, handler, registered_handlers
from buquet.queue._sweep import SweepReport
from buquet.queue._task import Task, TaskStatus
from buquet.queue._worker import Worker

__all__ = [
    "Backoff",
    "ClaimedTask",
    "Claimer",
    "HandlerSpec",
    "Handoff",
    "Queue",
    "SweepReport",
    "Task",
    "TaskContext",
    "TaskStatus",
    "Worker",
    "current_handoff",
    "handler",
    "registered_handlers",
]
