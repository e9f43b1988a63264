"""A worker stopped right after any one of its writes: a fresh worker finishes the run.

Each case runs a workflow with an in-process worker on a CrashingStore,
which applies the chosen write and then stops that worker: the writing
thread gets SimulatedCrash and every later call of the worker fails. The
store clock then jumps past every lease, and a fresh worker on the same
store must finish the run: the right result, every step task once,
each visible result from the attempt that wrote it, and no hint left.

Every case runs on a MemoryStore. The chain, renewal and cancel cases also
run on the SeaweedFS server (marked ``s3``), where a ClockedStore puts the
S3Store on the same movable clock.

The crash points of the chain, fan-out and retry workflows are every
write their run makes. ``test_crash_table_complete`` records a run without
a crash and checks the tables against it. Lease renewal and cancellation
get chosen writes, because their count depends on timing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from crash_support import CrashingStore, CrashPoint, ShiftedClock, SimulatedCrash, crash_points

from buquet import keys
from buquet.errors import NonRetryableError
from buquet.queue import Backoff, Queue, Task, TaskStatus, Worker
from buquet.store import MemoryStore, ObjectStore, iter_keys
from buquet.workflow import Client, Run, RunStatus, Workflow, attach_workflows, step, step_context
from buquet.workflow import workflow as workflow_decorator
from clocked_store import ClockedStore

RUN_ID = "crash"
WAIT_SECONDS = 10.0
"""Bound on each wait: for the crash, for the run to finish, for the hints to go."""
LEASE_JUMP_SECONDS = 120.0
"""Store-clock jump after the crash: past every lease the crashed worker held."""
RENEWAL_LEASE = "1.5s"
"""Lease of the renewal and cancel cases: due for renewal every 0.5 s.

