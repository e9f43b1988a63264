"""Fencing: a worker whose lease was taken over cannot write the task."""

from __future__ import annotations

import pytest
from queue_support import FakeClock, keys_under

from buquet import keys
from buquet.errors import InvalidTransition, LeaseLost
from buquet.queue import ClaimedTask, Queue, TaskStatus
from buquet.store import MemoryStore


def _take_over(queue: Queue, clock: FakeClock) -> tuple[ClaimedTask, ClaimedTask]:
    queue.submit("resize", {"n": 1}, lease="30s", task_id="t1")
    zombie = queue.claim(["resize"], "worker-a")
    assert zombie is not None
    clock.advance(31)
    report = queue.sweep()
    assert report.requeued == 1
    successor = queue.claim(["resize"], "worker-b")
    assert successor is not None
    return zombie, successor


def test_fenced_worker_cannot_renew(queue: Queue, clock: FakeClock) -> None:
    zombie, _ = _take_over(queue, clock)
    with pytest.raises(LeaseLost, match="t1"):
        queue.renew(zombie)


def test_fenced_worker_cannot_complete(queue: Queue, clock: FakeClock) -> None:
    zombie, successor = _take_over(queue, clock)
    with pytest.raises(LeaseLost):
        queue.complete(zombie, "zombie result")
    queue.complete(successor, "real result")
    stored = queue.get("t1")
    assert stored.status is TaskStatus.SUCCEEDED
    assert stored.result == "real result"
    assert stored.worker_id == "worker-b"


def test_fenced_worker_cannot_fail(queue: Queue, clock: FakeClock) -> None:
    zombie, _ = _take_over(queue, clock)
    with pytest.raises(LeaseLost):
        queue.fail(zombie, "zombie error", retryable=False)
    stored = queue.get("t1")
    assert stored.status is TaskStatus.RUNNING
    assert stored.worker_id == "worker-b"
    assert stored.attempts == 2


def test_fenced_after_successor_finished(queue: Queue, clock: FakeClock) -> None:
    zombie, successor = _take_over(queue, clock)
    queue.fail(successor, "boom", retryable=False)
    with pytest.raises(LeaseLost):
        queue.complete(zombie, "late")
    stored = queue.get("t1")
    assert stored.status is TaskStatus.FAILED
    assert stored.result is None


def test_renew_survives_cancel_request(queue: Queue, memory: MemoryStore) -> None:
    queue.submit("resize", task_id="t1")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.cancel("t1")
    task = queue.renew(claimed)
    assert task.cancel_requested
    assert task.lease_token == claimed.token
    assert keys_under(memory, keys.READY) == [claimed.hint]


def test_second_outcome_rejected(queue: Queue) -> None:
    queue.submit("resize", task_id="t1")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    queue.complete(claimed, 1)
    with pytest.raises(InvalidTransition):
        queue.complete(claimed, 2)
    assert queue.get("t1").result == 1


def test_renew_keeps_hint(queue: Queue, memory: MemoryStore, clock: FakeClock) -> None:
    queue.submit("resize", task_id="t1", lease="30s")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    first_hint = claimed.hint
    clock.advance(10)
    task = queue.renew(claimed)
    assert task.lease_expires_at is not None
    assert claimed.hint == first_hint
    assert keys_under(memory, keys.READY) == [first_hint]
    clock.advance(25)
    assert queue.sweep().requeued == 0
    assert queue.get("t1").status is TaskStatus.RUNNING
