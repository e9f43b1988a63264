"""buquet: workflows and a task queue that need nothing but a bucket.

Workflows::

    from buquet import step, workflow

The task queue on its own::

    from buquet import Queue, Worker, handler
"""

from buquet.errors import BuquetError, NonRetryableError
from buquet.queue import Backoff, Queue, Task, TaskContext, TaskStatus, Worker, handler
from buquet.store import open_store
from buquet.workflow import (
    Client,
    Run,
    RunStatus,
    StepContext,
    Workflow,
    step,
    step_context,
    workflow,
)

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "BuquetError",
    "Client",
    "NonRetryableError",
    "Queue",
    "Run",
    "RunStatus",
    "StepContext",
    "Task",
    "TaskContext",
    "TaskStatus",
    "Worker",
    "Workflow",
    "__version__",
    "handler",
    "open_store",
    "step",
    "step_context",
    "workflow",
]
