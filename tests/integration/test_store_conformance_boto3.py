"""The store conformance checks on SeaweedFS through a boto3 client.

S3Store sends its requests through buquet's own S3 client by default, and
it accepts a boto3 client instead. This module runs the same checks on that
boto3 path against the same real server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_store_conformance import *  # noqa: F403

from buquet.store import ObjectStore

pytestmark = pytest.mark.s3


@pytest.fixture
def store_factory(seaweedfs: Any) -> Iterator[Callable[[], ObjectStore]]:
    """Open handles on one unique prefix of the SeaweedFS bucket, each with a boto3 client."""
    prefix = f"t-boto3-{uuid.uuid4().hex[:12]}"
    opened: list[ObjectStore] = []

    def open_handle() -> ObjectStore:
        store = seaweedfs.boto3_store(prefix)
        opened.append(store)
        return store

    yield open_handle
    for store in opened:
        store.close()
