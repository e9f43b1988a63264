"""Checks of the soak, made after the workers stopped: runs, executions and stored results.

Executions come from the ``exec-<pid>.jsonl`` files that the steps of
bench/soak_flows.py append to, tasks and runs from the store.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soak_flows import EXPECTED_VALUE

from buquet import keys
from buquet.queue import Queue, Task, TaskStatus
from buquet.store import ObjectStore, iter_keys
from buquet.workflow import Run, RunStatus

FAILURE_NODE = "__on_failure__"
READ_THREADS = 16


@dataclass(frozen=True)
class Execution:
    """One line of an executions log: a step body that started."""

    task: str
    run: str
    node: str
    index: int | None
    attempt: int
    pid: int
    time: float
    planned_failure: bool


def read_executions(log_dir: Path) -> list[Execution]:
    """Read every executions log in ``log_dir``."""
    executions = []
    for path in sorted(log_dir.glob("exec-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            executions.append(Execution(**json.loads(line)))
    return executions


def count_worker_log_lines(log_dir: Path, text: str) -> int:
    """Count the lines of the worker logs in ``log_dir`` that contain ``text``."""
    return sum(
        line.count(text)
        for path in log_dir.glob("worker-*.log")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    )


def read_tasks(store: ObjectStore) -> list[Task]:
    """Read every task object in the store."""
    queue = Queue(store)
    task_ids = [keys.task_id_from_key(key) for key in iter_keys(store, keys.TASKS)]
    with ThreadPoolExecutor(READ_THREADS) as pool:
        return list(pool.map(queue.get, task_ids))


# Runs ---------------------------------------------------------------------------


@dataclass
class RunOutcomes:
    """Runs by outcome; the lists hold run ids."""

    succeeded: list[str] = field(default_factory=list)
    failed_expected: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_result: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)


def classify_runs(runs: Iterable[Run]) -> RunOutcomes:
    """Sort runs into succeeded, failed as expected, unexpected, wrong result and stuck."""
    outcomes = RunOutcomes()
    for run in runs:
        expected = EXPECTED_VALUE[run.workflow]
        if not run.status.is_terminal:
            outcomes.stuck.append(run.id)
        elif expected is None:
            failed_as_planned = run.status is RunStatus.FAILED and run.failed_step == "doom"
            (outcomes.failed_expected if failed_as_planned else outcomes.unexpected).append(run.id)
        elif run.status is not RunStatus.SUCCEEDED:
            outcomes.unexpected.append(run.id)
        elif run.result["value"] != expected(run.input):
            outcomes.wrong_result.append(run.id)
        else:
            outcomes.succeeded.append(run.id)
    return outcomes


# Re-executions -------------------------------------------------------------------


@dataclass
class Reexecutions:
    """Executions of a task after its first, by the reason the one before did not finish it.

    ``planned`` follows a planned failure. ``after_kill`` and ``after_pause``
    follow an execution whose process was killed or paused after it started
    and before this one started. ``other`` has none of these reasons, and
    ``same_attempt`` counts executions that repeat an attempt number.
    """

    planned: int = 0
    after_kill: int = 0
    after_pause: int = 0
    other: list[dict[str, Any]] = field(default_factory=list)
    same_attempt: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Executions beyond the first that no planned failure explains."""
        return self.after_kill + self.after_pause + len(self.other)


def by_task(executions: Iterable[Execution]) -> dict[str, list[Execution]]:
    """Group executions by task id, each group sorted by attempt, then start time."""
    grouped: dict[str, list[Execution]] = defaultdict(list)
    for execution in executions:
        grouped[execution.task].append(execution)
    for group in grouped.values():
        group.sort(key=lambda execution: (execution.attempt, execution.time))
    return grouped


def classify_reexecutions(
    grouped: dict[str, list[Execution]], signals: dict[str, list[tuple[int, float]]]
) -> Reexecutions:
    """Give each execution after a task's first the reason its predecessor did not finish.

    ``signals`` maps ``kill`` and ``pause`` to (pid, time) pairs of the chaos loop.
    """
    result = Reexecutions()
    for group in grouped.values():
        for previous, current in itertools.pairwise(group):
            if current.attempt == previous.attempt:
                result.same_attempt.append(_describe(current, previous))
            if previous.planned_failure:
                result.planned += 1
            elif _signalled(signals["kill"], previous, current):
                result.after_kill += 1
            elif _signalled(signals["pause"], previous, current):
                result.after_pause += 1
            else:
                result.other.append(_describe(current, previous))
    return result


def _signalled(events: list[tuple[int, float]], previous: Execution, current: Execution) -> bool:
    return any(
        pid == previous.pid and previous.time <= moment <= current.time for pid, moment in events
    )


def _describe(current: Execution, previous: Execution) -> dict[str, Any]:
    return {
        "task": current.task,
        "attempt": current.attempt,
        "pid": current.pid,
        "previous_attempt": previous.attempt,
        "previous_pid": previous.pid,
        "seconds_after_previous": round(current.time - previous.time, 3),
    }


# Fencing --------------------------------------------------------------------------


def fenced_results(
    tasks: Iterable[Task], grouped: dict[str, list[Execution]]
) -> list[dict[str, Any]]:
    """Return the succeeded step tasks whose stored result no current owner produced.

    A result passes when the attempt and pid stamped into it are an execution
    in the logs, that attempt is the task's last claim (``task.attempts``),
    and no execution of a later attempt exists.
    """
    problems = []
    for task in tasks:
        if task.status is not TaskStatus.SUCCEEDED or task.input.get("node") == FAILURE_NODE:
            continue
        problem = _fence_problem(task, grouped.get(task.id, []))
        if problem is not None:
            problems.append({"task": task.id, "attempts": task.attempts, "problem": problem})
    return problems


def _fence_problem(task: Task, executions: list[Execution]) -> str | None:
    origin = task.result[0] if isinstance(task.result, list) else task.result
    attempt, pid = origin["attempt"], origin["pid"]
    ran = any(e.attempt == attempt and e.pid == pid for e in executions)
    later = [e.attempt for e in executions if e.attempt > attempt]
    if not ran:
        return f"result stamped attempt {attempt} pid {pid}, which has no execution"
    if attempt != task.attempts:
        return f"result from attempt {attempt}, but the task was claimed {task.attempts} times"
    if later:
        return f"result from attempt {attempt}, but attempts {later} ran later"
    return None


# Stuck runs --------------------------------------------------------------------------


def describe_stuck(store: ObjectStore, run_id: str, tasks: Iterable[Task]) -> dict[str, Any]:
    """Return what a run that did not finish looks like: its tasks, markers and hints."""
    own = [task for task in tasks if task.input.get("run") == run_id]
    return {
        "run": run_id,
        "tasks": [_task_summary(task) for task in own if not task.status.is_terminal],
        "terminal_tasks": sum(1 for task in own if task.status.is_terminal),
        "done_markers": list(iter_keys(store, keys.done_prefix(run_id))),
        "hints": [key for key in iter_keys(store, keys.READY) if run_id in key],
    }


def _task_summary(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": str(task.status),
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "worker": task.worker_id,
        "available_at": task.available_at.isoformat(),
        "lease_expires_at": None
        if task.lease_expires_at is None
        else task.lease_expires_at.isoformat(),
        "error": task.error,
    }
