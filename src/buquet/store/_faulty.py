"""A store wrapper that injects the failures S3 produces, for tests of recovery.

Each :class:`FaultRule` picks requests by operation and key prefix and fails
some of them: every one, the first ``count``, or each with a probability drawn
from a seeded generator, so the same sequence of requests gets the same
faults. Without ``retry`` the wrapper shows each injected failure to its
caller. With ``retry`` it first retries transient failures the way
:class:`~buquet.store.S3Store` does. A retried write whose first attempt
landed then fails on its own condition, as it does on S3.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from buquet.errors import AmbiguousWrite, ConfigError, PreconditionFailed, StoreError
from buquet.store._base import DEFAULT_PAGE_SIZE, ListPage, ObjectStore, StoredObject
from buquet.store._retry import RetryPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")

OPERATIONS = frozenset({"get", "create", "replace", "put", "delete", "delete_many", "list_page"})
WRITES = frozenset({"create", "replace", "put", "delete", "delete_many"})
CONDITIONAL_WRITES = frozenset({"create", "replace", "delete"})


class Fault(StrEnum):
    """A failure to inject into one request."""

    SLOW_DOWN = "slow_down"
    """503 SlowDown: transient, and the request is not applied."""
    CONFLICT = "conflict"
    """409 ConditionalRequestConflict: PreconditionFailed, and the write is not applied."""
    LOST_ANSWER = "lost_answer"
    """The write is applied, then its response is lost: transient, or AmbiguousWrite."""
    SLOW = "slow"
    """The request waits ``delay`` seconds, then goes through."""


_ALLOWED_OPERATIONS = {
    Fault.SLOW_DOWN: OPERATIONS,
    Fault.CONFLICT: CONDITIONAL_WRITES,
    Fault.LOST_ANSWER: WRITES,
    Fault.SLOW: OPERATIONS,
}


@dataclass(frozen=True)
class FaultRule:
    """A selection of requests that get ``fault``, by operation, key prefix, count and probability.

    ``operations`` defaults to every operation the fault applies to.
    ``skip`` matching requests pass before the first injection, and at most
    ``count`` are injected (no limit when None). ``delay`` is in seconds and
    applies to :attr:`Fault.SLOW` only.
    """

    fault: Fault
    operations: Collection[str] | None = None
    prefix: str = ""
    count: int | None = None
    probability: float = 1.0
    skip: int = 0
    delay: float = 0.0

    def __post_init__(self) -> None:
        allowed = _ALLOWED_OPERATIONS[self.fault]
        invalid = set(self.operations or ()) - allowed
        if invalid:
            raise ConfigError(
                f"fault {self.fault.value!r} cannot apply to {sorted(invalid)}; "
                f"use operations among {sorted(allowed)}"
            )
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(f"invalid probability {self.probability!r}: use 0.0 to 1.0")
        if self.delay < 0 or self.skip < 0 or (self.count is not None and self.count < 0):
            raise ConfigError("invalid fault rule: delay, skip and count must not be negative")

    def selects(self, operation: str, key: str) -> bool:
        """Check whether a request of ``operation`` on ``key`` is one this rule picks."""
        operations = _ALLOWED_OPERATIONS[self.fault] if self.operations is None else self.operations
        return operation in operations and key.startswith(self.prefix)


class _Transient(Exception):
    """Internal: an injected failure that a retrying client would retry."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(str(error))
        self.error = error


class FaultyStore:
    """An :class:`~buquet.store.ObjectStore` that fails chosen requests to ``inner``.

    Rules are checked in order and the first that fires decides the fault of
    one attempt. ``injected`` counts the faults by (fault, operation).
    ``sleep`` replaces :func:`time.sleep` for SLOW faults and retry delays.
    """

    def __init__(
        self,
        inner: ObjectStore,
        rules: Collection[FaultRule] = (),
        *,
        seed: int = 0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.rules = list(rules)
        self.injected: Counter[tuple[Fault, str]] = Counter()
        self._retry = retry
        self._sleep = sleep
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._matched = [0] * len(self.rules)
        self._fired = [0] * len(self.rules)

    def get(self, key: str) -> StoredObject | None:
        return self._call("get", key, lambda: self.inner.get(key))

    def create(self, key: str, data: bytes) -> str:
        return self._call("create", key, lambda: self.inner.create(key, data))

    def replace(self, key: str, data: bytes, etag: str) -> str:
        return self._call("replace", key, lambda: self.inner.replace(key, data, etag))

    def put(self, key: str, data: bytes) -> str:
        return self._call("put", key, lambda: self.inner.put(key, data))

    def delete(self, key: str, etag: str | None = None) -> None:
        self._call("delete", key, lambda: self.inner.delete(key, etag))

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` in one request; rules select it by its first key."""
        if keys:
            self._call("delete_many", keys[0], lambda: self.inner.delete_many(keys))

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        return self._call(
            "list_page", prefix, lambda: self.inner.list_page(prefix, start_after, max_keys)
        )

    def now(self) -> dt.datetime:
        return self.inner.now()

    def close(self) -> None:
        self.inner.close()

    def _call(self, operation: str, key: str, send: Callable[[], T]) -> T:
        attempts = 1 if self._retry is None else self._retry.max_attempts
        for attempt in range(attempts):
            try:
                return self._attempt(self._draw(operation, key), operation, key, send)
            except _Transient as transient:
                if self._retry is None or attempt + 1 == attempts:
                    raise transient.error from None
                delay = self._retry.delay(attempt)
                logger.debug("%s; will retry in %.3f s", transient.error, delay)
                self._sleep(delay)
        raise AssertionError("unreachable: the retry loop returns or raises")

    def _attempt(
        self, rule: FaultRule | None, operation: str, key: str, send: Callable[[], T]
    ) -> T:
        if rule is None:
            return send()
        if rule.fault is Fault.SLOW:
            self._sleep(rule.delay)
            return send()
        if rule.fault is Fault.CONFLICT:
            raise PreconditionFailed(
                f"{operation} of {key!r} failed: injected 409 ConditionalRequestConflict", key=key
            )
        if rule.fault is Fault.LOST_ANSWER:
            # The response is lost whatever it was, including a failed condition.
            with contextlib.suppress(PreconditionFailed):
                send()
            raise _Transient(
                AmbiguousWrite(f"{operation} of {key!r}: injected lost response", key=key)
            )
        raise _Transient(
            StoreError(f"{operation} of {key!r} failed: injected SlowDown (HTTP 503)", key=key)
        )

    def _draw(self, operation: str, key: str) -> FaultRule | None:
        """Return the rule that fires for this attempt, counting it; None for no fault."""
        with self._lock:
            for index, rule in enumerate(self.rules):
                if not rule.selects(operation, key):
                    continue
                self._matched[index] += 1
                if self._fires(index, rule):
                    self._fired[index] += 1
                    self.injected[rule.fault, operation] += 1
                    return rule
        return None

    def _fires(self, index: int, rule: FaultRule) -> bool:
        if self._matched[index] <= rule.skip:
            return False
        if rule.count is not None and self._fired[index] >= rule.count:
            return False
        return rule.probability >= 1.0 or self._random.random() < rule.probability
