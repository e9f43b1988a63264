"""The root ``buquet`` command and its command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from buquet import __version__
from buquet.cli import _doctor_cmd, _task_cmd, _worker_cmd, _workflow_cmd
from buquet.cli._common import VERBOSE_META_KEY
from buquet.cli._errors import BuquetGroup

app = typer.Typer(
    name="buquet",
    cls=BuquetGroup,
    help="Workflows and a task queue that need nothing but a bucket.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(_task_cmd.app)
app.add_typer(_workflow_cmd.app)
app.command("worker")(_worker_cmd.worker)
app.command("doctor")(_doctor_cmd.doctor)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"buquet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log buquet's debug messages to stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Workflows and a task queue that need nothing but a bucket."""
    ctx.meta[VERBOSE_META_KEY] = verbose
