"""A fresh task is claimed from its hint's snapshot, without a read, on every store backend."""

from __future__ import annotations

from typing import Any, cast

from buquet import keys
from buquet.queue import Queue, TaskStatus
from buquet.store import ObjectStore, StoredObject


class TaskReadCounter:
    """Passes every call to a store and counts the reads of task objects."""

    def __init__(self, inner: ObjectStore) -> None:
        self._inner = inner
        self.task_reads = 0

    def get(self, key: str) -> StoredObject | None:
        if key.startswith(keys.TASKS):
            self.task_reads += 1
        return self._inner.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_fresh_task_claimed_without_a_read(store: ObjectStore) -> None:
    counter = TaskReadCounter(store)
    queue = Queue(cast(ObjectStore, counter))
    submitted = queue.submit("resize", {"path": "photos/cat.jpg"})
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert counter.task_reads == 0
    queue.complete(claimed, {"ok": True})
    stored = Queue(store).get(submitted.id)
    assert stored.status is TaskStatus.SUCCEEDED
    assert stored.input == {"path": "photos/cat.jpg"}
    assert stored.result == {"ok": True}


def test_outdated_snapshot_claims_nothing(store: ObjectStore) -> None:
    # The task was cancelled after its hint was written: the snapshot's
    # conditional claim fails, and the read that follows finds it finished.
    queue = Queue(store)
    submitted = queue.submit("resize", {"path": "photos/cat.jpg"})
    [hint] = store.list_page(keys.READY).keys
    assert keys.split_ready_key(hint)[3] is not None
    queue.cancel(submitted.id)
    store.put(hint, b"{}")
    assert queue.claim(["resize"], "w1") is None
    assert queue.get(submitted.id).status is TaskStatus.CANCELLED
    assert store.list_page(keys.READY).keys == []
