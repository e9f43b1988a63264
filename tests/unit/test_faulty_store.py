"""FaultyStore: which requests its rules pick, and what each fault does to the inner store."""

from __future__ import annotations

import pytest

from buquet.errors import AmbiguousWrite, ConfigError, PreconditionFailed, StoreError
from buquet.store import Fault, FaultRule, FaultyStore, MemoryStore, RetryPolicy

NO_WAIT = RetryPolicy(max_attempts=4, base_seconds=0.0, cap_seconds=0.0)


def faulty(*rules: FaultRule, retry: RetryPolicy | None = None) -> tuple[FaultyStore, MemoryStore]:
    inner = MemoryStore()
    return FaultyStore(inner, rules, retry=retry, sleep=lambda _seconds: None), inner


def test_no_rules_passes_through() -> None:
    store, inner = faulty()

    etag = store.create("a", b"1")

    assert inner.get("a") is not None
    assert store.replace("a", b"2", etag) == inner.get("a").etag  # type: ignore[union-attr]
    assert store.list_page("").keys == ["a"]


def test_slow_down_not_applied() -> None:
    store, inner = faulty(FaultRule(Fault.SLOW_DOWN, operations={"create"}))

    with pytest.raises(StoreError, match="SlowDown"):
        store.create("a", b"1")

    assert inner.get("a") is None
    assert store.injected[Fault.SLOW_DOWN, "create"] == 1


def test_slow_down_burst_retried() -> None:
    store, inner = faulty(FaultRule(Fault.SLOW_DOWN, count=3), retry=NO_WAIT)

    store.put("a", b"1")

    assert inner.get("a") is not None
    assert store.injected[Fault.SLOW_DOWN, "put"] == 3


def test_slow_down_exhausts_retries() -> None:
    store, inner = faulty(FaultRule(Fault.SLOW_DOWN, count=4), retry=NO_WAIT)

    with pytest.raises(StoreError, match="SlowDown") as raised:
        store.put("a", b"1")

    assert not isinstance(raised.value, AmbiguousWrite)
    assert inner.get("a") is None


def test_conflict_not_applied() -> None:
    store, inner = faulty(FaultRule(Fault.CONFLICT, count=1))
    etag = inner.create("a", b"1")

    with pytest.raises(PreconditionFailed, match="409"):
        store.replace("a", b"2", etag)

    assert inner.get("a").data == b"1"  # type: ignore[union-attr]
    assert store.replace("a", b"2", etag) != etag


def test_lost_answer_applied() -> None:
    store, inner = faulty(FaultRule(Fault.LOST_ANSWER, count=1))

    with pytest.raises(AmbiguousWrite):
        store.create("a", b"1")

    assert inner.get("a").data == b"1"  # type: ignore[union-attr]


def test_lost_answer_retried_conflicts() -> None:
    store, inner = faulty(FaultRule(Fault.LOST_ANSWER, count=1), retry=NO_WAIT)

    with pytest.raises(PreconditionFailed):
        store.create("a", b"1")

    assert inner.get("a").data == b"1"  # type: ignore[union-attr]


def test_lost_answer_retried_put() -> None:
    store, inner = faulty(FaultRule(Fault.LOST_ANSWER, count=1), retry=NO_WAIT)

    etag = store.put("a", b"1")

    assert etag == inner.get("a").etag  # type: ignore[union-attr]


def test_slow_sleeps_then_forwards() -> None:
    slept: list[float] = []
    inner = MemoryStore()
    store = FaultyStore(inner, [FaultRule(Fault.SLOW, delay=2.5)], sleep=slept.append)

    store.create("a", b"1")

    assert slept == [2.5]
    assert inner.get("a") is not None


def test_rule_selects_prefix_and_operation() -> None:
    store, inner = faulty(FaultRule(Fault.SLOW_DOWN, operations={"put"}, prefix="runs/"))

    store.put("tasks/a", b"1")
    store.create("runs/a", b"1")
    with pytest.raises(StoreError):
        store.put("runs/b", b"1")

    assert inner.get("tasks/a") is not None
    assert inner.get("runs/a") is not None
    assert inner.get("runs/b") is None


def test_rule_skip_and_count() -> None:
    store, _inner = faulty(FaultRule(Fault.SLOW_DOWN, skip=2, count=1))
    outcomes: list[str] = []
    for index in range(5):
        try:
            store.put(f"k{index}", b"1")
        except StoreError:
            outcomes.append("fail")
        else:
            outcomes.append("ok")

    assert outcomes == ["ok", "ok", "fail", "ok", "ok"]


def test_probability_repeats_with_seed() -> None:
    def failures(seed: int) -> list[int]:
        inner = MemoryStore()
        store = FaultyStore(inner, [FaultRule(Fault.SLOW_DOWN, probability=0.3)], seed=seed)
        failed: list[int] = []
        for index in range(200):
            try:
                store.put(f"k{index}", b"1")
            except StoreError:
                failed.append(index)
        return failed

    first = failures(7)

    assert first == failures(7)
    assert first != failures(8)
    assert 30 <= len(first) <= 90


@pytest.mark.parametrize(
    "rule",
    [
        {"fault": Fault.CONFLICT, "operations": {"put"}},
        {"fault": Fault.LOST_ANSWER, "operations": {"get"}},
        {"fault": Fault.SLOW_DOWN, "probability": 1.5},
        {"fault": Fault.SLOW, "delay": -1.0},
    ],
)
def test_invalid_rule_rejected(rule: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FaultRule(**rule)  # type: ignore[arg-type]


def test_delete_many_slow_down_retried() -> None:
    store, inner = faulty(
        FaultRule(Fault.SLOW_DOWN, operations={"delete_many"}, count=2), retry=NO_WAIT
    )
    inner.put("a", b"1")
    inner.put("b", b"2")

    store.delete_many(["a", "b"])

    assert inner.list_page("").keys == []
    assert store.injected[Fault.SLOW_DOWN, "delete_many"] == 2


def test_delete_many_lost_answer_applied() -> None:
    store, inner = faulty(FaultRule(Fault.LOST_ANSWER, operations={"delete_many"}))
    inner.put("a", b"1")

    with pytest.raises(AmbiguousWrite):
        store.delete_many(["a"])

    assert inner.get("a") is None
