"""W1, W2 and W4 on Celery 5 with a Redis broker and result backend.

The harness runs ``python celery_peer.py W1_TASKS W2_RUNS W4_ITEMS`` in
bench/.peers/celery with ``BENCH_REDIS_URL`` set. The module is also the Celery app that the worker
processes load (``celery -A celery_peer worker``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import peer_common
from celery import Celery, chain, chord, group

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("celery_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(task_ignore_result=False, worker_hijack_root_logger=False)
TIMEOUT = 600.0
# Like a buquet worker: 4 handler threads per process.
WORKER_THREADS = "4"


@app.task(name="noop")
def noop(item: Any = None) -> Any:
    return item


@app.task(name="chain_a")
def chain_a(label: str) -> float:
    return time.time()


@app.task(name="chain_b")
def chain_b(started: float) -> float:
    return started


@app.task(name="chain_c")
def chain_c(started: float) -> dict[str, float]:
    return {"first_step_start": started, "last_step_end": time.time()}


@app.task(name="join")
def join(results: list[Any]) -> int:
    return len(results)


def workers(count: int, log: Path) -> list[Any]:
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL}
    command = [
        sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "--pool", "threads",
        "--concurrency", WORKER_THREADS, "--loglevel", "WARNING", "--without-gossip",
        "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    processes = [
        peer_common.start([*command, "-n", f"bench{n}@%h"], env, log) for n in range(count)
    ]
    # A worker is ready once it answers a ping.
    peer_common.wait_until(lambda: len(app.control.ping(timeout=0.5) or []) >= count, 60, 0.2)
    return processes


def w1(tasks: int, log: Path) -> dict[str, Any]:
    processes = workers(2, log)
    try:
        started = time.monotonic()
        results = [noop.delay({"i": i}) for i in range(tasks)]
        for result in results:
            result.get(timeout=TIMEOUT)
        measured = peer_common.throughput(tasks, started, time.monotonic())
    finally:
        measured_rss = peer_common.stop(processes)
    return {**measured, "peak_rss_mib": measured_rss}


def w2(runs: int, log: Path) -> dict[str, Any]:
    processes = workers(1, log)
    by_steps, by_result = [], []
    try:
        for number in range(runs):
            started_wall, started = time.time(), time.monotonic()
            result = chain(chain_a.s(str(number)), chain_b.s(), chain_c.s()).apply_async()
            value = result.get(timeout=TIMEOUT, interval=0.002)
            by_result.append(time.monotonic() - started)
            by_steps.append(value["last_step_end"] - started_wall)
    finally:
        rss = peer_common.stop(processes)
    return {
        "units": runs,
        "latency_to_last_step_end": peer_common.latency(by_steps),
        "latency_seen_by_poll": peer_common.latency(by_result),
        "peak_rss_mib": rss,
    }


def w4(items: int, log: Path) -> dict[str, Any]:
    processes = workers(2, log)
    try:
        started = time.monotonic()
        result = chord(group(noop.s(i) for i in range(items)), join.s())()
        completed = result.get(timeout=TIMEOUT) == items
        measured = peer_common.throughput(items, started, time.monotonic())
    finally:
        rss = peer_common.stop(processes)
    return {**measured, "completed": completed, "peak_rss_mib": rss}


def main() -> None:
    tasks, runs, items = (int(value) for value in sys.argv[1:4])
    log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / "celery-workers.log"
    results: dict[str, Any] = {}
    peer_common.guarded("W1", results, lambda: w1(tasks, log))
    peer_common.guarded("W2", results, lambda: w2(runs, log))
    peer_common.guarded("W4", results, lambda: w4(items, log))
    peer_common.emit(results)


if __name__ == "__main__":
    main()
