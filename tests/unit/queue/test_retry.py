"""Retries: backoff on the store's clock, and a dead task after the last attempt."""

from __future__ import annotations

import datetime as dt

from queue_support import FakeClock, keys_under

from buquet import keys
from buquet.queue import Backoff, Queue, TaskStatus
from buquet.store import MemoryStore

NO_JITTER = Backoff(base=2.0, factor=3.0, cap=100.0, jitter=False)


def test_retry_until_dead(queue: Queue, clock: FakeClock, memory: MemoryStore) -> None:
    task = queue.submit("flaky", max_attempts=3, backoff=NO_JITTER)
    delays = []
    for attempt in (1, 2, 3):
        claimed = queue.claim(["flaky"], "w1")
        assert claimed is not None
        assert claimed.attempt == attempt
        failed_at = clock.now
        result = queue.fail(claimed, f"error {attempt}")
        delays.append((result.available_at - failed_at).total_seconds())
        clock.advance(1000)
    stored = queue.get(task.id)
    assert stored.status is TaskStatus.FAILED
    assert stored.attempts == 3
    assert stored.error == "error 3"
    assert delays[:2] == [2.0, 6.0]
    assert queue.claim(["flaky"], "w1") is None
    assert keys_under(memory, keys.READY) == []


def test_retry_hint_written_at_backoff(queue: Queue, clock: FakeClock, memory: MemoryStore) -> None:
    task = queue.submit("flaky", backoff=NO_JITTER)
    claimed = queue.claim(["flaky"], "w1")
    assert claimed is not None
    queue.fail(claimed, "boom")
    due = clock.now + dt.timedelta(seconds=2)
    assert keys_under(memory, keys.READY) == [
        keys.ready_key(int(due.timestamp() * 1000), "flaky", task.id)
    ]
    clock.advance(1.9)
    assert queue.claim(["flaky"], "w1") is None
    clock.advance(0.1)
    assert queue.claim(["flaky"], "w1") is not None


def test_fail_not_retryable(queue: Queue) -> None:
    task = queue.submit("flaky", max_attempts=5)
    claimed = queue.claim(["flaky"], "w1")
    assert claimed is not None
    result = queue.fail(claimed, "bad input", retryable=False)
    assert result.status is TaskStatus.FAILED
    assert queue.get(task.id).attempts == 1


def test_lapse_on_last_attempt_fails(queue: Queue, clock: FakeClock) -> None:
    task = queue.submit("slow", max_attempts=1, lease="5s")
    assert queue.claim(["slow"], "w1") is not None
    clock.advance(6)
    report = queue.sweep()
    stored = queue.get(task.id)
    assert report.dead == 1
    assert stored.status is TaskStatus.FAILED
    assert stored.error == "lease expired after attempt 1 (worker w1 stopped renewing)"
