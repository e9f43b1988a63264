"""The ``@workflow`` decorator."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from buquet import keys
from buquet._json import to_json_value
from buquet.errors import DefinitionError, InvalidInput, SerializationError
from buquet.workflow._dag import Dag, build_dag
from buquet.workflow._input_types import check_input_types
from buquet.workflow._step import Step
from buquet.workflow._trace import InputRef, tracing

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class Workflow(Generic[P, R]):
    """A traced DAG of steps.

    The body runs once, on placeholders, the first time the DAG is needed;
    there is no replay. Called directly, outside buquet, the workflow runs its
    steps one after another in this process.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        on_failure: Step[..., Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name = keys.check_name(name or fn.__name__, "workflow name")
        self.on_failure = on_failure
        self.signature = inspect.signature(fn)
        self._check_parameters()
        self._dag: Dag | None = None
        self._steps: dict[str, Step[..., Any]] = {}
        functools.update_wrapper(self, fn)

    @property
    def task_type(self) -> str:
        """Queue task type of this workflow's steps."""
        return f"step:{self.name}"

    @property
    def dag(self) -> Dag:
        """The compiled DAG; raises DefinitionError when the workflow is invalid."""
        if self._dag is None:
            self._dag = self._compile()
        return self._dag

    @property
    def steps(self) -> dict[str, Step[..., Any]]:
        """Steps by name, the failure handler included."""
        _ = self.dag
        return self._steps

    def bind_input(self, data: Mapping[str, Any] | None) -> dict[str, Any]:
        """Match input to the parameters: apply defaults, reject unknown or missing names.

        Raises InvalidInput also for a value its parameter's declared type rejects.
        """
        data = dict(data or {})
        unknown = sorted(set(data) - set(self.signature.parameters))
        if unknown:
            raise InvalidInput(
                f"workflow {self.name!r} has no parameter {unknown[0]!r}; "
                f"its parameters are: {', '.join(self.signature.parameters) or 'none'}"
            )
        try:
            bound = self.signature.bind(**data)
        except TypeError as exc:
            raise InvalidInput(f"workflow {self.name!r}: {exc}") from exc
        bound.apply_defaults()
        try:
            values = dict(to_json_value(dict(bound.arguments)))
        except SerializationError as exc:
            raise InvalidInput(f"workflow {self.name!r}: input {exc}") from exc
        check_input_types(self.name, self.fn, values)
        return values

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def _check_parameters(self) -> None:
        for parameter in self.signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise DefinitionError(
                    f"workflow {self.name!r}: *args and **kwargs are not supported; "
                    f"name each parameter"
                )

    def _compile(self) -> Dag:
        placeholders = {name: InputRef(name) for name in self.signature.parameters}
        with tracing() as trace:
            output = self.fn(**placeholders)  # type: ignore[call-arg, arg-type]
        on_failure = self.on_failure.name if self.on_failure else None
        dag = build_dag(self.name, list(placeholders), trace, output, on_failure)
        self._steps = dict(trace.steps_by_name)
        if self.on_failure is not None:
            self._steps.setdefault(self.on_failure.name, self.on_failure)
        logger.debug("compiled workflow %s: %d nodes, hash %s", self.name, len(dag.nodes), dag.hash)
        return dag

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"


@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...


@overload
def workflow(
    *, name: str | None = None, on_failure: Step[..., Any] | None = None
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    on_failure: Step[..., Any] | None = None,
) -> Workflow[P, R] | Callable[[Callable[P, R]], Workflow[P, R]]:
    """Declare a workflow whose body wires steps into a DAG.

    ``on_failure`` is a step run once when the run fails; it receives a dict
    with ``run_id``, ``workflow``, ``failed_step`` and ``error``.
    """

    def decorate(function: Callable[P, R]) -> Workflow[P, R]:
        return Workflow(function, name=name, on_failure=on_failure)

    return decorate if fn is None else decorate(fn)
