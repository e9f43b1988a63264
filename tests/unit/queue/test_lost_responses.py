"""Queue writes whose response is lost: each path re-reads and keeps a write that was applied.

The store is a FaultyStore without retries, so a LOST_ANSWER fault applies
the write and then raises AmbiguousWrite to the queue. ``DroppedStore``
raises AmbiguousWrite without applying the write, the other possible outcome.
"""

from __future__ import annotations

from queue_support import FakeClock, keys_under

from buquet import keys
from buquet.errors import AmbiguousWrite
from buquet.queue import ClaimedTask, Queue, TaskStatus
from buquet.store import Fault, FaultRule, FaultyStore, MemoryStore


def lost_store(memory: MemoryStore, operation: str, *, skip: int = 0) -> FaultyStore:
    """Wrap ``memory`` so that one task write of ``operation`` loses its response."""
    rule = FaultRule(
        Fault.LOST_ANSWER, operations={operation}, prefix=keys.TASKS, count=1, skip=skip
    )
    return FaultyStore(memory, [rule])


class DroppedStore(MemoryStore):
    """A memory store whose next ``drops`` task writes raise AmbiguousWrite unapplied."""

    def __init__(self, clock: FakeClock, drops: int) -> None:
        super().__init__(clock=clock)
        self.drops = drops

    def _drop(self, key: str) -> None:
        if key.startswith(keys.TASKS) and self.drops > 0:
            self.drops -= 1
            raise AmbiguousWrite(f"write of {key!r}: response lost in the test", key=key)

    def create(self, key: str, data: bytes) -> str:
        self._drop(key)
        return super().create(key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        self._drop(key)
        return super().replace(key, data, etag)


def claimed_task(queue: Queue) -> ClaimedTask:
    queue.submit("resize", {"n": 1}, task_id="t1")
    claimed = queue.claim(["resize"], "worker-a")
    assert claimed is not None
    return claimed


def test_submit_lost_create_kept(memory: MemoryStore) -> None:
    store = lost_store(memory, "create")
    queue = Queue(store)

    task = queue.submit("resize", {"n": 1}, task_id="t1")

    assert store.injected[Fault.LOST_ANSWER, "create"] == 1
    assert task.id == "t1"
    assert queue.get("t1").input == {"n": 1}
    assert len(keys_under(memory, keys.READY)) == 1


def test_submit_dropped_create_retried(clock: FakeClock) -> None:
    store = DroppedStore(clock, drops=1)
    queue = Queue(store)

    task = queue.submit("resize", {"n": 1}, task_id="t1")

    assert store.drops == 0
    assert task.status is TaskStatus.PENDING
    assert queue.get("t1").input == {"n": 1}


def test_claim_lost_replace_kept(memory: MemoryStore) -> None:
    store = lost_store(memory, "replace")
    queue = Queue(store)
    queue.submit("resize", {"n": 1}, task_id="t1")

    claimed = queue.claim(["resize"], "worker-a")

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert claimed is not None
    stored, etag = queue.get_with_etag("t1")
    assert stored.status is TaskStatus.RUNNING
    assert stored.lease_token == claimed.token
    assert claimed.etag == etag
    assert keys_under(memory, keys.READY) == [claimed.hint]


def test_renew_lost_replace_kept(memory: MemoryStore, clock: FakeClock) -> None:
    store = lost_store(memory, "replace", skip=1)
    queue = Queue(store)
    claimed = claimed_task(queue)
    clock.advance(5)

    renewed = queue.renew(claimed)

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    stored, etag = queue.get_with_etag("t1")
    assert renewed.lease_expires_at == stored.lease_expires_at
    assert claimed.etag == etag
    assert keys_under(memory, keys.READY) == [claimed.hint]
    assert queue.complete(claimed, "ok").status is TaskStatus.SUCCEEDED


def test_complete_lost_replace_kept(memory: MemoryStore) -> None:
    store = lost_store(memory, "replace", skip=1)
    queue = Queue(store)
    claimed = claimed_task(queue)

    done = queue.complete(claimed, "ok")

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert done.status is TaskStatus.SUCCEEDED
    stored = queue.get("t1")
    assert stored.status is TaskStatus.SUCCEEDED
    assert stored.result == "ok"
    assert stored.version == done.version


def test_complete_dropped_replace_rewritten(clock: FakeClock) -> None:
    store = DroppedStore(clock, drops=0)
    queue = Queue(store)
    claimed = claimed_task(queue)
    store.drops = 1

    done = queue.complete(claimed, "ok")

    assert store.drops == 0
    assert done.status is TaskStatus.SUCCEEDED
    assert queue.get("t1").result == "ok"


def test_fail_lost_replace_retries_task(memory: MemoryStore) -> None:
    store = lost_store(memory, "replace", skip=1)
    queue = Queue(store)
    claimed = claimed_task(queue)

    task = queue.fail(claimed, "boom")

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert task.status is TaskStatus.PENDING
    stored = queue.get("t1")
    assert stored.status is TaskStatus.PENDING
    assert stored.error == "boom"
    due_ms = int(stored.available_at.timestamp() * 1000)
    assert keys_under(memory, keys.READY) == [keys.ready_key(due_ms, stored.type, "t1")]


def test_release_lost_replace_kept(memory: MemoryStore) -> None:
    store = lost_store(memory, "replace", skip=1)
    queue = Queue(store)
    claimed = claimed_task(queue)

    task = queue.release(claimed)

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert task.status is TaskStatus.PENDING
    stored = queue.get("t1")
    assert stored.status is TaskStatus.PENDING
    assert stored.attempts == 0
    assert keys_under(memory, keys.READY) == [claimed.hint]


def test_cancel_pending_lost_replace(memory: MemoryStore) -> None:
    store = lost_store(memory, "replace")
    queue = Queue(store)
    queue.submit("resize", {"n": 1}, task_id="t1")

    task = queue.cancel("t1")

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert task.status is TaskStatus.CANCELLED
    assert queue.get("t1").status is TaskStatus.CANCELLED
    assert queue.claim(["resize"], "worker-a") is None
    assert keys_under(memory, keys.READY) == []


def test_cancel_running_lost_replace(memory: MemoryStore) -> None:
    store = lost_store(memory, "replace", skip=1)
    queue = Queue(store)
    claimed = claimed_task(queue)

    task = queue.cancel("t1")

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert task.cancel_requested
    stored = queue.get("t1")
    assert stored.status is TaskStatus.RUNNING
    assert stored.cancel_requested
    assert queue.fail(claimed, "stopped").status is TaskStatus.CANCELLED


def test_sweep_requeue_response_lost() -> None:
    clock = FakeClock()
    # The first task write is the claim, the second the sweep's requeue.
    lost_requeue = FaultRule(
        Fault.LOST_ANSWER, operations={"replace"}, prefix="tasks/", skip=1, count=1
    )
    queue = Queue(FaultyStore(MemoryStore(clock=clock), [lost_requeue]))
    task_id = queue.submit("resize", lease="10s").id
    assert queue.claim(["resize"], "worker-a") is not None
    clock.advance(11)

    report = queue.sweep()
    task = queue.get(task_id)

    assert report.requeued == 0
    assert task.status is TaskStatus.PENDING
    assert "lease expired" in (task.error or "")
