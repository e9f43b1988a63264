"""The store conformance checks on SeaweedFS through a boto3 client.

S3Store sends its requests through buquet's own S3 client by default, and
it accepts a boto3 client instead. This module runs the same checks on that
boto3 path against the same real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_store_conformance import *  # noqa: F403

from buquet.store import ObjectStore
from conftest import SeaweedServer, StoreFactory, _unique_prefix

pytestmark = pytest.mark.s3


@pytest.fixture
def store_factory(
    seaweedfs: SeaweedServer, request: pytest.FixtureRequest
) -> Iterator[StoreFactory]:
    """Open handles on one unique prefix of the SeaweedFS bucket, each with a boto3 client."""
    prefix = _unique_prefix(request)
    opened: list[ObjectStore] = []

    def open_handle() -> ObjectStore:
        store = seaweedfs.boto3_store(prefix)
        opened.append(store)
        return store

    yield open_handle
    for store in opened:
        store.close()