The lease keeper checks idle slots once a second, so the first renewal comes
0.5 s to 1 s after the claim."""
SLOW_STEP_SECONDS = 1.5
"""Long enough for the first renewal of a RENEWAL_LEASE."""


# Steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """One call of a step body: the task, its attempt and the tag put on its result."""

    task_id: str
    attempt: int
    tag: str


executions: list[Execution] = []
executions_lock = threading.Lock()


def tagged(value: Any, inputs: list[str]) -> dict[str, Any]:
    """Record this step attempt and return ``value`` with a tag unique to the attempt."""
    context = step_context()
    tag = uuid.uuid4().hex
    with executions_lock:
        executions.append(Execution(context.task.task_id, context.attempt, tag))
    return {"value": value, "tag": tag, "inputs": inputs}


@step(retries=3)
def first(start: int) -> dict[str, Any]:
    return tagged(start + 1, [])


@step(retries=3)
def double(previous: dict[str, Any]) -> dict[str, Any]:
    return tagged(previous["value"] * 2, [previous["tag"]])


@step(retries=3)
def add_three(previous: dict[str, Any]) -> dict[str, Any]:
    return tagged(previous["value"] + 3, [previous["tag"]])


@workflow_decorator
def chain(start: int) -> dict[str, Any]:
    return add_three(double(first(start)))


@step(retries=3)
def numbers(count: int) -> list[dict[str, Any]]:
    tag = tagged(None, [])["tag"]
    return [{"value": value, "tag": tag} for value in range(count)]


@step(retries=3)
def square(item: dict[str, Any]) -> dict[str, Any]:
    return tagged(item["value"] ** 2, [item["tag"]])


@step(retries=3)
def total(squares: list[dict[str, Any]]) -> dict[str, Any]:
    return tagged(sum(square["value"] for square in squares), [s["tag"] for s in squares])


@workflow_decorator
def fan_out(count: int) -> dict[str, Any]:
    return total(square.map(numbers(count)))


@step(retries=3, backoff=Backoff(base=0.01, jitter=False))
def flaky(start: int) -> dict[str, Any]:
    if step_context().attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return tagged(start * 10, [])


@workflow_decorator
def retried(start: int) -> dict[str, Any]:
    return add_three(flaky(start))


@step(retries=3)
def slow(start: int) -> dict[str, Any]:
    time.sleep(SLOW_STEP_SECONDS)
    return tagged(start + 5, [])


@workflow_decorator
def renewed(start: int) -> dict[str, Any]:
    return double(slow(start))


cancellable_started = threading.Event()


@step(retries=3)
def until_cancelled(start: int) -> dict[str, Any]:
    cancellable_started.set()
    deadline = time.monotonic() + WAIT_SECONDS
    while not step_context().cancel_requested:
        if time.monotonic() > deadline:
            raise NonRetryableError("the run was not cancelled in time")
        time.sleep(0.01)
    raise RuntimeError("stopped: the run was cancelled")


@workflow_decorator
def cancelled(start: int) -> dict[str, Any]:
    return double(until_cancelled(start))


ALL_WORKFLOWS = [chain, fan_out, retried, renewed, cancelled]


@dataclass(frozen=True)
class Case:
    """A workflow, its input, and the value and step tasks of a successful run."""

    flow: Workflow[..., Any]
    input: dict[str, Any]
    value: int
    task_ids: frozenset[str]


def task_ids(*names: str) -> frozenset[str]:
    """Return the step task ids of ``names``, where ``name[n]`` means n map items."""
    found = set()
    for name in names:
        node, _, width = name.partition("[")
        if not width:
            found.add(keys.step_task_id(RUN_ID, node))
            continue
        for index in range(int(width.rstrip("]"))):
            found.add(keys.step_task_id(RUN_ID, node, index))
    return frozenset(found)


CHAIN = Case(chain, {"start": 1}, 7, task_ids("first", "double", "add_three"))
FAN_OUT = Case(fan_out, {"count": 5}, 30, task_ids("numbers", "square[5]", "total"))
RETRIED = Case(retried, {"start": 4}, 43, task_ids("flaky", "add_three"))
RENEWED = Case(renewed, {"start": 1}, 12, task_ids("slow", "double"))


# Workers ----------------------------------------------------------------------


class WorkerThread:
    """A Worker running in a thread of the test, with fast polling and sweeps."""

    def __init__(self, store: ObjectStore, lease: str) -> None:
        self.worker = Worker(
            store,
            concurrency=1,
            lease=lease,
            poll_min="2ms",
            poll_max="20ms",
            sweep_interval="20ms",
            grace="10ms",
            # One delete per settled task keeps the order of writes fixed for the tables.
            batch_hint_deletes=False,
        )
        attach_workflows(self.worker, ALL_WORKFLOWS)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(stop_event=self.stop_event)
        except SimulatedCrash:
            return

    def start(self) -> None:
        """Start the worker's thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop the worker and wait for its thread, failing the test when it does not end."""
        self.stop_event.set()
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive(), "the worker did not stop"


