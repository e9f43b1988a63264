"""Due, lapsed and expired decisions follow the store's clock, not this machine's.

A machine whose clock runs fast must not claim a task before it is due, nor
take over a lease that its owner still renews. A clock so far off that the
store cannot be trusted stops ``buquet worker`` at start with one clear error.

The local clock is moved by patching ``time.time`` and ``datetime.datetime.now``
for the whole process, so boto3 and buquet both see the fast clock. The
stores used here read the true time: a MemoryStore gets its own clock, and
SeaweedFS runs in its own process.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from buquet.cli import _common
from buquet.cli._app import app
from buquet.queue import Queue, TaskStatus
from buquet.store import MemoryStore, ObjectStore

FAST_SECONDS = 20.0
"""How far ahead the local clock runs in the takeover tests."""
SKEW_SECONDS = 120.0
"""A clock error larger than the start-up check tolerates (30 s by default)."""
LEASE = "10s"
DELAY = "10s"
# Date has a resolution of one second, and now() is the midpoint of its estimate.
DATE_TOLERANCE = dt.timedelta(seconds=2)

_TRUE_TIME = time.time
_TRUE_DATETIME = dt.datetime


def true_utc_now() -> dt.datetime:
    """Return the real current time, whatever the patched local clock shows."""
    return _TRUE_DATETIME.fromtimestamp(_TRUE_TIME(), dt.UTC)


def shift_local_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make ``time.time()`` and ``datetime.datetime.now()`` run ``seconds`` ahead."""

    def shifted_time() -> float:
        return _TRUE_TIME() + seconds

    class ShiftedDatetime(_TRUE_DATETIME):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> ShiftedDatetime:
            moment = _TRUE_DATETIME.fromtimestamp(_TRUE_TIME() + seconds, tz)
            return cls.combine(moment.date(), moment.timetz())

    monkeypatch.setattr(time, "time", shifted_time)
    monkeypatch.setattr(dt, "datetime", ShiftedDatetime)


def server_date(server: Any) -> dt.datetime:
    """Return the ``Date`` header of a fresh response of the server."""
    response = server.client().head_bucket(Bucket=server.bucket)
    header = response["ResponseMetadata"]["HTTPHeaders"]["date"]
    return email.utils.parsedate_to_datetime(header)


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.s3)])
def store_pair(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[ObjectStore, Callable[[], ObjectStore]]]:
    """A store opened before the clock moves, and a factory for handles opened after it.

    Every handle shares the same objects. The memory store reads the true time
    through its own clock, and S3 handles measure the server's clock themselves.
    """
    opened: list[ObjectStore] = []
    if request.param == "memory":
        memory = MemoryStore(clock=true_utc_now)

        def open_handle() -> ObjectStore:
            return memory

    else:
        server = request.getfixturevalue("seaweedfs")
        prefix = f"t-clock-{uuid.uuid4().hex[:12]}"

        def open_handle() -> ObjectStore:
            store = server.store(prefix)
            opened.append(store)
            return store

    yield open_handle(), open_handle
    for store in opened:
        store.close()


