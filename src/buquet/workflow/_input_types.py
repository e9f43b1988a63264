"""Checking a workflow's input against the types its parameters declare.

A run whose input cannot become the declared types would fail at its
first step, after writing its tasks and run object. The check runs before
anything is written, with the same pydantic validation the steps apply,
and only reports: the stored input stays as given.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from buquet.errors import InvalidInput

logger = logging.getLogger(__name__)


def check_input_types(
    workflow_name: str, fn: Callable[..., Any], values: Mapping[str, Any]
) -> None:
    """Raise InvalidInput naming the first value its parameter's declared type rejects."""
    hints = _type_hints(fn)
    for name, value in values.items():
        annotation = hints.get(name, Any)
        if annotation is Any:
            continue
        adapter = _adapter(annotation)
        if adapter is None:
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as error:
            first = error.errors()[0]
            place = ".".join(str(part) for part in first["loc"])
            detail = f"{first['msg']} at {place}" if place else first["msg"]
            raise InvalidInput(
                f"workflow {workflow_name!r}: invalid value {value!r} for parameter {name!r} "
                f"of type {_type_name(annotation)}: {detail}"
            ) from None


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError):
        # Annotations naming types the workflow's module cannot resolve: the steps check them.
        return {}


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(annotation)
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError):
        logger.debug("no input check for parameter type %r", annotation)
        return None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)
