"""Calling a handler with the arguments it declares.

A handler receives a :class:`TaskContext` only through a parameter annotated
``TaskContext`` or named ``ctx`` or ``context``; its first other parameter
receives the task's input. ``async def`` handlers run in a fresh event loop
on the worker thread.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable
from typing import Any

from buquet.queue._context import TaskContext

_CONTEXT_NAMES = ("ctx", "context")


class HandlerCall:
    """How to call one handler: which of its parameters get the input and the context."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.positional, self.context_keyword = _plan(fn)

    def __call__(self, payload: Any, ctx: TaskContext) -> Any:
        """Call the handler and return its result (awaited when it is async)."""
        values = {"input": payload, "ctx": ctx}
        args = [values[role] for role in self.positional]
        kwargs = {} if self.context_keyword is None else {self.context_keyword: ctx}
        if self.is_async:
            return asyncio.run(self.fn(*args, **kwargs))
        return self.fn(*args, **kwargs)


def _plan(fn: Callable[..., Any]) -> tuple[list[str], str | None]:
    """Return the roles of the positional arguments, and the keyword-only context parameter."""
    hints = _type_hints(fn)
    positional: list[str] = []
    context_keyword: str | None = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        wants_context = _is_context(param.name, hints.get(param.name))
        if wants_context and param.kind is param.KEYWORD_ONLY:
            context_keyword = param.name
        elif param.kind is param.KEYWORD_ONLY:
            continue
        elif wants_context and "ctx" not in positional:
            positional.append("ctx")
        elif "input" not in positional:
            positional.append("input")
    return positional, context_keyword


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError):
        # Annotations that name types the handler's module cannot resolve: use the names only.
        return {}


def _is_context(name: str, annotation: Any) -> bool:
    return annotation is TaskContext or name in _CONTEXT_NAMES
