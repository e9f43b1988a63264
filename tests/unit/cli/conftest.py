"""Fixtures of the command line tests: an isolated working directory and a runner."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from buquet.cli._app import app

RunCli = Callable[..., Result]


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory with no store settings from the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("BUQUET_STORE", "S3_BUCKET", "S3_ENDPOINT", "S3_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo the logging setup of each command, which would leak into later tests."""
    root = logging.getLogger()
    buquet_logger = logging.getLogger("buquet")
    handlers, level, buquet_level = list(root.handlers), root.level, buquet_logger.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    buquet_logger.setLevel(buquet_level)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'store'}"


@pytest.fixture
def run_cli() -> RunCli:
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run
