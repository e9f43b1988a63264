"""Helpers of the crash-point tests: a store wrapper that names writes and stops a worker.

:class:`CrashingStore` wraps any ObjectStore for one worker. It gives every
write a label: the operation, the object kind, the step node, and for
task and run objects the status change. At the chosen write it applies the
write, marks the worker dead and raises :class:`SimulatedCrash` in the
thread that wrote. From then on every call of that worker fails with a StoreError, so
the worker can neither read nor write: from the store's side it is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from buquet import keys
from buquet.errors import StoreError
from buquet.store import DEFAULT_PAGE_SIZE, ListPage, ObjectStore, StoredObject

START = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)


class SimulatedCrash(BaseException):
    """Ends the thread that made the crashing write, because the worker catches only Exception."""


class ShiftedClock:
    """A store clock that follows the machine's clock from START and can jump forward."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._offset = dt.timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            elapsed = dt.timedelta(seconds=time.monotonic() - self._origin)
            return START + elapsed + self._offset

    def jump(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` at once."""
        with self._lock:
            self._offset += dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class CrashPoint:
    """The ``occurrence``-th write (from 1) whose label is ``label``."""

    label: str
    occurrence: int

    @property
    def name(self) -> str:
        """A test id: the label and, after a ``#``, the occurrence."""
        return f"{self.label}#{self.occurrence}"


def crash_points(labels: list[str]) -> list[CrashPoint]:
    """Return one crash point per write in ``labels``, in the order they were written."""
    seen: Counter[str] = Counter()
    points = []
    for label in labels:
        seen[label] += 1
        points.append(CrashPoint(label, seen[label]))
    return points


def node_of(task_id: str) -> str:
    """Return the step name inside a step task id ``<run>.<step>[.<index>]``."""
    parts = task_id.split(".")
    return parts[1] if len(parts) > 1 else task_id


def _status(stored: StoredObject | None) -> str:
    if stored is None:
        return "missing"
    return str(json.loads(stored.data)["status"])


def _status_of(data: bytes) -> str:
    return str(json.loads(data)["status"])


def _hint_node(key: str) -> str:
    return node_of(keys.parse_ready_key(key)[2])


def _marker_kind(key: str) -> str:
    """Name a done marker as ``<node> node``, or ``<node> group`` and ``<node> item`` in a map."""
    _run, node, rest = key.removeprefix(keys.DONE).split("/", 2)
    if rest == "all":
        return f"{node} node"
    if rest.startswith("groups/"):
        return f"{node} group"
    return f"{node} item"


def label_write(operation: str, key: str, old: StoredObject | None, data: bytes | None) -> str:
    """Name a write by what it does, without the run id and the map item index."""
    if key.startswith(keys.TASKS):
        node = node_of(keys.task_id_from_key(key))
        if operation == "replace" and data is not None:
            return f"replace task {node} {_status(old)}->{_status_of(data)}"
        return f"{operation} task {node}"
    if key.startswith(keys.RUNS):
        if operation == "replace" and data is not None:
            return f"replace run {_status(old)}->{_status_of(data)}"
        return f"{operation} run"
    if key.startswith(keys.READY):
        return f"{operation} ready hint {_hint_node(key)}"
    if key.startswith(keys.DONE):
        return f"{operation} done marker {_marker_kind(key)}"
    if key.startswith(keys.WIDTHS):
        return f"{operation} map width {key.rsplit('/', 1)[-1]}"
    return f"{operation} {key}"


@dataclass
class CrashingStore:
    """A store seen by one worker: records labelled writes, crashes at ``point``.

    Writes are serialised, so the write that crashes is the last one this
    worker applies. Conditional writes that fail are not recorded. A replace
    or delete first reads the object, to label the status change and to skip
    deletes of missing keys, so on a real server it costs one more request.
    """

    inner: ObjectStore
    point: CrashPoint | None = None
    labels: list[str] = field(default_factory=list)
    crashed: threading.Event = field(default_factory=threading.Event)
    dead: bool = False
    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def url(self) -> str:
        return self.inner.url

    def get(self, key: str) -> StoredObject | None:
        self._check_alive(key)
        return self.inner.get(key)

    def create(self, key: str, data: bytes) -> str:
        with self._lock:
            self._check_alive(key)
            etag = self.inner.create(key, data)
            self._after_write("create", key, None, data)
            return etag

    def replace(self, key: str, data: bytes, etag: str) -> str:
        with self._lock:
            self._check_alive(key)
            old = self.inner.get(key)
            new_etag = self.inner.replace(key, data, etag)
            self._after_write("replace", key, old, data)
            return new_etag

    def put(self, key: str, data: bytes) -> str:
        with self._lock:
            self._check_alive(key)
            etag = self.inner.put(key, data)
            self._after_write("put", key, None, data)
            return etag

    def delete(self, key: str, etag: str | None = None) -> None:
        with self._lock:
            self._check_alive(key)
            existed = self.inner.get(key) is not None
            self.inner.delete(key, etag)
            if existed:
                self._after_write("delete", key, None, None)

    def delete_many(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self.delete(key)

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        self._check_alive(prefix)
        return self.inner.list_page(prefix, start_after, max_keys)

    def now(self) -> dt.datetime:
        self._check_alive("")
        return self.inner.now()

    def close(self) -> None:
        """Nothing to release: the inner store outlives this worker."""

    def _check_alive(self, key: str) -> None:
        if self.dead:
            raise StoreError("call rejected: this worker stopped at a simulated crash", key=key)

    def _after_write(
        self, operation: str, key: str, old: StoredObject | None, data: bytes | None
    ) -> None:
        label = label_write(operation, key, old, data)
        self.labels.append(label)
        self._counts[label] += 1
        if self.point is None:
            return
        if (label, self._counts[label]) == (self.point.label, self.point.occurrence):
            self.dead = True
            self.crashed.set()
            raise SimulatedCrash(f"crash after write {self.point.name} to {key}")
