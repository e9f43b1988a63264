"""Queue and workflow runs on SeaweedFS behind the fault proxy.

Faults are injected on the wire, so botocore's error parsing and S3Store's
retries and lost-response handling run as they do against a real server.
"""

from __future__ import annotations

import threading

import pytest

from buquet import keys
from buquet.queue import Queue, TaskStatus, Worker
from buquet.store import S3Store, iter_keys
from buquet.workflow import Client, RunStatus, attach_workflows, step, workflow
from faultproxy import FaultyS3, ProxyFault, ProxyRule

pytestmark = pytest.mark.s3

WIDTH = 10
RUN_TIMEOUT_SECONDS = 90.0
EXPECTED_TOTAL = sum(value * value for value in range(WIDTH))


@step
def numbers(count: int) -> list[int]:
    return list(range(count))


@step
def square(value: int) -> int:
    return value * value


@step
def total(squares: list[int]) -> int:
    return sum(squares)


@workflow
def sum_of_squares(count: int) -> int:
    return total(square.map(numbers(count)))


def run_to_end(worker_store: S3Store, client: Client, run_id: str) -> None:
    """Start a run with ``client`` and execute it with an in-process worker until it ends."""
    worker = Worker(
        worker_store, concurrency=4, lease="10s", poll_min="5ms", poll_max="100ms", grace="5s"
    )
    attach_workflows(worker, [sum_of_squares])
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop_event": stop}, daemon=True)
    thread.start()
    try:
        client.start(sum_of_squares, {"count": WIDTH}, run_id=run_id)
        client.wait(run_id, timeout=RUN_TIMEOUT_SECONDS, poll=0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def assert_run_succeeded(client: Client, run_id: str) -> None:
    run = client.get(run_id)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.result == EXPECTED_TOTAL
    for index in range(WIDTH):
        task = client.queue.get(keys.step_task_id(run_id, "square", index))
        assert task.status is TaskStatus.SUCCEEDED
        assert task.result == index * index


def test_slow_down_bursts_run_succeeds(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.set_rules(
        [
            # Hints are deleted in batches (POST ?delete): the first batch gets a 503 too.
            ProxyRule(ProxyFault.SLOW_DOWN, method="POST", count=1),
            ProxyRule(ProxyFault.SLOW_DOWN, skip=30, count=4),
            ProxyRule(ProxyFault.SLOW_DOWN, probability=0.1),
        ]
    )
    client = Client(faulty_s3.store)

    run_to_end(faulty_s3.open_store(), client, "slow-down")

    faulty_s3.proxy.set_rules([])
    assert_run_succeeded(client, "slow-down")
    injected = faulty_s3.proxy.injected
    assert injected[ProxyFault.SLOW_DOWN, "PUT"] > 0
    assert injected[ProxyFault.SLOW_DOWN, "GET"] > 0
    assert injected[ProxyFault.SLOW_DOWN, "POST"] > 0
    assert list(iter_keys(faulty_s3.store, keys.READY)) == []


def test_lost_claim_response_kept(faulty_s3: FaultyS3) -> None:
    queue = Queue(faulty_s3.store)
    queue.submit("resize", {"n": 1}, task_id="t1")
    # The claim is the first write with If-Match: submit creates with If-None-Match.
    faulty_s3.proxy.set_rules(
        [
            ProxyRule(
                ProxyFault.DROP_RESPONSE,
                path_prefix=faulty_s3.path(keys.TASKS),
                header="If-Match",
                count=1,
            )
        ]
    )

    claimed = queue.claim(["resize"], "worker-a")

    assert faulty_s3.proxy.injected[ProxyFault.DROP_RESPONSE, "PUT"] == 1
    assert claimed is not None
    stored, etag = queue.get_with_etag("t1")
    assert stored.status is TaskStatus.RUNNING
    assert stored.lease_token == claimed.token
    assert claimed.etag == etag
    assert list(iter_keys(faulty_s3.store, keys.READY)) == [claimed.hint]


def test_lost_complete_response_kept(faulty_s3: FaultyS3) -> None:
    queue = Queue(faulty_s3.store)
    queue.submit("resize", {"n": 1}, task_id="t1")
    claimed = queue.claim(["resize"], "worker-a")
    assert claimed is not None
    faulty_s3.proxy.set_rules(
        [
            ProxyRule(
                ProxyFault.DROP_RESPONSE,
                path_prefix=faulty_s3.path(keys.TASKS),
                header="If-Match",
                count=1,
            )
        ]
    )

    done = queue.complete(claimed, {"size": 3})

    assert faulty_s3.proxy.injected[ProxyFault.DROP_RESPONSE, "PUT"] == 1
    assert done.status is TaskStatus.SUCCEEDED
    stored = queue.get("t1")
    assert stored.status is TaskStatus.SUCCEEDED
    assert stored.result == {"size": 3}
    assert stored.version == done.version


def test_lost_run_create_run_succeeds(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.set_rules(
        [
            ProxyRule(
                ProxyFault.DROP_RESPONSE,
                path_prefix=faulty_s3.path(keys.RUNS),
                header="If-None-Match",
                count=1,
            )
        ]
    )
    client = Client(faulty_s3.store)

    run_to_end(faulty_s3.open_store(), client, "lost-create")

    assert faulty_s3.proxy.injected[ProxyFault.DROP_RESPONSE, "PUT"] == 1
    assert_run_succeeded(client, "lost-create")
