"""The ``@step`` decorator."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from pydantic import TypeAdapter

from buquet import keys
from buquet._time import parse_duration
from buquet.errors import DefinitionError
from buquet.queue._backoff import Backoff
from buquet.workflow._trace import Ref, current_trace

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRIES = 2


class Step(Generic[P, R]):
    """A function that runs as one task of a workflow, on any worker.

    Called inside a ``@workflow`` body it returns a :class:`Ref`; called
    anywhere else it runs the function directly, which keeps steps easy to test.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = DEFAULT_RETRIES,
        timeout: str | float | dt.timedelta | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if retries < 0:
            raise DefinitionError(f"step {fn.__name__!r}: retries={retries} must be 0 or more")
        self.fn = fn
        self.name = keys.check_name(name or fn.__name__, "step name")
        self.retries = retries
        self.timeout = None if timeout is None else parse_duration(timeout, name="step timeout")
        self.backoff = backoff or Backoff()
        self.signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    @property
    def max_attempts(self) -> int:
        """Number of attempts: the first run plus the retries."""
        return self.retries + 1

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = current_trace()
        if trace is None:
            return self.run_directly(*args, **kwargs)
        arguments = self._bind(args, kwargs)
        return trace.record(self, arguments, None)  # type: ignore[return-value]

    def map(self, items: Any, /, **kwargs: Any) -> list[R]:
        """Run the step once per item of ``items``; the items fill its first parameter.

        ``items`` may be the ref of a step that returns a list (its width is
        known only at run time) or a constant list. Keyword arguments are passed
        to every call. The result is the list of the item results, in order.
        """
        trace = current_trace()
        parameter = self._first_parameter()
        if trace is None:
            return [self.run_directly(item, **kwargs) for item in items]
        arguments = self._bind((), {**kwargs, parameter: items})
        return trace.record(self, arguments, parameter)  # type: ignore[return-value]

    def run_directly(self, *args: Any, **kwargs: Any) -> R:
        """Call the function in this process; async steps run in a new event loop."""
        if self.is_async:
            return asyncio.run(self.fn(*args, **kwargs))  # type: ignore[arg-type]
        return self.fn(*args, **kwargs)

    def convert_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate JSON arguments into the parameter types the function declares."""
        hints = _type_hints(self.fn)
        converted: dict[str, Any] = {}
        for name, value in arguments.items():
            hint = hints.get(name)
            converted[name] = value if hint is None else _adapter(hint).validate_python(value)
        return converted

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise DefinitionError(f"step {self.name!r}: {exc}") from exc
        return dict(bound.arguments)

    def _first_parameter(self) -> str:
        for parameter in self.signature.parameters.values():
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                return parameter.name
        raise DefinitionError(f"step {self.name!r} has no positional parameter to map over")

    def __repr__(self) -> str:
        return f"<step {self.name}>"


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except (NameError, TypeError):
        return {}
    hints.pop("return", None)
    return hints


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: str | float | dt.timedelta | None = None,
    backoff: Backoff | None = None,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: str | float | dt.timedelta | None = None,
    backoff: Backoff | None = None,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Declare a workflow step.

    ``retries`` is the number of retries after a failed attempt (default 2, so
    3 attempts). ``timeout`` limits one attempt and takes ``"2m"``, seconds or
    a timedelta. ``backoff`` sets the delays between attempts.
    """

    def decorate(function: Callable[P, R]) -> Step[P, R]:
        return Step(function, name=name, retries=retries, timeout=timeout, backoff=backoff)

    return decorate if fn is None else decorate(fn)


__all__ = ["Ref", "Step", "step"]
