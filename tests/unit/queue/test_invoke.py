"""Handlers get the input, the context, or both, as their signature declares."""

from __future__ import annotations

from typing import Any

import pytest

from buquet.errors import ConfigError
from buquet.queue import ClaimedTask, Queue, TaskContext, handler, registered_handlers
from buquet.queue._invoke import HandlerCall


@pytest.fixture
def ctx(queue: Queue) -> TaskContext:
    queue.submit("echo", {"n": 3}, task_id="t1")
    claimed = queue.claim(["echo"], "w1")
    assert isinstance(claimed, ClaimedTask)
    return TaskContext(claimed, "w1")


def test_call_input_only(ctx: TaskContext) -> None:
    def fn(data: dict[str, int]) -> int:
        return data["n"] * 2

    assert HandlerCall(fn)(ctx.input, ctx) == 6


def test_call_input_and_ctx(ctx: TaskContext) -> None:
    def fn(data: dict[str, int], ctx: TaskContext) -> str:
        return f"{ctx.task_id}:{ctx.attempt}:{data['n']}"

    assert HandlerCall(fn)(ctx.input, ctx) == "t1:1:3"


def test_call_ctx_first(ctx: TaskContext) -> None:
    def fn(context: Any, data: dict[str, int]) -> str:
        return f"{context.worker_id}:{data['n']}"

    assert HandlerCall(fn)(ctx.input, ctx) == "w1:3"


def test_call_annotated_context(ctx: TaskContext) -> None:
    def fn(run: TaskContext) -> str:
        return run.idempotency_key

    assert HandlerCall(fn)(ctx.input, ctx) == "t1"


def test_call_keyword_only_ctx(ctx: TaskContext) -> None:
    def fn(data: dict[str, int], *, ctx: TaskContext) -> bool:
        return ctx.cancel_requested

    assert HandlerCall(fn)(ctx.input, ctx) is False


def test_call_no_parameters(ctx: TaskContext) -> None:
    def fn() -> str:
        return "done"

    assert HandlerCall(fn)(ctx.input, ctx) == "done"


def test_call_async_handler(ctx: TaskContext) -> None:
    async def fn(data: dict[str, int]) -> int:
        return data["n"] + 1

    assert HandlerCall(fn)(ctx.input, ctx) == 4


@handler("registry_probe")
def _probe(data: object) -> object:
    return data


def test_registry_by_module() -> None:
    handlers = registered_handlers(__name__)
    assert list(handlers) == ["registry_probe"]
    assert handlers["registry_probe"].fn is _probe
    assert registered_handlers("no.such.module") == {}


def test_registry_rejects_second_handler() -> None:
    def other(data: object) -> None:
        return None

    other.__module__ = __name__
    with pytest.raises(ConfigError, match="registry_probe"):
        handler("registry_probe")(other)
