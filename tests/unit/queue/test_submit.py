"""Submitting tasks: validation, idempotency and the hint written first."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from queue_support import START, keys_under

from buquet import keys
from buquet.errors import ConfigError, InvalidKeyError, SerializationError, TaskConflict
from buquet.queue import Queue, TaskStatus
from buquet.store import MemoryStore


def test_submit_writes_pending_task(queue: Queue) -> None:
    task = queue.submit("send_email", {"to": "a@example.com"})
    stored = queue.get(task.id)
    assert stored.status is TaskStatus.PENDING
    assert stored.input == {"to": "a@example.com"}
    assert stored.available_at == START - dt.timedelta(seconds=1)
    assert stored.created_at == START
    assert stored.attempts == 0
    assert stored.version == 1


def test_submit_writes_ready_hint(queue: Queue, memory: MemoryStore) -> None:
    task = queue.submit("send_email", delay=30)
    due = int(START.timestamp() * 1000) + 30_000
    [hint] = keys_under(memory, keys.READY)
    assert keys.parse_ready_key(hint) == (due, "send_email", task.id)


def test_submit_same_task_id_twice(queue: Queue, memory: MemoryStore) -> None:
    first = queue.submit("resize", {"n": 1}, task_id="job-1")
    second = queue.submit("resize", {"n": 1}, task_id="job-1")
    assert first.id == second.id == "job-1"
    assert keys_under(memory, keys.TASKS) == [keys.task_key("job-1")]


def test_submit_same_idempotency_key_twice(queue: Queue, memory: MemoryStore) -> None:
    first = queue.submit("resize", [1, 2], idempotency_key="order 17")
    second = queue.submit("resize", (1, 2), idempotency_key="order 17")
    assert first.id == second.id == keys.idempotent_task_id("order 17")
    assert second.idempotency_key == "order 17"
    assert len(keys_under(memory, keys.TASKS)) == 1


def test_submit_conflicting_input(queue: Queue) -> None:
    queue.submit("resize", {"n": 1}, task_id="job-1")
    with pytest.raises(TaskConflict, match="job-1") as caught:
        queue.submit("resize", {"n": 2}, task_id="job-1")
    assert caught.value.task_id == "job-1"


def test_submit_conflicting_type(queue: Queue) -> None:
    queue.submit("resize", {"n": 1}, idempotency_key="k")
    with pytest.raises(TaskConflict):
        queue.submit("crop", {"n": 1}, idempotency_key="k")


def test_submit_concurrent_same_id(queue: Queue, memory: MemoryStore) -> None:
    barrier = threading.Barrier(8)

    def submit_one(_: int) -> str:
        barrier.wait()
        return queue.submit("resize", {"n": 1}, idempotency_key="same").id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(submit_one, range(8)))
    assert len(ids) == 1
    assert len(keys_under(memory, keys.TASKS)) == 1


def test_submit_unserialisable_input(queue: Queue, memory: MemoryStore) -> None:
    with pytest.raises(SerializationError):
        queue.submit("resize", {"items": {1, 2}})
    assert keys_under(memory, "") == []


@pytest.mark.parametrize("task_type", ["", "1abc", "a/b", "a~b", "a b"])
def test_submit_invalid_type(queue: Queue, memory: MemoryStore, task_type: str) -> None:
    with pytest.raises(InvalidKeyError):
        queue.submit(task_type)
    assert keys_under(memory, "") == []


@pytest.mark.parametrize("task_id", ["", "../etc", "/abs", "a~b", "a..b", "a\nb"])
def test_submit_invalid_task_id(queue: Queue, memory: MemoryStore, task_id: str) -> None:
    with pytest.raises(InvalidKeyError):
        queue.submit("resize", task_id=task_id)
    assert keys_under(memory, "") == []


def test_submit_invalid_max_attempts(queue: Queue) -> None:
    with pytest.raises(ConfigError, match="max_attempts"):
        queue.submit("resize", max_attempts=0)


def test_submit_invalid_lease(queue: Queue) -> None:
    with pytest.raises(ConfigError, match="lease"):
        queue.submit("resize", lease=0)


def test_submit_options_stored(queue: Queue) -> None:
    task = queue.submit("resize", max_attempts=5, timeout="2m", lease="45s", delay="1m")
    stored = queue.get(task.id)
    assert stored.max_attempts == 5
    assert stored.timeout_seconds == 120.0
    assert stored.lease_seconds == 45.0
    assert (stored.available_at - START).total_seconds() == 60.0
