"""Handlers declared with ``@handler``, collected per module by ``buquet worker``.

The registry is keyed by the module that defines the function, so that
loading two modules never mixes their handlers::

    @handler("send_email")
    def send_email(message: dict) -> None: ...

    handlers = registered_handlers("my_tasks")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from buquet import keys
from buquet.errors import ConfigError
from buquet.queue._task import Task

F = TypeVar("F", bound=Callable[..., Any])
SettleHook = Callable[[Task], None]
ClaimHook = Callable[[Task], None]


@dataclass(frozen=True)
class HandlerSpec:
    """A task type with its handler and optional settle hook."""

    task_type: str
    fn: Callable[..., Any]
    on_settled: SettleHook | None = None
    on_claim: ClaimHook | None = None
    """Called with a task this worker is about to claim, e.g. to start reading
    what the handler will need while the claim is written."""


_lock = threading.Lock()
_registry: dict[str, dict[str, HandlerSpec]] = {}


def handler(task_type: str, *, on_settled: SettleHook | None = None) -> Callable[[F], F]:
    """Register the decorated function as the handler of ``task_type`` in its module.

    The function is returned unchanged. Raises ConfigError when the module
    already registered another function for the type.
    """
    checked = keys.check_task_type(task_type)

    def register(fn: F) -> F:
        spec = HandlerSpec(checked, fn, on_settled)
        with _lock:
            handlers = _registry.setdefault(fn.__module__, {})
            previous = handlers.get(checked)
            if previous is not None and previous.fn is not fn:
                raise ConfigError(
                    f"task type {checked!r} already has a handler in module {fn.__module__!r} "
                    f"({previous.fn.__qualname__}); give each handler its own task type"
                )
            handlers[checked] = spec
        return fn

    return register


def registered_handlers(module: ModuleType | str) -> dict[str, HandlerSpec]:
    """Return the handlers registered by ``module`` (a module or its name), by task type."""
    name = module if isinstance(module, str) else module.__name__
    with _lock:
        return dict(_registry.get(name, {}))
