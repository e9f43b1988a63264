"""Shared pieces of the buquet workloads: targets, worker processes, observers."""

from __future__ import annotations

import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.counting import add_counts
from bench.servers import S3_BUCKET, Seaweed, stop_process

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
WORKER_STOP_TIMEOUT = 45.0


@dataclass
class Target:
    """The store location of the buquet workloads: a directory or a SeaweedFS bucket."""

    name: str
    workdir: Path
    seaweed: Seaweed | None = None

    def environment(self) -> dict[str, str]:
        extra = self.seaweed.environment() if self.seaweed else {}
        return {**os.environ, **extra, "PYTHONPATH": str(REPO)}

    def new_store_url(self, label: str) -> str:
        """Return the URL of a fresh, empty store for one workload run."""
        unique = f"{label}-{uuid.uuid4().hex[:8]}"
        if self.seaweed is None:
            return f"file://{self.workdir / unique}"
        return f"s3://{S3_BUCKET}/{unique}"

    def apply_environment(self) -> None:
        """Point this process's S3 client settings at the target, for the client side."""
        if self.seaweed is not None:
            os.environ.update(self.seaweed.environment())


@dataclass
class WorkerGroup:
    """Worker processes of one workload run, and their counts once stopped."""

    processes: list[subprocess.Popen[bytes]]
    count_files: list[Path]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    peak_rss_kib: int = 0

    def read_counts(self) -> dict[str, dict[str, int]]:
        """Return the summed counts the workers have written so far."""
        total: dict[str, dict[str, int]] = {"requests": {}, "conflicts": {}}
        for path in self.count_files:
            if path.exists():
                add_counts(total, json.loads(path.read_text(encoding="utf-8")))
        return total

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(WORKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("worker %d did not stop; killing it", process.pid)
                stop_process(process)
        self.counts = self.read_counts()
        for path in self.count_files:
            if path.exists():
                rss = json.loads(path.read_text(encoding="utf-8")).get("peak_rss_kib", 0)
                self.peak_rss_kib = max(self.peak_rss_kib, int(rss))


@contextmanager
def workers(target: Target, store_url: str, count: int) -> Iterator[WorkerGroup]:
    """Start ``count`` counting workers on ``store_url``; stop them by pid on exit."""
    processes, files = [], []
    log_dir = target.workdir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(count):
        name = uuid.uuid4().hex[:8]
        counts = target.workdir / f"counts-{name}.json"
        command = [
            sys.executable, "-m", "bench.worker", "--store", store_url, "--counts", str(counts),
        ]  # fmt: skip
        with (log_dir / f"worker-{name}.log").open("wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO, env=target.environment(), stdout=log, stderr=log
            )
        processes.append(process)
        files.append(counts)
    group = WorkerGroup(processes, files)
    try:
        yield group
    finally:
        group.stop()


def wait_for_files(paths: list[Path], timeout: float) -> None:
    """Wait until every worker has written its first counts, i.e. it is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(path.exists() for path in paths):
            return
        time.sleep(0.05)
    raise TimeoutError(f"workers did not start within {timeout} s")


def percentile(values: list[float], fraction: float) -> float:
    """Return the value at ``fraction`` (0..1) of the sorted values, nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary(values: list[float]) -> dict[str, float]:
    """Return p50, p95 and mean in milliseconds of latencies given in seconds."""
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(percentile(values, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def total_requests(counts: dict[str, dict[str, int]]) -> int:
    return sum(counts.get("requests", {}).values())


def per_unit(counts: dict[str, dict[str, int]], units: int) -> dict[str, Any]:
    """Return the requests by operation and in total, divided by ``units``."""
    by_operation = {
        name: round(value / units, 2) for name, value in sorted(counts["requests"].items())
    }
    return {"total": round(total_requests(counts) / units, 2), "by_operation": by_operation}
