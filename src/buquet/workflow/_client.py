"""The client: start, inspect, cancel and wait for runs."""

from __future__ import annotations

import builtins
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from buquet import _json, keys
from buquet.errors import (
    AmbiguousWrite,
    InvalidTransition,
    PreconditionFailed,
    RunConflict,
    RunFailed,
    RunNotFinished,
    StoreError,
    TaskConflict,
    TaskNotFound,
)
from buquet.queue import Queue, Task, TaskStatus
from buquet.store import ObjectStore, iter_keys
from buquet.workflow._definition import Workflow
from buquet.workflow._engine import Engine, shared_io_pool
from buquet.workflow._run import Run, RunStatus, encode_run, finish_run, read_run

logger = logging.getLogger(__name__)

MAX_CREATE_TRIES = 3
"""Creates of a run object tried while their responses are lost and the run is missing."""


@dataclass(frozen=True)
class NodeProgress:
    """How far one node of a run has got; ``total`` is None until a map's width is known."""

    name: str
    done: bool
    finished_items: int
    total: int | None


def new_run_id() -> str:
    """Return a fresh, random run id."""
    return f"run-{uuid.uuid4().hex[:20]}"


class Client:
    """Starts and inspects workflow runs in one store.

    ``hint_snapshots`` is passed to the client's :class:`~buquet.queue.Queue`.
    """

    def __init__(self, store: ObjectStore, *, hint_snapshots: bool = True) -> None:
        self.store = store
        self.queue = Queue(store, hint_snapshots=hint_snapshots)

    def start(
        self, workflow: Workflow[..., Any], input: Any = None, *, run_id: str | None = None
    ) -> Run:
        """Start a run; starting the same run id again returns the existing run.

        The DAG and input are checked before anything is written. The first
        steps' tasks are created before the run object, so a client that dies in
        between leaves no run, only tasks that fail when they find none.
        """
        dag = workflow.dag
        bound = workflow.bind_input(input)
        run_id = new_run_id() if run_id is None else keys.check_run_id(run_id)
        now = self.store.now()
        run = Run(
            id=run_id, workflow=workflow.name, input=bound, dag=dag, created_at=now, updated_at=now
        )
        engine = Engine(self.queue, {workflow.name: workflow})
        engine.deferred_hints = []
        try:
            for root in dag.roots():
                engine.activate(run, dag.nodes[root])
        except TaskConflict as exc:
            raise RunConflict(
                f"run id {run_id!r} is already used by another workflow or input; "
                f"choose another run id"
            ) from exc
        hints, engine.deferred_hints = engine.deferred_hints, None
        if not self._create_run_with_hints(run, hints):
            return self._existing_run(run)
        logger.info("started run %s of workflow %s", run_id, workflow.name)
        if any(dag.nodes[root].is_map for root in dag.roots()):
            engine.resume(run)
        return run

    def _create_run_with_hints(self, run: Run, tasks: builtins.list[Task]) -> bool:
        """Write the first tasks' hints and create the run object at the same time.

        The tasks exist already. Should this client die before a hint is
        written, the repair pass finds the task, and the run waits until then.
        a worker that claims a first step before the run object exists waits
        for it.
        """
        pool = shared_io_pool()
        written = [pool.submit(self.queue.write_hint, task) for task in tasks]
        created = self._create_run(run)
        for future in written:
            future.result()
        return created

    def _create_run(self, run: Run) -> bool:
        """Create the run object; return False when another start created it first.

        A create whose response was lost is this start's own when the stored
        run has exactly the bytes it wrote, and is written again when the run
        is missing.
        """
        key = keys.run_key(run.id)
        data = encode_run(run)
        for _ in range(MAX_CREATE_TRIES):
            try:
                self.store.create(key, data)
            except PreconditionFailed:
                return False
            except AmbiguousWrite:
                logger.info("create of run %s may not have been applied; reading it", run.id)
                stored = self.store.get(key)
                if stored is None:
                    continue
                return stored.data == data
            return True
        raise StoreError(
            f"create of run {run.id!r} failed {MAX_CREATE_TRIES} times without a response; "
            "start the run again with the same run id",
            key=key,
        )

    def _existing_run(self, run: Run) -> Run:
        existing = read_run(self.store, run.id)[0]
        if existing.workflow != run.workflow or existing.input != run.input:
            raise RunConflict(
                f"run id {run.id!r} is already used by a run of workflow {existing.workflow!r} "
                f"with other input; choose another run id"
            )
        logger.info("run %s exists already; returning it", run.id)
        return existing

    def get(self, run_id: str) -> Run:
        """Read a run, or raise RunNotFound."""
        return read_run(self.store, keys.check_run_id(run_id))[0]

    def list(
        self, *, status: RunStatus | None = None, limit: int | None = None
    ) -> builtins.list[Run]:
        """Return runs, newest first."""
        runs = [
            read_run(self.store, keys.run_id_from_key(key))[0]
            for key in iter_keys(self.store, keys.RUNS)
        ]
        runs = [run for run in runs if status is None or run.status is status]
        runs.sort(key=lambda run: run.created_at, reverse=True)
        return runs if limit is None else runs[:limit]

    def cancel(self, run_id: str) -> Run:
        """Cancel a run: no new step starts, and running steps see the request.

        A run that already succeeded or failed is returned unchanged, and its
        tasks (such as a pending failure handler) are left alone.
        """
        run_id = keys.check_run_id(run_id)
        finish_run(self.store, run_id, RunStatus.CANCELLED, error="cancelled by request")
        run = self.get(run_id)
        if run.status is not RunStatus.CANCELLED:
            logger.info("run %s is already %s; nothing to cancel", run_id, run.status)
            return run
        for key in iter_keys(self.store, keys.run_tasks_prefix(run_id)):
            try:
                self.queue.cancel(keys.task_id_from_key(key))
            except InvalidTransition:
                continue
        return self.get(run_id)

    def result(self, run_id: str) -> Any:
        """Return the result of a succeeded run; raise RunFailed or RunNotFinished otherwise."""
        run = self.get(run_id)
        if run.status is RunStatus.SUCCEEDED:
            return run.result
        if run.status is RunStatus.RUNNING:
            raise RunNotFinished(f"run {run_id!r} is still running; no result yet")
        raise RunFailed(f"run {run_id!r} {run.status}: {run.error}", run_id=run_id)

    def wait(self, run_id: str, *, timeout: float | None = None, poll: float = 0.2) -> Run:
        """Poll until the run finishes; raise TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get(run_id)
            if run.status.is_terminal:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id!r} still running after {timeout} s")
            time.sleep(poll)

    def progress(self, run_id: str) -> builtins.list[NodeProgress]:
        """Return each node's progress: a step's from its task, a map's from its done
        markers (one listing)."""
        run = self.get(run_id)
        done: set[str] = set()
        items: dict[str, int] = {}
        prefix = keys.done_prefix(run.id)
        for key in iter_keys(self.store, prefix):
            node, _, rest = key.removeprefix(prefix).partition("/")
            if rest == "all":
                done.add(node)
            elif rest[:1] == "g" and rest[1:2].isdigit():
                items[node] = items.get(node, 0) + 1
        return [
            self._node_progress(run, node, node in done, items.get(node, 0))
            for node in run.dag.nodes
        ]

    def _step_succeeded(self, task_id: str) -> bool:
        try:
            return self.queue.get(task_id).status is TaskStatus.SUCCEEDED
        except TaskNotFound:
            return False

    def _node_progress(self, run: Run, node: str, done: bool, finished: int) -> NodeProgress:
        if not run.dag.nodes[node].is_map:
            done = self._step_succeeded(keys.step_task_id(run.id, node))
            return NodeProgress(node, done, int(done), 1)
        stored = self.store.get(keys.map_width_key(run.id, node))
        total = None if stored is None else int(_json.loads(stored.data)["width"])
        return NodeProgress(node, done, finished, total)