@pytest.fixture(autouse=True)
def crash_hook() -> Iterator[None]:
    """Let SimulatedCrash end a worker thread quietly, and pass other thread errors on."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not None and issubclass(args.exc_type, SimulatedCrash):
            return
        previous(args)

    threading.excepthook = hook
    executions.clear()
    cancellable_started.clear()
    yield
    threading.excepthook = previous


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` for up to WAIT_SECONDS and return whether it came true."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def hints_left(store: ObjectStore) -> list[str]:
    """Every ready hint in ``store``."""
    return list(iter_keys(store, keys.READY))


def finished(client: Client, store: ObjectStore) -> bool:
    """Check whether the run is finished and no hint is left."""
    return client.get(RUN_ID).status.is_terminal and not hints_left(store)


@dataclass
class Outcome:
    """What a run left in the store, read after the fresh worker stopped."""

    run: Run
    tasks: dict[str, Task]
    hints: list[str]
    done_markers: list[str]
    labels: list[str]


def read_outcome(store: ObjectStore, labels: list[str]) -> Outcome:
    """Read the run, its step tasks, the hints left and its node done markers."""
    queue = Queue(store)
    task_ids_found = [
        keys.task_id_from_key(key) for key in iter_keys(store, keys.run_tasks_prefix(RUN_ID))
    ]
    tasks = {task_id: queue.get(task_id) for task_id in task_ids_found}
    markers = [key for key in iter_keys(store, keys.done_prefix(RUN_ID)) if key.endswith("/all")]
    return Outcome(Client(store).get(RUN_ID), tasks, hints_left(store), markers, labels)


@dataclass(frozen=True)
class SharedStore:
    """The store that the crashing worker and the fresh worker share, and its clock."""

    store: ObjectStore
    clock: ShiftedClock


@pytest.fixture
def shared(request: pytest.FixtureRequest) -> Iterator[SharedStore]:
    """An empty store of the backend named by the parameter, on a ShiftedClock.

    ``memory`` is a MemoryStore. ``s3`` is an S3Store on a fresh prefix of the
    SeaweedFS server, in a ClockedStore because S3Store takes its time from
    the server.
    """
    clock = ShiftedClock()
    if request.param == "memory":
        yield SharedStore(MemoryStore(clock=clock), clock)
        return
    server = request.getfixturevalue("seaweedfs")
    s3 = server.store(f"crash-{uuid.uuid4().hex[:12]}")
    try:
        yield SharedStore(ClockedStore(s3, clock), clock)
    finally:
        s3.close()


def on_backends(params: Sequence[Any], *, s3: bool) -> list[Any]:
    """Copy each pytest parameter for memory and, when ``s3`` is true, for SeaweedFS.

    The backend becomes the last value, for the ``shared`` fixture, and the
    ids end in ``-memory`` or ``-s3``.
    """
    cases = []
    for param in params:
        cases.append(pytest.param(*param.values, "memory", id=f"{param.id}-memory"))
        if s3:
            cases.append(
                pytest.param(*param.values, "s3", id=f"{param.id}-s3", marks=pytest.mark.s3)
            )
    return cases


def run_to_end(
    shared: SharedStore,
    case_flow: Workflow[..., Any],
    start_input: dict[str, Any],
    point: CrashPoint | None,
    *,
    lease: str = "30s",
    while_running: Callable[[Client], None] | None = None,
) -> Outcome:
    """Run a workflow on a worker that crashes at ``point``, then finish it with a fresh one."""
    store = shared.store
    client = Client(store)
    client.start(case_flow, start_input, run_id=RUN_ID)
    crashing = CrashingStore(store, point)
    first_worker = WorkerThread(crashing, lease)
    first_worker.start()
    try:
        if while_running is not None:
            while_running(client)
        if point is None:
            wait_until(lambda: finished(client, store))
        else:
            assert crashing.crashed.wait(WAIT_SECONDS), f"no write {point.name}: {crashing.labels}"
    finally:
        first_worker.stop()
    shared.clock.jump(LEASE_JUMP_SECONDS)
    fresh_worker = WorkerThread(store, "1h")
    fresh_worker.start()
    try:
        wait_until(lambda: finished(client, store))
    finally:
        fresh_worker.stop()
    return read_outcome(store, crashing.labels)


def tag_of(result: Any) -> str:
    """Return the attempt tag of a step result (of its first item, for a list)."""
    if isinstance(result, list):
        return str(result[0]["tag"])
    return str(result["tag"])


def assert_converged(case: Case, outcome: Outcome) -> None:
    """Check that the run succeeded once, with results only from attempts that wrote them."""
    assert outcome.run.status is RunStatus.SUCCEEDED, outcome.run.error
    assert outcome.run.result["value"] == case.value
    assert set(outcome.tasks) == case.task_ids
    assert outcome.hints == []
    by_tag = {execution.tag: execution for execution in executions}
    visible_tags = set()
    for task_id, task in outcome.tasks.items():
        assert task.status is TaskStatus.SUCCEEDED, task
        writer = by_tag.get(tag_of(task.result))
        assert writer is not None, f"task {task_id}: its result comes from no recorded attempt"
        assert writer.task_id == task_id
        assert writer.attempt == task.attempts, f"task {task_id}: result of an older attempt"
        visible_tags.add(writer.tag)
    for task in outcome.tasks.values():
        if isinstance(task.result, dict):
            assert set(task.result["inputs"]) <= visible_tags, f"{task.id} used a hidden result"
    assert outcome.run.result["tag"] in visible_tags
    maps = [name for name, node in case.flow.dag.nodes.items() if node.is_map]
    expected_markers = {f"{keys.done_prefix(RUN_ID, node)}all" for node in maps}
    assert sorted(outcome.done_markers) == sorted(expected_markers)


# Crash tables -----------------------------------------------------------------


def claim_writes(node: str) -> list[str]:
    """The write of a claim from the queue: the task to running; its hint stays."""
    return [f"replace task {node} pending->running"]


def submit_writes(node: str) -> list[str]:
    """The writes that submit a dependent, pending or already claimed: hint, then task."""
    return [f"put ready hint {node}", f"create task {node}"]


def step_writes(
    node: str, settle: list[str], *, claimed: bool, markers: tuple[str, ...] = ()
) -> list[str]:
    """The writes of one successful step: claim (unless handed over by the step
    before), result, done markers, settle, and the hint deleted last."""
    return [
        *(claim_writes(node) if claimed else []),
        f"replace task {node} running->succeeded",
        *(f"put done marker {node} {marker}" for marker in markers),
        *settle,
        f"delete ready hint {node}",
    ]


FINISH_RUN = ["replace run running->succeeded"]
CHAIN_WRITES = [
    *step_writes("first", submit_writes("double"), claimed=True),
    *step_writes("double", submit_writes("add_three"), claimed=False),
    *step_writes("add_three", FINISH_RUN, claimed=False),
]
FAN_OUT_WRITES = [
    *step_writes("numbers", ["put map width square", *submit_writes("square") * 5], claimed=True),
    *step_writes("square", [], claimed=False, markers=("item",)),
    *step_writes("square", [], claimed=True, markers=("item",)) * 3,
    *step_writes(
        "square",
        submit_writes("total"),
        claimed=True,
        markers=("item", "group", "node"),
    ),
    *step_writes("total", FINISH_RUN, claimed=False),
]
RETRIED_WRITES = [
    *claim_writes("flaky"),
    "put ready hint flaky",
    "replace task flaky running->pending",
    "delete ready hint flaky",
    *step_writes("flaky", submit_writes("add_three"), claimed=True),
    *step_writes("add_three", FINISH_RUN, claimed=False),
]
TABLES = [(CHAIN, CHAIN_WRITES), (FAN_OUT, FAN_OUT_WRITES), (RETRIED, RETRIED_WRITES)]


S3_TABLES = [CHAIN]
"""The workflows whose every crash point also runs on SeaweedFS.

