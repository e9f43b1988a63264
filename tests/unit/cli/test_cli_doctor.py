"""``buquet doctor`` and the worker's start-up store check, in process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from buquet.cli import _common
from buquet.store import MemoryStore, ObjectStore

RunCli = Callable[..., Result]

CHECK_NAMES = [
    "create-if-absent",
    "stale if-match",
    "etag format",
    "clock",
    "listing",
    "concurrent writers",
]

HANDLERS = """\
from buquet.queue import handler


@handler("doctor_noop")
def noop(payload):
    return payload
"""


@pytest.fixture(scope="module")
def handlers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One handler module for every test here: a handler registers its task type only once."""
    path = tmp_path_factory.mktemp("doctor_handlers") / "doctor_cli_handlers.py"
    path.write_text(HANDLERS, encoding="utf-8")
    return path


@pytest.fixture
def open_unconditional(monkeypatch: pytest.MonkeyPatch, unconditional_store: MemoryStore) -> None:
    """Make every command open the store that ignores conditions, whatever the URL."""

    def open_store(url: str | None = None, *, concurrency: int | None = None) -> ObjectStore:
        return unconditional_store

    monkeypatch.setattr(_common, "open_store", open_store)


def test_doctor_local_store_passes(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("doctor", "--store", store_url)

    assert result.exit_code == 0, result.output
    for name in CHECK_NAMES:
        assert name in result.stdout
    assert "FAIL" not in result.stdout
    assert result.stdout.strip().endswith("all 6 checks passed")


def test_doctor_json_lists_checks(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("doctor", "--store", store_url, "--json")

    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)
    assert [check["name"] for check in checks] == CHECK_NAMES
    assert all(check["passed"] for check in checks)
    assert all(check["detail"] for check in checks)


def test_doctor_leaves_store_empty(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    result = run_cli("doctor", "--store", store_url)

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "store" / "doctor").exists()


@pytest.mark.usefixtures("open_unconditional")
def test_doctor_unconditional_store_fails(run_cli: RunCli) -> None:
    result = run_cli("doctor", "--store", "memory://doctor-unconditional")

    assert result.exit_code == 1
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("failed checks:")
    assert "create-if-absent" in last_line
    assert "stale if-match" in last_line
    assert "concurrent writers" in last_line
    assert "etag format" not in last_line


@pytest.mark.usefixtures("open_unconditional")
def test_doctor_json_exit_status(run_cli: RunCli) -> None:
    result = run_cli("doctor", "--store", "memory://doctor-unconditional", "--json")

    assert result.exit_code == 1
    failed = [check["name"] for check in json.loads(result.stdout) if not check["passed"]]
    assert failed == ["create-if-absent", "stale if-match", "concurrent writers"]


@pytest.mark.usefixtures("open_unconditional")
def test_worker_unconditional_store_rejected(run_cli: RunCli, handlers_file: Path) -> None:
    result = run_cli(
        "worker", str(handlers_file), "--idle-exit", "0", "--store", "memory://doctor-worker"
    )

    assert result.exit_code == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "create-if-absent" in error_lines[0]
    assert "stale if-match" in error_lines[0]
    assert "--force" in error_lines[0]
    assert "concurrent writers" not in error_lines[0]


@pytest.mark.usefixtures("open_unconditional")
def test_worker_force_starts_anyway(run_cli: RunCli, handlers_file: Path) -> None:
    result = run_cli(
        "worker",
        str(handlers_file),
        "--idle-exit",
        "0",
        "--force",
        "--store",
        "memory://doctor-worker",
    )

    assert result.exit_code == 0, result.output
    assert "WARNING" in result.stderr
    assert "create-if-absent" in result.stderr
    assert "starting anyway because of --force" in result.stderr
    assert "error:" not in result.stderr


def test_worker_memory_store_starts(run_cli: RunCli, handlers_file: Path) -> None:
    result = run_cli(
        "worker", str(handlers_file), "--idle-exit", "0", "--store", "memory://doctor-good"
    )

    assert result.exit_code == 0, result.output
    assert "store check failed" not in result.stderr


@pytest.mark.s3
def test_doctor_s3_store_passes(run_cli: RunCli, s3_store_url: str) -> None:
    result = run_cli("doctor", "--store", s3_store_url, "--json")

    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)
    for check in checks:
        assert check["passed"], f"{check['name']}: {check['detail']}"
    assert [check["name"] for check in checks] == CHECK_NAMES
