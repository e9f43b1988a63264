"""Chaos soak: workflow runs on SeaweedFS while worker processes are killed and restarted.

    python bench/soak.py --workers 4 --runs 200 --minutes 10 --kill-every 5

The soak starts its own ``weed mini`` on 127.0.0.1, then ``--workers``
``buquet worker`` processes running bench/soak_flows.py (lease 5 s,
concurrency 4). It starts ``--runs`` runs of mixed shapes, spread over the
first half of the soak, while a chaos loop SIGKILLs a random worker about
every ``--kill-every`` seconds and starts a new one in its slot. With
``--pause-every``, it also SIGSTOPs a random worker for ``--pause-seconds``,
longer than a lease, so that the worker wakes up as a zombie whose tasks
were taken over. After ``--minutes`` the chaos stops; the soak waits up to
``--drain-timeout`` seconds for every run to finish, stops the workers with
SIGTERM and checks:

- runs: succeeded with the expected value, failed as planned (``doomed``),
  unexpected (any other end, or a wrong value) and stuck (not finished);
- executions: each step body appends one line (task, attempt, pid) to a log
  per process. An execution after a task's first is a planned retry when the
  one before was a planned failure, "after a kill" or "after a pause" when
  the process of the one before was signalled between the two starts, and
  "other" otherwise;
- fenced results: every step result is stamped with the attempt and pid that
  produced it. For each succeeded task, the stamped execution must be in the
  logs, its attempt must equal the task's claim count, and no later attempt
  may have run. Otherwise a worker that had lost its lease wrote the result.

It prints a table, writes bench/results/soak-<timestamp>.json with the
worker and executions logs next to it, and exits with status 1 if a run
ended unexpectedly or was stuck, or a result failed the fencing check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import soak_flows
from _soak_chaos import ChaosSchedule, WorkerPool, run_chaos, worker_command
from _soak_check import (
    by_task,
    classify_reexecutions,
    classify_runs,
    count_worker_log_lines,
    describe_stuck,
    fenced_results,
    read_executions,
    read_tasks,
)
from servers import S3_BUCKET, Seaweed, seaweedfs

from buquet import BuquetError, Client, open_store
from buquet.store import ObjectStore
from buquet.workflow import Workflow

logger = logging.getLogger("soak")

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
FLOWS = BENCH / "soak_flows.py"
STORE_URL = f"s3://{S3_BUCKET}/soak"
LEASE = "5s"
CONCURRENCY = 4
FANOUT_WIDTH = 50
SHAPES = (("chain3", 0.25), ("chain5", 0.2), ("flaky", 0.25), ("fanout", 0.2), ("doomed", 0.1))
START_SHARE = 0.5
"""Runs are started during this share of the soak."""
START_TRIES = 5
POLL_SECONDS = 1.0
DISCARDED_LOG_TEXTS = ("its result is discarded", "is discarded: it timed out or lost its lease")
"""Parts of the messages a worker logs when it drops the result of a task whose lease it lost."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--runs", type=int, default=200, help="runs to start (default 200)")
    parser.add_argument("--minutes", type=float, default=10.0, help="chaos duration, minutes")
    parser.add_argument(
        "--kill-every", type=float, default=5.0, help="mean seconds between SIGKILLs; 0: none"
    )
    parser.add_argument(
        "--pause-every", type=float, default=0.0, help="mean seconds between SIGSTOPs; 0: none"
    )
    parser.add_argument(
        "--pause-seconds", type=float, default=8.0, help="how long a paused worker stays stopped"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=90.0, help="seconds to wait for runs after chaos"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the run mix")
    return parser.parse_args(argv)


def plan_runs(count: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """Pick the workflow and input of every run."""
    names = [name for name, _ in SHAPES]
    weights = [weight for _, weight in SHAPES]
    plan = []
    for number, name in enumerate(rng.choices(names, weights, k=count)):
        run_input: dict[str, Any] = {"seed": number}
        if name == "fanout":
            run_input["width"] = FANOUT_WIDTH
        plan.append((name, run_input))
    return plan


def start_runs(
    client: Client,
    plan: list[tuple[str, dict[str, Any]]],
    seconds: float,
    started: list[str],
    stop: threading.Event,
) -> None:
    """Start the planned runs evenly over ``seconds``; append each run id to ``started``.

    Setting ``stop`` ends the loop before the next run.
    """
    begin = time.monotonic()
    for number, (name, run_input) in enumerate(plan):
        if stop.wait(max(0.0, begin + seconds * number / len(plan) - time.monotonic())):
            return
        workflow: Workflow[..., Any] = getattr(soak_flows, name)
        run_id = f"r{number:04d}-{name}"
        if _start_one(client, workflow, run_input, run_id):
            started.append(run_id)


def _start_one(
    client: Client, workflow: Workflow[..., Any], run_input: dict[str, Any], run_id: str
) -> bool:
    """Start a run, trying again with the same run id (a no-op if it exists) on store errors."""
    for attempt in range(1, START_TRIES + 1):
        try:
            client.start(workflow, run_input, run_id=run_id)
        except BuquetError as error:
            logger.warning("starting run %s failed (try %d): %s", run_id, attempt, error)
            time.sleep(attempt)
            continue
        return True
    logger.error("run %s could not be started in %d tries; leaving it out", run_id, START_TRIES)
    return False


def drain(client: Client, run_ids: list[str], timeout: float) -> float:
    """Wait until every run is finished or ``timeout`` passed; return the seconds waited."""
    begin = time.monotonic()
    pending = list(run_ids)
    while pending and time.monotonic() - begin < timeout:
        pending = [run_id for run_id in pending if not _finished(client, run_id)]
        if pending:
            time.sleep(POLL_SECONDS)
    return time.monotonic() - begin


def _finished(client: Client, run_id: str) -> bool:
    try:
        return client.get(run_id).status.is_terminal
    except BuquetError as error:
        logger.warning("reading run %s failed: %s; reading it again later", run_id, error)
        return False


def analyse(
    store: ObjectStore, client: Client, run_ids: list[str], pool: WorkerPool, log_dir: Path
) -> dict[str, Any]:
    """Check runs, executions and stored results; return the report as JSON-ready values."""
    runs = [client.get(run_id) for run_id in run_ids]
    outcomes = classify_runs(runs)
    tasks = read_tasks(store)
    executions = read_executions(log_dir)
    grouped = by_task(executions)
    signals: dict[str, list[tuple[int, float]]] = {"kill": [], "pause": []}
    for event in pool.events:
        if event.action in signals:
            signals[event.action].append((event.pid, event.time))
    reexecutions = classify_reexecutions(grouped, signals)
    fenced = fenced_results(tasks, grouped)
    return {
        "runs_started": len(run_ids),
        "runs_by_workflow": {
            name: sum(1 for run in runs if run.workflow == name) for name, _ in SHAPES
        },
        "outcomes": asdict(outcomes),
        "kills": len(signals["kill"]),
        "pauses": len(signals["pause"]),
        "worker_exits": [asdict(event) for event in pool.events if event.action == "exited"],
        "step_tasks": len(tasks),
        "steps_executed": len(executions),
        "tasks_executed_more_than_once": sum(1 for group in grouped.values() if len(group) > 1),
        "reexecutions": asdict(reexecutions),
        "duplicates": reexecutions.duplicates,
        "fenced_results": fenced,
        "stale_results_discarded": sum(
            count_worker_log_lines(log_dir, text) for text in DISCARDED_LOG_TEXTS
        ),
        "stuck_details": [describe_stuck(store, run_id, tasks) for run_id in outcomes.stuck],
    }


def print_table(report: dict[str, Any]) -> None:
    """Print the main numbers of a report."""
    outcomes = report["outcomes"]
    again = report["reexecutions"]
    rows = [
        ("runs started", report["runs_started"]),
        ("succeeded (right value)", len(outcomes["succeeded"])),
        ("failed, expected", len(outcomes["failed_expected"])),
        ("failed or cancelled, unexpected", len(outcomes["unexpected"])),
        ("succeeded with a wrong value", len(outcomes["wrong_result"])),
        ("stuck (not finished)", len(outcomes["stuck"])),
        ("worker SIGKILLs", report["kills"]),
        ("worker SIGSTOPs", report["pauses"]),
        ("workers that exited by themselves", len(report["worker_exits"])),
        ("step tasks", report["step_tasks"]),
        ("step executions", report["steps_executed"]),
        ("retries after a planned failure", again["planned"]),
        ("duplicate executions after a kill", again["after_kill"]),
        ("duplicate executions after a pause", again["after_pause"]),
        ("duplicate executions, other", len(again["other"])),
        ("executions repeating an attempt number", len(again["same_attempt"])),
        ("results discarded by fencing (worker logs)", report["stale_results_discarded"]),
        ("results written by fenced attempts", len(report["fenced_results"])),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value:>6}")


def soak_failed(report: dict[str, Any]) -> bool:
    """Return whether the report has an unexpected, wrong or stuck run, or a fenced result."""
    outcomes = report["outcomes"]
    return bool(
        outcomes["unexpected"]
        or outcomes["wrong_result"]
        or outcomes["stuck"]
        or report["fenced_results"]
    )


def _worker_pool(server: Seaweed, out_dir: Path, workers: int) -> WorkerPool:
    environment = dict(os.environ, **server.environment(), PYTHONUNBUFFERED="1")
    environment[soak_flows.LOG_DIR_ENV] = str(out_dir)
    environment.pop("BUQUET_STORE", None)
    command = worker_command(FLOWS, STORE_URL, LEASE, CONCURRENCY)
    return WorkerPool(command, environment, out_dir, workers)


def run_soak(args: argparse.Namespace, server: Seaweed, out_dir: Path) -> dict[str, Any]:
    """Run workers, runs and chaos against ``server``; return the report."""
    os.environ.update(server.environment())
    store = open_store(STORE_URL, concurrency=16)
    client = Client(store)
    plan = plan_runs(args.runs, random.Random(args.seed))
    seconds = args.minutes * 60
    schedule = ChaosSchedule(args.kill_every, args.pause_every, args.pause_seconds)
    started: list[str] = []
    stop = threading.Event()

    pool = _worker_pool(server, out_dir, args.workers)
    pool.start()
    try:
        starter = threading.Thread(
            target=start_runs, args=(client, plan, seconds * START_SHARE, started, stop)
        )
        starter.start()
        run_chaos(pool, schedule, time.monotonic() + seconds, stop)
        starter.join()
        waited = drain(client, started, args.drain_timeout)
    finally:
        stop.set()
        exit_statuses = pool.stop()

    report = analyse(store, client, started, pool, out_dir)
    report["drain_seconds"] = round(waited, 1)
    report["worker_exit_statuses_at_stop"] = exit_statuses
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the soak and write its report; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = RESULTS / f"soak-{stamp}"
    out_dir.mkdir(parents=True)
    with (
        tempfile.TemporaryDirectory(prefix="buquet-soak-") as workdir,
        seaweedfs(Path(workdir)) as server,
    ):
        report = run_soak(args, server, out_dir)
    report["command"] = "python bench/soak.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report["logs"] = str(out_dir)
    (RESULTS / f"soak-{stamp}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print_table(report)
    print(f"report: {RESULTS / f'soak-{stamp}.json'}")
    return 1 if soak_failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
