"""``buquet workflow ...``: start, inspect and control workflow runs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from buquet import _json
from buquet.cli._common import (
    JsonOption,
    StoreOption,
    VerboseOption,
    configure_logging,
    dumps_for_humans,
    open_store_from_option,
    parse_input,
)
from buquet.cli._local_workers import WorkerProcesses, WorkerThread
from buquet.cli._target import load_target, split_target
from buquet.errors import BuquetError, InvalidInput, TargetError
from buquet.store import ObjectStore
from buquet.workflow import Client, NodeProgress, Run, RunStatus, Workflow, collect_workflows

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="workflow",
    help="Start, inspect and control workflow runs.",
    no_args_is_help=True,
)

TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="TARGET",
        help="The workflow: file.py:name or package.module:name (':name' may be left out "
        "when the module defines one workflow).",
        show_default=False,
    ),
]
RunArgument = Annotated[str, typer.Argument(metavar="RUN", help="Run id.", show_default=False)]
InputOption = Annotated[
    str | None,
    typer.Option(
        "--input", "-i", metavar="JSON|@FILE", help="Workflow input: a JSON object or @file."
    ),
]
RunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="Run id; starting an existing run id again returns that run. Default: random.",
    ),
]
# The run object is one small read, so it is polled often to return soon after
# the run ends. Progress costs a listing per step and is refreshed less often.
POLL_SECONDS = 0.05
PROGRESS_SECONDS = 0.25
stdout = Console()


def load_workflow(target: str) -> Workflow[..., Any]:
    """Load the workflow a target names, or the only workflow of its module."""
    loaded = load_target(target)
    if loaded.name is not None:
        if not isinstance(loaded.value, Workflow):
            kind = type(loaded.value).__name__
            raise TargetError(
                f"target {target}: {loaded.name!r} is a {kind}, not a workflow; "
                f"decorate it with @workflow"
            )
        return loaded.value
    found = collect_workflows([loaded.module])
    if len(found) != 1:
        names = ", ".join(workflow.name for workflow in found) or "none"
        raise TargetError(
            f"target {target}: name the workflow as {target}:NAME (workflows found: {names})"
        )
    return found[0]


JSON_KINDS = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def parse_workflow_input(text: str | None, workflow: Workflow[..., Any]) -> dict[str, Any] | None:
    """Decode ``--input``, which must be a JSON object of the workflow's parameters, or null.

    Raises InvalidInput for any other JSON value, before the store is opened.
    """
    raw_input = parse_input(text)
    if raw_input is None or isinstance(raw_input, dict):
        return raw_input
    parameters = ", ".join(workflow.signature.parameters) or "none"
    kind = JSON_KINDS.get(type(raw_input), type(raw_input).__name__)
    raise InvalidInput(
        f"invalid --input for workflow {workflow.name!r}: expected a JSON object of its "
        f"parameters ({parameters}), got a JSON {kind}"
    )


def _start(
    workflow: Workflow[..., Any], store: ObjectStore, raw_input: Any, run_id: str | None
) -> Run:
    _ = workflow.dag  # An invalid definition fails here, before anything is written.
    workflow.bind_input(raw_input)
    return Client(store).start(workflow, raw_input, run_id=run_id)


@app.command()
def run(
    ctx: typer.Context,
    target: TargetArgument,
    *,
    input: InputOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Worker processes to start on this machine; 0 runs the steps in this "
            "process. Default: the number of CPUs.",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Steps each worker runs at once.")] = 2,
    run_id: RunIdOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Start a run, execute it with local workers showing progress, and print its result.

    Exits with 0 when the run succeeded and 1 when it failed or was cancelled.
    """
    configure_logging(ctx, verbose)
    workflow = load_workflow(target)
    raw_input = parse_workflow_input(input, workflow)
    with open_store_from_option(store) as opened:
        started = _start(workflow, opened, raw_input, run_id)
        if started.status.is_terminal:
            # A reused run id: report the earlier run's outcome without starting workers.
            typer.echo(f"run {started.id} of workflow {workflow.name} already ended", err=True)
            _print_outcome(started, as_json)
            return
        typer.echo(f"run {started.id} of workflow {workflow.name} started", err=True)
        runner = _local_runner(target, workflow, opened, workers, concurrency)
        with runner:
            finished = _follow(Client(opened), started.id, runner)
    _print_outcome(finished, as_json)


def _local_runner(
    target: str,
    workflow: Workflow[..., Any],
    store: ObjectStore,
    workers: int | None,
    concurrency: int,
) -> WorkerProcesses | WorkerThread:
    count = (os.cpu_count() or 1) if workers is None else workers
    if count == 0 or store.url.startswith("memory://"):
        return WorkerThread(store, workflow, concurrency)
    module_target = split_target(target)[0]
    return WorkerProcesses(module_target, store.url, count, concurrency)


