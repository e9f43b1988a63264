"""An in-process store for tests and the testing helpers."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Sequence

from buquet.errors import PreconditionFailed
from buquet.store._base import DEFAULT_PAGE_SIZE, ListPage, StoredObject

Clock = Callable[[], dt.datetime]


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def content_etag(data: bytes) -> str:
    """Return the ETag S3 gives a single-part upload: the quoted MD5 of the bytes."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


class MemoryStore:
    """A thread-safe dict of objects with S3's conditional-write semantics.

    ``clock`` replaces the store's clock, so tests can move time forward.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.url = "memory://"
        self._clock = clock or _system_clock
        self._lock = threading.Lock()
        self._objects: dict[str, StoredObject] = {}
        self._sorted_keys: list[str] = []

    def get(self, key: str) -> StoredObject | None:
        with self._lock:
            return self._objects.get(key)

    def create(self, key: str, data: bytes) -> str:
        with self._lock:
            if key in self._objects:
                raise PreconditionFailed(f"object {key!r} already exists", key=key)
            return self._store(key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        with self._lock:
            current = self._objects.get(key)
            if current is None or current.etag != etag:
                raise PreconditionFailed(f"object {key!r} changed or is missing", key=key)
            return self._store(key, data)

    def put(self, key: str, data: bytes) -> str:
        with self._lock:
            return self._store(key, data)

    def delete(self, key: str, etag: str | None = None) -> None:
        with self._lock:
            current = self._objects.get(key)
            if etag is not None and (current is None or current.etag != etag):
                raise PreconditionFailed(f"object {key!r} changed or is missing", key=key)
            if current is not None:
                del self._objects[key]
                self._sorted_keys.pop(bisect.bisect_left(self._sorted_keys, key))

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                if self._objects.pop(key, None) is not None:
                    self._sorted_keys.pop(bisect.bisect_left(self._sorted_keys, key))

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        with self._lock:
            start = bisect.bisect_right(self._sorted_keys, max(start_after, prefix))
            if start_after < prefix:
                start = bisect.bisect_left(self._sorted_keys, prefix)
            keys: list[str] = []
            for key in self._sorted_keys[start:]:
                if not key.startswith(prefix):
                    break
                if len(keys) == max_keys:
                    return ListPage(keys, keys[-1])
                keys.append(key)
            return ListPage(keys, None)

    def now(self) -> dt.datetime:
        return self._clock()

    def close(self) -> None:
        """Nothing to release."""

    def _store(self, key: str, data: bytes) -> str:
        etag = content_etag(data)
        if key not in self._objects:
            bisect.insort(self._sorted_keys, key)
        self._objects[key] = StoredObject(key, bytes(data), etag)
        return etag
