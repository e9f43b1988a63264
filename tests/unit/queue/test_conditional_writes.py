"""Task objects are written only with conditional writes (create, replace)."""

from __future__ import annotations

from queue_support import FakeClock, RecordingStore

from buquet import keys
from buquet.queue import Queue
from buquet.store import MemoryStore


def test_task_objects_written_conditionally(clock: FakeClock) -> None:
    store = RecordingStore(MemoryStore(clock=clock))
    queue = Queue(store)
    queue.submit("resize", {"n": 1}, task_id="a", lease="10s")
    queue.submit("resize", {"n": 1}, task_id="a")
    queue.submit("resize", task_id="b")
    queue.submit("resize", task_id="c", max_attempts=1, lease="10s")
    queue.submit("resize", task_id="d")
    queue.cancel("d")

    first = queue.claim(["resize"], "w1")
    second = queue.claim(["resize"], "w1")
    third = queue.claim(["resize"], "w1")
    assert first is not None
    assert second is not None
    assert third is not None
    queue.renew(first)
    queue.cancel(first.task_id)
    queue.complete(first, {"ok": True})
    queue.fail(second, "boom")
    clock.advance(60)
    queue.sweep()
    queue.repair()

    task_writes = [(method, key) for method, key in store.calls if key.startswith(keys.TASKS)]
    assert task_writes
    assert {method for method, _ in task_writes} <= {"create", "replace"}
    hint_methods = {method for method, key in store.calls if not key.startswith(keys.TASKS)}
    assert hint_methods <= {"put", "delete"}
