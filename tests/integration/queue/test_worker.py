"""The worker end to end on every store backend."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from buquet.errors import NonRetryableError
from buquet.queue import Backoff, Queue, Task, TaskContext, TaskStatus, Worker
from buquet.store import ObjectStore

FAST = {"poll_min": "5ms", "poll_max": "50ms"}
NO_WAIT = Backoff(base=0.01, factor=1.0, cap=0.01, jitter=False)
WAIT_LIMIT = 30.0


def _run_in_thread(worker: Worker, **kwargs: object) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_worker_runs_all_tasks(store: ObjectStore) -> None:
    queue = Queue(store)
    ids = [queue.submit("double", {"n": n}).id for n in range(20)]
    settled: Counter[str] = Counter()
    lock = threading.Lock()

    def on_settled(task: Task) -> None:
        with lock:
            settled[task.id] += 1

    worker = Worker(queue, concurrency=4, **FAST)
    worker.register("double", lambda data: data["n"] * 2, on_settled=on_settled)
    worker.run(idle_exit=0.3)
    tasks = {task_id: queue.get(task_id) for task_id in ids}
    assert {task.status for task in tasks.values()} == {TaskStatus.SUCCEEDED}
    assert [tasks[task_id].result for task_id in ids] == [n * 2 for n in range(20)]
    assert settled == Counter(dict.fromkeys(ids, 1))
    assert list(queue.list(status="running")) == []


def test_worker_async_handler(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("greet", "Ada")

    async def greet(name: str, ctx: TaskContext) -> str:
        await asyncio.sleep(0.01)
        return f"hello {name}, attempt {ctx.attempt}"

    worker = Worker(queue, concurrency=2, **FAST)
    worker.register("greet", greet)
    worker.run(idle_exit=0.3)
    assert queue.get(task.id).result == "hello Ada, attempt 1"


def test_worker_retries_then_dead(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("broken", max_attempts=3, backoff=NO_WAIT)
    calls: list[int] = []

    def broken(data: object, ctx: TaskContext) -> None:
        calls.append(ctx.attempt)
        raise ValueError("disk full")

    worker = Worker(queue, concurrency=1, **FAST)
    worker.register("broken", broken)
    worker.run(idle_exit=0.5)
    stored = queue.get(task.id)
    assert calls == [1, 2, 3]
    assert stored.status is TaskStatus.FAILED
    assert stored.error == "ValueError: disk full"


def test_worker_non_retryable(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("strict", max_attempts=5)

    def strict(data: object) -> None:
        raise NonRetryableError("bad input")

    worker = Worker(queue, concurrency=1, **FAST)
    worker.register("strict", strict)
    worker.run(idle_exit=0.3)
    stored = queue.get(task.id)
    assert stored.status is TaskStatus.FAILED
    assert stored.attempts == 1
    assert stored.error == "NonRetryableError: bad input"


def test_worker_unserialisable_result(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("odd", max_attempts=5)
    worker = Worker(queue, concurrency=1, **FAST)
    worker.register("odd", lambda data: {1, 2})
    worker.run(idle_exit=0.3)
    stored = queue.get(task.id)
    assert stored.status is TaskStatus.FAILED
    assert stored.attempts == 1
    assert stored.error is not None
    assert stored.error.startswith("result is not JSON-serialisable")


def test_worker_stop_releases_tasks(store: ObjectStore) -> None:
    queue = Queue(store)
    ids = [queue.submit("hang", n).id for n in range(2)]
    started = threading.Semaphore(0)
    finish = threading.Event()

    def hang(data: int) -> int:
        started.release()
        finish.wait(WAIT_LIMIT)
        return data

    worker = Worker(queue, concurrency=2, grace="50ms", **FAST)
    worker.register("hang", hang)
    thread = _run_in_thread(worker)
    for _ in ids:
        assert started.acquire(timeout=WAIT_LIMIT)
    worker.stop()
    thread.join(WAIT_LIMIT)
    finish.set()
    assert not thread.is_alive()
    for task_id in ids:
        task = queue.get(task_id)
        assert task.status is TaskStatus.PENDING
        assert task.attempts == 0


def test_worker_stop_lets_handlers_finish(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("short")
    started = threading.Event()

    def short(data: object) -> str:
        started.set()
        time.sleep(0.2)
        return "finished"

    worker = Worker(queue, concurrency=1, grace="20s", **FAST)
    worker.register("short", short)
    thread = _run_in_thread(worker)
    assert started.wait(WAIT_LIMIT)
    worker.stop()
    thread.join(WAIT_LIMIT)
    assert queue.get(task.id).status is TaskStatus.SUCCEEDED


def test_worker_timeout_fails_attempt(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("slow", timeout="100ms", max_attempts=1)
    release = threading.Event()

    def slow(data: object) -> str:
        release.wait(WAIT_LIMIT)
        return "too late"

    worker = Worker(queue, concurrency=1, grace="10ms", **FAST)
    worker.register("slow", slow)
    thread = _run_in_thread(worker)
    _wait_for(lambda: queue.get(task.id).status is TaskStatus.FAILED)
    release.set()
    worker.stop()
    thread.join(WAIT_LIMIT)
    stored = queue.get(task.id)
    assert stored.error == "timed out after 0.1s"
    assert stored.result is None


def test_worker_sees_cancel_request(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("watch", lease="0.3s")
    started = threading.Event()

    def watch(data: object, ctx: TaskContext) -> None:
        started.set()
        deadline = time.monotonic() + WAIT_LIMIT
        while not ctx.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.01)
        raise NonRetryableError("cancelled by request")

    worker = Worker(queue, concurrency=1, **FAST)
    worker.register("watch", watch)
    thread = _run_in_thread(worker)
    assert started.wait(WAIT_LIMIT)
    queue.cancel(task.id)
    _wait_for(lambda: queue.get(task.id).status.is_terminal)
    worker.stop()
    thread.join(WAIT_LIMIT)
    assert queue.get(task.id).status is TaskStatus.CANCELLED


def test_sweeper_settles_after_crash(store: ObjectStore) -> None:
    # A worker that wrote the outcome and died before its settle hook ran.
    queue = Queue(store)
    task = queue.submit("step", lease="0.2s")
    claimed = queue.claim(["step"], "dead-worker")
    assert claimed is not None
    queue.complete(claimed, "ok")
    settled: list[str] = []
    worker = Worker(queue, concurrency=1, sweep_interval="50ms", **FAST)
    worker.register("step", lambda data: None, on_settled=lambda t: settled.append(t.id))
    thread = _run_in_thread(worker)
    _wait_for(lambda: settled == [task.id])
    worker.stop()
    thread.join(WAIT_LIMIT)
    assert settled == [task.id]


def test_owner_calls_failed_settle_hook_again(store: ObjectStore) -> None:
    # The hook fails twice (a brief store outage): the owner retries it
    # itself instead of leaving it to a sweeper a lease later.
    queue = Queue(store)
    task = queue.submit("step", lease="60s")
    calls: list[str] = []

    def flaky_hook(finished: Task) -> None:
        calls.append(finished.id)
        if len(calls) <= 2:
            raise RuntimeError("store briefly unavailable")

    worker = Worker(queue, concurrency=1, **FAST)
    worker.register("step", lambda data: "ok", on_settled=flaky_hook)
    thread = _run_in_thread(worker)
    _wait_for(lambda: len(calls) == 3)
    _wait_for(lambda: not store.list_page("ready/").keys)
    worker.stop()
    thread.join(WAIT_LIMIT)
    assert calls == [task.id] * 3
    assert queue.get(task.id).status is TaskStatus.SUCCEEDED


def test_sweeper_requeues_dead_worker(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("step", lease="0.2s")
    assert queue.claim(["step"], "dead-worker") is not None
    worker = Worker(queue, concurrency=1, sweep_interval="50ms", **FAST)
    worker.register("step", lambda data, ctx: ctx.attempt)
    thread = _run_in_thread(worker)
    _wait_for(lambda: queue.get(task.id).status is TaskStatus.SUCCEEDED)
    worker.stop()
    thread.join(WAIT_LIMIT)
    assert queue.get(task.id).result == 2


def test_worker_renews_long_task(store: ObjectStore) -> None:
    queue = Queue(store)
    task = queue.submit("long", lease="0.3s")
    worker = Worker(queue, concurrency=1, sweep_interval="50ms", **FAST)
    worker.register("long", lambda data, ctx: (time.sleep(1.0), ctx.attempt)[1])
    worker.run(idle_exit=0.3)
    stored = queue.get(task.id)
    assert stored.status is TaskStatus.SUCCEEDED
    assert stored.result == 1


def test_worker_without_handlers(store: ObjectStore) -> None:
    with pytest.raises(Exception, match="no handlers"):
        Worker(store).run(idle_exit=0.1)
