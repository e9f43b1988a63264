"""Stateful test: claims, renewals, outcomes and sweeps in any order keep fencing intact."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from queue_support import FakeClock

from buquet.errors import InvalidTransition, LeaseLost
from buquet.queue import ClaimedTask, Queue, TaskStatus
from buquet.store import MemoryStore

TASK_IDS = ("t0", "t1", "t2")


class LeaseRaces(RuleBasedStateMachine):
    """Workers that may stall past their lease race a sweeper over three tasks."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.queue = Queue(MemoryStore(clock=self.clock), default_lease="10s")
        self.claims: list[ClaimedTask] = []
        self.finished: dict[str, tuple[TaskStatus, object]] = {}
        for task_id in TASK_IDS:
            self.queue.submit("job", task_id=task_id, max_attempts=3)

    @rule()
    def claim(self) -> None:
        claimed = self.queue.claim(["job"], f"w{len(self.claims)}")
        if claimed is not None:
            self.claims.append(claimed)

    @rule(seconds=st.sampled_from([1, 4, 11]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        self.queue.sweep()

    @precondition(lambda self: self.claims)
    @rule(index=st.integers(0, 50), action=st.sampled_from(["renew", "complete", "fail"]))
    def act(self, index: int, action: str) -> None:
        claimed = self.claims[index % len(self.claims)]
        owner = self._is_owner(claimed)
        try:
            if action == "renew":
                self.queue.renew(claimed)
            elif action == "complete":
                self.queue.complete(claimed, claimed.token)
            else:
                self.queue.fail(claimed, claimed.token)
        except LeaseLost:
            assert not owner
            return
        except InvalidTransition:
            assert claimed.task.status is not TaskStatus.RUNNING
            return
        assert owner

    def _is_owner(self, claimed: ClaimedTask) -> bool:
        stored = self.queue.get(claimed.task_id)
        return stored.status is TaskStatus.RUNNING and stored.lease_token == claimed.token

    @invariant()
    def finished_tasks_never_change(self) -> None:
        for task in self.queue.list():
            if task.status.is_terminal:
                seen = self.finished.setdefault(task.id, (task.status, task.result))
                assert seen == (task.status, task.result)

    @invariant()
    def results_come_from_the_last_claim(self) -> None:
        for task in self.queue.list(status=TaskStatus.SUCCEEDED):
            assert task.result == task.lease_token

    @invariant()
    def attempts_within_limit(self) -> None:
        for task in self.queue.list():
            assert 0 <= task.attempts <= task.max_attempts


LeaseRaces.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLeaseRaces = LeaseRaces.TestCase
