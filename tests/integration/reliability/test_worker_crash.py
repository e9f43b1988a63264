"""A worker that dies holding a task: the lease lapses, another worker takes the next attempt.

The first test kills a real ``buquet worker`` process with SIGKILL in the
middle of a handler. The second kills every attempt in-process, on a store
clock that the test moves, until the task has no attempts left.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buquet.errors import LeaseLost
from buquet.queue import ClaimedTask, Queue, SweepReport, TaskStatus
from buquet.store import LocalStore, MemoryStore

TASKS_FILE = '''\
"""A task that records each attempt, then waits while the file ``hold`` exists."""

import os
import time
from pathlib import Path

from buquet.queue import TaskContext, handler

HOLD_LIMIT_SECONDS = 60.0


@handler("crash.slow")
def slow(job: dict, ctx: TaskContext) -> str:
    folder = Path(job["dir"])
    with (folder / "attempts.log").open("a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {ctx.attempt}\\n")
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while (folder / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "done"
'''
WAIT_LIMIT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 40.0
SECONDS_INTO_STEP = 1.0


def wait_until(condition: Callable[[], bool], description: str) -> None:
    """Poll ``condition`` until it holds; fail after the wait limit."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {description}"
        time.sleep(0.05)


def start_worker(
    folder: Path, store_url: str, log_name: str, *extra: str
) -> subprocess.Popen[bytes]:
    """Start ``python -m buquet worker`` on the tasks file, its output going to a log file."""
    environment = os.environ.copy()
    environment.pop("BUQUET_STORE", None)
    environment["AWS_EC2_METADATA_DISABLED"] = "true"
    command = [
        sys.executable, "-m", "buquet", "worker", str(folder / "crash_tasks.py"),
        "--lease", "3s", "--store", store_url, "-v", *extra,
    ]  # fmt: skip
    with (folder / log_name).open("wb") as log:
        return subprocess.Popen(
            command, cwd=folder, env=environment, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def attempts_logged(folder: Path) -> list[tuple[int, int]]:
    """Return (process id, attempt) of every handler call so far."""
    log = folder / "attempts.log"
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").split()
    return [(int(pid), int(attempt)) for pid, attempt in zip(lines[::2], lines[1::2], strict=True)]


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; any still running at its end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_SECONDS)


@pytest.mark.slow
def test_killed_worker_task_retried(tmp_path: Path, workers: list[subprocess.Popen[bytes]]) -> None:
    (tmp_path / "crash_tasks.py").write_text(TASKS_FILE, encoding="utf-8")
    store_url = f"file://{tmp_path / 'store'}"
    queue = Queue(LocalStore(tmp_path / "store"))
    task_id = queue.submit("crash.slow", {"dir": str(tmp_path)}, max_attempts=3).id
    (tmp_path / "hold").touch()

    first = start_worker(tmp_path, store_url, "first.log")
    workers.append(first)
    wait_until(lambda: len(attempts_logged(tmp_path)) == 1, "the first attempt to start")
    time.sleep(SECONDS_INTO_STEP)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(STOP_TIMEOUT_SECONDS) == -signal.SIGKILL

    orphaned = queue.get(task_id)
    assert orphaned.status is TaskStatus.RUNNING
    assert orphaned.attempts == 1
    assert orphaned.lease_expires_at is not None
    early = queue.sweep(orphaned.lease_expires_at - dt.timedelta(milliseconds=1))
    assert early.requeued == 0
    assert queue.get(task_id).status is TaskStatus.RUNNING

    lapsed_at = orphaned.lease_expires_at
    wait_until(lambda: queue.store.now() > lapsed_at, "the lease to lapse")
    report = queue.sweep()
    requeued = queue.get(task_id)
    assert report.requeued == 1
    assert requeued.status is TaskStatus.PENDING
    assert requeued.attempts == 1
    assert "lease expired after attempt 1" in (requeued.error or "")

    (tmp_path / "hold").unlink()
    second = start_worker(tmp_path, store_url, "second.log", "--idle-exit", "1")
    workers.append(second)
    assert second.wait(WAIT_LIMIT_SECONDS) == 0, (tmp_path / "second.log").read_text()

    finished = queue.get(task_id)
    assert finished.status is TaskStatus.SUCCEEDED
    assert finished.attempts == 2
    assert finished.result == "done"
    assert attempts_logged(tmp_path) == [(first.pid, 1), (second.pid, 2)]
    assert f"claimed task {task_id} (attempt 2)" in (tmp_path / "second.log").read_text()


class MovableClock:
    """A store clock that moves only when the test advances it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self.now += dt.timedelta(seconds=seconds)


def test_every_attempt_dies_task_fails() -> None:
    clock = MovableClock()
    queue = Queue(MemoryStore(clock=clock))
    task_id = queue.submit("crash.slow", max_attempts=3, lease="30s").id
    reports: list[SweepReport] = []
    claims: list[ClaimedTask] = []

    for attempt in (1, 2, 3):
        claimed = queue.claim(["crash.slow"], f"worker-{attempt}")
        assert claimed is not None
        assert claimed.task.attempts == attempt
        claims.append(claimed)
        clock.advance(31)
        reports.append(queue.sweep())

    dead = queue.get(task_id)
    assert [report.requeued for report in reports] == [1, 1, 0]
    assert [report.dead for report in reports] == [0, 0, 1]
    assert dead.status is TaskStatus.FAILED
    assert dead.attempts == 3
    assert "lease expired after attempt 3" in (dead.error or "")

    clock.advance(3600)
    queue.sweep()
    assert queue.claim(["crash.slow"], "worker-4") is None
    assert queue.get(task_id).attempts == 3
    with pytest.raises(LeaseLost):
        queue.complete(claims[-1], "too late")
    assert queue.get(task_id).status is TaskStatus.FAILED
