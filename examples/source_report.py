"""Count lines, functions, classes and imports over a tree of Python files.

As a workflow, one step lists the files in batches, one step per batch
parses them (a map, so the batches are spread over the workers) and a last
step merges the counts::

    buquet workflow run examples/source_report.py:source_report --input '{"root": "src"}'
    buquet worker examples/source_report.py        # in other terminals, to share the work

Without ``root`` the report covers the standard library of the interpreter
that runs ``list_files``. The analysis is made of plain functions, so the
same report can be computed in one process, without a store::

    python examples/source_report.py [ROOT]

Files that are not UTF-8 or not valid Python for the running interpreter are
counted in ``failed`` and left out of every other count.

Each map item is a batch of FILES_PER_TASK files, not one file, because every
task has a fixed cost. The store reads and writes of its claim, result and
completion take about 5 ms of CPU with the local store, and longer on S3.
Parsing one file of the standard library takes about 6 ms (both measured
with Python 3.11 on a 2-core VM), so with one task per file the bookkeeping
cost nearly as much as the parsing. The report does not depend on the batch size.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from buquet import step, workflow
from buquet.errors import NonRetryableError

TOP_IMPORTS = 10
# About 70 tasks for the standard library: few enough that their cost is small,
# and enough that every worker stays busy until the last batches.
FILES_PER_TASK = 25
FAILED_PATHS_SHOWN = 20
SKIPPED_DIRECTORY = "site-packages"


class FileStats(BaseModel):
    """Counts for one file. ``ok`` is False when the file could not be decoded or parsed."""

    path: str
    ok: bool
    error: str | None = None
    lines: int = 0
    functions: int = 0
    classes: int = 0
    imports: dict[str, int] = Field(default_factory=dict)
    """Top-level module name -> number of import statements (or names) that import it."""


class Report(BaseModel):
    """Totals over every file that parsed, plus the number of files that did not."""

    root: str
    files: int
    """Files that were parsed."""
    failed: int
    """Files that are not UTF-8 or not valid Python."""
    failed_paths: list[str]
    """The first failed files in path order, at most FAILED_PATHS_SHOWN of them."""
    lines: int
    """Sum of ``len(text.splitlines())`` over the parsed files only."""
    functions: int
    """``def`` and ``async def`` at any depth, methods and nested functions included."""
    classes: int
    """``class`` statements at any depth."""
    top_imports: list[tuple[str, int]]
    """The ten most imported top-level modules as [name, count], by count then name."""


# Plain analysis functions: no buquet needed.


def resolve_root(root: str | None) -> str:
    """Return ``root``, or the standard library directory of this interpreter when None."""
    return sysconfig.get_paths()["stdlib"] if root is None else root


def find_python_files(root: str) -> list[str]:
    """Return every ``*.py`` file under ``root``, sorted, skipping ``site-packages`` directories.

    Raises NotADirectoryError when ``root`` is not a directory.
    """
    if not os.path.isdir(root):
        raise NotADirectoryError(f"root {root!r} is not a directory")
    found: list[str] = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [name for name in subdirectories if name != SKIPPED_DIRECTORY]
        found.extend(os.path.join(directory, name) for name in names if name.endswith(".py"))
    return sorted(found)


def split_into_batches(paths: list[str], size: int) -> list[list[str]]:
    """Split ``paths`` into consecutive batches of ``size`` paths (the last one may be shorter)."""
    if size < 1:
        raise ValueError(f"invalid batch size {size}: use at least 1")
    return [paths[start : start + size] for start in range(0, len(paths), size)]


def count_imports(tree: ast.AST) -> Counter[str]:
    """Count imports by top-level module name, leaving out relative imports.

    ``import a.b, c`` counts ``a`` and ``c`` once each; ``from a.b import x, y``
    counts ``a`` once.
    """
    counts: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            counts.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            counts[node.module.split(".")[0]] += 1
    return counts


def analyse_source(path: str, text: str) -> FileStats:
    """Parse ``text`` and count its lines, functions, classes and imports.

    Raises SyntaxError (or ValueError for null bytes) when ``text`` is not valid Python.
    """
    tree = ast.parse(text, filename=path)
    functions = classes = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions += 1
        elif isinstance(node, ast.ClassDef):
            classes += 1
    return FileStats(
        path=path,
        ok=True,
        lines=len(text.splitlines()),
        functions=functions,
        classes=classes,
        imports=dict(count_imports(tree)),
    )


def analyse_file(path: str) -> FileStats:
    """Read ``path`` as UTF-8 and analyse it. A file that fails gets ``ok=False`` and its error."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
        return analyse_source(path, text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError) as error:
        return FileStats(path=path, ok=False, error=f"{type(error).__name__}: {error}")


def merge_stats(root: str, stats: Iterable[FileStats]) -> Report:
    """Add up the counts of the files that parsed and list those that failed."""
    items = list(stats)
    parsed = [item for item in items if item.ok]
    failed = sorted(item.path for item in items if not item.ok)
    imports: Counter[str] = Counter()
    for item in parsed:
        imports.update(item.imports)
    ranked = sorted(imports.items(), key=lambda pair: (-pair[1], pair[0]))
    return Report(
        root=root,
        files=len(parsed),
        failed=len(failed),
        failed_paths=failed[:FAILED_PATHS_SHOWN],
        lines=sum(item.lines for item in parsed),
        functions=sum(item.functions for item in parsed),
        classes=sum(item.classes for item in parsed),
        top_imports=ranked[:TOP_IMPORTS],
    )


def compute_report(root: str | None = None) -> Report:
    """Compute the report in this process, without a store or workers."""
    resolved = resolve_root(root)
    return merge_stats(resolved, [analyse_file(path) for path in find_python_files(resolved)])


# The workflow: the same functions, as steps.


@step(retries=3, timeout="2m")
def list_files(root: str | None) -> list[list[str]]:
    """List the Python files under ``root`` (the standard library when None), in batches."""
    try:
        return split_into_batches(find_python_files(resolve_root(root)), FILES_PER_TASK)
    except NotADirectoryError as error:
        raise NonRetryableError(str(error)) from error


@step
def analyse(paths: list[str]) -> list[FileStats]:
    """Count what each file of one batch contains."""
    return [analyse_file(path) for path in paths]


@step
def merge(stats: list[list[FileStats]], root: str | None) -> Report:
    """Add up the per-file counts of every batch into the report."""
    return merge_stats(resolve_root(root), [item for batch in stats for item in batch])


@workflow
def source_report(root: str | None = None) -> Report:
    """Report on the Python files under ``root``: one task per batch, merged at the end."""
    batches = list_files(root)
    per_batch = analyse.map(batches)
    return merge(per_batch, root)


def main(argv: list[str]) -> int:
    """Print the report of ``argv[0]`` (or the standard library) as JSON."""
    if len(argv) > 1:
        print("usage: python examples/source_report.py [ROOT]", file=sys.stderr)
        return 2
    try:
        report = compute_report(argv[0] if argv else None)
    except NotADirectoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.model_dump(mode="json"), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
