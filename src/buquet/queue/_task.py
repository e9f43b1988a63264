"""The task object: the one source of truth about a unit of work."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from buquet import _json
from buquet.queue._backoff import Backoff


class TaskStatus(StrEnum):
    """Lifecycle of a task: pending -> running -> succeeded | failed | cancelled.

    A failed attempt with attempts left goes back to pending, due after its
    backoff delay; ``failed`` means no attempts are left (a dead task).
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the status can never change again."""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Task(BaseModel):
    """A task as stored at ``tasks/<id>.json``.

    Times are on the store's clock. ``attempts`` counts the claims made so far,
    so the running attempt is number ``attempts``.
    """

    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    input: Any = None
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    max_attempts: int = Field(default=3, ge=1)
    lease_seconds: float = Field(default=30.0, gt=0)
    timeout_seconds: float | None = None
    backoff: Backoff = Field(default_factory=Backoff)
    idempotency_key: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    available_at: dt.datetime
    worker_id: str | None = None
    lease_token: str | None = None
    lease_expires_at: dt.datetime | None = None
    cancel_requested: bool = False
    result: Any = None
    error: str | None = None
    finished_at: dt.datetime | None = None
    version: int = 0
    """Incremented on every write, so that two writes never share an ETag."""


def encode_task(task: Task) -> bytes:
    """Encode a task as the JSON stored at ``tasks/<id>.json``."""
    return _json.dumps_plain(task.model_dump(mode="json"))


def decode_task(data: bytes) -> Task:
    """Decode a stored task object."""
    return Task.model_validate_json(data)
