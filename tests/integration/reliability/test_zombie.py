"""A worker paused past its lease comes back as a zombie: its writes are fenced off.

A real ``buquet worker`` process is stopped with SIGSTOP while its step
runs. Once its lease lapses a second worker takes the step over and
finishes the run. The first worker is then resumed with SIGCONT: its
renewal and its result must be rejected, the stored results must stay the
second worker's, and the first worker must log the lost lease and keep
running until SIGTERM stops it.

When the step sleeps in one call, it returns as soon as the process resumes,
and its completion or the lease renewal reaches the store first. When it
sleeps in short naps, the renewal comes first: its rejection makes the
worker discard the result before it writes anything.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from buquet import keys
from buquet.queue import Queue, TaskStatus
from buquet.store import open_store
from buquet.workflow import Client, RunStatus, Workflow

FLOW_FILE = '''\
"""A step that marks its start, sleeps, and returns the id of the process that ran it."""

import os
import time
from pathlib import Path

from buquet import step, workflow

STEP_SECONDS = 3.0
NAPS = 60


@step
def slow_pid(folder: str, napping: bool) -> int:
    """Sleep in one call, or in many short naps that go on after a pause of the process."""
    (Path(folder) / f"started-{os.getpid()}").touch()
    if napping:
        for _ in range(NAPS):
            time.sleep(STEP_SECONDS / NAPS)
    else:
        time.sleep(STEP_SECONDS)
    return os.getpid()


@workflow
def zombie(folder: str, napping: bool) -> int:
    return slow_pid(folder, napping)
'''
RUN_ID = "zombie"
LEASE = "2s"
WAIT_SECONDS = 40.0
STOP_SECONDS = 20.0
LOST_LEASE_MESSAGE = "lost the lease of task"
RENEWAL_REJECTED_MESSAGE = "its result will be discarded"
RESULT_DISCARDED_MESSAGE = "is discarded: it timed out or lost its lease"


def wait_until(condition: Callable[[], bool], description: str) -> None:
    """Poll ``condition`` until it holds, and fail the test after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {description}"
        time.sleep(0.05)


def load_flow(path: Path) -> Workflow[..., Any]:
    """Import the workflow file the workers run, to start its run from the test."""
    spec = importlib.util.spec_from_file_location("zombie_flow", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = module.zombie
    assert isinstance(flow, Workflow)
    return flow


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes of the test. Any still running at its end is resumed and killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_SECONDS)


@pytest.fixture(params=["local", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store the workers share: a directory, or a prefix on the SeaweedFS server."""
    if request.param == "s3":
        request.applymarker(pytest.mark.s3)
        return str(request.getfixturevalue("s3_store_url"))
    return f"file://{tmp_path / 'store'}"


def start_worker(folder: Path, log_name: str, store_url: str) -> subprocess.Popen[bytes]:
    """Start ``python -m buquet worker`` on the flow file, its output going to a log file."""
    environment = os.environ.copy()
    environment.pop("BUQUET_STORE", None)
    environment["AWS_EC2_METADATA_DISABLED"] = "true"
    command = [
        sys.executable, "-m", "buquet", "worker", str(folder / "zombie_flow.py"),
        "--store", store_url, "--lease", LEASE, "--concurrency", "1", "-v",
    ]  # fmt: skip
    with (folder / log_name).open("wb") as log:
        return subprocess.Popen(
            command, cwd=folder, env=environment, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def started_by(folder: Path, pid: int) -> bool:
    """Check whether process ``pid`` has started the step body."""
    return (folder / f"started-{pid}").exists()


def log_text(folder: Path, log_name: str) -> str:
    """Read a worker's log so far."""
    return (folder / log_name).read_text(encoding="utf-8", errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("napping", [False, True], ids=["one-sleep", "napping"])
def test_zombie_worker_fenced(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], napping: bool, store_url: str
) -> None:
    (tmp_path / "zombie_flow.py").write_text(FLOW_FILE, encoding="utf-8")
    store = open_store(store_url)
    client = Client(store)
    queue = Queue(store)
    task_id = keys.step_task_id(RUN_ID, "slow_pid")
    flow_input = {"folder": str(tmp_path), "napping": napping}
    client.start(load_flow(tmp_path / "zombie_flow.py"), flow_input, run_id=RUN_ID)

    zombie = start_worker(tmp_path, "zombie.log", store_url)
    processes.append(zombie)
    wait_until(lambda: started_by(tmp_path, zombie.pid), "the first worker to start the step")
    os.kill(zombie.pid, signal.SIGSTOP)
    held = queue.get(task_id)
    assert held.status is TaskStatus.RUNNING
    assert held.lease_expires_at is not None
    wait_until(
        lambda: store.now() > (queue.get(task_id).lease_expires_at or store.now()),
        "the paused worker's lease to lapse",
    )

    successor = start_worker(tmp_path, "successor.log", store_url)
    processes.append(successor)
    wait_until(lambda: client.get(RUN_ID).status.is_terminal, "the second worker to finish")
    finished_run = client.get(RUN_ID)
    finished_task = queue.get(task_id)
    assert finished_run.status is RunStatus.SUCCEEDED, finished_run.error
    assert finished_run.result == successor.pid
    assert finished_task.result == successor.pid
    assert finished_task.attempts == 2

    os.kill(zombie.pid, signal.SIGCONT)
    wait_until(
        lambda: LOST_LEASE_MESSAGE in log_text(tmp_path, "zombie.log"),
        "the resumed worker to log its lost lease",
    )
    if napping:
        wait_until(
            lambda: RESULT_DISCARDED_MESSAGE in log_text(tmp_path, "zombie.log"),
            "the resumed worker to discard its result",
        )
        assert RENEWAL_REJECTED_MESSAGE in log_text(tmp_path, "zombie.log")
    assert zombie.poll() is None, log_text(tmp_path, "zombie.log")
    after_run = client.get(RUN_ID)
    after_task = queue.get(task_id)
    assert after_run == finished_run
    assert after_task == finished_task

    for process in (zombie, successor):
        os.kill(process.pid, signal.SIGTERM)
    assert zombie.wait(STOP_SECONDS) == 0, log_text(tmp_path, "zombie.log")
    assert successor.wait(STOP_SECONDS) == 0, log_text(tmp_path, "successor.log")
    assert started_by(tmp_path, successor.pid)
    assert client.get(RUN_ID) == finished_run
    assert queue.get(task_id) == finished_task
