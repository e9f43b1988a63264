"""``buquet worker TARGET...``: run the task handlers and workflow steps of some modules."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from types import FrameType, ModuleType
from typing import Annotated

import typer

from buquet._time import parse_duration
from buquet.cli._common import StoreOption, VerboseOption, configure_logging, open_store_from_option
from buquet.cli._doctor_cmd import check_store_at_start
from buquet.cli._target import load_target
from buquet.errors import TargetError
from buquet.queue import Worker
from buquet.workflow import register_workflows

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def worker(
    ctx: typer.Context,
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET...",
            help="Files (flows.py) or modules (pkg.flows) whose handlers and workflows to run.",
            show_default=False,
        ),
    ],
    *,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks run at the same time.")] = 4,
    lease: Annotated[
        str, typer.Option(help="Lease of a claimed task, renewed while it runs, e.g. 30s.")
    ] = "30s",
    idle_exit: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Exit once nothing has run or been claimable for this many seconds.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Start even when the store fails the start-up checks of 'buquet doctor'.",
        ),
    ] = False,
    store: StoreOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Claim and run tasks until stopped with Ctrl+C or SIGTERM.

    A stop is graceful: the worker stops claiming, lets running tasks finish
    for up to 30 s (the Worker's default grace), releases the unfinished ones
    back to pending and exits with status 0. Before it starts, the worker checks
    that the store enforces conditional writes (see 'buquet doctor').
    """
    configure_logging(ctx, verbose, logging.INFO)
    modules = [load_target(target).module for target in targets]
    lease_seconds = parse_duration(lease, name="--lease")
    with open_store_from_option(store, concurrency=concurrency) as opened:
        check_store_at_start(opened, force=force)
        runner = Worker(opened, concurrency=concurrency, lease=lease_seconds)
        task_types = register_handlers(runner, modules)
        workflows = register_workflows(runner, modules)
        if not task_types and not workflows:
            raise TargetError(
                f"no task handler and no workflow found in {', '.join(targets)}: decorate a "
                "function with @buquet.queue.handler('type') or define a @workflow"
            )
        logger.info(
            "loaded %s: task handlers %s, workflows %s",
            ", ".join(targets),
            ", ".join(task_types) or "-",
            ", ".join(workflows) or "-",
        )
        with stop_on_signals(runner):
            runner.run(idle_exit=idle_exit)


def register_handlers(runner: Worker, modules: Sequence[ModuleType]) -> list[str]:
    """Register the handlers declared with ``@buquet.queue.handler`` in ``modules``.

    Returns the task types.
    """
    task_types: list[str] = []
    for module in modules:
        task_types.extend(runner.register_module(module))
    return task_types


@contextlib.contextmanager
def stop_on_signals(runner: Worker) -> Iterator[None]:
    """Make SIGINT and SIGTERM stop ``runner`` gracefully; restore the old handlers on exit."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.warning(
            "%s received: stopping. No new task is claimed; running ones finish or are released",
            signal.Signals(signum).name,
        )
        runner.stop()

    previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
