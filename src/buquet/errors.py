"""Exceptions raised by buquet.

Every exception derives from :class:`BuquetError`::

    BuquetError
    ├── ConfigError              bad store URL, option or configuration file
    ├── InvalidKeyError          a run id, task id or key that cannot be stored
    ├── SerializationError       a value that is not JSON-serialisable
    ├── NonRetryableError        raised by a task or step: fail now, no retry
    ├── StoreError               the object store failed after its retries
    │   ├── PreconditionFailed   a conditional write lost the race
    │   ├── AmbiguousWrite       a write whose response was lost: applied or not
    │   ├── ListingError         a listing the store cannot page through
    │   └── StoreCheckFailed     a store without a guarantee buquet relies on
    ├── QueueError
    │   ├── TaskNotFound
    │   ├── TaskConflict         an idempotency key reused for another task
    │   ├── LeaseLost            the worker no longer owns the task
    │   └── InvalidTransition    e.g. cancelling a finished task
    └── WorkflowError
        ├── DefinitionError      a workflow whose DAG is invalid
        ├── TargetError          a module, file or name that cannot be loaded
        ├── InvalidInput         workflow input that does not fit its parameters
        ├── RunNotFound
        ├── RunConflict          a run id already used by another workflow
        ├── RunNotFinished       a result asked for before the run finished
        └── RunFailed            a result asked for of a failed or cancelled run

Errors from boto3 and the operating system are wrapped, with the original
kept as ``__cause__``.
"""

from __future__ import annotations


class BuquetError(Exception):
    """Base class of every error raised by buquet."""


class ConfigError(BuquetError, ValueError):
    """Invalid configuration: fix the store URL, option or configuration file named."""


class InvalidKeyError(BuquetError, ValueError):
    """A run id, task id or step name that cannot be part of an object key.

    Use letters, digits, ``-``, ``_`` and ``.``; no ``..``, control characters
    or leading ``/``.
    """


class SerializationError(BuquetError, TypeError):
    """A value that is not JSON-serialisable.

    Return str, int, float (finite), bool, None, lists, dicts with string keys,
    Decimal, datetime, date, UUID, Enum or pydantic models.
    """


class NonRetryableError(BuquetError):
    """Raise this from a task handler or step to fail it at once, without retries."""


class StoreError(BuquetError):
    """The object store failed, after retries where the failure was transient."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class PreconditionFailed(StoreError):
    """A conditional write or delete lost the race: the object changed or exists."""


class AmbiguousWrite(StoreError):
    """A write whose response was lost, so it may or may not have been applied.

    Read the object again and compare it with what was written (a lease token
    or a version) to tell which; a conditional write repeated blindly can
    fail against its own first attempt.
    """


class ListingError(StoreError):
    """The store returned a listing that cannot be paged through."""


class StoreCheckFailed(StoreError):
    """The store failed a check of a guarantee buquet relies on, such as conditional writes.

    The message names the failed checks; ``buquet doctor`` prints every check.
    """


class QueueError(BuquetError):
    """Base class of task queue errors."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class TaskNotFound(QueueError, KeyError):
    """No task with this id exists in the store."""

    def __str__(self) -> str:
        return str(self.args[0])


class TaskConflict(QueueError):
    """An idempotency key or task id already names a different task."""


class LeaseLost(QueueError):
    """The worker's lease was taken over: its write was rejected and must not be retried."""


class InvalidTransition(QueueError):
    """The task is in a state that does not allow the operation, e.g. it already finished."""


class WorkflowError(BuquetError):
    """Base class of workflow errors."""


class DefinitionError(WorkflowError):
    """The workflow's DAG is invalid; the message names the offending step."""


class TargetError(WorkflowError):
    """A module, file or attribute named on the command line cannot be loaded."""


class InvalidInput(WorkflowError, ValueError):
    """Workflow input that does not match the workflow's parameters; the message names them."""


class RunNotFound(WorkflowError, KeyError):
    """No run with this id exists in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found; list runs with 'buquet workflow list'")
        self.run_id = run_id

    def __str__(self) -> str:
        return str(self.args[0])


class RunConflict(WorkflowError):
    """A run id that already names a run of another workflow or with other input."""


class RunNotFinished(WorkflowError):
    """The run is still running: wait for it, or check it with 'buquet workflow status'."""


class RunFailed(WorkflowError):
    """The run failed or was cancelled, so it has no result; the message gives the reason."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id
