"""Retry delays: capped, never overflowing, jitter within bounds."""

from __future__ import annotations

import random

import pytest

from buquet.queue import Backoff

FIXED = Backoff(base=1.0, factor=2.0, cap=300.0, jitter=False)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (64, 300.0), (1100, 300.0)],
)
def test_backoff_delay_table(attempt: int, expected: float) -> None:
    assert FIXED.delay(attempt) == expected


@pytest.mark.parametrize("attempt", [10**6, 2**63, 2**200])
def test_backoff_huge_attempt_is_capped(attempt: int) -> None:
    assert FIXED.delay(attempt) == 300.0


@pytest.mark.parametrize("attempt", [-5, 0, 1, 2, 50, 10**9])
def test_backoff_never_zero_without_jitter(attempt: int) -> None:
    assert FIXED.delay(attempt) > 0


def test_backoff_jitter_within_bounds() -> None:
    jittered = Backoff(base=1.0, factor=2.0, cap=300.0, jitter=True)
    rng = random.Random(1234)
    samples = [jittered.delay(attempt, rng=rng) for attempt in range(1, 200) for _ in range(20)]
    assert min(samples) >= 0.0
    assert max(samples) <= 300.0
    assert len(set(samples)) > 100
