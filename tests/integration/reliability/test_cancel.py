"""Cancelling a run holds: running steps see it, and steps that had not started never run.

The request is stored in the bucket (the run is cancelled, its pending tasks are
cancelled and its running tasks get ``cancel_requested``), so it holds for
workers that are busy, and for workers that start only after the cancel.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from buquet import keys
from buquet.errors import NonRetryableError, TaskNotFound
from buquet.queue import Queue, Task, TaskStatus, Worker
from buquet.store import ObjectStore
from buquet.workflow import (
    Client,
    Engine,
    RunStatus,
    attach_workflows,
    step,
    step_context,
    workflow,
)
from buquet.workflow._engine import FAILURE_NODE

WAIT_LIMIT_SECONDS = 30.0
"""Bound of every wait in this module; reaching it fails the test."""
POLL_SECONDS = 0.02
LEASE = "3s"
"""Short, so that the lease keeper renews the lease, and reads the task, every second."""
IDLE_EXIT_SECONDS = 1.0
DEAD_LEASE = "0.5s"
"""Lease of a claim whose worker never renews it."""

executions: Counter[str] = Counter()
seen_cancel: dict[str, bool] = {}
watch_started = threading.Event()
executions_lock = threading.Lock()


def record(name: str) -> None:
    with executions_lock:
        executions[name] += 1


@pytest.fixture(autouse=True)
def reset_records() -> None:
    executions.clear()
    seen_cancel.clear()
    watch_started.clear()


@step
def watch(label: str) -> str:
    """Run until the run is cancelled, then return normally, as a step that finishes anyway."""
    record("watch")
    watch_started.set()
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if step_context().cancel_requested:
            seen_cancel["watch"] = True
            return f"{label} stopped"
        time.sleep(POLL_SECONDS)
    seen_cancel["watch"] = False
    return f"{label} timed out"


@step
def after_watch(value: str) -> str:
    record("after_watch")
    return value


@workflow
def cancel_watch_flow(label: str) -> str:
    return after_watch(watch(label))


@step
def left_part(value: int) -> int:
    record("left_part")
    return value + 1


@step
def right_part(value: int) -> int:
    record("right_part")
    return value + 2


@step
def square(value: int) -> int:
    record("square")
    return value * value


@step
def join_parts(left: int, right: int, squares: list[int]) -> int:
    record("join_parts")
    return left + right + sum(squares)


@workflow
def cancel_pair_flow(value: int, items: list[int]) -> int:
    return join_parts(left_part(value), right_part(value), square.map(items))


@step
def first_step(value: int) -> int:
    record("first_step")
    return value


@step
def second_step(value: int) -> int:
    record("second_step")
    return value


@workflow
def cancel_chain_flow(value: int) -> int:
    return second_step(first_step(value))


def wait_until(condition: Callable[[], bool], description: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{description} did not happen within {WAIT_LIMIT_SECONDS} s")
        time.sleep(POLL_SECONDS)


def find_task(queue: Queue, task_id: str) -> Task | None:
    try:
        return queue.get(task_id)
    except TaskNotFound:
        return None


def run_tasks(store: ObjectStore, run_id: str) -> dict[str, Task]:
    """Every task of a run, by id."""
    queue = Queue(store)
    prefix = keys.run_tasks_prefix(run_id)
    return {task.id: task for task in queue.list(prefix=prefix.removeprefix(keys.TASKS))}


@pytest.fixture
def start_worker(store: ObjectStore) -> Iterator[Callable[..., threading.Thread]]:
    """Start workers in threads; each is stopped and joined at the end of the test."""
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start(*flows: object, idle_exit: float | None = None) -> threading.Thread:
        worker = Worker(store, concurrency=2, lease=LEASE, poll_min="5ms", poll_max="20ms")
        attach_workflows(worker, flows)  # type: ignore[arg-type]
        stop = threading.Event()
        thread = threading.Thread(
            target=worker.run, kwargs={"stop_event": stop, "idle_exit": idle_exit}, daemon=True
        )
        thread.start()
        started.append((thread, stop))
        return thread

    yield start
    for thread, stop in started:
        stop.set()
        thread.join(WAIT_LIMIT_SECONDS)


def test_cancel_reaches_running_step(
    store: ObjectStore, start_worker: Callable[..., threading.Thread]
) -> None:
    client = Client(store)
    run = client.start(cancel_watch_flow, {"label": "w"})
    watch_id = keys.step_task_id(run.id, "watch")
    start_worker(cancel_watch_flow)
    wait_until(watch_started.is_set, "the start of step watch")

    cancelled = client.cancel(run.id)
    wait_until(lambda: client.queue.get(watch_id).status.is_terminal, "the end of step watch")

    assert cancelled.status is RunStatus.CANCELLED
    assert seen_cancel == {"watch": True}
    assert client.queue.get(watch_id).status is TaskStatus.SUCCEEDED
    final = client.get(run.id)
    assert final.status is RunStatus.CANCELLED
    assert final.result is None
    assert find_task(client.queue, keys.step_task_id(run.id, "after_watch")) is None
    assert executions["after_watch"] == 0


def test_finished_step_settled_again(
    store: ObjectStore, start_worker: Callable[..., threading.Thread]
) -> None:
    """A sweeper that redoes the continuation of the finished step does not advance the run."""
    client = Client(store)
    run = client.start(cancel_watch_flow, {"label": "again"})
    watch_id = keys.step_task_id(run.id, "watch")
    start_worker(cancel_watch_flow)
    wait_until(watch_started.is_set, "the start of step watch")
    client.cancel(run.id)
    wait_until(lambda: client.queue.get(watch_id).status.is_terminal, "the end of step watch")

    engine = Engine(Queue(store), {cancel_watch_flow.name: cancel_watch_flow})
    engine.on_settled(client.queue.get(watch_id))
    engine.resume(client.get(run.id))

    assert client.get(run.id).status is RunStatus.CANCELLED
    assert find_task(client.queue, keys.step_task_id(run.id, "after_watch")) is None
    assert executions["after_watch"] == 0


def test_cancel_before_workers_start(
    store: ObjectStore, start_worker: Callable[..., threading.Thread]
) -> None:
    client = Client(store)
    run = client.start(cancel_pair_flow, {"value": 1, "items": [1, 2, 3]})
    roots = run_tasks(store, run.id)

    cancelled = client.cancel(run.id)
    worker = start_worker(cancel_pair_flow, idle_exit=IDLE_EXIT_SECONDS)
    worker.join(WAIT_LIMIT_SECONDS)

    assert not worker.is_alive()
    assert cancelled.status is RunStatus.CANCELLED
    assert client.get(run.id).status is RunStatus.CANCELLED
    assert sorted(roots) == sorted(
        [
            keys.step_task_id(run.id, "left_part"),
            keys.step_task_id(run.id, "right_part"),
            *(keys.step_task_id(run.id, "square", index) for index in range(3)),
        ]
    )
    after = run_tasks(store, run.id)
    assert sorted(after) == sorted(roots)
    for task in after.values():
        assert task.status is TaskStatus.CANCELLED, task.id
        assert task.attempts == 0, task.id
    assert sum(executions.values()) == 0


def test_late_dependent_never_runs(
    store: ObjectStore, start_worker: Callable[..., threading.Thread]
) -> None:
    """A dependent submitted by a continuation that read the run just before the cancel."""
    client = Client(store)
    run = client.start(cancel_chain_flow, {"value": 7})
    client.cancel(run.id)
    engine = Engine(Queue(store), {cancel_chain_flow.name: cancel_chain_flow})
    engine.activate(run, run.dag.nodes["second_step"])
    second_id = keys.step_task_id(run.id, "second_step")
    assert client.queue.get(second_id).status is TaskStatus.PENDING

    worker = start_worker(cancel_chain_flow, idle_exit=IDLE_EXIT_SECONDS)
    worker.join(WAIT_LIMIT_SECONDS)

    assert not worker.is_alive()
    second = client.queue.get(second_id)
    assert second.status is TaskStatus.CANCELLED
    assert executions["first_step"] == 0
    assert executions["second_step"] == 0
    assert client.get(run.id).status is RunStatus.CANCELLED


def test_cancel_outlives_dead_worker(
    store: ObjectStore, start_worker: Callable[..., threading.Thread]
) -> None:
    """A step whose worker died holding it is requeued by the sweeper, then cancelled, not run."""
    client = Client(store)
    run = client.start(cancel_chain_flow, {"value": 5})
    claimed = client.queue.claim([cancel_chain_flow.task_type], "dead-worker", lease=DEAD_LEASE)
    assert claimed is not None
    first_id = keys.step_task_id(run.id, "first_step")
    assert claimed.task_id == first_id

    client.cancel(run.id)
    requested = client.queue.get(first_id)
    expires = requested.lease_expires_at
    assert expires is not None
    # The S3 store's clock estimate can move back by up to a second as Date
    # headers narrow it, so the sweep below must not run right at the edge.
    margin = dt.timedelta(seconds=1)
    wait_until(lambda: store.now() > expires + margin, "the end of the dead worker's lease")
    report = client.queue.sweep()
    worker = start_worker(cancel_chain_flow, idle_exit=IDLE_EXIT_SECONDS)
    worker.join(WAIT_LIMIT_SECONDS)

    assert not worker.is_alive()
    assert requested.status is TaskStatus.RUNNING
    assert requested.cancel_requested
    assert report.requeued == 1
    assert client.queue.get(first_id).status is TaskStatus.CANCELLED
    assert executions["first_step"] == 0
    assert find_task(client.queue, keys.step_task_id(run.id, "second_step")) is None
    assert client.get(run.id).status is RunStatus.CANCELLED


@step
def broken_step(value: int) -> int:
    record("broken_step")
    raise NonRetryableError(f"step broken_step failed on purpose for {value}")


@step
def after_broken(value: int) -> int:
    record("after_broken")
    return value


@step
def note_failure(failure: dict[str, object]) -> None:
    record("note_failure")


@workflow(name="cancel_failing_flow", on_failure=note_failure)
def cancel_failing_flow(value: int) -> int:
    return after_broken(broken_step(value))


def test_cancel_failed_run_keeps_handler(
    store: ObjectStore, start_worker: Callable[..., threading.Thread]
) -> None:
    """Cancelling a run that already failed changes nothing, and its failure handler still runs."""
    client = Client(store)
    run = client.start(cancel_failing_flow, {"value": 3})
    claimed = client.queue.claim([cancel_failing_flow.task_type], "manual-worker")
    assert claimed is not None
    failed = client.queue.fail(claimed, "failed on purpose", retryable=False)
    Engine(Queue(store), {cancel_failing_flow.name: cancel_failing_flow}).on_settled(failed)
    handler_id = keys.step_task_id(run.id, FAILURE_NODE)

    returned = client.cancel(run.id)
    handler_after_cancel = client.queue.get(handler_id)
    start_worker(cancel_failing_flow)
    wait_until(
        lambda: client.queue.get(handler_id).status.is_terminal, "the end of the failure handler"
    )

    assert returned.status is RunStatus.FAILED
    assert client.get(run.id).status is RunStatus.FAILED
    assert handler_after_cancel.status is TaskStatus.PENDING
    assert handler_after_cancel.cancel_requested is False
    assert client.queue.get(handler_id).status is TaskStatus.SUCCEEDED
    assert executions["note_failure"] == 1
    assert executions["after_broken"] == 0
