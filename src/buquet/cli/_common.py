"""Helpers shared by every command: logging, options, input parsing and the store."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from buquet import _json
from buquet.errors import ConfigError, PreconditionFailed, StoreError
from buquet.store import ObjectStore, open_store, resolve_store_url

logger = logging.getLogger(__name__)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="Store URL: file://PATH, s3://BUCKET/PREFIX or memory://. "
        "Default: $BUQUET_STORE, then 'store' in .buquet.toml, then s3://$S3_BUCKET, "
        "then file://.buquet.",
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log buquet's debug messages to stderr.")
]
VERBOSE_META_KEY = "buquet.verbose"
_HANDLER_NAME = "buquet-cli"
_PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def configure_logging(
    ctx: typer.Context, verbose: bool, default_level: int = logging.WARNING
) -> None:
    """Send log records to stderr, at DEBUG for buquet when verbose.

    On a terminal the records go through rich. Otherwise each record is one
    plain line, so that log files and collectors get unwrapped text. ``-v``
    given to the root command (``buquet -v ...``), as recorded in ``ctx``,
    also counts. Only the command line calls this: the library never
    installs handlers.
    """
    verbose = verbose or bool(ctx.find_root().meta.get(VERBOSE_META_KEY, False))
    root = logging.getLogger()
    for installed in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(installed)
    handler = _make_handler()
    handler.set_name(_HANDLER_NAME)
    root.addHandler(handler)
    logging.getLogger("buquet").setLevel(logging.DEBUG if verbose else default_level)


def _make_handler() -> logging.Handler:
    console = Console(stderr=True)
    if console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=console, show_path=False, rich_tracebacks=False, markup=False
        )
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
        return handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_PLAIN_FORMAT))
    return handler


def parse_input(text: str | None, *, option: str = "--input") -> Any:
    """Decode ``--input``: JSON text, or ``@path`` to read the JSON from a file.

    Raises ConfigError naming the line and column of invalid JSON.
    """
    if text is None:
        return None
    source = "the argument"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"file {str(path)!r}"
        text = _read_input_file(path, option)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"invalid JSON in {option} ({source}) at line {error.lineno} column {error.colno}: "
            f"{error.msg}"
        ) from error


def _read_input_file(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError(f"cannot read {option} file {str(path)!r}: {reason}") from error


def dumps_for_humans(value: Any) -> str:
    """Format a JSON value with two-space indentation, non-ASCII text kept as is."""
    return json.dumps(_json.to_json_value(value), indent=2, ensure_ascii=False)


@contextlib.contextmanager
def open_store_from_option(
    explicit: str | None, *, concurrency: int | None = None
) -> Iterator[ObjectStore]:
    """Open the store named by ``--store``, $BUQUET_STORE or the configuration, then close it.

    A StoreError raised inside the block is raised again with the store URL
    in front of its message, so that the one-line error names the store.
    """
    store = open_store(resolve_store_url(explicit), concurrency=concurrency)
    logger.debug("opened store %s", store.url)
    try:
        yield store
    except PreconditionFailed:
        raise
    except StoreError as error:
        raise StoreError(f"store {store.url}: {error}", key=error.key) from error
    finally:
        store.close()
