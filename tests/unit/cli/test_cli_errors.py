"""Every error is one line on stderr, with exit status 2 for bad usage and 1 for failures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from buquet.cli._errors import exit_code_for
from buquet.errors import ConfigError, StoreError, TaskNotFound

RunCli = Callable[..., Result]


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_exit_codes_by_error_class() -> None:
    assert exit_code_for(ConfigError("bad")) == 2
    assert exit_code_for(TaskNotFound("missing")) == 2
    assert exit_code_for(StoreError("down")) == 1


def test_invalid_json_input(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "submit", "resize", "--input", '{"a": }', "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "invalid JSON in --input", "line 1 column 7")
    assert result.stdout == ""


def test_invalid_json_in_file(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{\n  "a": 1,\n}', encoding="utf-8")
    result = run_cli("task", "submit", "resize", "--input", "@bad.json", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "file 'bad.json'", "line 3 column 1")


def test_missing_input_file(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "submit", "resize", "--input", "@absent.json", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "cannot read --input file 'absent.json'")


def test_invalid_delay(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "submit", "resize", "--delay", "soon", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "invalid --delay 'soon'")


def test_invalid_task_type(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "submit", "no spaces", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "invalid task type 'no spaces'")


def test_unknown_task_id(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("task", "show", "nope", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "nope")


def test_bad_store_url(run_cli: RunCli) -> None:
    result = run_cli("task", "list", "--store", "ftp://host/path")
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "ftp://host/path")


def test_unreachable_s3_endpoint(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("S3_REGION", "us-east-1")
    result = run_cli("task", "list", "--store", "s3://bucket")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "s3://bucket")


def test_worker_missing_target_file(run_cli: RunCli, store_url: str) -> None:
    result = run_cli("worker", "examples/absent.py", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "target examples/absent.py", "does not exist")


def test_worker_missing_attribute(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    (tmp_path / "handlers_no_foo.py").write_text("bar = 1\n", encoding="utf-8")
    result = run_cli("worker", "handlers_no_foo.py:foo", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(
        result.stderr, "target handlers_no_foo.py:foo: the module has no attribute 'foo'"
    )


def test_worker_no_handlers(run_cli: RunCli, store_url: str, tmp_path: Path) -> None:
    (tmp_path / "handlers_none.py").write_text("VALUE = 1\n", encoding="utf-8")
    result = run_cli("worker", "handlers_none.py", "--store", store_url)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no task handler and no workflow found")


def test_missing_argument_exit_code(run_cli: RunCli) -> None:
    result = run_cli("task", "submit")
    assert result.exit_code == 2
