"""Tracing: the workflow body runs once on placeholders, and the placeholders form the DAG.

Inside a trace, calling a step records a :class:`StepCall` and returns a
:class:`Ref` to its future result. Refs are then passed to other steps. Values
that are not refs are constants and must be JSON-serialisable.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buquet.workflow._step import Step


@dataclass(frozen=True)
class InputRef:
    """Placeholder for one parameter of the workflow's input."""

    name: str


@dataclass
class Ref:
    """Placeholder for the result of a traced step call: a node of the DAG."""

    node: str
    _trace: Trace = field(repr=False, compare=False)

    def after(self, *nodes: Ref | str) -> Ref:
        """Order this step after other steps, by ref or by node name, without passing data."""
        call = self._trace.calls[self.node]
        for dependency in nodes:
            call.after.append(dependency.node if isinstance(dependency, Ref) else dependency)
        return self

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            f"the result of step {self.node!r} is not known while the workflow is traced; "
            f"use .map() to run a step for each item"
        )

    def __bool__(self) -> bool:
        raise TypeError(
            f"the result of step {self.node!r} is not known while the workflow is traced, "
            f"so it cannot be used in a condition"
        )


@dataclass
class StepCall:
    """One recorded call: the step, its bound arguments and, for a map, the mapped parameter."""

    node: str
    step: Step[..., Any]
    arguments: dict[str, Any]
    map_parameter: str | None = None
    after: list[str] = field(default_factory=list)


@dataclass
class Trace:
    """The calls recorded while a workflow body runs."""

    calls: dict[str, StepCall] = field(default_factory=dict)
    steps_by_name: dict[str, Step[..., Any]] = field(default_factory=dict)
    duplicate_names: list[str] = field(default_factory=list)

    def record(
        self, call_step: Step[..., Any], arguments: dict[str, Any], map_parameter: str | None
    ) -> Ref:
        """Add a call of ``call_step`` and return a ref to its result."""
        known = self.steps_by_name.setdefault(call_step.name, call_step)
        if known is not call_step and call_step.name not in self.duplicate_names:
            self.duplicate_names.append(call_step.name)
        node = self._node_name(call_step.name)
        self.calls[node] = StepCall(node, call_step, arguments, map_parameter)
        return Ref(node, self)

    def _node_name(self, step_name: str) -> str:
        if step_name not in self.calls:
            return step_name
        number = 2
        while f"{step_name}-{number}" in self.calls:
            number += 1
        return f"{step_name}-{number}"


_current: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "buquet_trace", default=None
)


def current_trace() -> Trace | None:
    """Return the trace being recorded, or None outside a workflow definition."""
    return _current.get()


@contextmanager
def tracing() -> Iterator[Trace]:
    """Record step calls made in the block."""
    trace = Trace()
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)
