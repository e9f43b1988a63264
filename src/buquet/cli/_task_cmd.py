"""``buquet task ...``: submit, list, show and cancel queue tasks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from buquet._time import parse_duration
from buquet.cli._common import (
    JsonOption,
    StoreOption,
    VerboseOption,
    configure_logging,
    dumps_for_humans,
    open_store_from_option,
    parse_input,
)
from buquet.queue import Queue, Task, TaskStatus

app = typer.Typer(name="task", help="Submit, list, show and cancel tasks.", no_args_is_help=True)


@app.command()
def submit(
    ctx: typer.Context,
    task_type: Annotated[str, typer.Argument(metavar="TYPE", help="Task type of a handler.")],
    *,
    input_text: Annotated[
        str | None,
        typer.Option("--input", "-i", metavar="JSON|@FILE", help="Task input as JSON, or @path."),
    ] = None,
    delay: Annotated[
        str, typer.Option(help="Wait this long before the task can run, e.g. 30s, 5m.")
    ] = "0s",
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Submitting again with this key returns the existing task."),
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option(min=1, help="Attempts before the task fails for good.")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Fail an attempt that runs longer, e.g. 2m.")
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Submit a task and print its id."""
    configure_logging(ctx, verbose)
    task_input = parse_input(input_text)
    delay_seconds = parse_duration(delay, name="--delay")
    timeout_seconds = None if timeout is None else parse_duration(timeout, name="--timeout")
    with open_store_from_option(store) as opened:
        task = Queue(opened).submit(
            task_type,
            task_input,
            delay=delay_seconds,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
            timeout=timeout_seconds,
        )
    typer.echo(_task_json(task) if as_json else task.id)


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    *,
    status: Annotated[
        TaskStatus | None, typer.Option(case_sensitive=False, help="Only tasks in this status.")
    ] = None,
    task_type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="Only tasks of this type.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Print at most this many tasks.")] = 100,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """List tasks in id order."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        # One more than the limit shows whether the list was cut.
        tasks = list(Queue(opened).list(status=status, task_type=task_type, limit=limit + 1))
    more = len(tasks) > limit
    tasks = tasks[:limit]
    if as_json:
        typer.echo(dumps_for_humans([task.model_dump(mode="json") for task in tasks]))
    elif not tasks:
        typer.echo("no tasks")
    else:
        Console(markup=False).print(_task_table(tasks))
    if more:
        message = f"showing the first {limit} tasks by id; pass a larger --limit to see more"
        typer.echo(message, err=True)


@app.command()
def show(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id.")],
    *,
    store: StoreOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Print every field of one task."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        task = Queue(opened).get(task_id)
    if as_json:
        typer.echo(_task_json(task))
        return
    Console(markup=False).print(_field_table(task))


@app.command()
def cancel(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="ID", help="Task id.")],
    *,
    store: StoreOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Cancel a pending task, or ask the worker running it to stop."""
    configure_logging(ctx, verbose)
    with open_store_from_option(store) as opened:
        task = Queue(opened).cancel(task_id)
    if task.status is TaskStatus.CANCELLED:
        typer.echo(f"task {task.id} cancelled")
    else:
        typer.echo(f"task {task.id} is {task.status.value}: cancellation requested from its worker")


def _task_json(task: Task) -> str:
    return dumps_for_humans(task.model_dump(mode="json"))


def _format_time(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _task_table(tasks: list[Task]) -> Table:
    table = Table(show_edge=False)
    table.add_column("id", no_wrap=True, overflow="fold")
    table.add_column("type")
    table.add_column("status")
    table.add_column("attempts", justify="right")
    table.add_column("updated (UTC)")
    for task in tasks:
        table.add_row(
            task.id,
            task.type,
            task.status.value,
            f"{task.attempts}/{task.max_attempts}",
            _format_time(task.updated_at),
        )
    return table


def _field_table(task: Task) -> Table:
    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field, value in task.model_dump(mode="json").items():
        text = value if isinstance(value, str) else dumps_for_humans(value)
        table.add_row(field, text)
    return table
