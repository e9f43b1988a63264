"""Stateful test: claims, renewals, outcomes and sweeps in any order keep fencing intact."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from queue_support import FakeClock

from buquet.errors import InvalidTransition, LeaseLost
from buquet.queue import ClaimedTask, Queue, TaskStatus
from buquet.store import MemoryStore, ObjectStore
from clocked_store import ClockedStore

TASK_IDS = ("t0", "t1", "t2")


class LeaseRaces(RuleBasedStateMachine):
    """Workers that may stall past their lease race a sweeper over three tasks."""

    make_store: Callable[[], ObjectStore] = MemoryStore

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        store = ClockedStore(self.make_store(), self.clock)
        self.queue = Queue(store, default_lease="10s")
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

    @rule(task_id=st.sampled_from(TASK_IDS))
    def cancel(self, task_id: str) -> None:
        try:
            self.queue.cancel(task_id)
        except InvalidTransition:
            assert self.queue.get(task_id).status.is_terminal

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
    def at_most_one_owner(self) -> None:
        for task_id in TASK_IDS:
            owners = [claim for claim in self.claims if claim.task_id == task_id]
            assert sum(1 for claim in owners if self._is_owner(claim)) <= 1

    @invariant()
    def attempts_within_limit(self) -> None:
        for task in self.queue.list():
            assert 0 <= task.attempts <= task.max_attempts


LeaseRaces.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLeaseRaces = LeaseRaces.TestCase


@pytest.mark.s3
def test_lease_races_on_seaweedfs(seaweedfs: object) -> None:
    class SeaweedLeaseRaces(LeaseRaces):
        def make_store(self) -> ObjectStore:  # type: ignore[override]
            return seaweedfs.store(f"lease-races-{uuid.uuid4().hex}")  # type: ignore[attr-defined,no-any-return]

    run_state_machine_as_test(
        SeaweedLeaseRaces,
        settings=settings(max_examples=12, stateful_step_count=20, deadline=None),
    )
