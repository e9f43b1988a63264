"""Worker processes of the soak and the chaos loop that kills, restarts and pauses them.

Every signal goes through the ``subprocess.Popen`` object of a worker this
module started. Popen sends nothing once it has reaped the process, so a
recycled process id is never signalled.
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

WORKER_STOP_SECONDS = 45.0
"""Limit for a worker to exit after SIGTERM: above the worker's 30 s grace period."""
KILL_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class ChaosEvent:
    """One action of the chaos loop on a worker process."""

    action: str
    """``kill``, ``pause``, ``resume`` or ``exited`` (a worker that exited by itself)."""
    slot: int
    pid: int
    time: float
    returncode: int | None = None


@dataclass
class WorkerPool:
    """``count`` worker processes, each restarted in its slot after it dies."""

    command: list[str]
    environment: dict[str, str]
    log_dir: Path
    count: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    events: list[ChaosEvent] = field(default_factory=list)

    def start(self) -> None:
        """Start every slot's worker."""
        self.processes = [self._spawn(slot) for slot in range(self.count)]

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"worker-{slot}.log"
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                self.command,
                env=self.environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        logger.info("worker slot %d started as pid %d", slot, process.pid)
        return process

    def kill(self, slot: int) -> None:
        """SIGKILL the slot's worker, reap it, and start a new one in its place."""
        process = self.processes[slot]
        self.events.append(ChaosEvent("kill", slot, process.pid, time.time()))
        process.send_signal(signal.SIGKILL)
        process.wait(KILL_WAIT_SECONDS)
        self.processes[slot] = self._spawn(slot)

    def pause(self, slot: int) -> subprocess.Popen[bytes]:
        """SIGSTOP the slot's worker; return its process so the caller can resume that one."""
        process = self.processes[slot]
        self.events.append(ChaosEvent("pause", slot, process.pid, time.time()))
        process.send_signal(signal.SIGSTOP)
        return process

    def resume(self, slot: int, process: subprocess.Popen[bytes]) -> None:
        """SIGCONT a paused worker, unless it was killed meanwhile."""
        if process.poll() is None:
            self.events.append(ChaosEvent("resume", slot, process.pid, time.time()))
            process.send_signal(signal.SIGCONT)

    def restart_exited(self) -> None:
        """Record and restart workers that exited without being killed."""
        for slot, process in enumerate(self.processes):
            if process.poll() is not None:
                logger.warning(
                    "worker pid %d exited by itself with status %s; restarting it",
                    process.pid,
                    process.returncode,
                )
                event = ChaosEvent("exited", slot, process.pid, time.time(), process.returncode)
                self.events.append(event)
                self.processes[slot] = self._spawn(slot)

    def stop(self) -> list[int | None]:
        """Stop every worker with SIGTERM (SIGKILL after a limit); return their exit statuses."""
        for process in self.processes:
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
        return [_wait_or_kill(process) for process in self.processes]


def _wait_or_kill(process: subprocess.Popen[bytes]) -> int | None:
    try:
        return process.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("worker pid %d did not stop after SIGTERM; killing it", process.pid)
        process.kill()
        process.wait(KILL_WAIT_SECONDS)
        return None


def worker_command(flows: Path, store_url: str, lease: str, concurrency: int) -> list[str]:
    """Return the ``buquet worker`` command line of one soak worker."""
    return [
        sys.executable, "-m", "buquet", "worker", str(flows),
        "--store", store_url, "--lease", lease, "--concurrency", str(concurrency),
    ]  # fmt: skip


@dataclass
class ChaosSchedule:
    """How often the chaos loop acts; 0 turns an action off."""

    kill_every: float
    pause_every: float
    pause_seconds: float


def run_chaos(
    pool: WorkerPool, schedule: ChaosSchedule, until: float, stop: threading.Event
) -> None:
    """Kill and pause random workers until the monotonic time ``until`` or until ``stop`` is set.

    Each interval is drawn from half to one and a half times its setting. A
    paused worker is resumed after ``pause_seconds``, and at the latest when
    the loop ends.
    """
    rng = random.Random()
    next_kill = _next_time(rng, schedule.kill_every)
    next_pause = _next_time(rng, schedule.pause_every)
    paused: list[tuple[float, int, subprocess.Popen[bytes]]] = []
    while not stop.is_set() and time.monotonic() < until:
        now = time.monotonic()
        pool.restart_exited()
        if now >= next_kill:
            pool.kill(rng.randrange(pool.count))
            next_kill = _next_time(rng, schedule.kill_every)
        if now >= next_pause:
            slot = rng.randrange(pool.count)
            paused.append((now + schedule.pause_seconds, slot, pool.pause(slot)))
            next_pause = _next_time(rng, schedule.pause_every)
        paused = _resume_due(pool, paused, now)
        stop.wait(0.2)
    _resume_due(pool, paused, float("inf"))


def _next_time(rng: random.Random, every: float) -> float:
    if every <= 0:
        return float("inf")
    return time.monotonic() + every * rng.uniform(0.5, 1.5)


def _resume_due(
    pool: WorkerPool, paused: list[tuple[float, int, subprocess.Popen[bytes]]], now: float
) -> list[tuple[float, int, subprocess.Popen[bytes]]]:
    for due, slot, process in paused:
        if due <= now:
            pool.resume(slot, process)
    return [entry for entry in paused if entry[0] > now]
