"""Helpers for testing code that uses buquet, without S3 or a separate worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from buquet import keys
from buquet.errors import TaskNotFound
from buquet.queue import Worker
from buquet.store import MemoryStore, ObjectStore
from buquet.workflow import Client, Run, RunStatus, Workflow, attach_workflows
from buquet.workflow._engine import FAILURE_NODE


def run_workflow(
    workflow: Workflow[..., Any],
    input: Any = None,
    *,
    store: ObjectStore | None = None,
    run_id: str | None = None,
    concurrency: int = 4,
    timeout: float = 60.0,
    extra_workflows: Iterable[Workflow[..., Any]] = (),
) -> Run:
    """Start a run and execute it with an in-process worker; return the finished run.

    The store defaults to a fresh :class:`~buquet.store.MemoryStore`. Raises
    TimeoutError when the run has not finished after ``timeout`` seconds.
    """
    store = store or MemoryStore()
    worker = Worker(store, concurrency=concurrency, poll_min="5ms", poll_max="50ms")
    attach_workflows(worker, [workflow, *extra_workflows])
    client = Client(store)
    run = client.start(workflow, input, run_id=run_id)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop_event": stop}, daemon=True)
    thread.start()
    try:
        finished = client.wait(run.id, timeout=timeout, poll=0.01)
        if finished.status is RunStatus.FAILED and finished.dag.on_failure is not None:
            _wait_for_task(client, keys.step_task_id(run.id, FAILURE_NODE), timeout)
        return finished
    finally:
        stop.set()
        thread.join(timeout=30)


def _wait_for_task(client: Client, task_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.queue.get(task_id).status.is_terminal:
                return
        except TaskNotFound:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"task {task_id!r} did not finish within {timeout} s")
