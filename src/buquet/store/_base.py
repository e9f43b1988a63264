"""The object-store interface that every backend implements.

buquet needs only what S3 offers: read with ETag, create-if-absent
(``If-None-Match: *``), replace-if-ETag-matches (``If-Match``), conditional
delete, sorted listing by prefix with start-after, and the store's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DEFAULT_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object as read from the store, with the ETag to use in a conditional write."""

    key: str
    data: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing; ``next_start_after`` is None on the last page."""

    keys: list[str]
    next_start_after: str | None


@runtime_checkable
class ObjectStore(Protocol):
    """Storage of JSON objects with conditional writes; thread-safe.

    ETags are opaque strings compared for equality, quoted as S3 returns them.
    Every conditional method raises :class:`~buquet.errors.PreconditionFailed`
    when its condition does not hold, and
    :class:`~buquet.errors.StoreError` when the store fails.
    """

    url: str
    """The store URL, without credentials (``file://...``, ``s3://...``, ``memory://``)."""

    def get(self, key: str) -> StoredObject | None:
        """Read an object; None when it does not exist."""
        ...

    def create(self, key: str, data: bytes) -> str:
        """Write an object only if the key is absent; return its ETag."""
        ...

    def replace(self, key: str, data: bytes, etag: str) -> str:
        """Overwrite an object only if its ETag is still ``etag``; return the new ETag."""
        ...

    def put(self, key: str, data: bytes) -> str:
        """Write an object unconditionally; only for hints and content-addressed blobs."""
        ...

    def delete(self, key: str, etag: str | None = None) -> None:
        """Delete an object; with ``etag``, only if it still has that ETag.

        Deleting a missing key without ``etag`` succeeds; with ``etag`` it
        raises PreconditionFailed.
        """
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete objects without conditions; missing keys count as deleted.

        Raises StoreError naming the first key that could not be deleted.
        Keys before it may be deleted and keys after it may not.
        """
        ...

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        """List up to ``max_keys`` keys under ``prefix`` that sort after ``start_after``."""
        ...

    def now(self) -> dt.datetime:
        """Return the current time on the store's clock (aware, UTC)."""
        ...

    def close(self) -> None:
        """Release connections and file handles."""
        ...


def iter_keys(
    store: ObjectStore,
    prefix: str,
    *,
    start_after: str = "",
    end_before: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[str]:
    """Yield every key under ``prefix`` in order, page by page.

    With ``end_before``, stops at the first key that is not smaller.
    """
    cursor = start_after
    while True:
        page = store.list_page(prefix, cursor, page_size)
        for key in page.keys:
            if end_before is not None and key >= end_before:
                return
            yield key
        if page.next_start_after is None:
            return
        cursor = page.next_start_after
