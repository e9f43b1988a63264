"""The ``buquet`` command line: a thin typer app over the workflow, queue and store layers."""

from __future__ import annotations

from buquet.cli._app import app
from buquet.cli._target import LoadedTarget, load_target

__all__ = ["LoadedTarget", "app", "load_target", "main"]


def main() -> None:
    """Run the ``buquet`` command with the process's arguments."""
    app(prog_name="buquet")
