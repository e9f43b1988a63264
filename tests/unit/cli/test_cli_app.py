"""The root command: version, help, ``python -m buquet`` and the -v flag."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from buquet import __version__

RunCli = Callable[..., Result]


def test_version_flag(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"buquet {__version__}"


def test_help_lists_groups(run_cli: RunCli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "task" in result.stdout
    assert "workflow" in result.stdout
    assert "worker" in result.stdout


def test_python_dash_m(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "buquet", "task", "list", "--store", f"file://{tmp_path}/s"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "no tasks" in completed.stdout


def test_verbose_shows_traceback(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("-v", "task", "show", "nope", "--store", store_url)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: task 'nope' not found"


def test_quiet_by_default(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "show", "nope", "--store", store_url)
    assert "Traceback" not in result.stderr
    assert result.stderr == "error: task 'nope' not found\n"


def test_worker_invalid_lease(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    source = "from buquet.queue import handler\n\n@handler('noop')\ndef noop(payload):\n    pass\n"
    (tmp_path / "lease_handlers.py").write_text(source, encoding="utf-8")
    result = run_cli("worker", "lease_handlers.py", "--lease", "forever", "--store", store_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid --lease 'forever'")
