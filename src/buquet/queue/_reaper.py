"""Deleting the hints of settled tasks in batches, off the path from one task to the next.

A claimer that lists a hint in the short time before its batch goes reads
a finished task and skips the hint. The owner's claimer skips it unread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from buquet.errors import StoreError
from buquet.store import ObjectStore

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25
"""Seconds a hint waits at most for its batch; a fuller batch goes at once."""
FULL_BATCH = 200
"""Waiting hints that start a batch delete before the interval has passed."""
MAX_BATCH = 1000
"""Hints deleted by one request."""


class HintReaper(threading.Thread):
    """Collects hint keys and deletes them with one request per batch.

    A hint left by a crash before the delete is harmless: the sweep rules
    delete it once its task has been finished for a lease. ``deleted`` is
    called with each batch after it is gone.
    """

    def __init__(self, store: ObjectStore, deleted: Callable[[list[str]], None]) -> None:
        super().__init__(name="buquet-hint-reaper", daemon=True)
        self._store = store
        self._deleted = deleted
        self._pending: list[str] = []
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._full = threading.Event()
        self._stop_event = threading.Event()

    def add(self, key: str) -> None:
        """Delete ``key`` with the next batch."""
        with self._lock:
            if key not in self._queued:
                self._queued.add(key)
                self._pending.append(key)
            full = len(self._pending) >= FULL_BATCH
        self._wake.set()
        if full:
            self._full.set()

    def queued(self, key: str) -> bool:
        """Check whether ``key`` waits for deletion."""
        with self._lock:
            return key in self._queued

    def stop(self) -> None:
        """Delete what is left and end the thread."""
        self._stop_event.set()
        self._wake.set()
        self._full.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._wake.wait()
            self._full.wait(FLUSH_INTERVAL)
            self._wake.clear()
            self._full.clear()
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Delete every waiting hint now."""
        while True:
            with self._lock:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
            if not batch:
                return
            try:
                self._store.delete_many(batch)
            except StoreError as error:
                logger.warning(
                    "could not delete %d hints (%s); the sweep rules delete them later",
                    len(batch),
                    error,
                )
            with self._lock:
                self._queued.difference_update(batch)
            self._deleted(batch)
