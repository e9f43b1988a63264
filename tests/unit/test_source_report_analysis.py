"""examples/source_report.py on a small tree counted by hand: its functions and its workflow."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

from buquet.testing import run_workflow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "source_report.py"

GOOD = '''\
"""Módulo de ejemplo."""
import os
import os.path, sys
from collections import abc
from . import sibling
from .sibling import thing
from .. import parent
import json as j


class Outer:
    class Inner:
        def method(self):
            def nested():
                pass
            return nested

    async def run(self):
        pass


async def main():
    from os import path
    return path
'''
GOOD_LINES = 24

OTHER = """\
import sys
from typing import Any

def identity(x: Any) -> Any:
    return x
"""


@pytest.fixture(scope="module")
def report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("source_report_under_test", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "site-packages").mkdir()
    (root / "good.py").write_text(GOOD, encoding="utf-8")
    (root / "sub" / "other.py").write_text(OTHER, encoding="utf-8")
    (root / "empty.py").write_text("", encoding="utf-8")
    (root / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n")
    (root / "broken.py").write_text("def broken(:\n    pass\n", encoding="utf-8")
    (root / "site-packages" / "skipped.py").write_text("import skipped\n", encoding="utf-8")
    (root / "notes.txt").write_text("import notes\n", encoding="utf-8")
    return root


def test_find_files_sorted_and_skipping(report_module: ModuleType, tree: Path) -> None:
    found = report_module.find_python_files(str(tree))
    names = [Path(path).relative_to(tree).as_posix() for path in found]
    assert names == ["broken.py", "empty.py", "good.py", "latin.py", "sub/other.py"]


def test_find_files_missing_root(report_module: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="missing"):
        report_module.find_python_files(str(tmp_path / "missing"))


def test_analyse_file_counts(report_module: ModuleType, tree: Path) -> None:
    stats = report_module.analyse_file(str(tree / "good.py"))
    assert stats.ok
    assert stats.error is None
    assert stats.lines == GOOD_LINES
    assert stats.functions == 4
    assert stats.classes == 2
    assert stats.imports == {"os": 3, "sys": 1, "collections": 1, "json": 1}


def test_analyse_file_latin1_fails(report_module: ModuleType, tree: Path) -> None:
    stats = report_module.analyse_file(str(tree / "latin.py"))
    assert not stats.ok
    assert stats.error.startswith("UnicodeDecodeError")
    assert stats.lines == 0


def test_analyse_file_syntax_error_fails(report_module: ModuleType, tree: Path) -> None:
    stats = report_module.analyse_file(str(tree / "broken.py"))
    assert not stats.ok
    assert stats.error.startswith("SyntaxError")


def test_report_totals(report_module: ModuleType, tree: Path) -> None:
    report = report_module.compute_report(str(tree))
    assert report.root == str(tree)
    assert report.files == 3
    assert report.failed == 2
    assert report.failed_paths == [str(tree / "broken.py"), str(tree / "latin.py")]
    assert report.lines == GOOD_LINES + 5
    assert report.functions == 5
    assert report.classes == 2
    assert report.top_imports == [
        ("os", 3),
        ("sys", 2),
        ("collections", 1),
        ("json", 1),
        ("typing", 1),
    ]


def test_top_imports_ten_with_ties(report_module: ModuleType) -> None:
    file_stats = report_module.FileStats
    counts = {f"m{i:02d}": 1 for i in range(12)}
    counts["zz"] = 5
    stats = [
        file_stats(path="a.py", ok=True, imports=counts),
        file_stats(path="b.py", ok=True, imports={"m11": 1}),
        file_stats(path="c.py", ok=False, error="SyntaxError", imports={"ignored": 9}),
    ]
    report = report_module.merge_stats("root", stats)
    assert report.top_imports[0] == ("zz", 5)
    assert report.top_imports[1] == ("m11", 2)
    assert [name for name, _ in report.top_imports[2:]] == [f"m{i:02d}" for i in range(8)]
    assert len(report.top_imports) == 10


def test_batches_keep_order(report_module: ModuleType) -> None:
    paths = [f"f{i}.py" for i in range(7)]
    batches = report_module.split_into_batches(paths, 3)
    assert batches == [["f0.py", "f1.py", "f2.py"], ["f3.py", "f4.py", "f5.py"], ["f6.py"]]
    assert report_module.split_into_batches([], 3) == []


def test_batches_reject_size_zero(report_module: ModuleType) -> None:
    with pytest.raises(ValueError, match="invalid batch size 0"):
        report_module.split_into_batches(["a.py"], 0)


def test_workflow_matches_direct(
    report_module: ModuleType, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_module, "FILES_PER_TASK", 2)
    run = run_workflow(report_module.source_report, {"root": str(tree)})
    expected = report_module.compute_report(str(tree)).model_dump(mode="json")
    assert run.status.value == "succeeded", run.error
    assert run.result == expected


def test_report_root_defaults_to_stdlib(report_module: ModuleType) -> None:
    assert report_module.resolve_root(None) == sysconfig.get_paths()["stdlib"]


def test_script_prints_report(tree: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tree)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["files"] == 3
    assert report["failed"] == 2
    assert report["lines"] == GOOD_LINES + 5
    assert report["top_imports"][0] == ["os", 3]
