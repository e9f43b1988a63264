"""The buquet workloads W1-W7, each run against one Target.

Each function returns a flat dict of measurements. Requests are those the
workers and the submitting client sent; the observer that polls for
completion uses its own uncounted store handle.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench import flows
from bench.counting import CountingStore, add_counts
from bench.harness import (
    REPO,
    Target,
    latency_summary,
    per_unit,
    total_requests,
    wait_for_files,
    workers,
)
from buquet import Client, Queue, open_store
from buquet.workflow import Run

logger = logging.getLogger(__name__)

WORKER_START_TIMEOUT = 60.0
SUBMIT_THREADS = 8
OBSERVE_EVERY = 0.01
TIGHT_POLL = 0.002
WARM_UP_OBJECTS = 2000


@dataclass(frozen=True)
class Sizes:
    """Workload sizes and durations; ``quick()`` shrinks them for a smoke run."""

    w1_tasks: int = 1000
    w2_runs: int = 50
    w4_items: int = 200
    w5_items: tuple[int, ...] = (1000, 10_000)
    w6_warmup: float = 60.0
    w6_idle: float = 120.0
    run_timeout: float = 900.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            w1_tasks=200, w2_runs=10, w4_items=200, w5_items=(1000,),
            w6_warmup=5.0, w6_idle=20.0, run_timeout=300.0,
        )  # fmt: skip


def wait_tasks_done(queue: Queue, task_ids: list[str], timeout: float) -> float:
    """Poll the tasks in submit order until all are terminal; return the time seen."""
    deadline = time.monotonic() + timeout
    cursor = 0
    while time.monotonic() < deadline:
        while cursor < len(task_ids) and queue.get(task_ids[cursor]).status.is_terminal:
            cursor += 1
        if cursor == len(task_ids):
            return time.monotonic()
        time.sleep(OBSERVE_EVERY)
    raise TimeoutError(f"{len(task_ids) - cursor} tasks still open after {timeout} s")


def wait_run(client: Client, run_id: str, timeout: float, poll: float) -> tuple[Run, float]:
    """Poll a run until it is terminal; return it and the monotonic time seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(run_id)
        if run.status.is_terminal:
            return run, time.monotonic()
        time.sleep(poll)
    raise TimeoutError(f"run {run_id} still running after {timeout} s")


def stores(target: Target, label: str) -> tuple[str, CountingStore, Any]:
    """Return a fresh store URL, a counting client handle and an uncounted observer handle."""
    target.apply_environment()
    url = target.new_store_url(label)
    return url, CountingStore(open_store(url, concurrency=SUBMIT_THREADS)), open_store(url)


def w1_queue(target: Target, sizes: Sizes) -> dict[str, Any]:
    """W1: no-op tasks through 2 worker processes; tasks/s from first submit to last done."""
    url, client_store, observer = stores(target, "w1")
    queue = Queue(client_store)
    with workers(target, url, 2) as group:
        wait_for_files(group.count_files, WORKER_START_TIMEOUT)
        started = time.monotonic()
        with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
            tasks = list(
                pool.map(lambda i: queue.submit("bench_noop", {"i": i}), range(sizes.w1_tasks))
            )
        submitted = time.monotonic()
        finished = wait_tasks_done(Queue(observer), [t.id for t in tasks], sizes.run_timeout)
    counts = group.counts
    add_counts(counts, client_store.snapshot())
    wall = finished - started
    return {
        "units": sizes.w1_tasks,
        "wall_s": round(wall, 2),
        "submit_s": round(submitted - started, 2),
        "throughput_per_s": round(sizes.w1_tasks / wall, 1),
        "requests_per_unit": per_unit(counts, sizes.w1_tasks),
        "counts": counts,
        "peak_rss_mib": round(group.peak_rss_kib / 1024, 1),
    }


def w2_chain(target: Target, sizes: Sizes) -> dict[str, Any]:
    """W2: runs of a 3-step chain one after another on 1 worker; end-to-end latency."""
    url, client_store, observer = stores(target, "w2")
    client, watcher = Client(client_store), Client(observer)
    by_poll, by_steps = [], []
    with workers(target, url, 1) as group:
        wait_for_files(group.count_files, WORKER_START_TIMEOUT)
        for number in range(sizes.w2_runs):
            started_wall, started = time.time(), time.monotonic()
            run = client.start(flows.bench_chain, {"label": str(number)})
            run, seen = wait_run(watcher, run.id, sizes.run_timeout, TIGHT_POLL)
            by_poll.append(seen - started)
            by_steps.append(run.result["last_step_end"] - started_wall)
    counts = group.counts
    add_counts(counts, client_store.snapshot())
    return {
        "units": sizes.w2_runs,
        "latency_seen_by_poll": latency_summary(by_poll),
        "latency_to_last_step_end": latency_summary(by_steps),
        "requests_per_unit": per_unit(counts, sizes.w2_runs),
        "counts": counts,
        "peak_rss_mib": round(group.peak_rss_kib / 1024, 1),
    }


