"""``buquet worker`` as a separate process: it runs submitted tasks and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import Result

RunCli = Callable[..., Result]

HANDLERS = """\
import pathlib
import time

from buquet.queue import handler


@handler("greet")
def greet(payload):
    return {"greeting": "hello " + payload["name"]}


@handler("slow")
def slow(payload):
    pathlib.Path(payload["marker"]).write_text("started", encoding="utf-8")
    deadline = time.monotonic() + payload["seconds"]
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "done"
"""

WORKFLOWS = """\
from buquet.workflow import step, workflow


@step
def double(x: int) -> int:
    return 2 * x


@step
def total(values: list[int]) -> int:
    return sum(values)


@workflow
def doubled_sum(items: list[int]) -> int:
    return total(double.map(items))
"""

WAIT_LIMIT_SECONDS = 60.0


@pytest.fixture
def handlers_file(tmp_path: Path) -> Path:
    path = tmp_path / "cli_worker_handlers.py"
    path.write_text(HANDLERS, encoding="utf-8")
    return path


@pytest.fixture
def start_worker(tmp_path: Path, store_url: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        env.pop("BUQUET_STORE", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "buquet", "worker", *args, "--store", store_url],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT_LIMIT_SECONDS)


def submit(run_cli: RunCli, store_url: str, task_type: str, payload: object) -> str:
    result = run_cli(
        "task", "submit", task_type, "--input", json.dumps(payload), "--store", store_url
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def show(run_cli: RunCli, store_url: str, task_id: str) -> dict[str, object]:
    result = run_cli("task", "show", task_id, "--json", "--store", store_url)
    assert result.exit_code == 0, result.stderr
    task: dict[str, object] = json.loads(result.stdout)
    return task


def wait_for_file(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not path.exists():
        assert process.poll() is None, "the worker exited before the task started"
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)


def test_worker_runs_task_then_idle_exits(
    run_cli: RunCli, store_url: str, handlers_file: Path, start_worker: Callable[..., object]
) -> None:
    task_id = submit(run_cli, store_url, "greet", {"name": "Ada"})
    process = start_worker(handlers_file.name, "--idle-exit", "2", "--concurrency", "2")
    assert isinstance(process, subprocess.Popen)
    _, stderr = process.communicate(timeout=WAIT_LIMIT_SECONDS)
    assert process.returncode == 0, stderr
    task = show(run_cli, store_url, task_id)
    assert task["status"] == "succeeded"
    assert task["result"] == {"greeting": "hello Ada"}
    assert "greet" in stderr
    assert "stopped" in stderr


def test_worker_sigterm_mid_task(
    run_cli: RunCli,
    store_url: str,
    handlers_file: Path,
    tmp_path: Path,
    start_worker: Callable[..., object],
) -> None:
    marker = tmp_path / "started.txt"
    task_id = submit(run_cli, store_url, "slow", {"marker": str(marker), "seconds": 1.0})
    process = start_worker(handlers_file.name)
    assert isinstance(process, subprocess.Popen)
    wait_for_file(marker, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=WAIT_LIMIT_SECONDS)
    assert process.returncode == 0, stderr
    assert "SIGTERM received" in stderr
    task = show(run_cli, store_url, task_id)
    assert task["status"] in ("succeeded", "pending")
    if task["status"] == "pending":
        assert task["attempts"] == 0
    else:
        assert task["result"] == "done"


def test_worker_runs_workflow_steps(
    store_url: str, tmp_path: Path, start_worker: Callable[..., object]
) -> None:
    from buquet.cli import load_target
    from buquet.store import open_store
    from buquet.workflow import Client

    path = tmp_path / "cli_worker_workflows.py"
    path.write_text(WORKFLOWS, encoding="utf-8")
    flow = load_target(f"{path}:doubled_sum").value
    store = open_store(store_url)
    try:
        run = Client(store).start(flow, {"items": [1, 2, 3]})
        process = start_worker(path.name, "--idle-exit", "2")
        assert isinstance(process, subprocess.Popen)
        _, stderr = process.communicate(timeout=WAIT_LIMIT_SECONDS)
        assert process.returncode == 0, stderr
        assert "workflows doubled_sum" in stderr
        assert Client(store).result(run.id) == 12
    finally:
        store.close()
