"""A store wrapper that counts requests by operation, for the benchmarks.

Workers run in their own processes, so each process wraps its own store and
reports its own counts; the harness adds them up.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

from buquet.errors import PreconditionFailed
from buquet.store import DEFAULT_PAGE_SIZE, ListPage, ObjectStore, StoredObject

T = TypeVar("T")

OPERATIONS = ("get", "create", "replace", "put", "delete", "delete_many", "list_page")
# S3Store sends delete_many as DeleteObjects requests of up to this many keys.
DELETE_BATCH_SIZE = 1000


def key_area(key: str) -> str:
    """Return the first segment of a key (``tasks``, ``runs``, ``ready``...)."""
    return key.split("/", 1)[0]


class CountingStore:
    """Wraps an ObjectStore and counts every request it sends; thread-safe.

    ``requests`` counts calls by operation, ``conflicts`` counts
    PreconditionFailed by operation and key area (e.g. ``replace runs``).
    ``now()`` is not counted because it does not always send a request.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.requests: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Return a copy of the counts as plain dicts."""
        with self._lock:
            return {"requests": dict(self.requests), "conflicts": dict(self.conflicts)}

    def _count(self, operation: str, key: str, call: Callable[[], T]) -> T:
        with self._lock:
            self.requests[operation] += 1
        try:
            return call()
        except PreconditionFailed:
            with self._lock:
                self.conflicts[f"{operation} {key_area(key)}"] += 1
            raise

    def get(self, key: str) -> StoredObject | None:
        return self._count("get", key, lambda: self.inner.get(key))

    def create(self, key: str, data: bytes) -> str:
        return self._count("create", key, lambda: self.inner.create(key, data))

    def replace(self, key: str, data: bytes, etag: str) -> str:
        return self._count("replace", key, lambda: self.inner.replace(key, data, etag))

    def put(self, key: str, data: bytes) -> str:
        return self._count("put", key, lambda: self.inner.put(key, data))

    def delete(self, key: str, etag: str | None = None) -> None:
        self._count("delete", key, lambda: self.inner.delete(key, etag))

    def delete_many(self, keys: Sequence[str]) -> None:
        """Count ``delete_many`` once per DeleteObjects request: one per 1000 keys."""
        if not keys:
            return
        with self._lock:
            self.requests["delete_many"] += -(-len(keys) // DELETE_BATCH_SIZE)
        self.inner.delete_many(keys)

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        return self._count(
            "list_page", prefix, lambda: self.inner.list_page(prefix, start_after, max_keys)
        )

    def now(self) -> dt.datetime:
        return self.inner.now()

    def close(self) -> None:
        self.inner.close()


def add_counts(total: dict[str, dict[str, int]], part: dict[str, dict[str, int]]) -> None:
    """Add the counts of ``part`` into ``total`` (both as returned by ``snapshot``)."""
    for section in ("requests", "conflicts"):
        target = total.setdefault(section, {})
        for name, value in part.get(section, {}).items():
            target[name] = target.get(name, 0) + value
