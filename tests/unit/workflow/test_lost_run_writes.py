"""Run-object writes whose response is lost: start and update_run keep a write that was applied.

A FaultyStore without retries applies a LOST_ANSWER write and then raises
AmbiguousWrite. ``DroppedStore`` raises AmbiguousWrite without applying the
write, the other possible outcome.
"""

from __future__ import annotations

import pytest

from buquet import keys
from buquet.errors import AmbiguousWrite, RunConflict
from buquet.store import Fault, FaultRule, FaultyStore, MemoryStore
from buquet.workflow import Client, RunStatus, step, workflow
from buquet.workflow._run import finish_run


@step
def square(value: int) -> int:
    return value * value


@step
def total(values: list[int]) -> int:
    return sum(values)


@workflow
def sum_of_squares(values: list[int]) -> int:
    return total(square.map(values))


class DroppedStore(MemoryStore):
    """A memory store whose next ``drops`` run-object writes raise AmbiguousWrite unapplied."""

    def __init__(self, drops: int) -> None:
        super().__init__()
        self.drops = drops

    def _drop(self, key: str) -> None:
        if key.startswith(keys.RUNS) and self.drops > 0:
            self.drops -= 1
            raise AmbiguousWrite(f"write of {key!r}: response lost in the test", key=key)

    def create(self, key: str, data: bytes) -> str:
        self._drop(key)
        return super().create(key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        self._drop(key)
        return super().replace(key, data, etag)


def lost_run_write(operation: str) -> FaultyStore:
    rule = FaultRule(Fault.LOST_ANSWER, operations={operation}, prefix=keys.RUNS, count=1)
    return FaultyStore(MemoryStore(), [rule])


def test_start_lost_create_kept() -> None:
    store = lost_run_write("create")
    client = Client(store)

    run = client.start(sum_of_squares, {"values": [1, 2]}, run_id="r1")

    assert store.injected[Fault.LOST_ANSWER, "create"] == 1
    assert run.status is RunStatus.RUNNING
    assert client.get("r1").input == {"values": [1, 2]}
    assert client.queue.get(keys.step_task_id("r1", "square", 0)).input["run"] == "r1"


def test_start_lost_create_resumes_map() -> None:
    store = lost_run_write("create")
    client = Client(store)

    client.start(sum_of_squares, {"values": [1, 2]}, run_id="r1")

    # A map root gets its item tasks from the resume after the create.
    assert client.queue.get(keys.step_task_id("r1", "square", 1)).input["run"] == "r1"


def test_start_lost_create_skips_empty_map() -> None:
    store = lost_run_write("create")
    client = Client(store)

    client.start(sum_of_squares, {"values": []}, run_id="r1")

    assert client.queue.get(keys.step_task_id("r1", "total")).input["run"] == "r1"


def test_start_dropped_create_retried() -> None:
    store = DroppedStore(drops=1)
    client = Client(store)

    run = client.start(sum_of_squares, {"values": [3]}, run_id="r1")

    assert store.drops == 0
    assert client.get("r1") == run


def test_start_lost_create_other_input_conflicts() -> None:
    store = lost_run_write("create")
    client = Client(store)
    client.start(sum_of_squares, {"values": [1]}, run_id="r1")

    with pytest.raises(RunConflict):
        client.start(sum_of_squares, {"values": [2]}, run_id="r1")


def test_finish_run_lost_replace_counts() -> None:
    store = lost_run_write("replace")
    client = Client(store)
    client.start(sum_of_squares, {"values": [1]}, run_id="r1")

    finished = finish_run(store, "r1", RunStatus.SUCCEEDED, result=1)

    assert store.injected[Fault.LOST_ANSWER, "replace"] == 1
    assert finished is not None
    assert finished.status is RunStatus.SUCCEEDED
    assert client.get("r1").result == 1


def test_finish_run_dropped_replace_retried() -> None:
    store = DroppedStore(drops=0)
    client = Client(store)
    client.start(sum_of_squares, {"values": [1]}, run_id="r1")
    store.drops = 1

    finished = finish_run(store, "r1", RunStatus.FAILED, error="boom", failed_step="square")

    assert store.drops == 0
    assert finished is not None
    stored = client.get("r1")
    assert stored.status is RunStatus.FAILED
    assert stored.error == "boom"


def test_finish_run_twice_second_none() -> None:
    store = lost_run_write("replace")
    client = Client(store)
    client.start(sum_of_squares, {"values": [1]}, run_id="r1")
    finish_run(store, "r1", RunStatus.SUCCEEDED, result=1)

    again = finish_run(store, "r1", RunStatus.FAILED, error="late")

    assert again is None
    assert client.get("r1").status is RunStatus.SUCCEEDED
