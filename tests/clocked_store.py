"""A store wrapper that gives any backend a clock the test controls.

MemoryStore takes a clock directly, but S3Store reads the time from the
server's ``Date`` headers. Tests that move time forward (to expire leases,
say) wrap the store in :class:`ClockedStore` instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from buquet.store import DEFAULT_PAGE_SIZE, ListPage, ObjectStore, StoredObject


class ClockedStore:
    """Any store, with ``now()`` taken from ``clock`` and every other call passed on."""

    def __init__(self, inner: ObjectStore, clock: Callable[[], dt.datetime]) -> None:
        self.inner = inner
        self.url = inner.url
        self.clock = clock

    def now(self) -> dt.datetime:
        return self.clock()

    def get(self, key: str) -> StoredObject | None:
        return self.inner.get(key)

    def create(self, key: str, data: bytes) -> str:
        return self.inner.create(key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        return self.inner.replace(key, data, etag)

    def put(self, key: str, data: bytes) -> str:
        return self.inner.put(key, data)

    def delete(self, key: str, etag: str | None = None) -> None:
        self.inner.delete(key, etag)

    def delete_many(self, keys: Sequence[str]) -> None:
        self.inner.delete_many(keys)

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        return self.inner.list_page(prefix, start_after, max_keys)

    def close(self) -> None:
        self.inner.close()
