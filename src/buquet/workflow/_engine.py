"""The engine: executes step tasks and advances a run when a step settles.

A step task's input names its run and node (plus index, width and item for one
item of a map). When the task reaches a terminal state the worker calls
:meth:`Engine.on_settled`; if the worker dies first, the queue's sweeper calls
it again, so every continuation below is idempotent:

1. a finished step is done when its task has succeeded; nothing more is
   written. A finished map item writes its item marker and lists its group of
   items, unless another item of the group is still running in this process
   (that one lists after it, or this process does; see ``_local_items``). When
   the group is complete, it lists the group markers, and the last group
   writes the map's done marker. No object is rewritten per item;
2. a dependent whose dependencies are all done is submitted under a
   deterministic task id, so two workers submitting it create one task. When
   the settling worker has a free slot, it creates the task already claimed
   and runs it at once (see :func:`~buquet.queue.current_handoff`);
3. when every sink node is done, the run's output is resolved and the run is
   moved to succeeded with a conditional write; a step out of attempts moves
   it to failed and submits the failure handler, if any.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from buquet import _json, keys
from buquet.errors import NonRetryableError, RunNotFound, TaskNotFound
from buquet.queue import Queue, Task, TaskContext, TaskStatus, current_handoff
from buquet.store import iter_keys
from buquet.workflow._context import StepContext, running_step
from buquet.workflow._dag import Encoded, Node
from buquet.workflow._definition import Workflow
from buquet.workflow._local_items import Item, LocalItems, Release
from buquet.workflow._run import Run, RunStatus, finish_run, read_run
from buquet.workflow._step import Step

logger = logging.getLogger(__name__)

V = TypeVar("V")

FAILURE_NODE = "__on_failure__"
RUN_VISIBLE_WAIT = 5.0
"""Seconds a step waits for its run object: a run's first tasks are created just before it."""
FIRST_RUN_RETRY = 0.002
MAX_RUN_RETRY = 0.1
PARALLEL_READS = 16
CACHED_RUNS = 256
"""Runs whose definition (DAG, input) a worker keeps; both never change."""
CACHED_RESULTS = 4096
"""Results of succeeded step tasks a worker keeps; a succeeded task never changes."""


_io_pool: ThreadPoolExecutor | None = None
_io_pool_lock = threading.Lock()


def shared_io_pool() -> ThreadPoolExecutor:
    """Return the process-wide pool for parallel reads and submissions.

    Sharing one pool keeps the engine's extra store connections at
    PARALLEL_READS however many tasks and engines a process runs.
    """
    global _io_pool  # noqa: PLW0603
    with _io_pool_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(PARALLEL_READS, thread_name_prefix="buquet-engine-io")
        return _io_pool


class StepTaskInput(BaseModel):
    """Input of a step task."""

    run: str
    node: str
    index: int | None = None
    width: int | None = None
    item: Any = None


