"""Workflow runs executed by an in-process worker: fan-out, fan-in, failures, values."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from buquet.errors import RunConflict, WorkflowError
from buquet.store import MemoryStore, ObjectStore
from buquet.testing import run_workflow
from buquet.workflow import (
    Client,
    RunStatus,
    Step,
    attach_workflows,
    step,
    step_context,
    workflow,
)

calls: Counter[str] = Counter()
calls_lock = threading.Lock()


def count(name: str) -> int:
    with calls_lock:
        calls[name] += 1
        return calls[name]


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    calls.clear()


def flaky(name: str, failures: int) -> Step[[], str]:
    @step(name=name, retries=2, backoff=wf_backoff())
    def body() -> str:
        if count(name) <= failures:
            raise RuntimeError(f"{name} failed on purpose")
        return f"{name}-ok"

    return body


def wf_backoff() -> Any:
    from buquet.queue import Backoff

    return Backoff(base=0.01, cap=0.05, jitter=False)


A1, A2, A3, A4, A5 = (flaky(f"a{i}", 2 if i in (2, 4) else 0) for i in range(1, 6))
A3_BROKEN = flaky("a3", 99)


@step
def join(results: list[str]) -> list[str]:
    count("b")
    return results


@step
def report_failure(failure: dict[str, Any]) -> None:
    count("on_failure")
    assert failure["failed_step"] == "a3"
    assert step_context().run_id == failure["run_id"]


@workflow
def fan_in() -> list[str]:
    return join([A1(), A2(), A3(), A4(), A5()])


@workflow(name="fan_in_broken", on_failure=report_failure)
def fan_in_broken() -> list[str]:
    return join([A1(), A2(), A3_BROKEN(), A4(), A5()])


def test_flaky_branches_join_once(store: ObjectStore) -> None:
    run = run_workflow(fan_in, store=store)

    assert run.status is RunStatus.SUCCEEDED
    assert run.result == ["a1-ok", "a2-ok", "a3-ok", "a4-ok", "a5-ok"]
    assert calls["b"] == 1
    assert calls["a2"] == 3
    assert calls["a4"] == 3
    assert calls["a1"] == 1


def test_permanent_failure_fails_run(store: ObjectStore) -> None:
    run = run_workflow(fan_in_broken, store=store)
    queue = Client(store).queue
    handler_task = queue.get(f"{run.id}.__on_failure__")
    task_ids = {task.id for task in queue.list()}

    assert run.status is RunStatus.FAILED
    assert run.failed_step == "a3"
    assert "a3 failed on purpose" in (run.error or "")
    assert calls["b"] == 0
    assert f"{run.id}.join" not in task_ids
    assert calls["a3"] == 3
    assert calls["on_failure"] == 1
    assert handler_task.status.value == "succeeded"


def _wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        deadline.wait(0.02)
    raise AssertionError("condition not met in time")


@step
def split(text: str) -> list[str]:
    return text.split()


@step
def shout(word: str, suffix: str) -> str:
    return word.upper() + suffix


@step
def glue(words: list[str]) -> str:
    return " ".join(words)


@workflow
def shouting(text: str) -> str:
    return glue(shout.map(split(text), suffix="!"))


def test_map_keeps_item_order() -> None:
    run = run_workflow(shouting, {"text": " ".join(f"w{i}" for i in range(250))})

    assert run.status is RunStatus.SUCCEEDED
    assert run.result == " ".join(f"W{i}!" for i in range(250))


def test_map_over_empty_list() -> None:
    run = run_workflow(shouting, {"text": "   "})

    assert run.status is RunStatus.SUCCEEDED
    assert run.result == ""


@workflow
def shout_input(words: list[str]) -> list[str]:
    return shout.map(words, suffix="?")


def test_map_over_input_list() -> None:
    run = run_workflow(shout_input, {"words": ["a", "b"]})

    assert run.result == ["A?", "B?"]


def test_map_over_empty_input_list() -> None:
    run = run_workflow(shout_input, {"words": []})

    assert run.status is RunStatus.SUCCEEDED
    assert run.result == []


class Money(BaseModel):
    amount: Decimal
    at: dt.datetime


@step
def make_values() -> dict[str, Any]:
    return {
        "amount": Decimal("0.10"),
        "at": dt.datetime(2026, 3, 8, 7, 0, 0, 55400, tzinfo=dt.UTC),
    }


@step
def read_back(values: Money) -> Money:
    return values


@workflow
def values_flow() -> Any:
    values = make_values()
    return {"raw": values, "model": read_back(values)}


def test_decimal_and_datetime_round_trip() -> None:
    store = MemoryStore()
    run = run_workflow(values_flow, store=store)
    expected = {"amount": "0.10", "at": "2026-03-08T07:00:00.055400Z"}
    stored = store.get(f"tasks/{run.id}.make_values.json")

    assert run.status is RunStatus.SUCCEEDED
    assert run.result["raw"] == expected
    assert run.result["model"] == expected
    assert stored is not None
    assert b'"result":{"amount":"0.10","at":"2026-03-08T07:00:00.055400Z"}' in stored.data
    assert Money.model_validate(run.result["model"]) == Money(
        amount=Decimal("0.10"), at=dt.datetime(2026, 3, 8, 7, 0, 0, 55400, tzinfo=dt.UTC)
    )


class Opaque:
    pass


@pytest.mark.parametrize(
    ("label", "value"),
    [("set", {1, 2}), ("object", Opaque()), ("nan", float("nan"))],
)
def test_unserialisable_result_fails_at_once(label: str, value: Any) -> None:
    @step(name=f"bad_{label}", retries=5)
    def bad() -> Any:
        count(label)
        return value

    @workflow(name=f"bad_{label}_flow")
    def flow() -> Any:
        return bad()

    store = MemoryStore()
    run = run_workflow(flow, store=store)
    task = Client(store).queue.get(f"{run.id}.bad_{label}")

    assert run.status is RunStatus.FAILED
    assert "not JSON-serialisable" in (run.error or "")
    assert calls[label] == 1
    assert task.status.value == "failed"
    assert task.attempts == 1


@step
def echo(value: Any) -> Any:
    return value


@workflow
def echo_flow(value: Any) -> Any:
    return echo(value)


def test_unicode_round_trips_byte_for_byte(store: ObjectStore) -> None:
    value = {"ключ": "値", "emoji": "📦"}
    run = run_workflow(echo_flow, {"value": value}, store=store)
    stored = store.get(f"tasks/{run.id}.echo.json")

    assert run.result == value
    assert stored is not None
    assert '{"ключ":"値","emoji":"📦"}'.encode() in stored.data


def test_same_run_id_returns_same_run() -> None:
    store = MemoryStore()
    client = Client(store)
    first = client.start(echo_flow, {"value": 1}, run_id="order-42")
    second = client.start(echo_flow, {"value": 1}, run_id="order-42")

    assert first.id == second.id == "order-42"
    assert len(client.list()) == 1


def test_same_run_id_other_input_conflicts() -> None:
    client = Client(MemoryStore())
    client.start(echo_flow, {"value": 1}, run_id="order-42")

    with pytest.raises(RunConflict, match="order-42"):
        client.start(echo_flow, {"value": 2}, run_id="order-42")


@step
def slow_step(seconds: float) -> str:
    import time

    count("slow")
    time.sleep(seconds)
    return "late"


@step
def after_slow(value: str) -> str:
    count("after_slow")
    return value


@workflow
def slow_flow(seconds: float) -> str:
    return after_slow(slow_step(seconds))


def test_cancel_stops_dependents() -> None:
    store = MemoryStore()
    client = Client(store)
    from buquet.queue import Worker

    worker = Worker(store, concurrency=2, poll_min="5ms", poll_max="20ms")
    attach_workflows(worker, [slow_flow])
    run = client.start(slow_flow, {"seconds": 0.5})
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop_event": stop})
    thread.start()
    try:
        _wait_for(lambda: calls["slow"] == 1)
        cancelled = client.cancel(run.id)
        _wait_for(lambda: client.queue.get(f"{run.id}.slow_step").status.is_terminal)
    finally:
        stop.set()
        thread.join(timeout=30)

    assert cancelled.status is RunStatus.CANCELLED
    assert client.get(run.id).status is RunStatus.CANCELLED
    assert calls["after_slow"] == 0


@step
def describe_attempt() -> dict[str, Any]:
    context = step_context()
    return {"key": context.idempotency_key, "attempt": context.attempt, "run": context.run_id}


@workflow
def context_flow() -> Any:
    return describe_attempt()


def test_step_context_gives_stable_key() -> None:
    run = run_workflow(context_flow, run_id="ctx-1")

    assert run.result == {"key": "ctx-1.describe_attempt", "attempt": 1, "run": "ctx-1"}


def test_step_context_outside_step_raises() -> None:
    with pytest.raises(WorkflowError, match="only available while a step runs"):
        step_context()
