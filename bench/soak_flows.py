"""Workflows of the chaos soak (bench/soak.py): chains, fan-outs, flaky steps and doomed runs.

Every step body first appends one JSON line to ``exec-<pid>.jsonl`` in the
directory named by ``BUQUET_SOAK_LOG_DIR``: the task, run, node, item index,
attempt and process id of that execution. The line is written with a single
``os.write`` on a file opened with ``O_APPEND``, so a SIGKILL cannot leave half
a line. Every step result carries the attempt and process id that produced
it, which lets the soak compare stored results with the executions.

Shapes, by workflow name:

- ``chain3``, ``chain5``: 3 or 5 steps in a row;
- ``fanout``: one step makes ``width`` items, a map runs one task per item,
  and a join sums them;
- ``flaky``: two steps fail their first one or two attempts, then succeed.
  The failure depends only on ``step_context().attempt``;
- ``doomed``: a step raises NonRetryableError, so the run must fail.

Steps sleep for a short random time, so that killed workers die mid-step.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

from buquet import Backoff, NonRetryableError, step, step_context, workflow

LOG_DIR_ENV = "BUQUET_SOAK_LOG_DIR"
STEP_RETRIES = 12
"""Planned failures use at most 2 attempts, which leaves 11 for attempts lost to killed workers."""
STEP_BACKOFF = Backoff(base=0.2, factor=2.0, cap=2.0)
STEP_SECONDS = (0.05, 0.4)
ITEM_SECONDS = (0.01, 0.15)

Stamped = dict[str, Any]
"""A step result: ``value`` plus the ``attempt`` and ``pid`` that produced it."""


class PlannedFailure(RuntimeError):
    """Raised by a flaky step on the attempts that are meant to fail."""


def record_execution(*, planned_failure: bool = False) -> dict[str, Any]:
    """Append this execution to the process's log file; return the attempt and pid."""
    context = step_context()
    line = {
        "task": context.idempotency_key,
        "run": context.run_id,
        "node": context.step,
        "index": context.index,
        "attempt": context.attempt,
        "pid": os.getpid(),
        "time": time.time(),
        "planned_failure": planned_failure,
    }
    directory = os.environ[LOG_DIR_ENV]
    path = os.path.join(directory, f"exec-{os.getpid()}.jsonl")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (json.dumps(line) + "\n").encode())
    finally:
        os.close(descriptor)
    return {"attempt": context.attempt, "pid": line["pid"]}


def _work(bounds: tuple[float, float]) -> None:
    time.sleep(random.uniform(*bounds))


def _stamp(value: Any, origin: dict[str, Any]) -> Stamped:
    return {"value": value, **origin}


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def begin(seed: int) -> Stamped:
    origin = record_execution()
    _work(STEP_SECONDS)
    return _stamp(seed, origin)


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def add(previous: Stamped, amount: int) -> Stamped:
    origin = record_execution()
    _work(STEP_SECONDS)
    return _stamp(previous["value"] + amount, origin)


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def flaky_add(previous: Stamped, amount: int, failures: int) -> Stamped:
    planned = step_context().attempt <= failures
    origin = record_execution(planned_failure=planned)
    _work(STEP_SECONDS)
    if planned:
        raise PlannedFailure(
            f"planned failure of attempt {origin['attempt']}: the first {failures} attempts fail"
        )
    return _stamp(previous["value"] + amount, origin)


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def make_items(seed: int, width: int) -> list[Stamped]:
    origin = record_execution()
    _work(STEP_SECONDS)
    return [_stamp(seed + offset, origin) for offset in range(width)]


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def double(item: Stamped) -> Stamped:
    origin = record_execution()
    _work(ITEM_SECONDS)
    return _stamp(item["value"] * 2, origin)


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def join(parts: list[Stamped]) -> Stamped:
    origin = record_execution()
    _work(STEP_SECONDS)
    return _stamp(sum(part["value"] for part in parts), origin)


@step(retries=STEP_RETRIES, backoff=STEP_BACKOFF)
def doom(previous: Stamped) -> Stamped:
    record_execution()
    _work(STEP_SECONDS)
    raise NonRetryableError(f"step doom rejects every value, including {previous['value']}")


@step
def note_failure(failure: dict[str, Any]) -> None:
    """Failure handler of ``doomed``; it runs without a step context, so it records nothing."""


@workflow
def chain3(seed: int) -> Stamped:
    return add(add(begin(seed), 1), 2)


@workflow
def chain5(seed: int) -> Stamped:
    return add(add(add(add(begin(seed), 1), 2), 3), 4)


@workflow
def fanout(seed: int, width: int) -> Stamped:
    return join(double.map(make_items(seed, width)))


@workflow
def flaky(seed: int) -> Stamped:
    return add(flaky_add(flaky_add(begin(seed), 1, failures=1), 2, failures=2), 3)


@workflow(on_failure=note_failure)
def doomed(seed: int) -> Stamped:
    return add(doom(begin(seed)), 1)


def _fanout_value(run_input: dict[str, Any]) -> int:
    seed, width = run_input["seed"], run_input["width"]
    return sum(2 * (seed + offset) for offset in range(width))


EXPECTED_VALUE: dict[str, Callable[[dict[str, Any]], int] | None] = {
    "chain3": lambda run_input: run_input["seed"] + 3,
    "chain5": lambda run_input: run_input["seed"] + 10,
    "fanout": _fanout_value,
    "flaky": lambda run_input: run_input["seed"] + 6,
    "doomed": None,
}
"""The ``value`` of each workflow's result for an input; None for a workflow that must fail."""
