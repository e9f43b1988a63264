"""Snapshots in ready hints: claiming a fresh task without reading it first.

A task that was never claimed is exactly as its submitter created it. Its
fields beyond id, type and due time are often few: a small input, options
left at their defaults. The submitter then appends them to the hint key as
base64url JSON, and a claimer rebuilds the stored object from the key
alone. The stores' ETags are the MD5 of the content, so the claimer also
has the ETag, and claims with one CAS where it would otherwise read first.

The claim is safe whatever the snapshot says: it is conditional on the
ETag of the rebuilt bytes, so it only succeeds when the stored object is
byte for byte the rebuilt one. Any change to the task (a claim, a cancel)
makes the CAS fail, and the claimer then reads the task as usual. The
submitter keeps a snapshot only if rebuilding it gives back the exact
bytes it stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
from typing import Any

from pydantic import ValidationError

from buquet import keys
from buquet._time import from_millis, millis
from buquet.queue._task import Task, TaskStatus, encode_task

logger = logging.getLogger(__name__)

MAX_HINT_NAME = 200
"""Maximum length of a hint key after ``ready/``; also a safe file name for the local store."""
_DERIVED = ("id", "type", "available_at", "updated_at", "created_at")
"""Fields rebuilt from the key (``created_at`` is stored as an offset from the due time)."""
_CREATED = "created"


def _fresh_defaults() -> dict[str, Any]:
    """Return the JSON values of a task's fields with defaults, as a fresh submission has them."""
    defaults: dict[str, Any] = {}
    for name, field in Task.model_fields.items():
        if not field.is_required():
            defaults[name] = field.get_default(call_default_factory=True)
    defaults.update(status=TaskStatus.PENDING, attempts=0, version=1)
    now = dt.datetime.now(dt.UTC)
    sample = Task(id="x", type="x", created_at=now, updated_at=now, available_at=now, **defaults)
    dumped = sample.model_dump(mode="json")
    return {name: dumped[name] for name in defaults}


_FRESH = _fresh_defaults()


def snapshot_of(task: Task) -> str | None:
    """Return the snapshot to append to the hint of ``task``; None if it cannot have one.

    Only a task never claimed, whose key with the snapshot stays within
    MAX_HINT_NAME, and whose snapshot rebuilds its exact stored bytes, gets one.
    """
    if task.status is not TaskStatus.PENDING or task.attempts or task.version != 1:
        return None
    if task.updated_at != task.created_at:
        return None
    dumped = task.model_dump(mode="json")
    fields = {
        name: value
        for name, value in dumped.items()
        if name not in _DERIVED and _FRESH.get(name, _MISSING) != value
    }
    due = millis(task.available_at)
    fields[_CREATED] = millis(task.created_at) - due
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    snapshot = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")
    key = keys.ready_key(due, task.type, task.id, snapshot)
    if len(key) - len(keys.READY) > MAX_HINT_NAME:
        return None
    rebuilt = task_from_snapshot(due, task.type, task.id, snapshot)
    if rebuilt is None or encode_task(rebuilt) != encode_task(task):
        return None
    return snapshot


_MISSING = object()


def task_from_snapshot(due_ms: int, task_type: str, task_id: str, snapshot: str) -> Task | None:
    """Rebuild the task a hint's snapshot describes; None for a snapshot that does not parse."""
    try:
        padded = snapshot + "=" * (-len(snapshot) % 4)
        fields = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(fields, dict):
            return None
        created = from_millis(due_ms + int(fields.pop(_CREATED)))
        data = {**_FRESH, **fields}
        data.update(
            id=task_id,
            type=task_type,
            available_at=from_millis(due_ms),
            created_at=created,
            updated_at=created,
        )
        return Task.model_validate(data)
    except (ValueError, KeyError, TypeError, binascii.Error, ValidationError, UnicodeError):
        logger.debug("ignoring the unreadable snapshot of the hint of task %s", task_id)
        return None
