"""Task handlers and workflows that the benchmark workers run.

Step bodies record ``time.time()``, so end-to-end latency can be taken from
the steps themselves. The workers and the harness share one machine and so
one clock.
"""

from __future__ import annotations

import time
from typing import Any

from buquet import handler, step, workflow


@handler("bench_noop")
def noop_task(payload: dict[str, Any]) -> None:
    """Do nothing: W1 measures the queue, not the work."""


@step(name="chain_a")
def chain_a(label: str) -> float:
    return time.time()


@step(name="chain_b")
def chain_b(started: float) -> float:
    return started


@step(name="chain_c")
def chain_c(started: float) -> dict[str, float]:
    return {"first_step_start": started, "last_step_end": time.time()}


@workflow(name="bench_chain")
def bench_chain(label: str) -> dict[str, float]:
    """W2 and W6: three steps one after another."""
    return chain_c(chain_b(chain_a(label)))


@step(name="noop_item")
def noop_item(item: int) -> int:
    return item


@step(name="join_items")
def join_items(results: list[int]) -> int:
    return len(results)


@step(name="make_items")
def make_items(count: int) -> list[int]:
    return list(range(count))


@workflow(name="bench_fanout")
def bench_fanout(count: int) -> int:
    """W4 and W5: ``count`` no-op map items, then one join step."""
    return join_items(noop_item.map(make_items(count)))
