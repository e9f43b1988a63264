"""The command line's error policy, applied once for every command.

A :class:`~buquet.errors.BuquetError` never reaches the user as a traceback.
It is printed as one line, ``error: <message>``, on stderr, and the process
exits with:

- 2 for bad usage: invalid options, input, keys or targets, ids that name no
  task or run, and requests that conflict with what is stored;
- 1 for every other failure, such as a store that fails at run time.

Usage errors detected by the parser itself (unknown option, missing argument) keep
click's own message and also exit with 2.
"""

from __future__ import annotations

import logging
from typing import Any

import typer
from typer.core import TyperGroup

from buquet.errors import (
    BuquetError,
    ConfigError,
    DefinitionError,
    InvalidInput,
    InvalidKeyError,
    InvalidTransition,
    RunConflict,
    RunNotFound,
    SerializationError,
    TargetError,
    TaskConflict,
    TaskNotFound,
)

logger = logging.getLogger(__name__)

EXIT_FAILURE = 1
EXIT_USAGE = 2

USAGE_ERRORS: tuple[type[BuquetError], ...] = (
    ConfigError,
    InvalidKeyError,
    SerializationError,
    TargetError,
    DefinitionError,
    InvalidInput,
    TaskNotFound,
    RunNotFound,
    TaskConflict,
    RunConflict,
    InvalidTransition,
)
"""Errors caused by what the user typed: fixing the command line fixes them."""


def exit_code_for(error: BuquetError) -> int:
    """Return the exit status for ``error``: 2 for usage errors, 1 for the rest."""
    return EXIT_USAGE if isinstance(error, USAGE_ERRORS) else EXIT_FAILURE


def report_error(error: BuquetError) -> int:
    """Print ``error`` as one line on stderr and return its exit status."""
    # The traceback stays available to users who ask for it with -v.
    logger.debug("%s raised", type(error).__name__, exc_info=error)
    message = " ".join(str(error).split()) or type(error).__name__
    typer.echo(f"error: {message}", err=True)
    return exit_code_for(error)


class BuquetGroup(TyperGroup):
    """The root command group: turns every BuquetError into one line and an exit status."""

    # Any, because typer 0.29 passes its own vendored copy of click's Context.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BuquetError as error:
            raise typer.Exit(report_error(error)) from error