def _follow(client: Client, run_id: str, runner: WorkerProcesses | WorkerThread) -> Run:
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    live = console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=not live) as bar:
        tasks: dict[str, Any] = {}
        shown_at = -PROGRESS_SECONDS
        while True:
            current = client.get(run_id)
            # Progress lists every item of each map, so it is read only when shown.
            if live and time.monotonic() - shown_at >= PROGRESS_SECONDS:
                _show_progress(bar, tasks, client.progress(run_id))
                shown_at = time.monotonic()
            if current.status.is_terminal:
                return current
            if runner.all_exited():
                raise BuquetError(
                    f"every worker exited before run {run_id} finished; see the logs in "
                    f"{getattr(runner, 'log_dir', 'the output above')}"
                )
            time.sleep(POLL_SECONDS)


def _show_progress(bar: Progress, tasks: dict[str, Any], nodes: list[NodeProgress]) -> None:
    for node in nodes:
        if node.name not in tasks:
            tasks[node.name] = bar.add_task(node.name, total=node.total)
        completed = node.total if node.done else node.finished_items
        bar.update(tasks[node.name], completed=completed, total=node.total)


def _print_outcome(finished: Run, as_json: bool) -> None:
    if finished.status is RunStatus.SUCCEEDED:
        if as_json:
            typer.echo(_json.dumps(finished.result).decode())
        else:
            typer.echo(dumps_for_humans(finished.result))
        return
    typer.echo(f"error: run {finished.id} {finished.status}: {finished.error}", err=True)
    raise typer.Exit(1)


@app.command()
def start(
    ctx: typer.Context,
    target: TargetArgument,
    *,
    input: InputOption = None,
    run_id: RunIdOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Start a run without executing it, and print its id; workers execute it."""
    configure_logging(ctx, verbose)
    workflow = load_workflow(target)
    raw_input = parse_workflow_input(input, workflow)
    with open_store_from_option(store) as opened:
        started = _start(workflow, opened, raw_input, run_id)
    if as_json:
        typer.echo(json.dumps({"run_id": started.id, "workflow": started.workflow}))
    else:
        typer.echo(started.id)


@app.command()
def status(
    ctx: typer.Context,
    run_id: RunArgument,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Show a run's status and the progress of each step."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        client = Client(opened)
        current = client.get(run_id)
        nodes = client.progress(run_id)
    if as_json:
        summary = _summary(current)
        summary["steps"] = [node.__dict__ for node in nodes]
        typer.echo(_json.dumps(summary).decode())
        return
    stdout.print(f"run {current.id}: [bold]{current.status}[/bold] (workflow {current.workflow})")
    if current.error:
        stdout.print(f"error: {current.error}", markup=False)
    table = Table("step", "done", "finished", "total")
    for node in nodes:
        total = "?" if node.total is None else str(node.total)
        table.add_row(node.name, "yes" if node.done else "no", str(node.finished_items), total)
    stdout.print(table)


def _summary(current: Run) -> dict[str, Any]:
    return {
        "run_id": current.id,
        "workflow": current.workflow,
        "status": current.status.value,
        "created_at": current.created_at,
        "finished_at": current.finished_at,
        "error": current.error,
        "failed_step": current.failed_step,
    }


@app.command("list")
def list_runs(
    ctx: typer.Context,
    *,
    status_filter: Annotated[
        RunStatus | None, typer.Option("--status", help="Show only runs with this status.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most this many runs.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """List runs, newest first."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        runs = Client(opened).list(status=status_filter, limit=limit)
    if as_json:
        typer.echo(_json.dumps([_summary(item) for item in runs]).decode())
        return
    if not runs:
        typer.echo("no runs")
        return
    stdout.print(_runs_table(runs))


def _runs_table(runs: list[Run]) -> Table:
    # Users copy run ids from this table, so the id column is never shortened. On
    # a narrow terminal or in a pipe (80 columns), the other columns wrap instead.
    table = Table(show_edge=False)
    table.add_column("run", no_wrap=True, min_width=max(len(item.id) for item in runs))
    for header in ("workflow", "status", "created (UTC)", "finished (UTC)"):
        table.add_column(header, overflow="fold")
    for item in runs:
        table.add_row(
            item.id,
            item.workflow,
            item.status.value,
            _format_time(item.created_at),
            _format_time(item.finished_at),
        )
    return table


def _format_time(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def cancel(
    ctx: typer.Context,
    run_id: RunArgument,
    store: StoreOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Cancel a run: no new step starts, and running steps see the request."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        cancelled = Client(opened).cancel(run_id)
    typer.echo(f"run {cancelled.id}: {cancelled.status}")


@app.command()
def result(
    ctx: typer.Context,
    run_id: RunArgument,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Print the result of a succeeded run; exits with 1 when it failed or is running."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        value = Client(opened).result(run_id)
    if as_json:
        typer.echo(_json.dumps(value).decode())
    else:
        typer.echo(dumps_for_humans(value))
