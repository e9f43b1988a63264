"""Snapshots in ready hints: a fresh task is claimed without a read, and only while unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from queue_support import START, FakeClock, keys_under

from buquet import keys
from buquet._time import from_millis, millis
from buquet.queue import Queue, TaskStatus
from buquet.queue._io import TaskIO
from buquet.queue._repair import repair
from buquet.queue._snapshot import MAX_HINT_NAME, snapshot_of, task_from_snapshot
from buquet.queue._task import encode_task
from buquet.store import MemoryStore, StoredObject


class ReadCountingStore(MemoryStore):
    """A memory store that counts reads of task objects."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.task_reads = 0

    def get(self, key: str) -> StoredObject | None:
        if key.startswith(keys.TASKS):
            self.task_reads += 1
        return super().get(key)


class PlainEtagStore(MemoryStore):
    """A memory store whose ETags are not the MD5 of the content, as with S3 and SSE-KMS."""

    def _store(self, key: str, data: bytes) -> str:
        super()._store(key, data)
        etag = f'"v{len(self._objects)}-{len(data)}"'
        self._objects[key] = StoredObject(key, bytes(data), etag)
        return etag


@pytest.fixture
def counting(clock: FakeClock) -> ReadCountingStore:
    return ReadCountingStore(clock)


def only_hint(store: MemoryStore) -> tuple[int, str, str, str | None]:
    [key] = keys_under(store, keys.READY)
    return keys.split_ready_key(key)


def test_fresh_task_hint_carries_snapshot(queue: Queue, memory: MemoryStore) -> None:
    task = queue.submit("send_email", {"to": "a@example.com"}, delay=30)
    due, task_type, task_id, snapshot = only_hint(memory)
    assert (due, task_type, task_id) == (millis(START) + 30_000, "send_email", task.id)
    assert snapshot is not None
    rebuilt = task_from_snapshot(due, task_type, task_id, snapshot)
    assert rebuilt == queue.get(task.id)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"delay": 2.5},
        {"max_attempts": 7, "lease": "90s", "timeout": 12.5},
        {"idempotency_key": "order 17"},
        {"task_id": "job-1"},
        {"backoff": {"base": 0.5, "factor": 3.0, "cap": 60.0, "jitter": False}},
    ],
)
def test_snapshot_rebuilds_stored_bytes(queue: Queue, options: dict[str, object]) -> None:
    task = queue.submit("resize", {"name": "Zoë"}, **options)  # type: ignore[arg-type]
    stored = queue.get(task.id)
    snapshot = snapshot_of(stored)
    assert snapshot is not None
    rebuilt = task_from_snapshot(millis(stored.available_at), "resize", stored.id, snapshot)
    assert rebuilt is not None
    assert encode_task(rebuilt) == encode_task(stored)


def test_claim_from_snapshot_reads_nothing(clock: FakeClock, counting: ReadCountingStore) -> None:
    queue = Queue(counting)
    submitted = queue.submit("resize", {"n": 1})
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert counting.task_reads == 0
    stored = queue.get(submitted.id)
    assert stored.status is TaskStatus.RUNNING
    assert stored.lease_token == claimed.token
    assert stored.input == {"n": 1}
    assert keys_under(counting, keys.READY) == [claimed.hint]


def test_changed_task_is_claimed_as_stored(queue: Queue, memory: MemoryStore) -> None:
    # The task changes after its hint was written: the snapshot no longer
    # matches, so the claim falls back to reading the stored task.
    submitted = queue.submit("resize", {"n": 1})
    io = TaskIO(memory)
    task, etag = queue.get_with_etag(submitted.id)
    io.replace(task.model_copy(update={"max_attempts": 9, "version": 2}), etag)
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert claimed.task.max_attempts == 9
    assert queue.get(submitted.id).max_attempts == 9


def test_task_taken_by_another_claimer(queue: Queue, memory: MemoryStore) -> None:
    queue.submit("resize", {"n": 1})
    first = queue.claim(["resize"], "w1")
    second = Queue(memory).claim(["resize"], "w2")
    assert first is not None
    assert second is None


def test_lapsed_snapshot_task_reclaimed(
    queue: Queue, memory: MemoryStore, clock: FakeClock
) -> None:
    submitted = queue.submit("resize", {"n": 1})
    first = queue.claim(["resize"], "w1", lease="10s")
    assert first is not None
    clock.advance(11)
    second = Queue(memory).claim(["resize"], "w2", lease="10s")
    assert second is not None
    assert second.attempt == 2
    assert second.hint == first.hint
    assert queue.get(submitted.id).worker_id == "w2"


def test_large_input_gets_a_plain_hint(queue: Queue, memory: MemoryStore) -> None:
    submitted = queue.submit("resize", {"blob": "x" * MAX_HINT_NAME})
    assert only_hint(memory)[3] is None
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert claimed.task_id == submitted.id


def test_etags_other_than_md5_turn_snapshots_off(clock: FakeClock) -> None:
    store = PlainEtagStore(clock=clock)
    queue = Queue(store)
    queue.submit("resize", {"n": 1})
    assert only_hint(store)[3] is None
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None


@pytest.mark.parametrize("snapshot", ["not-base64!", "bnVsbA", "eyJjcmVhdGVkIjoieCJ9", "e30"])
def test_unreadable_snapshot_is_ignored(queue: Queue, memory: MemoryStore, snapshot: str) -> None:
    submitted = queue.submit("resize", {"n": 1})
    [key] = keys_under(memory, keys.READY)
    due, task_type, task_id, _ = keys.split_ready_key(key)
    memory.delete(key)
    memory.put(keys.ready_key(due, task_type, task_id, snapshot), b"{}")
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert claimed.task_id == submitted.id


def test_snapshots_turned_off(memory: MemoryStore) -> None:
    queue = Queue(memory, hint_snapshots=False)
    submitted = queue.submit("resize", {"n": 1})
    assert only_hint(memory)[3] is None
    claimed = queue.claim(["resize"], "w1")
    assert claimed is not None
    assert claimed.task_id == submitted.id


def test_cancel_drops_the_snapshot_hint(queue: Queue, memory: MemoryStore) -> None:
    submitted = queue.submit("resize", {"n": 1})
    assert queue.cancel(submitted.id).status is TaskStatus.CANCELLED
    assert keys_under(memory, keys.READY) == []


def test_repair_counts_a_snapshot_hint_as_present(queue: Queue, memory: MemoryStore) -> None:
    queue.submit("resize", {"n": 1})
    before = keys_under(memory, keys.READY)
    report = repair(TaskIO(memory), set())
    assert report.restored == 0
    assert keys_under(memory, keys.READY) == before


def test_submitted_times_are_whole_milliseconds(clock: FakeClock) -> None:
    clock.now = START + dt.timedelta(microseconds=123_456)
    queue = Queue(MemoryStore(clock=clock))
    task = queue.submit("resize", delay=0.0004)
    assert task.created_at.microsecond == 123_000
    assert task.available_at.microsecond % 1000 == 0


@pytest.mark.parametrize("value", [0, 1, 999, 1_764_896_064_123, 1_999_999_999_999])
def test_millis_round_trip_is_exact(value: int) -> None:
    assert millis(from_millis(value)) == value
