"""JSON encoding of task inputs, step results and stored objects.

Values are converted to plain JSON before they are written, so that every
object in the bucket is readable with any JSON tool. Conversions:

- ``Decimal`` becomes its exact string (``Decimal("0.10")`` -> ``"0.10"``);
- ``datetime`` becomes ISO 8601, UTC written as ``Z``; ``date`` and ``time``
  become ISO 8601;
- ``UUID`` and ``Enum`` become their value; tuples become lists;
- pydantic models become ``model_dump(mode="json")``.

Anything else (sets, arbitrary objects, NaN and infinities, non-string dict
keys) raises :class:`~buquet.errors.SerializationError`.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from buquet.errors import SerializationError

JsonValue = Any
"""A value made only of dict, list, str, int, float, bool and None."""


def to_json_value(value: Any, *, path: str = "$") -> JsonValue:
    """Convert ``value`` to plain JSON types, or raise SerializationError naming the path."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(
                f"{path}: {value!r} is not JSON-serialisable (NaN and infinity)"
            )
        return value
    if isinstance(value, Mapping):
        return _convert_mapping(value, path)
    if isinstance(value, list | tuple):
        return [to_json_value(item, path=f"{path}[{i}]") for i, item in enumerate(value)]
    return _convert_scalar(value, path)


def _convert_mapping(value: Mapping[Any, Any], path: str) -> dict[str, JsonValue]:
    converted: dict[str, JsonValue] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise SerializationError(
                f"{path}: dict key {key!r} is not JSON-serialisable; use string keys"
            )
        converted[key] = to_json_value(item, path=f"{path}.{key}")
    return converted


def _convert_scalar(value: Any, path: str) -> JsonValue:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SerializationError(f"{path}: {value!r} is not JSON-serialisable")
        return str(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_json_value(value.value, path=path)
    if isinstance(value, BaseModel):
        return to_json_value(value.model_dump(mode="json"), path=path)
    raise SerializationError(
        f"{path}: value of type {type(value).__name__} is not JSON-serialisable; "
        "return dicts, lists, strings, numbers, Decimal, datetime or a pydantic model"
    )


def format_datetime(value: dt.datetime) -> str:
    """Format a datetime as ISO 8601; aware values are converted to UTC and written with ``Z``."""
    if value.tzinfo is None:
        return value.isoformat()
    text = value.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON; non-ASCII text is kept as is."""
    return dumps_plain(to_json_value(value))


def dumps_plain(value: JsonValue) -> bytes:
    """Like :func:`dumps`, for a value already made of plain JSON types (a ``model_dump``)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes | str) -> JsonValue:
    """Decode JSON bytes or text."""
    return json.loads(data)


def is_json_sequence(value: Any) -> bool:
    """Return whether ``value`` is a list-like value (not a string or bytes)."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)
