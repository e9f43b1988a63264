"""A worker killed in the middle of a run: the surviving worker takes over its lapsed leases.

The run is a map of slow items, so that both workers hold tasks when one
is killed with SIGKILL. The survivor alone must finish the run, with the
result that a run without the kill gives.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import Buquet

SLOW_REPORT = '''\
"""A map whose items each sleep, so that a run lasts a few seconds."""

import time

from buquet import step, workflow


@step
def numbers(count: int) -> list[int]:
    return list(range(count))


@step
def square(value: int, delay: float) -> int:
    time.sleep(delay)
    return value * value


@step
def summarise(squares: list[int]) -> dict[str, object]:
    return {"count": len(squares), "total": sum(squares), "squares": squares}


@workflow
def slow_report(count: int, delay: float) -> dict[str, object]:
    return summarise(square.map(numbers(count), delay=delay))
'''
ITEMS = 80
ITEM_SECONDS = 0.2
ITEMS_DONE_BEFORE_KILL = 8
CLAIM_LINE = re.compile(r"claimed task (\S+) \(attempt (\d+)\)")


def expected_result() -> dict[str, Any]:
    squares = [value * value for value in range(ITEMS)]
    return {"count": ITEMS, "total": sum(squares), "squares": squares}


def items_done(summary: dict[str, Any]) -> int:
    """Return how many items of the mapped step have finished, from ``workflow status --json``."""
    by_name = {step["name"]: step for step in summary["steps"]}
    finished: int = by_name["square"]["finished_items"]
    return finished


def claimed_tasks(log: Path) -> dict[str, list[int]]:
    """Return the attempts each task id was claimed with, from a worker's debug log."""
    claims: dict[str, list[int]] = {}
    for match in CLAIM_LINE.finditer(log.read_text(encoding="utf-8", errors="replace")):
        claims.setdefault(match.group(1), []).append(int(match.group(2)))
    return claims


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store for the command line: a directory in ``tmp_path``, or a prefix on SeaweedFS."""
    if request.param == "local":
        return f"file://{tmp_path / 'store'}"
    url: str = request.getfixturevalue("s3_store_url")
    return url


@pytest.mark.slow
def test_worker_killed_mid_run(buquet: Buquet, store_url: str) -> None:
    (buquet.cwd / "slow_report.py").write_text(SLOW_REPORT, encoding="utf-8")
    started = buquet.run(
        "workflow", "start", "slow_report.py",
        "--input", f'{{"count": {ITEMS}, "delay": {ITEM_SECONDS}}}', "--store", store_url,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()

    logs = [buquet.cwd / "killed.log", buquet.cwd / "survivor.log"]
    worker_options = ["--lease", "2s", "--concurrency", "2", "-v", "--store", store_url]
    killed, survivor = (
        buquet.start("worker", "slow_report.py", *worker_options, log=log) for log in logs
    )
    before_kill = buquet.wait_for_status(
        run_id,
        store_url,
        lambda summary: items_done(summary) >= ITEMS_DONE_BEFORE_KILL,
        [killed, survivor],
    )
    assert before_kill["status"] == "running"
    assert buquet.stop(killed, signal.SIGKILL) == -signal.SIGKILL

    after = buquet.wait_for_status(
        run_id, store_url, lambda summary: summary["status"] != "running", [survivor]
    )
    assert after["status"] == "succeeded", after
    result = buquet.json("workflow", "result", run_id, "--store", store_url, "--json")
    assert result == expected_result()

    tasks = buquet.json("task", "list", "--limit", "1000", "--store", store_url, "--json")
    retried = {task["id"] for task in tasks if task["attempts"] >= 2}
    killed_claims = claimed_tasks(logs[0])
    survivor_claims = claimed_tasks(logs[1])
    taken_over = retried & set(killed_claims)
    assert taken_over, f"no task the killed worker claimed ran again; retried: {retried}"
    assert all(2 in survivor_claims.get(task_id, []) for task_id in taken_over)
    assert "returned to pending" in logs[1].read_text(encoding="utf-8")
    assert buquet.stop(survivor) == 0, logs[1].read_text(encoding="utf-8")
