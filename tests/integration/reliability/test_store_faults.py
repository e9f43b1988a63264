"""Workflow runs on a store that throttles requests and loses responses.

The memory store is wrapped in a FaultyStore that retries like the S3 store:
503 SlowDown bursts and lost responses hit random requests of a run with a
fan-out of 20. The run must still succeed with the right result, and every
step body must run once, more often only for a task whose lease lapsed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest

from buquet import keys
from buquet.queue import Queue, TaskStatus, Worker
from buquet.store import Fault, FaultRule, FaultyStore, MemoryStore, RetryPolicy
from buquet.workflow import Client, RunStatus, attach_workflows, step, workflow

WIDTH = 20
RUN_TIMEOUT_SECONDS = 90.0
FAST_RETRY = RetryPolicy(max_attempts=4, base_seconds=0.001, cap_seconds=0.01)

executions: Counter[str] = Counter()
executions_lock = threading.Lock()


def record(name: str) -> None:
    with executions_lock:
        executions[name] += 1


@step
def numbers(count: int) -> list[int]:
    record("numbers")
    return list(range(count))


@step
def square(value: int) -> int:
    record(f"square-{value}")
    return value * value


@step
def total(squares: list[int]) -> int:
    record("total")
    return sum(squares)


@workflow
def sum_of_squares(count: int) -> int:
    return total(square.map(numbers(count)))


def faulty_store(seed: int) -> FaultyStore:
    """A memory store whose requests fail at random, behind S3-like retries."""
    rules = [
        FaultRule(Fault.SLOW_DOWN, skip=40, count=3),
        FaultRule(Fault.SLOW_DOWN, probability=0.05),
        FaultRule(
            Fault.LOST_ANSWER, operations={"create", "put", "delete", "replace"}, probability=0.05
        ),
        FaultRule(Fault.LOST_ANSWER, operations={"replace"}, prefix=keys.RUNS, probability=0.5),
        # At least one lost response in every run, whatever the random draws.
        FaultRule(Fault.LOST_ANSWER, operations={"replace"}, prefix=keys.TASKS, skip=5, count=1),
    ]
    return FaultyStore(MemoryStore(), rules, seed=seed, retry=FAST_RETRY)


def run_to_end(store: FaultyStore, run_id: str) -> Client:
    """Start a run and execute it with an in-process worker until it finishes."""
    worker = Worker(store, concurrency=4, lease="2s", poll_min="5ms", poll_max="50ms", grace="5s")
    attach_workflows(worker, [sum_of_squares])
    client = Client(store)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop_event": stop}, daemon=True)
    thread.start()
    try:
        client.start(sum_of_squares, {"count": WIDTH}, run_id=run_id)
        client.wait(run_id, timeout=RUN_TIMEOUT_SECONDS, poll=0.02)
    finally:
        stop.set()
        thread.join(timeout=30)
    return client


@pytest.mark.parametrize("seed", range(1, 11))
def test_faults_run_succeeds(seed: int) -> None:
    executions.clear()
    store = faulty_store(seed)
    run_id = f"faults-{seed}"

    client = run_to_end(store, run_id)
    run = client.get(run_id)
    item_tasks = [
        client.queue.get(keys.step_task_id(run_id, "square", index)) for index in range(WIDTH)
    ]

    assert store.injected[Fault.SLOW_DOWN, "put"] + store.injected[Fault.SLOW_DOWN, "get"] > 0
    assert (
        sum(count for (fault, _op), count in store.injected.items() if fault is Fault.LOST_ANSWER)
        > 0
    )
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.result == sum(value * value for value in range(WIDTH))
    for index, task in enumerate(item_tasks):
        assert task.status is TaskStatus.SUCCEEDED
        assert 1 <= executions[f"square-{index}"] <= task.attempts, task
    assert executions["total"] == 1


class MovableClock:
    """A store clock that moves only when the test advances it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_lost_claim_response_keeps_claim() -> None:
    clock = MovableClock()
    lost_claim = FaultRule(Fault.LOST_ANSWER, operations={"replace"}, prefix="tasks/", count=1)
    queue = Queue(FaultyStore(MemoryStore(clock=clock), [lost_claim], retry=FAST_RETRY))
    task_id = queue.submit("faults.claim", max_attempts=3, lease="30s").id

    claimed = queue.claim(["faults.claim"], "worker-1")

    assert claimed is not None
    assert queue.get(task_id).status is TaskStatus.RUNNING
    assert queue.get(task_id).lease_token == claimed.token

    clock.now += dt.timedelta(seconds=31)
    report = queue.sweep()
    assert report.requeued == 1
    assert queue.get(task_id).status is TaskStatus.PENDING
