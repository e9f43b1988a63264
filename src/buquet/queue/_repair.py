"""The repair pass: writes the hints that are missing for pending and running tasks.

A submitted task is created before its hint, so a submitter that dies in
between leaves a task without one. Hints also go missing when something
deletes them by mistake, or a store loses a write. The repair lists
``tasks/`` and ``ready/`` and reads every task that has no hint. Task ids
found finished are remembered, because a finished task never changes again.
Workers run it at start and every ``repair_interval`` (ten minutes by
default), which bounds how long such a task waits.
"""

from __future__ import annotations

import logging

from buquet import keys
from buquet.queue._io import TaskIO
from buquet.queue._sweep import SweepReport
from buquet.store import iter_keys

logger = logging.getLogger(__name__)


def repair(io: TaskIO, finished_ids: set[str]) -> SweepReport:
    """Restore missing hints; ``finished_ids`` caches ids of finished tasks between passes."""
    report = SweepReport()
    task_ids = [keys.task_id_from_key(key) for key in iter_keys(io.store, keys.TASKS)]
    hinted = _hinted_ids(io)
    for task_id in task_ids:
        if task_id in hinted or task_id in finished_ids:
            continue
        report.checked += 1
        _repair_task(io, task_id, finished_ids, report)
    return report


def _hinted_ids(io: TaskIO) -> set[str]:
    hinted: set[str] = set()
    for key in iter_keys(io.store, keys.READY):
        try:
            hinted.add(keys.parse_ready_key(key)[2])
        except ValueError:
            continue
    return hinted


def _repair_task(io: TaskIO, task_id: str, finished_ids: set[str], report: SweepReport) -> None:
    found = io.read(task_id)
    if found is None:
        return
    task = found[0]
    if task.status.is_terminal:
        finished_ids.add(task_id)
        return
    hint = io.put_ready_hint(task)
    report.restored += 1
    logger.info("restored the missing hint %s of task %s", hint, task_id)
