"""W1, W2 and W4 on DBOS 3 with PostgreSQL as its system database.

The harness runs ``python dbos_peer.py W1_TASKS W2_RUNS W4_ITEMS`` in
bench/.peers/dbos with ``BENCH_PG_URL`` set. With ``--worker`` the script is one worker process: it
launches DBOS, which dequeues workflows from the queue, until SIGTERM.
Queue items are workflows, so W1 enqueues no-op workflows.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import peer_common
import psycopg
from dbos import DBOS, DBOSClient, DBOSConfig

PG_URL = os.environ.get("BENCH_PG_URL", "")
QUEUE = "bench"
# DBOS polls a queue every second by default; 50 ms matches buquet's minimum poll interval.
QUEUE_POLL_SECONDS = 0.05


@DBOS.workflow()
def noop(item: Any = None) -> Any:
    return item


@DBOS.step()
def chain_a(label: str) -> float:
    return time.time()


@DBOS.step()
def chain_b(started: float) -> float:
    return started


@DBOS.step()
def chain_c(started: float) -> dict[str, float]:
    return {"first_step_start": started, "last_step_end": time.time()}


@DBOS.workflow()
def bench_chain(label: str) -> dict[str, float]:
    return chain_c(chain_b(chain_a(label)))


@DBOS.workflow()
def bench_fanout(count: int) -> int:
    queue = DBOS.retrieve_queue(QUEUE)
    assert queue is not None
    handles = [queue.enqueue(noop, i) for i in range(count)]
    return len([handle.get_result() for handle in handles])


def run_worker() -> None:
    config: DBOSConfig = {"name": "bench", "system_database_url": PG_URL, "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(QUEUE, polling_interval_sec=QUEUE_POLL_SECONDS)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    stopped.wait(3600)
    DBOS.destroy()


def workers(count: int, log: Path) -> list[Any]:
    env = {**os.environ, "BENCH_PG_URL": PG_URL}
    processes = [
        peer_common.start([sys.executable, "dbos_peer.py", "--worker"], env, log)
        for _ in range(count)
    ]
    peer_common.wait_until(schema_ready, 60, 0.2)
    # NOTE: the queue is registered just after the schema exists; this wait is a guess.
    time.sleep(1.0)
    return processes


def schema_ready() -> bool:
    """Return whether a worker has created the DBOS system tables."""
    with psycopg.connect(PG_URL) as connection:
        row = connection.execute("select to_regclass('dbos.workflow_status')").fetchone()
    return row is not None and row[0] is not None


def enqueue(client: DBOSClient, name: str, *args: Any) -> Any:
    return client.enqueue({"queue_name": QUEUE, "workflow_name": name}, *args)


def w1(client: DBOSClient, tasks: int, log: Path) -> dict[str, Any]:
    processes = workers(2, log)
    try:
        started = time.monotonic()
        handles = [enqueue(client, "noop", {"i": i}) for i in range(tasks)]
        for handle in handles:
            handle.get_result()
        measured = peer_common.throughput(tasks, started, time.monotonic())
    finally:
        rss = peer_common.stop(processes)
    return {**measured, "peak_rss_mib": rss}


def w2(client: DBOSClient, runs: int, log: Path) -> dict[str, Any]:
    processes = workers(1, log)
    by_steps, by_result = [], []
    try:
        for number in range(runs):
            started_wall, started = time.time(), time.monotonic()
            value = enqueue(client, "bench_chain", str(number)).get_result()
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


def w4(client: DBOSClient, items: int, log: Path) -> dict[str, Any]:
    processes = workers(2, log)
    try:
        started = time.monotonic()
        completed = enqueue(client, "bench_fanout", items).get_result() == items
        measured = peer_common.throughput(items, started, time.monotonic())
    finally:
        rss = peer_common.stop(processes)
    return {**measured, "completed": completed, "peak_rss_mib": rss}


def main() -> None:
    if sys.argv[1:] == ["--worker"]:
        run_worker()
        return
    tasks, runs, items = (int(value) for value in sys.argv[1:4])
    log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / "dbos-workers.log"
    client = DBOSClient(system_database_url=PG_URL)
    results: dict[str, Any] = {}
    peer_common.guarded("W1", results, lambda: w1(client, tasks, log))
    peer_common.guarded("W2", results, lambda: w2(client, runs, log))
    peer_common.guarded("W4", results, lambda: w4(client, items, log))
    client.destroy()
    peer_common.emit(results)


if __name__ == "__main__":
    main()
