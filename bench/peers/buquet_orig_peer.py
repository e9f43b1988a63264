"""W1, W2 and W4 on buquet 0.1.0 from PyPI (the original, Rust-based package) on SeaweedFS.

Run by the harness as ``python buquet_orig_peer.py W1_TASKS W2_RUNS W4_ITEMS``
in bench/.peers/buquet-orig, with S3_ENDPOINT, S3_BUCKET, S3_REGION and the
AWS keys set. With ``--worker`` the script is one worker process. Its public
API is a task queue only, so W2 is a client-driven chain: the client submits
each of the 3 tasks once the previous one has completed. W4 submits the
no-op tasks, waits for all of them, then submits and waits for one join task.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import peer_common

from buquet import TaskStatus, Worker, connect

# With the default shard prefix length of 1, task ids spread over 16 shards.
SHARDS = [f"{n:x}" for n in range(16)]
TIMEOUT = 600.0
POLL = 0.005


async def run_worker() -> None:
    queue = await connect()
    worker = Worker(queue, f"bench-{uuid.uuid4().hex[:8]}", SHARDS)

    @worker.task("noop")
    async def noop(payload: Any) -> Any:
        return payload

    @worker.task("stamp")
    async def stamp(payload: Any) -> Any:
        return {**payload, "at": time.time()}

    await worker.run()


def workers(count: int, log: Path) -> list[Any]:
    command = [sys.executable, "buquet_orig_peer.py", "--worker"]
    processes = [peer_common.start(command, dict(os.environ), log) for _ in range(count)]
    time.sleep(2.0)  # NOTE: fixed wait for the workers to start; no readiness signal is read.
    return processes


async def wait_done(queue: Any, task_ids: list[str]) -> list[Any]:
    deadline = time.monotonic() + TIMEOUT
    done: list[Any] = []
    for task_id in task_ids:
        while True:
            task = await queue.get(task_id)
            if task is not None and task.status in (TaskStatus.Completed, TaskStatus.Failed):
                done.append(task)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} not done after {TIMEOUT} s")
            await asyncio.sleep(POLL)
    return done


async def w1(queue: Any, tasks: int, log: Path) -> dict[str, Any]:
    processes = workers(2, log)
    try:
        started = time.monotonic()
        submitted = [await queue.submit("noop", {"i": i}) for i in range(tasks)]
        await wait_done(queue, [task.id for task in submitted])
        measured = peer_common.throughput(tasks, started, time.monotonic())
    finally:
        rss = peer_common.stop(processes)
    return {**measured, "peak_rss_mib": rss}


async def chain_once(queue: Any, label: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"label": label}
    first_start = None
    for _ in range(3):
        task = await queue.submit("stamp", payload)
        payload = (await wait_done(queue, [task.id]))[0].output
        first_start = first_start or payload["at"]
    return {"first_step_start": first_start, "last_step_end": payload["at"]}


async def w2(queue: Any, runs: int, log: Path) -> dict[str, Any]:
    processes = workers(1, log)
    by_steps, by_result = [], []
    try:
        for number in range(runs):
            started_wall, started = time.time(), time.monotonic()
            value = await chain_once(queue, str(number))
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


async def w4(queue: Any, items: int, log: Path) -> dict[str, Any]:
    processes = workers(2, log)
    try:
        started = time.monotonic()
        submitted = [await queue.submit("noop", {"i": i}) for i in range(items)]
        await wait_done(queue, [task.id for task in submitted])
        join = await queue.submit("noop", {"joined": items})
        completed = (await wait_done(queue, [join.id]))[0].status == TaskStatus.Completed
        measured = peer_common.throughput(items, started, time.monotonic())
    finally:
        rss = peer_common.stop(processes)
    return {**measured, "completed": completed, "peak_rss_mib": rss}


async def guarded(name: str, results: dict[str, Any], action: Any) -> None:
    try:
        results[name] = await action
    except Exception as error:
        results[name] = {"error": f"{type(error).__name__}: {error}"}


async def run_client(tasks: int, runs: int, items: int) -> dict[str, Any]:
    log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / "buquet-orig-workers.log"
    queue = await connect()
    results: dict[str, Any] = {}
    await guarded("W1", results, w1(queue, tasks, log))
    await guarded("W2", results, w2(queue, runs, log))
    await guarded("W4", results, w4(queue, items, log))
    return results


def main() -> None:
    if sys.argv[1:] == ["--worker"]:
        asyncio.run(run_worker())
        return
    tasks, runs, items = (int(value) for value in sys.argv[1:4])
    peer_common.emit(asyncio.run(run_client(tasks, runs, items)))


if __name__ == "__main__":
    main()
