"""Helpers shared by the peer benchmark scripts; standard library only.

Each peer script runs in the peer's own virtual environment (bench/.peers/NAME),
starts its worker processes, runs W1, W2 and W4, stops the workers by pid and
prints one JSON object with the measurements on stdout.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STOP_TIMEOUT = 20.0


def peak_rss_mib(pid: int) -> float:
    """Return the peak resident set size (VmHWM) of a live process, in MiB; 0 if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=HERE, env=env, stdout=out, stderr=out)


def stop(processes: list[subprocess.Popen[bytes]]) -> float:
    """Stop the processes by pid (SIGTERM, then SIGKILL); return the largest peak RSS."""
    peak = max((peak_rss_mib(process.pid) for process in processes), default=0.0)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    return peak


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency(values: list[float]) -> dict[str, float]:
    """Return p50, p95 and mean in milliseconds of latencies given in seconds."""
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(percentile(values, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def throughput(units: int, started: float, finished: float) -> dict[str, Any]:
    wall = finished - started
    return {"units": units, "wall_s": round(wall, 2), "throughput_per_s": round(units / wall, 1)}


def guarded(name: str, results: dict[str, Any], action: Any) -> None:
    """Run one workload; record its error instead of stopping the other workloads."""
    try:
        results[name] = action()
    except Exception as error:
        results[name] = {"error": f"{type(error).__name__}: {error}"}


def emit(results: dict[str, Any]) -> None:
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


def wait_until(check: Any, timeout: float, every: float = 0.01) -> float:
    """Poll ``check()`` until true; return the monotonic time seen, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(every)
    raise TimeoutError(f"condition not met within {timeout} s")
