"""Reading and writing task objects and hints.

Task objects change only through ``store.create`` and ``store.replace``
(conditional writes). Hints are written with ``store.put`` and deleted
without a condition, because a stale or missing hint is repaired from the
task objects.
"""

from __future__ import annotations

import datetime as dt
import logging

from buquet import keys
from buquet._time import millis
from buquet.errors import StoreError
from buquet.queue._snapshot import snapshot_of
from buquet.queue._task import Task, decode_task, encode_task
from buquet.store import ObjectStore
from buquet.store._memory import content_etag

logger = logging.getLogger(__name__)


def stamp(task: Task, now: dt.datetime) -> Task:
    """Return ``task`` with its version bumped and ``updated_at`` set, ready to be written."""
    return task.model_copy(update={"version": task.version + 1, "updated_at": now})


class TaskIO:
    """Task and hint access on one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.snapshots = True
        """Whether fresh tasks' hints carry snapshots; off once an ETag is not an MD5."""

    def now(self) -> dt.datetime:
        """Return the current time on the store's clock."""
        return self.store.now()

    def read(self, task_id: str) -> tuple[Task, str] | None:
        """Read a task and its ETag; None when it does not exist."""
        stored = self.store.get(keys.task_key(task_id))
        if stored is None:
            return None
        return decode_task(stored.data), stored.etag

    def create(self, task: Task) -> str:
        """Create a task object; raise PreconditionFailed when the id is taken."""
        data = encode_task(task)
        etag = self.store.create(keys.task_key(task.id), data)
        if self.snapshots and etag != content_etag(data):
            logger.info("the store's ETags are not MD5s of the content; hints carry no snapshots")
            self.snapshots = False
        return etag

    def replace(self, task: Task, etag: str) -> str:
        """Overwrite a task object if it still has ``etag``; return the new ETag."""
        return self.store.replace(keys.task_key(task.id), encode_task(task), etag)

    def put_hint(self, key: str) -> None:
        """Write a hint object; the key is the information.

        The body is ``{}`` rather than empty, because SeaweedFS 4.48 responds to an
        empty PUT with a malformed response that breaks the next request on the
        connection.
        """
        self.store.put(key, b"{}")

    def delete_hint(self, key: str) -> bool:
        """Delete a hint, logging instead of raising on failure: the sweeper retries later."""
        try:
            self.store.delete(key)
        except StoreError as error:
            logger.warning("could not delete hint %s (%s); the sweeper will retry", key, error)
            return False
        return True

    def hint_key(self, task: Task) -> str:
        """Key of the ready hint to write for ``task``, with a snapshot when it can have one."""
        snapshot = snapshot_of(task) if self.snapshots else None
        return keys.ready_key(millis(task.available_at), task.type, task.id, snapshot)

    def put_ready_hint(self, task: Task) -> str:
        """Write the ready hint of a live task, at its ``available_at``."""
        key = self.hint_key(task)
        self.put_hint(key)
        return key


def ready_hint_key(task: Task) -> str:
    """Key of the ready hint of ``task`` without a snapshot: due at its ``available_at``.

    A task keeps its hint while it is pending or running and until its
    settle hook ran, so the due hints lead to every live task.
    """
    return keys.ready_key(millis(task.available_at), task.type, task.id)


def hint_matches(key: str, task: Task) -> bool:
    """Check whether the hint ``key`` is the current hint of ``task`` (its snapshot aside)."""
    try:
        due, task_type, task_id = keys.parse_ready_key(key)
    except ValueError:
        return False
    return (due, task_type, task_id) == (millis(task.available_at), task.type, task.id)
