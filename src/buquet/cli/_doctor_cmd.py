"""``buquet doctor``: check that a store provides what buquet relies on."""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.table import Table

from buquet.cli._common import (
    JsonOption,
    StoreOption,
    VerboseOption,
    configure_logging,
    dumps_for_humans,
    open_store_from_option,
)
from buquet.errors import StoreCheckFailed
from buquet.store import CheckResult, ObjectStore, check_store, failed_checks

logger = logging.getLogger(__name__)


def doctor(
    ctx: typer.Context,
    *,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Check the store's conditional writes, ETags, clock and listing.

    The checks write a few scratch objects under doctor/ and delete them.
    Exits with status 1 when a check fails.
    """
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        url = opened.url
        results = check_store(opened)
    failed = failed_checks(results)
    if as_json:
        typer.echo(dumps_for_humans([_result_json(result) for result in results]))
    else:
        _print_results(url, results, failed)
    if failed:
        raise typer.Exit(1)


def _result_json(result: CheckResult) -> dict[str, object]:
    return {"name": result.name, "passed": result.passed, "detail": result.detail}


def _print_results(url: str, results: list[CheckResult], failed: list[CheckResult]) -> None:
    table = Table("check", "result", "detail", title=f"store {url}")
    for result in results:
        table.add_row(result.name, "pass" if result.passed else "FAIL", result.detail)
    console = Console(markup=False)
    console.print(table)
    if failed:
        console.print(f"failed checks: {', '.join(result.name for result in failed)}")
    else:
        console.print(f"all {len(results)} checks passed")


def check_store_at_start(store: ObjectStore, *, force: bool) -> None:
    """Run the quick store checks before a worker starts.

    Raises StoreCheckFailed naming the failed checks, unless ``force`` is
    set: then it logs a warning and returns.
    """
    failed = failed_checks(check_store(store, full=False))
    if not failed:
        return
    names = ", ".join(result.name for result in failed)
    if force:
        details = "; ".join(f"{result.name}: {result.detail}" for result in failed)
        logger.warning(
            "store check failed (%s); starting anyway because of --force: %s", names, details
        )
        return
    raise StoreCheckFailed(
        f"store check failed: {names}. {failed[0].name}: {failed[0].detail}. "
        "Run 'buquet doctor' for every check, or pass --force to start anyway"
    )
