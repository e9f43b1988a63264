"""Hints are repaired from the task objects, so no task stays invisible."""

from __future__ import annotations

from queue_support import FakeClock, RecordingStore, keys_under

from buquet import keys
from buquet.queue import Queue, Task, TaskStatus
from buquet.store import MemoryStore


def test_repair_restores_ready_hint(queue: Queue, memory: MemoryStore) -> None:
    task = queue.submit("resize")
    for key in keys_under(memory, keys.READY):
        memory.delete(key)
    assert queue.claim(["resize"], "w1") is None
    report = queue.repair()
    assert report.restored == 1
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert claimed.task_id == task.id


def test_repair_restores_hint_of_running(
    queue: Queue, memory: MemoryStore, clock: FakeClock
) -> None:
    task = queue.submit("resize", lease="10s")
    assert queue.claim(["resize"], "w1") is not None
    for key in keys_under(memory, keys.READY):
        memory.delete(key)
    clock.advance(11)
    assert queue.sweep().requeued == 0
    assert queue.repair().restored == 1
    assert queue.sweep().requeued == 1
    assert queue.get(task.id).status is TaskStatus.PENDING
    assert queue.claim(["resize"], "w2") is not None


def test_repair_leaves_hinted_tasks(queue: Queue) -> None:
    queue.submit("resize")
    queue.submit("resize", delay=60)
    report = queue.repair()
    assert report.checked == 0
    assert report.restored == 0


def test_repair_caches_finished_tasks(clock: FakeClock) -> None:
    store = RecordingStore(MemoryStore(clock=clock))
    queue = Queue(store)
    queue.submit("resize", task_id="t1")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.complete(claimed)
    queue.drop_hint(claimed)
    first = queue.repair()
    second = queue.repair()
    assert first.checked == 1
    assert second.checked == 0


def test_sweep_cleans_stale_hints(queue: Queue, memory: MemoryStore, clock: FakeClock) -> None:
    queue.submit("resize", task_id="t1", lease="10s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.complete(claimed, "ok")
    memory.put(keys.ready_key(0, "resize", "gone"), b"{}")
    clock.advance(61)
    report = queue.sweep()
    assert report.removed == 2
    assert keys_under(memory, keys.READY) == []


def test_sweep_calls_settle_hook(queue: Queue, memory: MemoryStore, clock: FakeClock) -> None:
    queue.submit("resize", task_id="t1", lease="10s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.complete(claimed, "ok")
    settled: list[Task] = []
    clock.advance(11)

    def failing_hook(task: Task) -> None:
        raise RuntimeError("engine unavailable")

    first = queue.sweep(settle_hooks={"resize": failing_hook})
    assert first.hook_errors == 1
    assert keys_under(memory, keys.READY) == [claimed.hint]
    second = queue.sweep(settle_hooks={"resize": settled.append})
    assert second.settled == 1
    assert [task.id for task in settled] == ["t1"]
    assert keys_under(memory, keys.READY) == []


def test_sweep_leaves_foreign_types(queue: Queue, memory: MemoryStore, clock: FakeClock) -> None:
    queue.submit("resize", task_id="t1", lease="10s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.complete(claimed, "ok")
    clock.advance(11)
    queue.sweep(types=["crop"])
    assert keys_under(memory, keys.READY) == [claimed.hint]
    queue.sweep(types=["resize"])
    assert keys_under(memory, keys.READY) == []


def test_sweep_replaces_stale_hint_of_pending(
    queue: Queue, memory: MemoryStore, clock: FakeClock
) -> None:
    queue.submit("resize", task_id="t1", lease="10s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.fail(claimed, "try later")
    current = keys_under(memory, keys.READY)
    memory.delete(current[0])
    memory.put(keys.ready_key(1, "resize", "t1"), b"{}")
    clock.advance(11)
    report = queue.sweep()
    assert report.moved == 1
    assert keys_under(memory, keys.READY) == current
    again = queue.claim(["resize"], "w1")
    assert again is not None
    assert again.task_id == "t1"
