"""A workflow's input is checked against its parameters' types before a run starts."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel

from buquet.errors import InvalidInput
from buquet.store import MemoryStore
from buquet.workflow import Client, step, workflow


class Size(BaseModel):
    width: int
    height: int


@step
def area(count: int, size: Size) -> int:
    return count * size.width * size.height


@workflow
def sized(count: int, size: Size, when: dt.date, label: str = "plain") -> int:
    return area(count, size)


# The annotation names a type that does not exist, so it cannot be resolved.
@workflow
def untyped(value: int, other: NotDefinedAnywhere) -> int:  # noqa: F821
    return area(value, other)


GOOD = {"count": 2, "size": {"width": 2, "height": 3}, "when": "2026-12-05"}


def test_valid_input_is_kept_as_given() -> None:
    assert sized.bind_input({**GOOD, "count": "2"})["count"] == "2"


def test_wrong_scalar_names_parameter() -> None:
    with pytest.raises(InvalidInput) as caught:
        sized.bind_input({**GOOD, "count": "abc"})

    message = str(caught.value)
    assert "'count'" in message
    assert "'abc'" in message
    assert "of type int" in message


def test_missing_model_field_named() -> None:
    with pytest.raises(InvalidInput, match="Field required at height"):
        sized.bind_input({**GOOD, "size": {"width": 2}})


def test_wrong_date_rejected() -> None:
    with pytest.raises(InvalidInput, match="'when'"):
        sized.bind_input({**GOOD, "when": "next tuesday"})


def test_unresolvable_annotations_not_checked() -> None:
    assert untyped.bind_input({"value": "x", "other": "y"}) == {"value": "x", "other": "y"}


def test_rejected_input_writes_nothing() -> None:
    store = MemoryStore()

    with pytest.raises(InvalidInput):
        Client(store).start(sized, {**GOOD, "count": "abc"})

    assert store.list_page("").keys == []