@pytest.mark.s3
def test_s3_now_fast_local_clock(seaweedfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shift_local_clock(monkeypatch, FAST_SECONDS)
    store = seaweedfs.store(f"t-clock-{uuid.uuid4().hex[:12]}")
    try:
        store_now = store.now()
        offset = store.clock_offset
    finally:
        store.close()
    date = server_date(seaweedfs)

    assert abs(store_now - date) <= DATE_TOLERANCE
    assert offset is not None
    assert offset == pytest.approx(-FAST_SECONDS, abs=DATE_TOLERANCE.total_seconds())


def test_sweep_keeps_healthy_lease(
    store_pair: tuple[ObjectStore, Callable[[], ObjectStore]], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner_store, open_handle = store_pair
    owner = Queue(owner_store)
    owner.submit("clock-job", {"n": 1}, task_id="healthy", lease=LEASE)
    claimed = owner.claim(["clock-job"], "worker-a")
    assert claimed is not None

    shift_local_clock(monkeypatch, FAST_SECONDS)
    sweeper = Queue(open_handle())
    report = sweeper.sweep()
    second_claim = sweeper.claim(["clock-job"], "worker-b")
    task = sweeper.get("healthy")

    assert report.requeued == 0
    assert report.dead == 0
    assert second_claim is None
    assert task.status is TaskStatus.RUNNING
    assert task.lease_token == claimed.token
    assert task.worker_id == "worker-a"


def test_sweep_at_fast_time_requeues(
    store_pair: tuple[ObjectStore, Callable[[], ObjectStore]],
) -> None:
    """A sweep at the fast time takes the lease, so the test above can fail."""
    owner_store, open_handle = store_pair
    owner = Queue(owner_store)
    owner.submit("clock-job", {"n": 1}, task_id="healthy", lease=LEASE)
    claimed = owner.claim(["clock-job"], "worker-a")
    assert claimed is not None

    sweeper = Queue(open_handle())
    fast_now = true_utc_now() + dt.timedelta(seconds=FAST_SECONDS)
    report = sweeper.sweep(fast_now)
    task = sweeper.get("healthy")

    assert report.requeued == 1
    assert task.status is TaskStatus.PENDING
    assert task.lease_token is None


def test_claim_waits_for_due_time(
    store_pair: tuple[ObjectStore, Callable[[], ObjectStore]], monkeypatch: pytest.MonkeyPatch
) -> None:
    submitter_store, open_handle = store_pair
    Queue(submitter_store).submit("clock-job", {"n": 2}, task_id="delayed", delay=DELAY)

    shift_local_clock(monkeypatch, FAST_SECONDS)
    worker = Queue(open_handle())
    second_claim = worker.claim(["clock-job"], "worker-b")
    task = worker.get("delayed")

    assert second_claim is None
    assert task.status is TaskStatus.PENDING
    assert task.attempts == 0


HANDLERS = """\
from buquet.queue import handler


@handler("clock_check_noop")
def noop(payload):
    return payload
"""


@pytest.fixture(scope="module")
def handlers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One handler module for the module: a task type registers only once per process."""
    path = tmp_path_factory.mktemp("clock_handlers") / "clock_check_handlers.py"
    path.write_text(HANDLERS, encoding="utf-8")
    return path


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Result]]:
    """Run ``buquet`` in process, then undo its logging setup and its sys.path changes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUQUET_STORE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = logging.getLogger()
    buquet_logger = logging.getLogger("buquet")
    handlers, level, buquet_level = list(root.handlers), root.level, buquet_logger.level
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)
    buquet_logger.setLevel(buquet_level)


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_worker_skewed_memory_store_exits(
    run_cli: Callable[..., Result], handlers_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skewed = MemoryStore(clock=lambda: true_utc_now() - dt.timedelta(seconds=SKEW_SECONDS))

    def open_store(url: str | None = None, *, concurrency: int | None = None) -> ObjectStore:
        return skewed

    monkeypatch.setattr(_common, "open_store", open_store)
    result = run_cli(
        "worker", str(handlers_file), "--idle-exit", "0", "--store", "memory://clock-skew"
    )

    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1
    assert "store check failed: clock." in errors[0]
    assert "behind this machine's clock" in errors[0]
    assert "NTP" in errors[0]


@pytest.mark.s3
def test_worker_skewed_s3_clock_exits(
    run_cli: Callable[..., Result],
    handlers_file: Path,
    s3_store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shift_local_clock(monkeypatch, SKEW_SECONDS)
    result = run_cli("worker", str(handlers_file), "--idle-exit", "0", "--store", s3_store_url)

    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1
    assert "store check failed: clock." in errors[0]
    assert "behind this machine's clock" in errors[0]
    assert s3_store_url in errors[0]
