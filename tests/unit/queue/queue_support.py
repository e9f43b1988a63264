"""Helpers of the queue unit tests: a movable store clock and a store that records calls."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from buquet.store import DEFAULT_PAGE_SIZE, ListPage, MemoryStore, StoredObject

# Far from the test machine's time, so a decision taken on the local clock shows up.
START = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self.now += dt.timedelta(seconds=seconds)


@dataclass
class RecordingStore:
    """A MemoryStore wrapper that records (method, key) of every write."""

    inner: MemoryStore
    calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.inner.url

    def get(self, key: str) -> StoredObject | None:
        return self.inner.get(key)

    def create(self, key: str, data: bytes) -> str:
        self.calls.append(("create", key))
        return self.inner.create(key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        self.calls.append(("replace", key))
        return self.inner.replace(key, data, etag)

    def put(self, key: str, data: bytes) -> str:
        self.calls.append(("put", key))
        return self.inner.put(key, data)

    def delete(self, key: str, etag: str | None = None) -> None:
        self.calls.append(("delete", key))
        self.inner.delete(key, etag)

    def delete_many(self, keys: Sequence[str]) -> None:
        self.calls.extend(("delete_many", key) for key in keys)
        self.inner.delete_many(keys)

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        return self.inner.list_page(prefix, start_after, max_keys)

    def now(self) -> dt.datetime:
        return self.inner.now()

    def close(self) -> None:
        self.inner.close()


def keys_under(store: MemoryStore, prefix: str) -> list[str]:
    """Every key under ``prefix``."""
    return store.list_page(prefix, "", 100_000).keys