Fan-out and retry run on memory only, to keep the suite short."""


def table_cases() -> list[Any]:
    """One pytest parameter per table and backend."""
    cases = []
    for case, writes in TABLES:
        param = pytest.param(case, writes, id=case.flow.name)
        cases.extend(on_backends([param], s3=case in S3_TABLES))
    return cases


def crash_cases() -> list[Any]:
    """One pytest parameter per write of each table and backend, with an id naming the write."""
    cases = []
    for case, writes in TABLES:
        params = [
            pytest.param(case, point, id=f"{case.flow.name}:{point.name}")
            for point in crash_points(writes)
        ]
        cases.extend(on_backends(params, s3=case in S3_TABLES))
    return cases


def point_cases(points: list[CrashPoint]) -> list[Any]:
    """One pytest parameter per chosen crash point, on memory and on SeaweedFS."""
    return on_backends([pytest.param(point, id=point.name) for point in points], s3=True)


# Tests ------------------------------------------------------------------------


def in_pairs(labels: list[str]) -> list[str]:
    """Order each run of hint and task writes of one node as hint, task, hint, task...

    A worker writes a submitted task's hint beside the task itself, and a
    map's items in parallel, so only the number of these writes is fixed.
    """
    ordered: list[str] = []
    index = 0
    while index < len(labels):
        node = _submitted_node(labels[index])
        end = index
        while end < len(labels) and node is not None and _submitted_node(labels[end]) == node:
            end += 1
        if end == index:
            ordered.append(labels[index])
            index += 1
            continue
        run = labels[index:end]
        puts = [label for label in run if label.startswith("put")]
        creates = [label for label in run if label.startswith("create")]
        for pair in zip(puts, creates, strict=False):
            ordered.extend(pair)
        ordered.extend(puts[len(creates) :] + creates[len(puts) :])
        index = end
    return ordered


def _submitted_node(label: str) -> str | None:
    for prefix in ("put ready hint ", "create task "):
        if label.startswith(prefix):
            return label.removeprefix(prefix)
    return None


@pytest.mark.parametrize(("case", "writes", "shared"), table_cases(), indirect=["shared"])
def test_crash_table_complete(shared: SharedStore, case: Case, writes: list[str]) -> None:
    outcome = run_to_end(shared, case.flow, case.input, None)

    assert in_pairs(outcome.labels) == in_pairs(writes)
    assert_converged(case, outcome)


@pytest.mark.parametrize(("case", "point", "shared"), crash_cases(), indirect=["shared"])
def test_crash_point_converges(shared: SharedStore, case: Case, point: CrashPoint) -> None:
    outcome = run_to_end(shared, case.flow, case.input, point)

    assert outcome.labels[-1] == point.label
    assert_converged(case, outcome)


RENEWAL_POINTS = [
    CrashPoint("replace task slow running->running", 1),
    CrashPoint("replace task slow running->running", 2),
]


@pytest.mark.parametrize(("point", "shared"), point_cases(RENEWAL_POINTS), indirect=["shared"])
def test_renewal_crash_converges(shared: SharedStore, point: CrashPoint) -> None:
    outcome = run_to_end(shared, RENEWED.flow, RENEWED.input, point, lease=RENEWAL_LEASE)

    assert outcome.labels[-1] == point.label
    assert outcome.labels.count("replace task slow running->running") >= 1, "no renewal"
    assert_converged(RENEWED, outcome)


def cancel_when_running(client: Client) -> None:
    """Cancel the run once the body of its first step runs.

    Cancelled earlier, the step would be skipped before its body starts,
    and no lease renewal would carry the cancellation to it.
    """
    assert cancellable_started.wait(WAIT_SECONDS), "the first step never started"
    client.cancel(RUN_ID)


CANCEL_POINTS = [
    CrashPoint("replace task until_cancelled running->running", 1),
    CrashPoint("replace task until_cancelled running->cancelled", 1),
    CrashPoint("delete ready hint until_cancelled", 1),
]


@pytest.mark.parametrize(("point", "shared"), point_cases(CANCEL_POINTS), indirect=["shared"])
def test_cancel_crash_converges(shared: SharedStore, point: CrashPoint) -> None:
    outcome = run_to_end(
        shared,
        cancelled,
        {"start": 1},
        point,
        lease=RENEWAL_LEASE,
        while_running=cancel_when_running,
    )
    step_task = outcome.tasks.get(keys.step_task_id(RUN_ID, "until_cancelled"))

    assert outcome.labels[-1] == point.label
    assert "replace task until_cancelled running->running" in outcome.labels
    assert outcome.run.status is RunStatus.CANCELLED
    assert set(outcome.tasks) == task_ids("until_cancelled")
    assert step_task is not None
    assert step_task.status is TaskStatus.CANCELLED
    assert outcome.hints == []
