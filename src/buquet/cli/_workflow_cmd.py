"""``buquet workflow ...``: start, inspect and control workflow runs."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="workflow",
    help="Start, inspect and control workflow runs.",
    no_args_is_help=True,
)
