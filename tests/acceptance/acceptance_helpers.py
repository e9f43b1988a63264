"""Helpers of the acceptance tests: the ``buquet`` command as a user runs it, and a source tree.

Every command runs as ``python -m buquet`` in the test's own directory,
with the environment of the moment (so the ``s3_store_url`` fixture's
variables reach it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "examples" / "source_report.py"

COMMAND_TIMEOUT_SECONDS = 60.0
"""Limit for one foreground command. The slowest, an unreachable S3 endpoint, takes about 7 s."""

WAIT_LIMIT_SECONDS = 90.0
"""Limit for a run to reach the awaited state."""
STOP_TIMEOUT_SECONDS = 40.0
"""Limit for a background process to exit after a signal, above a worker's 30 s grace period."""
POLL_SECONDS = 0.2

# Module names that the generated files import, so that top_imports has ties and a cut-off.
IMPORTED_MODULES = (
    "os", "sys", "json", "re", "collections", "itertools", "functools",
    "typing", "pathlib", "math", "dataclasses", "logging", "abc",
)  # fmt: skip
GENERATED_MODULES = 96


class Buquet:
    """Runs ``python -m buquet`` in ``cwd`` and keeps track of the processes it started."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[subprocess.Popen[bytes]] = []

    def environment(self) -> dict[str, str]:
        """Copy the current environment, without store settings that would override --store."""
        environment = os.environ.copy()
        environment.pop("BUQUET_STORE", None)
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        environment["PYTHONUNBUFFERED"] = "1"
        return environment

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one command to completion and capture its output as text."""
        return subprocess.run(
            [sys.executable, "-m", "buquet", *args],
            cwd=self.cwd,
            env=env or self.environment(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def json(self, *args: str) -> Any:
        """Run a command that must succeed and decode its standard output as JSON."""
        completed = self.run(*args)
        assert completed.returncode == 0, f"buquet {' '.join(args)}: {completed.stderr}"
        return json.loads(completed.stdout)

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start a command in the background, its stdout and stderr going to ``log``."""
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "buquet", *args],
                cwd=self.cwd,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` to one started process and return its exit status."""
        if process.poll() is None:
            os.kill(process.pid, signum)
        try:
            return process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_SECONDS)
            raise

    def stop_all(self) -> None:
        """Stop every started process that still runs: SIGTERM, then SIGKILL after the limit."""
        for process in self.started:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT_SECONDS)

    def status(self, run_id: str, store: str) -> dict[str, Any]:
        """Return ``workflow status RUN --json``."""
        summary: dict[str, Any] = self.json(
            "workflow", "status", run_id, "--store", store, "--json"
        )
        return summary

    def wait_for_status(
        self,
        run_id: str,
        store: str,
        until: Callable[[dict[str, Any]], bool],
        workers: list[subprocess.Popen[bytes]],
    ) -> dict[str, Any]:
        """Poll the run's status until ``until`` returns True.

        Fails when a worker exits first or the wait limit passes.
        """
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while True:
            summary = self.status(run_id, store)
            if until(summary):
                return summary
            exited = [process.pid for process in workers if process.poll() is not None]
            assert not exited, f"workers {exited} exited early; status: {summary}"
            assert time.monotonic() < deadline, f"run {run_id} still at {summary}"
            time.sleep(POLL_SECONDS)


def _module_source(index: int) -> str:
    """Return a module with imports, classes, nested and async functions, varying by ``index``."""
    count = len(IMPORTED_MODULES)
    first = IMPORTED_MODULES[index % count]
    second = IMPORTED_MODULES[(index * 5 + 3) % count]
    third = IMPORTED_MODULES[(index * 7 + 1) % count]
    lines = [
        f'"""Generated module number {index}."""',
        f"import {first}",
        f"import {second}.sub, {third}" if index % 3 == 0 else f"from {second}.sub import name",
        "from . import sibling",
    ]

    if index % 4 == 0:
        lines.append("from ..parent.module import thing")
    lines += [
        "",
        f"class Model{index}:",
        "    def method(self):",
        "        def nested():",
        "            return 1",
        "        return nested()",
        "",
        "    async def fetch(self):",
        f"        import {third}",
        f"        return {index}",
    ]

    if index % 5 == 0:
        lines += ["", "    class Inner:", "        pass"]

    lines += ["", ""]
    for number in range(index % 4):
        lines += [f"def helper_{number}(value):", "    return lambda other: value + other", ""]
    return "\n".join(lines) + "\n"


def write_source_tree(root: Path) -> None:
    """Write a tree of about a hundred Python files, of which two do not parse.

    It contains packages nested two deep, an empty ``__init__.py``, a latin-1
    file (not UTF-8), a syntax error, UTF-8 text with CRLF line ends, a
    ``site-packages`` directory and a file that is not Python.
    """
    for index in range(GENERATED_MODULES):
        package = root / f"package_{index % 6}" / f"part_{index % 2}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"module_{index:03d}.py").write_text(_module_source(index), encoding="utf-8")
    (root / "package_0" / "__init__.py").write_text("", encoding="utf-8")
    (root / "latin1.py").write_bytes(
        "# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n".encode("latin-1")
    )
    (root / "broken.py").write_text("def broken(:\n    pass\n", encoding="utf-8")
    crlf = "import os\r\n\r\nasync def main():\r\n    return 'naïve'\r\n"
    (root / "crlf_utf8.py").write_bytes(crlf.encode("utf-8"))
    (root / "site-packages" / "vendored").mkdir(parents=True)
    (root / "site-packages" / "vendored" / "skipped.py").write_text("import skipped\n")
    (root / "README.txt").write_text("import not_python\n", encoding="utf-8")
