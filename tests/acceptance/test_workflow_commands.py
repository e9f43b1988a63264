"""``buquet workflow start|status|list|cancel|result`` in process, on a ``memory://`` store.

Each test gets its own store name, and ``workflow run`` executes the steps
in a thread of the test process.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import EXAMPLE
from typer.testing import CliRunner, Result

from buquet.cli import app

SUMMARY_FIELDS = {
    "run_id", "workflow", "status", "created_at", "finished_at", "error", "failed_step",
}  # fmt: skip
STEP_FIELDS = {"name", "done", "finished_items", "total"}
REPORT_FIELDS = {
    "root", "files", "failed", "failed_paths", "lines", "functions", "classes", "top_imports",
}  # fmt: skip
STEPS = ["list_files", "analyse", "merge"]
FILES_PER_TASK = 25
"""Files per ``analyse`` task, as FILES_PER_TASK in the example."""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in ``tmp_path`` and undo what each command changes in the process.

    A command installs a log handler and puts the target's directory on ``sys.path``.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUQUET_STORE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(sys, "path", list(sys.path))
    root, buquet_logger = logging.getLogger(), logging.getLogger("buquet")
    handlers, buquet_level = list(root.handlers), buquet_logger.level
    yield
    root.handlers[:] = handlers
    buquet_logger.setLevel(buquet_level)


@pytest.fixture
def store_url() -> str:
    """A ``memory://`` store that no other test uses."""
    return f"memory://acceptance-{uuid.uuid4().hex}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def invoke_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def run_report(source_tree: Path, store_url: str, run_id: str) -> dict[str, Any]:
    """Run the source report in process and return the report it prints."""
    report: dict[str, Any] = invoke_json(
        "workflow", "run", f"{EXAMPLE}:source_report",
        "--input", json.dumps({"root": str(source_tree)}),
        "--run-id", run_id, "--store", store_url,
    )  # fmt: skip
    return report


def test_run_prints_report(source_tree: Path, store_url: str) -> None:
    report = run_report(source_tree, store_url, "report-1")

    assert set(report) == REPORT_FIELDS
    assert report["root"] == str(source_tree)
    assert report["failed"] == 2


def test_result_matches_run_output(source_tree: Path, store_url: str) -> None:
    report = run_report(source_tree, store_url, "report-1")

    as_json = invoke_json("workflow", "result", "report-1", "--store", store_url)
    as_text = invoke("workflow", "result", "report-1", "--store", store_url)

    assert as_json == report
    assert as_text.exit_code == 0, as_text.stderr
    assert json.loads(as_text.stdout) == report
    assert as_text.stdout.startswith("{\n  ")


def test_status_json_of_succeeded_run(source_tree: Path, store_url: str) -> None:
    report = run_report(source_tree, store_url, "report-1")

    summary = invoke_json("workflow", "status", "report-1", "--store", store_url)

    assert set(summary) == SUMMARY_FIELDS | {"steps"}
    assert summary["run_id"] == "report-1"
    assert summary["workflow"] == "source_report"
    assert summary["status"] == "succeeded"
    assert summary["finished_at"] is not None
    assert summary["error"] is None
    assert [step["name"] for step in summary["steps"]] == STEPS
    assert all(set(step) == STEP_FIELDS for step in summary["steps"])
    assert all(step["done"] for step in summary["steps"])
    analyse = summary["steps"][1]
    assert analyse["total"] == math.ceil((report["files"] + report["failed"]) / FILES_PER_TASK)


def test_status_items_match_total(source_tree: Path, store_url: str) -> None:
    run_report(source_tree, store_url, "report-1")

    summary = invoke_json("workflow", "status", "report-1", "--store", store_url)

    analyse = summary["steps"][1]
    assert analyse["finished_items"] == analyse["total"]


def test_start_prints_run_id(store_url: str) -> None:
    started = invoke_json("workflow", "start", str(EXAMPLE), "--store", store_url)
    plain = invoke("workflow", "start", str(EXAMPLE), "--run-id", "second", "--store", store_url)

    assert set(started) == {"run_id", "workflow"}
    assert started["run_id"].startswith("run-")
    assert started["workflow"] == "source_report"
    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout == "second\n"


def test_status_text_of_running_run(store_url: str) -> None:
    invoke("workflow", "start", str(EXAMPLE), "--run-id", "waiting", "--store", store_url)

    result = invoke("workflow", "status", "waiting", "--store", store_url)

    assert result.exit_code == 0, result.stderr
    assert "run waiting: running (workflow source_report)" in result.stdout
    for name in STEPS:
        assert name in result.stdout


def test_result_of_running_run(store_url: str) -> None:
    invoke("workflow", "start", str(EXAMPLE), "--run-id", "waiting", "--store", store_url)

    result = invoke("workflow", "result", "waiting", "--store", store_url)

    assert result.exit_code == 1
    assert result.stderr == "error: run 'waiting' is still running; no result yet\n"


def test_list_filters_and_orders(store_url: str) -> None:
    first = invoke_json("workflow", "start", str(EXAMPLE), "--store", store_url)["run_id"]
    invoke("workflow", "start", str(EXAMPLE), "--run-id", "second", "--store", store_url)
    invoke("workflow", "cancel", "second", "--store", store_url)

    every = invoke_json("workflow", "list", "--store", store_url)
    running = invoke_json("workflow", "list", "--status", "running", "--store", store_url)
    cancelled = invoke_json("workflow", "list", "--status", "cancelled", "--store", store_url)
    newest = invoke_json("workflow", "list", "--limit", "1", "--store", store_url)

    assert [item["run_id"] for item in every] == ["second", first]
    assert all(set(item) == SUMMARY_FIELDS for item in every)
    assert [item["run_id"] for item in running] == [first]
    assert [item["run_id"] for item in cancelled] == ["second"]
    assert [item["run_id"] for item in newest] == ["second"]


def test_list_text_shows_whole_ids(store_url: str) -> None:
    ids = [invoke_json("workflow", "start", str(EXAMPLE), "--store", store_url)["run_id"]]
    ids.append("a-run-id-longer-than-the-generated-ones")
    invoke("workflow", "start", str(EXAMPLE), "--run-id", ids[1], "--store", store_url)

    result = invoke("workflow", "list", "--store", store_url)

    assert result.exit_code == 0, result.stderr
    for run_id in ids:
        assert run_id in result.stdout
    assert "…" not in result.stdout


def test_list_of_empty_store(store_url: str) -> None:
    result = invoke("workflow", "list", "--store", store_url)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "no runs\n"
    assert invoke_json("workflow", "list", "--store", store_url) == []


def test_cancel_then_status_and_result(store_url: str) -> None:
    invoke("workflow", "start", str(EXAMPLE), "--run-id", "doomed", "--store", store_url)

    cancelled = invoke("workflow", "cancel", "doomed", "--store", store_url)
    again = invoke("workflow", "cancel", "doomed", "--store", store_url)
    summary = invoke_json("workflow", "status", "doomed", "--store", store_url)
    result = invoke("workflow", "result", "doomed", "--store", store_url)

    assert cancelled.exit_code == 0, cancelled.stderr
    assert cancelled.stdout == "run doomed: cancelled\n"
    assert again.exit_code == 0, again.stderr
    assert again.stdout == "run doomed: cancelled\n"
    assert summary["status"] == "cancelled"
    assert summary["error"] == "cancelled by request"
    assert summary["finished_at"] is not None
    assert result.exit_code == 1
    assert result.stderr.startswith("error: run 'doomed' cancelled")
