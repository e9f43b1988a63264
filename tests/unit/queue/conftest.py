"""Fixtures of the queue unit tests."""

from __future__ import annotations

import pytest
from queue_support import FakeClock

from buquet.queue import Queue
from buquet.store import MemoryStore


@pytest.fixture
def clock() -> FakeClock:
    """The store's clock, set far from the real time."""
    return FakeClock()


@pytest.fixture
def memory(clock: FakeClock) -> MemoryStore:
    """A MemoryStore on the fake clock."""
    return MemoryStore(clock=clock)


@pytest.fixture
def queue(memory: MemoryStore) -> Queue:
    """A queue on the fake-clock store."""
    return Queue(memory)
