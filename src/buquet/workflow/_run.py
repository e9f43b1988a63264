"""The run object, stored at ``runs/<run id>/run.json``, and its conditional updates."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from buquet import _json, keys
from buquet.errors import AmbiguousWrite, PreconditionFailed, RunNotFound, StoreError
from buquet.store import ObjectStore
from buquet.workflow._dag import Dag

logger = logging.getLogger(__name__)

MAX_UPDATE_TRIES = 50


class RunStatus(StrEnum):
    """Lifecycle of a run: running -> succeeded | failed | cancelled."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the status can never change again."""
        return self is not RunStatus.RUNNING


class Run(BaseModel):
    """A run of a workflow: its input, its DAG, and once finished its outcome."""

    id: str
    workflow: str
    status: RunStatus = RunStatus.RUNNING
    input: dict[str, Any]
    dag: Dag
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None
    result: Any = None
    error: str | None = None
    failed_step: str | None = None
    version: int = 0


def encode_run(run: Run) -> bytes:
    """Serialise a run for the store."""
    return _json.dumps_plain(run.model_dump(mode="json"))


def read_run(store: ObjectStore, run_id: str) -> tuple[Run, str]:
    """Read a run and its ETag, or raise RunNotFound."""
    run, etag, _data = _read_stored_run(store, run_id)
    return run, etag


def _read_stored_run(store: ObjectStore, run_id: str) -> tuple[Run, str, bytes]:
    stored = store.get(keys.run_key(run_id))
    if stored is None:
        raise RunNotFound(run_id)
    return Run.model_validate_json(stored.data), stored.etag, stored.data


def update_run(
    store: ObjectStore,
    run_id: str,
    change: Callable[[Run], Run | None],
    current: tuple[Run, str] | None = None,
) -> Run | None:
    """Apply ``change`` with compare-and-swap, retried on conflict.

    ``change`` returns the new run, or None to leave the run as it is. Returns
    the stored run when this call changed it, else None. A write whose
    response was lost counts as this call's change when the run read next is
    the one it wrote. ``current`` is a run and ETag the caller read just
    before, used for the first try instead of reading again.
    """
    lost: bytes | None = None
    for _ in range(MAX_UPDATE_TRIES):
        if current is not None:
            run, etag = current
            stored_data = b""
            current = None
        else:
            run, etag, stored_data = _read_stored_run(store, run_id)
        if lost is not None and stored_data == lost:
            logger.debug("update of run %s was applied although its response was lost", run_id)
            return run
        updated = change(run.model_copy(deep=True))
        if updated is None:
            return None
        updated.version = run.version + 1
        updated.updated_at = store.now()
        data = encode_run(updated)
        lost = None
        try:
            store.replace(keys.run_key(run_id), data, etag)
        except PreconditionFailed:
            logger.debug("run %s changed while updating it; reading it again", run_id)
            continue
        except AmbiguousWrite:
            logger.info("update of run %s may not have been applied; reading it again", run_id)
            lost = data
            continue
        return updated
    raise StoreError(
        f"run {run_id!r} kept changing during {MAX_UPDATE_TRIES} update tries",
        key=keys.run_key(run_id),
    )


def finish_run(
    store: ObjectStore,
    run_id: str,
    status: RunStatus,
    *,
    result: Any = None,
    error: str | None = None,
    failed_step: str | None = None,
    current: tuple[Run, str] | None = None,
) -> Run | None:
    """Move a running run to a terminal status; returns None when it had already finished.

    ``current`` is a fresh read of the run and its ETag, saving a read.
    """

    def change(run: Run) -> Run | None:
        if run.status.is_terminal:
            return None
        run.status = status
        run.result = result
        run.error = error
        run.failed_step = failed_step
        run.finished_at = store.now()
        return run

    return update_run(store, run_id, change, current)
