"""Claiming: due time on the store's clock, types, stale hints, cancellation."""

from __future__ import annotations

import datetime as dt

from queue_support import START, FakeClock, keys_under

from buquet import keys
from buquet.queue import Queue, TaskStatus
from buquet.store import MemoryStore


def test_claim_empty_queue(queue: Queue) -> None:
    assert queue.claim(["resize"], "w1") is None


def test_claim_marks_task_running(queue: Queue, memory: MemoryStore) -> None:
    submitted = queue.submit("resize", {"n": 1}, lease="20s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    stored = queue.get(submitted.id)
    assert stored.status is TaskStatus.RUNNING
    assert stored.attempts == 1
    assert stored.worker_id == "w1"
    assert stored.lease_token == claimed.token
    assert stored.lease_expires_at == START + dt.timedelta(seconds=20)
    assert keys_under(memory, keys.READY) == [claimed.hint]


def test_claim_skips_other_types(queue: Queue) -> None:
    queue.submit("resize")
    assert queue.claim(["crop"], "w1") is None
    assert queue.claim(None, "w1") is not None


def test_claim_one_winner(queue: Queue) -> None:
    queue.submit("resize")
    first = queue.claim(["resize"], "w1")
    second = queue.claim(["resize"], "w2")
    assert first is not None
    assert second is None


def test_claim_respects_delay(queue: Queue, clock: FakeClock) -> None:
    queue.submit("resize", delay=30)
    clock.advance(29.9)
    assert queue.claim(["resize"], "w1") is None
    clock.advance(0.1)
    assert queue.claim(["resize"], "w1") is not None


def test_claim_uses_store_clock(clock: FakeClock) -> None:
    # The store's clock is years ahead of this machine: due and lapse follow the store.
    store = MemoryStore(clock=clock)
    queue = Queue(store)
    queue.submit("resize", delay="1h")
    assert queue.claim(["resize"], "w1") is None
    clock.advance(3600)
    claimed = queue.claim(["resize"], "w1", lease="10s")
    assert claimed is not None
    assert queue.sweep().requeued == 0
    clock.advance(10)
    assert queue.sweep().requeued == 1


def test_claim_store_clock_behind(clock: FakeClock) -> None:
    # A store clock hours behind the local clock must not make future tasks due.
    clock.now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)
    queue = Queue(MemoryStore(clock=clock))
    queue.submit("resize", delay="1h")
    assert queue.claim(["resize"], "w1") is None
    clock.advance(3600)
    assert queue.claim(["resize"], "w1") is not None


def test_claim_deletes_hint_of_finished_task(
    queue: Queue, memory: MemoryStore, clock: FakeClock
) -> None:
    queue.submit("resize", lease="30s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.complete(claimed, "done")
    assert queue.claim(["resize"], "w1") is None
    assert keys_under(memory, keys.READY) == [claimed.hint]
    clock.advance(31)
    assert queue.claim(["resize"], "w1") is None
    assert keys_under(memory, keys.READY) == []


def test_claim_keeps_young_hint_of_missing_task(
    queue: Queue, memory: MemoryStore, clock: FakeClock
) -> None:
    hint = keys.ready_key(int(START.timestamp() * 1000), "resize", "not-yet-created")
    memory.put(hint, b"")
    assert queue.claim(["resize"], "w1") is None
    assert keys_under(memory, keys.READY) == [hint]
    clock.advance(61)
    assert queue.claim(["resize"], "w1") is None
    assert keys_under(memory, keys.READY) == []


def test_claim_cancels_requested_pending_task(queue: Queue) -> None:
    task = queue.submit("resize")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.cancel(task.id)
    queue.fail(claimed, "interrupted")
    assert queue.get(task.id).status is TaskStatus.CANCELLED


def test_cancel_pending_task(queue: Queue, memory: MemoryStore) -> None:
    task = queue.submit("resize")
    cancelled = queue.cancel(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert queue.get(task.id).status is TaskStatus.CANCELLED
    assert keys_under(memory, keys.READY) == []
    assert queue.claim(["resize"], "w1") is None


def test_cancel_running_task_sets_request(queue: Queue) -> None:
    task = queue.submit("resize")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.cancel(task.id)
    assert queue.get(task.id).cancel_requested
    assert not claimed.cancel_requested
    queue.renew(claimed)
    assert claimed.cancel_requested
    assert queue.get(task.id).status is TaskStatus.RUNNING


def test_claim_after_release_keeps_attempts(queue: Queue) -> None:
    task = queue.submit("resize")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    released = queue.release(claimed)
    assert released.status is TaskStatus.PENDING
    assert released.attempts == 0
    again = queue.claim(["resize"], "w2")
    assert again is not None
    assert again.attempt == 1
    assert queue.get(task.id).worker_id == "w2"
