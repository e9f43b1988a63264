"""The source report example, run end to end, against a report computed here in one process.

The expected report is computed from the definitions in the example's
docstrings, with :mod:`ast` directly, and shares no code with the example.
"""

from __future__ import annotations

import ast
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from acceptance_helpers import EXAMPLE, Buquet

COMPARED_FIELDS = ("files", "failed", "lines", "functions", "classes", "top_imports")


def direct_report(root: str, cwd: Path) -> dict[str, Any]:
    """Count the ``*.py`` files under ``root``, skipping ``site-packages``, as the example defines.

    A relative ``root`` is taken from ``cwd``, and paths are shown joined to
    ``root`` as given. A file that is not UTF-8 or does not parse counts in
    ``failed`` only.
    """
    paths = sorted(
        str(Path(root) / path.relative_to(cwd / root))
        for path in (cwd / root).rglob("*.py")
        if "site-packages" not in path.relative_to(cwd / root).parts
    )
    report: dict[str, Any] = {"files": 0, "failed": 0, "lines": 0, "functions": 0, "classes": 0}
    failed_paths: list[str] = []
    imports: Counter[str] = Counter()
    for path in paths:
        try:
            text = (cwd / path).read_bytes().decode("utf-8")
            tree = ast.parse(text)
        except (UnicodeDecodeError, SyntaxError):
            failed_paths.append(path)
            continue
        nodes = list(ast.walk(tree))
        report["files"] += 1
        report["lines"] += len(text.splitlines())
        report["functions"] += sum(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) for node in nodes
        )
        report["classes"] += sum(isinstance(node, ast.ClassDef) for node in nodes)
        for node in nodes:
            if isinstance(node, ast.Import):
                imports.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imports[node.module.split(".")[0]] += 1
    report["failed"] = len(failed_paths)
    report["failed_paths"] = failed_paths
    ranked = sorted(imports.items(), key=lambda pair: (-pair[1], pair[0]))
    report["top_imports"] = [[name, count] for name, count in ranked[:10]]
    return report


def test_direct_report_sees_tree(source_tree: Path) -> None:
    """The generated tree exercises what the comparison should cover."""
    expected = direct_report(str(source_tree), source_tree)
    assert 60 <= expected["files"] + expected["failed"] <= 150
    assert expected["failed_paths"] == [
        str(source_tree / "broken.py"),
        str(source_tree / "latin1.py"),
    ]
    assert len(expected["top_imports"]) == 10
    assert expected["functions"] > expected["files"]


@pytest.mark.slow
def test_source_report_matches_direct(buquet: Buquet, source_tree: Path) -> None:
    root = os.path.relpath(source_tree, buquet.cwd)
    completed = buquet.run(
        "workflow", "run", f"{EXAMPLE}:source_report",
        "--input", f'{{"root": "{root}"}}',
        "--json", "--workers", "2", "--store", f"file://{buquet.cwd / '.buquet'}",
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    report = json.loads(completed.stdout)
    expected = direct_report(root, buquet.cwd)
    for field in COMPARED_FIELDS:
        assert report[field] == expected[field], field
    assert report["failed_paths"] == expected["failed_paths"]
    assert report["root"] == root


@pytest.mark.slow
@pytest.mark.s3
def test_source_report_on_seaweedfs(buquet: Buquet, source_tree: Path, s3_store_url: str) -> None:
    started = buquet.run(
        "workflow", "start", f"{EXAMPLE}:source_report",
        "--input", f'{{"root": "{source_tree}"}}', "--store", s3_store_url,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert run_id.startswith("run-")

    logs = [buquet.cwd / f"worker-{number}.log" for number in range(2)]
    workers = [
        buquet.start("worker", str(EXAMPLE), "--store", s3_store_url, log=log) for log in logs
    ]
    summary = buquet.wait_for_status(
        run_id, s3_store_url, lambda status: status["status"] != "running", workers
    )
    assert summary["status"] == "succeeded", summary

    report = buquet.json("workflow", "result", run_id, "--store", s3_store_url, "--json")
    expected = direct_report(str(source_tree), source_tree)
    for field in COMPARED_FIELDS:
        assert report[field] == expected[field], field
    assert report["failed_paths"] == expected["failed_paths"]

    for worker, log in zip(workers, logs, strict=True):
        assert buquet.stop(worker) == 0, log.read_text()
