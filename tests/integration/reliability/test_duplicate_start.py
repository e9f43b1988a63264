"""Starting one run id more than once: a client that retries after a timeout, and two clients.

Either way exactly one run exists and each of its steps runs once.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections import Counter
from collections.abc import Callable

from buquet import keys
from buquet.store import Fault, FaultRule, FaultyStore, MemoryStore, ObjectStore, iter_keys
from buquet.testing import run_workflow
from buquet.workflow import Client, Run, RunStatus, step, workflow

RUN_ID = "order-42"
ORDER = {"order": "42"}
SLOW_CREATE_SECONDS = 1.0
CLIENT_TIMEOUT_SECONDS = 0.1
CLIENT_RETRIES = 5

executions: Counter[str] = Counter()
executions_lock = threading.Lock()


def record(name: str) -> None:
    with executions_lock:
        executions[name] += 1


@step
def reserve(order: str) -> str:
    record("reserve")
    return f"reserved-{order}"


@step
def charge(reservation: str) -> str:
    record("charge")
    return f"charged-{reservation}"


@workflow
def place_order(order: str) -> str:
    return charge(reserve(order))


def run_keys(store: ObjectStore) -> list[str]:
    """Every run object key in the store."""
    return list(iter_keys(store, keys.RUNS))


def start_with_retries(client: Client) -> list[Run]:
    """Start ``RUN_ID``, starting it again each time a call has not returned within the timeout."""
    with concurrent.futures.ThreadPoolExecutor(CLIENT_RETRIES + 1) as pool:
        calls = [pool.submit(client.start, place_order, ORDER, run_id=RUN_ID)]
        for _ in range(CLIENT_RETRIES):
            try:
                calls[-1].result(timeout=CLIENT_TIMEOUT_SECONDS)
            except concurrent.futures.TimeoutError:
                calls.append(pool.submit(client.start, place_order, ORDER, run_id=RUN_ID))
            else:
                break
        return [call.result() for call in calls]


def test_retried_slow_start_one_run() -> None:
    executions.clear()
    inner = MemoryStore()
    slow_first_writes = FaultRule(
        Fault.SLOW,
        operations={"create"},
        prefix=keys.run_key(RUN_ID),
        count=CLIENT_RETRIES,
        delay=SLOW_CREATE_SECONDS,
    )
    store = FaultyStore(inner, [slow_first_writes])

    started = start_with_retries(Client(store))
    finished = run_workflow(place_order, ORDER, store=store, run_id=RUN_ID)

    assert len(started) == CLIENT_RETRIES + 1
    assert store.injected[Fault.SLOW, "create"] == CLIENT_RETRIES
    assert {run.id for run in started} == {RUN_ID}
    assert len({run.created_at for run in started}) == 1
    assert run_keys(inner) == [keys.run_key(RUN_ID)]
    assert finished.status is RunStatus.SUCCEEDED
    assert finished.result == "charged-reserved-42"
    assert executions == {"reserve": 1, "charge": 1}


def test_concurrent_start_one_run(store_factory: Callable[[], ObjectStore]) -> None:
    executions.clear()
    clients = [Client(store_factory()), Client(store_factory())]
    barrier = threading.Barrier(len(clients))

    def start(client: Client) -> Run:
        barrier.wait(timeout=30)
        return client.start(place_order, ORDER, run_id=RUN_ID)

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        started = list(pool.map(start, clients))
    store = store_factory()
    finished = run_workflow(place_order, ORDER, store=store, run_id=RUN_ID)
    tasks = list(clients[0].queue.list())

    assert [run.id for run in started] == [RUN_ID, RUN_ID]
    assert started[0].created_at == started[1].created_at
    assert run_keys(store) == [keys.run_key(RUN_ID)]
    assert finished.status is RunStatus.SUCCEEDED
    assert finished.result == "charged-reserved-42"
    assert executions == {"reserve": 1, "charge": 1}
    assert len(tasks) == 2
    assert all(task.attempts == 1 for task in tasks)