class Engine:
    """Runs the steps of the given workflows and advances their runs."""

    def __init__(self, queue: Queue, workflows: Mapping[str, Workflow[..., Any]]) -> None:
        self.queue = queue
        self.store = queue.store
        self.workflows = dict(workflows)
        self._io_pool = shared_io_pool()
        self._runs: _Recent[Run] = _Recent(CACHED_RUNS)
        self._results: _Recent[Any] = _Recent(CACHED_RESULTS)
        self._prefetched: _Recent[Future[tuple[Run, str]]] = _Recent(CACHED_RUNS)
        self._run_reads: _Recent[Future[tuple[Run, str]]] = _Recent(CACHED_RUNS)
        self.deferred_hints: list[Task] | None = None
        """When a list, submitted tasks are created without their hints and
        collected here, for the caller to write them (see Client.start)."""
        self._items = LocalItems()

    # Execution -----------------------------------------------------------------

    def execute(self, ctx: TaskContext) -> Any:
        """Run one step task: resolve its arguments, call the step, return its result."""
        ref = StepTaskInput.model_validate(ctx.input)
        if ref.node == FAILURE_NODE:
            return self._execute_failure_handler(self._wait_for_run(ref.run, ctx.task_id), ctx)
        run = self._runs.get(ref.run) or self._wait_for_run(ref.run, ctx.task_id)
        if run.status is not RunStatus.RUNNING:
            if run.status is RunStatus.CANCELLED:
                # Queue.fail records a task whose cancellation was requested as
                # cancelled, so this step task ends cancelled instead of failed.
                self.queue.cancel(ctx.task_id)
            raise NonRetryableError(f"run {ref.run!r} is {run.status}; step {ref.node!r} skipped")
        node = run.dag.nodes[ref.node]
        step = self._step(run, node.step)
        arguments = {
            name: ref.item if name == node.map_parameter else self.resolve(run, encoded)
            for name, encoded in node.arguments.items()
        }
        try:
            converted = step.convert_arguments(arguments)
        except ValidationError as exc:
            raise NonRetryableError(f"step {node.name!r}: invalid input: {exc}") from exc
        self._track_item(ref, ctx)
        with running_step(StepContext(run.id, node.name, ref.index, ctx)):
            result = step.run_directly(**converted)
        if ref.index is None:
            # The settle hook needs a read of the run made after the step returned; it
            # starts now, beside the write of the result.
            self._prefetched.put(ctx.task_id, self._io_pool.submit(self._read_run, run.id))
        return result

    def _execute_failure_handler(self, run: Run, ctx: TaskContext) -> Any:
        if run.dag.on_failure is None:
            return None
        handler = self._step(run, run.dag.on_failure)
        failure = {
            "run_id": run.id,
            "workflow": run.workflow,
            "failed_step": run.failed_step,
            "error": run.error,
        }
        with running_step(StepContext(run.id, FAILURE_NODE, None, ctx)):
            return handler.run_directly(failure)

    def _step(self, run: Run, name: str) -> Step[..., Any]:
        workflow = self.workflows.get(run.workflow)
        step = None if workflow is None else workflow.steps.get(name)
        if step is None:
            raise NonRetryableError(
                f"run {run.id!r}: this worker has no step {name!r} of workflow {run.workflow!r}; "
                f"start the worker with the module that defines it"
            )
        return step

    def prefetch_run(self, task: Task) -> None:
        """Start reading the run of a step task about to be claimed, unless it is known.

        A failure handler needs the run as it is now, so its read always starts.
        """
        ref = task.input if isinstance(task.input, dict) else {}
        run_id = ref.get("run")
        if not isinstance(run_id, str):
            return
        if ref.get("node") != FAILURE_NODE and self._runs.get(run_id) is not None:
            return
        self._run_reads.put(task.id, self._io_pool.submit(self._read_run, run_id))

    def _wait_for_run(self, run_id: str, task_id: str) -> Run:
        """Read a run; a first step may be claimed while its client is still writing it.

        A read started when ``task_id`` was claimed is used when there is one.
        """
        started = self._run_reads.pop(task_id)
        if started is not None:
            try:
                return started.result()[0]
            except RunNotFound:
                pass
        deadline = time.monotonic() + RUN_VISIBLE_WAIT
        delay = FIRST_RUN_RETRY
        while True:
            try:
                return self._read_run(run_id)[0]
            except RunNotFound:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, MAX_RUN_RETRY)

    # Values --------------------------------------------------------------------

    def resolve(self, run: Run, encoded: Encoded) -> Any:
        """Turn an encoded argument or output into its value for this run."""
        if "$value" in encoded:
            return encoded["$value"]
        if "$input" in encoded:
            return run.input.get(encoded["$input"])
        if "$ref" in encoded:
            return self.node_result(run, encoded["$ref"])
        if "$list" in encoded:
            return [self.resolve(run, item) for item in encoded["$list"]]
        return {key: self.resolve(run, item) for key, item in encoded["$dict"].items()}

    def node_result(self, run: Run, name: str) -> Any:
        """Return a finished node's result; for a map, the item results in order."""
        node = run.dag.nodes[name]
        if not node.is_map:
            return self._task_result(keys.step_task_id(run.id, name))
        width = self._map_width(run.id, name)
        task_ids = [keys.step_task_id(run.id, name, index) for index in range(width)]
        return list(self._io_pool.map(self._task_result, task_ids))

    def _task_result(self, task_id: str) -> Any:
        found, result = self._results.lookup(task_id)
        if found:
            return result
        return self.queue.get(task_id).result

    def _map_width(self, run_id: str, node: str) -> int:
        stored = self.store.get(keys.node_done_key(run_id, node))
        if stored is None:
            stored = self.store.get(keys.map_width_key(run_id, node))
        if stored is None:
            raise NonRetryableError(f"run {run_id!r}: the width of map {node!r} is unknown")
        return int(_json.loads(stored.data)["width"])

    # Continuation --------------------------------------------------------------

    def on_settled(self, task: Task) -> None:
        """Advance the run of a step task that reached a terminal state."""
        ref = StepTaskInput.model_validate(task.input)
        if ref.node == FAILURE_NODE:
            self._log_failure_handler(task, ref)
        elif task.cancel_requested:
            logger.info("step task %s was asked to cancel; not advancing its run", task.id)
        elif task.status is TaskStatus.SUCCEEDED:
            self._results.put(task.id, task.result)
            self._step_succeeded(ref, self._prefetched.pop(task.id))
        elif task.status is TaskStatus.FAILED:
            self._step_failed(task, ref)

    def _step_succeeded(
        self, ref: StepTaskInput, run_read: Future[tuple[Run, str]] | None = None
    ) -> None:
        if ref.index is None or ref.width is None:
            self._node_done(ref.run, ref.node, None, run_read)
            return
        self.store.put(keys.item_done_key(ref.run, ref.node, ref.index), b"{}")
        waiting = self._items.settle((ref.run, ref.node, ref.index), ref.width)
        if waiting is None:
            # Another item of the group runs here; it lists after writing its marker.
            return
        self._list_group(ref.run, ref.node, keys.map_group(ref.index), ref.width, waiting)

    def _list_group(
        self, run_id: str, node: str, group: int, width: int, waiting: list[Release]
    ) -> None:
        """List a group; if the whole map is done, continue the run. Then release the waiters."""
        if self._group_complete(run_id, node, group, width):
            self._node_done(run_id, node, width)
        for release in waiting:
            release()

    def _track_item(self, ref: StepTaskInput, ctx: TaskContext) -> None:
        """Count a map item as running here from its start until its attempt is over."""
        if ref.index is None or ref.width is None:
            return
        item = (ref.run, ref.node, ref.index)
        width = ref.width
        self._items.start(item, ctx)
        ctx.when_over(lambda: self._item_over(item, width))

    def _item_over(self, item: Item, width: int) -> None:
        owed = self._items.end(item)
        if owed is None:
            return
        run_id, node, index = item
        try:
            self._list_group(run_id, node, keys.map_group(index), width, owed[1])
        except Exception:
            # The waiting items keep their hints, so a sweeper settles them again.
            logger.exception("could not list the group of map item %s", item)

    def _group_complete(self, run_id: str, node: str, group: int, width: int) -> bool:
        """Mark a group done if all its items are, then return whether every group is done.

        Each item writes its marker before it lists. Of two items that finish
        together, the listing made last therefore finds both markers.
        """
        size = min(keys.MAP_GROUP_SIZE, width - group * keys.MAP_GROUP_SIZE)
        finished = sum(1 for _ in iter_keys(self.store, keys.item_done_prefix(run_id, node, group)))
        if finished < size:
            return False
        self.store.put(keys.group_done_key(run_id, node, group), b"{}")
        groups = -(-width // keys.MAP_GROUP_SIZE)
        done_groups = sum(1 for _ in iter_keys(self.store, keys.group_done_prefix(run_id, node)))
        return done_groups >= groups

    def _node_done(
        self,
        run_id: str,
        node: str,
        width: int | None,
        run_read: Future[tuple[Run, str]] | None = None,
    ) -> None:
        if width is not None:
            self.store.put(keys.node_done_key(run_id, node), _json.dumps({"width": width}))
        try:
            # A fresh read: a run cancelled or failed meanwhile gets no new steps.
            run, etag = self._read_run(run_id) if run_read is None else run_read.result()
        except RunNotFound:
            # The run is being started: Engine.resume advances it once it is stored.
            return
        if run.status is not RunStatus.RUNNING:
            logger.info("run %s is %s; not advancing past step %s", run_id, run.status, node)
            return
        dependents = run.dag.dependents(node)
        for dependent in dependents:
            dependencies = run.dag.nodes[dependent].dependencies
            if all(dep == node or self._is_done(run, dep) for dep in dependencies):
                self.activate(run, run.dag.nodes[dependent])
        if not dependents:
            self._finish_if_complete(run, etag, node)

    def resume(self, run: Run) -> None:
        """Submit every node whose dependencies are done, and finish the run if complete.

        Does nothing when the stored run has already finished, so that a
        cancelled run gets no new steps.
        """
        stored, etag = self._read_run(run.id)
        if stored.status is not RunStatus.RUNNING:
            logger.info("run %s is %s; not resuming it", run.id, stored.status)
            return
        for node in run.dag.nodes.values():
            if self._is_done(run, node.name):
                continue
            if all(self._is_done(run, dep) for dep in node.dependencies):
                self.activate(run, node)
        self._finish_if_complete(stored, etag)

    def _is_done(self, run: Run, name: str) -> bool:
        """Check whether a node succeeded: its task for a step, its done marker for a map."""
        if run.dag.nodes[name].is_map:
            return self.store.get(keys.node_done_key(run.id, name)) is not None
        task_id = keys.step_task_id(run.id, name)
        if self._results.lookup(task_id)[0]:
            return True
        try:
            task = self.queue.get(task_id)
        except TaskNotFound:
            return False
        if task.status is not TaskStatus.SUCCEEDED:
            return False
        self._results.put(task_id, task.result)
        return True

    def _finish_if_complete(self, run: Run, etag: str, finished: str | None = None) -> None:
        if not all(sink == finished or self._is_done(run, sink) for sink in run.dag.sinks()):
            return
        output = self.resolve(run, run.dag.output)
        done = finish_run(
            self.store, run.id, RunStatus.SUCCEEDED, result=output, current=(run, etag)
        )
        if done is not None:
            logger.info("run %s of workflow %s succeeded", run.id, run.workflow)

    def _read_run(self, run_id: str) -> tuple[Run, str]:
        run, etag = read_run(self.store, run_id)
        self._runs.put(run_id, run)
        return run, etag

    def _step_failed(self, task: Task, ref: StepTaskInput) -> None:
        where = ref.node if ref.index is None else f"{ref.node}[{ref.index}]"
        error = f"step {where} failed after {task.attempts} attempt(s): {task.error}"
        if finish_run(self.store, ref.run, RunStatus.FAILED, error=error, failed_step=ref.node):
            logger.info("run %s failed: %s", ref.run, error)
        run = read_run(self.store, ref.run)[0]
        # A continuation redone by the sweeper must still submit the handler: the
        # submit is idempotent, and only the step the run failed on submits it.
        owns_failure = run.status is RunStatus.FAILED and run.error == error
        if owns_failure and run.dag.on_failure is not None:
            self.queue.submit(
                self.workflows_type(run.workflow),
                {"run": run.id, "node": FAILURE_NODE},
                task_id=keys.step_task_id(run.id, FAILURE_NODE),
                max_attempts=3,
            )

    def _log_failure_handler(self, task: Task, ref: StepTaskInput) -> None:
        if task.status is TaskStatus.FAILED:
            logger.error("failure handler of run %s failed: %s", ref.run, task.error)

    # Submission ----------------------------------------------------------------

    @staticmethod
    def workflows_type(workflow: str) -> str:
        """Queue task type of a workflow's steps."""
        return f"step:{workflow}"

    def activate(self, run: Run, node: Node) -> None:
        """Submit a node's task, or one task per item for a map; idempotent."""
        if not node.is_map:
            self._submit(run, node, {"run": run.id, "node": node.name}, None)
            return
        assert node.map_parameter is not None
        items = self.resolve(run, node.arguments[node.map_parameter])
        if not _json.is_json_sequence(items):
            self._fail_map(run, node, items)
            return
        self.store.put(keys.map_width_key(run.id, node.name), _json.dumps({"width": len(items)}))
        if not items:
            self._node_done(run.id, node.name, 0)
            return
        handoff = current_handoff()
        direct = 0 if handoff is None else min(handoff.room(), len(items))
        for index in range(direct):
            self._submit_item(run, node, len(items), index, items[index])
        submissions = self._io_pool.map(
            lambda index: self._submit_item(run, node, len(items), index, items[index]),
            range(direct, len(items)),
        )
        list(submissions)

    def _submit_item(self, run: Run, node: Node, width: int, index: int, item: Any) -> None:
        payload = {"run": run.id, "node": node.name, "index": index, "width": width, "item": item}
        self._submit(run, node, payload, index)

    def _submit(self, run: Run, node: Node, payload: dict[str, Any], index: int | None) -> None:
        task = self.queue.prepare(
            self.workflows_type(run.workflow),
            payload,
            task_id=keys.step_task_id(run.id, node.name, index),
            max_attempts=node.max_attempts,
            timeout=node.timeout,
            backoff=node.backoff,
        )
        handoff = current_handoff()
        if handoff is not None and handoff.take(task):
            return
        deferred = self.deferred_hints
        stored = self.queue.submit_prepared(task, hint=deferred is None)
        if deferred is not None:
            deferred.append(stored)

    def _fail_map(self, run: Run, node: Node, items: Any) -> None:
        error = (
            f"step {node.name!r}: .map() needs a list, "
            f"but got a value of type {type(items).__name__}"
        )
        finish_run(self.store, run.id, RunStatus.FAILED, error=error, failed_step=node.name)


class _Recent(Generic[V]):
    """A bounded, thread-safe map that drops its oldest entries first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get(self, key: str) -> V | None:
        return self.lookup(key)[1]

    def pop(self, key: str) -> V | None:
        """Remove ``key`` and return its value, or None."""
        with self._lock:
            return self._entries.pop(key, None)

    def lookup(self, key: str) -> tuple[bool, V | None]:
        """Return whether ``key`` is kept, and its value."""
        with self._lock:
            if key not in self._entries:
                return False, None
            return True, self._entries[key]
