"""Fixtures of the acceptance tests: the ``buquet`` command line and a generated source tree.

Every process a test starts in the background is stopped by its process id
when the test ends, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance_helpers import Buquet, write_source_tree


@pytest.fixture
def buquet(tmp_path: Path) -> Iterator[Buquet]:
    """The command line, run in ``tmp_path``. Background processes are stopped at the end."""
    cli = Buquet(tmp_path)
    try:
        yield cli
    finally:
        cli.stop_all()


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A generated source tree at ``tmp_path / "tree"``."""
    root = tmp_path / "tree"
    write_source_tree(root)
    return root