def fan_out(target: Target, sizes: Sizes, items: int, label: str) -> dict[str, Any]:
    """W4 and W5: one map of ``items`` no-op items and a join, on 2 workers."""
    url, client_store, observer = stores(target, label)
    with workers(target, url, 2) as group:
        wait_for_files(group.count_files, WORKER_START_TIMEOUT)
        started = time.monotonic()
        run = Client(client_store).start(flows.bench_fanout, {"count": items})
        try:
            run, seen = wait_run(Client(observer), run.id, sizes.run_timeout, OBSERVE_EVERY)
            completed, wall = run.status.value == "succeeded", seen - started
        except TimeoutError:
            completed, wall = False, sizes.run_timeout
    counts = group.counts
    add_counts(counts, client_store.snapshot())
    return {
        "units": items,
        "completed": completed,
        "wall_s": round(wall, 2),
        "throughput_per_s": round(items / wall, 1),
        "requests_per_unit": per_unit(counts, items),
        "conflicts": counts.get("conflicts", {}),
        "counts": counts,
        "peak_rss_mib": round(group.peak_rss_kib / 1024, 1),
    }


def w6_idle(target: Target, sizes: Sizes) -> dict[str, Any]:
    """W6: requests per minute of an idle worker, then the delay until a new run starts."""
    url, client_store, observer = stores(target, "w6")
    with workers(target, url, 1) as group:
        wait_for_files(group.count_files, WORKER_START_TIMEOUT)
        time.sleep(sizes.w6_warmup)
        before = total_requests(group.read_counts())
        time.sleep(sizes.w6_idle)
        idle_requests = total_requests(group.read_counts()) - before
        started_wall = time.time()
        run = Client(client_store).start(flows.bench_chain, {"label": "after-idle"})
        run, _ = wait_run(Client(observer), run.id, sizes.run_timeout, OBSERVE_EVERY)
    return {
        "warmup_s": sizes.w6_warmup,
        "idle_s": sizes.w6_idle,
        "idle_requests": idle_requests,
        "requests_per_min": round(idle_requests / (sizes.w6_idle / 60), 1),
        "first_step_delay_ms": round((run.result["first_step_start"] - started_wall) * 1000, 1),
        "counts": group.counts,
        "peak_rss_mib": round(group.peak_rss_kib / 1024, 1),
    }


def timed(command: list[str], target: Target, timeout: float) -> float:
    started = time.monotonic()
    subprocess.run(
        command, cwd=REPO, env=target.environment(), check=True, timeout=timeout,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


def w7_source_report(target: Target, sizes: Sizes) -> dict[str, Any]:
    """W7: examples/source_report.py with 2 worker processes vs the direct computation."""
    example = "examples/source_report.py"
    direct = timed([sys.executable, example], target, sizes.run_timeout)
    url = target.new_store_url("w7")
    command = [
        sys.executable, "-m", "buquet", "workflow", "run", example, "--workers", "2",
        "--store", url, "--json",
    ]  # fmt: skip
    with_buquet = timed(command, target, sizes.run_timeout)
    return {
        "direct_s": round(direct, 2),
        "wall_s": round(with_buquet, 2),
        "ratio_to_direct": round(with_buquet / direct, 2),
    }


def warm_up(target: Target, objects: int = WARM_UP_OBJECTS) -> None:
    """Write, list and delete scratch objects, so that no workload pays the server's first writes.

    SeaweedFS creates its volumes on the first writes to a bucket, which
    made the first workload of a run slower than the same workload a
    minute later. Nothing of this is counted. The local store needs no warm-up.
    """
    if target.seaweed is None:
        return
    target.apply_environment()
    store = open_store(target.new_store_url("warm-up"), concurrency=SUBMIT_THREADS)
    try:
        names = [f"scratch/{index:05d}" for index in range(objects)]
        with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
            list(pool.map(lambda name: store.put(name, b"{}"), names))
            list(pool.map(store.get, names))
        store.list_page("scratch/")
        store.delete_many(names)
    finally:
        store.close()


def run_all(target: Target, sizes: Sizes, only: set[str]) -> dict[str, dict[str, Any]]:
    """Run the selected workloads on ``target``; a failed workload is recorded, not raised."""
    warm_up(target)
    plan: dict[str, Any] = {
        "W1": lambda: w1_queue(target, sizes),
        "W2": lambda: w2_chain(target, sizes),
        "W4": lambda: fan_out(target, sizes, sizes.w4_items, "w4"),
        "W6": lambda: w6_idle(target, sizes),
        "W7": lambda: w7_source_report(target, sizes),
    }
    for items in sizes.w5_items:
        plan[f"W5/{items}"] = lambda items=items: fan_out(target, sizes, items, "w5")
    results: dict[str, dict[str, Any]] = {}
    for name, action in plan.items():
        if name.split("/")[0] not in only:
            continue
        logger.info("buquet %s on %s", name, target.name)
        try:
            results[name] = action()
        except Exception as error:
            logger.exception("buquet %s on %s failed", name, target.name)
            results[name] = {"error": f"{type(error).__name__}: {error}"}
    return results
