"""Worker processes started by ``buquet workflow run`` on this machine."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from buquet.queue import Worker
from buquet.store import ObjectStore
from buquet.workflow import Workflow, attach_workflows

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0


class WorkerProcesses:
    """``buquet worker`` child processes for one module, stopped with SIGTERM on exit.

    Their logs go to one file per process in a temporary directory, so that
    they do not interleave with the progress display.
    """

    def __init__(self, module_target: str, store_url: str, count: int, concurrency: int) -> None:
        self.module_target = module_target
        self.store_url = store_url
        self.count = count
        self.concurrency = concurrency
        self.log_dir = Path(tempfile.mkdtemp(prefix="buquet-workers-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> WorkerProcesses:
        for number in range(self.count):
            self.processes.append(self._spawn(number))
        logger.info("started %d worker processes; logs in %s", self.count, self.log_dir)
        return self

    def _spawn(self, number: int) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "buquet",
            "worker",
            self.module_target,
            "--store",
            self.store_url,
            "--concurrency",
            str(self.concurrency),
        ]
        log_path = self.log_dir / f"worker-{number}.log"
        with log_path.open("wb") as log:
            return subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def all_exited(self) -> bool:
        """Return whether every process has exited."""
        return all(process.poll() is not None for process in self.processes)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("worker process %d did not stop; killing it", process.pid)
                process.kill()
                process.wait()
        if exc is None:
            # The logs are kept, and named in the error, only when the run could not be followed.
            shutil.rmtree(self.log_dir, ignore_errors=True)


class WorkerThread:
    """An in-process worker, for ``memory://`` stores and ``--workers 0``."""

    def __init__(self, store: ObjectStore, workflow: Workflow[..., object], concurrency: int):
        self.worker = Worker(store, concurrency=concurrency, poll_min="5ms", poll_max="200ms")
        attach_workflows(self.worker, [workflow])
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.worker.run, kwargs={"stop_event": self._stop}, daemon=True
        )

    def __enter__(self) -> WorkerThread:
        self._thread.start()
        return self

    def all_exited(self) -> bool:
        """Return whether the worker thread has stopped."""
        return not self._thread.is_alive()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT)
