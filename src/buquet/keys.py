"""The bucket's schema: every object key buquet reads or writes is built here.

Layout under the store's root (``s3://bucket/prefix`` or ``./.buquet``)::

    tasks/<task id>.json                  a task: the truth about it
    ready/<due ms>~<type>~<task id>[~<snapshot>]
                                          hint: a live task, claimable from <due ms>; kept
                                          while it runs and until it has settled. A task
                                          not yet claimed may carry a snapshot of itself
                                          (see ``queue._snapshot``)
    runs/<run id>.json                    a workflow run
    done/<run id>/<node>/all              marker: a step (every item of a map) finished
    done/<run id>/<node>/g<group>/<index> marker: one map item finished
    done/<run id>/<node>/groups/<group>   marker: every item of a group finished
    widths/<run id>/<node>                the number of items of a map, once known
    blobs/<sha256>                        a large value, content-addressed
    doctor/<check id>/...                 scratch objects of a store check, deleted after it

Times in keys are milliseconds since the epoch on the store's clock, padded
to 13 digits so that keys sort by time. Hints may be missing or stale; the
sweeper repairs them from the task objects.

Step tasks have deterministic ids, ``<run id>.<step>`` or
``<run id>.<step>.<map index>``, so a re-submission after a crash is a no-op.
Run ids cannot contain ``.``, which keeps ``tasks/<run id>.`` a prefix of
exactly one run's tasks.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from buquet.errors import InvalidKeyError

TASKS = "tasks/"
READY = "ready/"
RUNS = "runs/"
DONE = "done/"
WIDTHS = "widths/"
BLOBS = "blobs/"
DOCTOR = "doctor/"

HINT_SEPARATOR = "~"
_TIME_DIGITS = 13

_RUN_ID = re.compile(r"^\w[\w-]{0,199}$")
_TASK_ID = re.compile(r"^\w[\w.-]{0,254}$")
_TASK_TYPE = re.compile(r"^[A-Za-z_][\w.:-]{0,127}$", re.ASCII)
_NAME = re.compile(r"^[^\W\d][\w-]{0,127}$")


def normalise(text: str) -> str:
    """Return ``text`` in Unicode NFC, so equal-looking ids map to one key."""
    return unicodedata.normalize("NFC", text)


def _check(pattern: re.Pattern[str], value: object, kind: str, rule: str) -> str:
    if not isinstance(value, str):
        raise InvalidKeyError(f"invalid {kind} {value!r}: expected a string")
    text = normalise(value)
    if not pattern.match(text) or ".." in text:
        raise InvalidKeyError(f"invalid {kind} {value!r}: {rule}")
    return text


def check_run_id(value: object) -> str:
    """Validate and normalise a run id."""
    return _check(_RUN_ID, value, "run id", "use 1-200 letters, digits, '-' or '_'")


def check_task_id(value: object) -> str:
    """Validate and normalise a task id."""
    return _check(
        _TASK_ID, value, "task id", "use 1-255 letters, digits, '-', '_' or '.', and no '..'"
    )


def check_task_type(value: object) -> str:
    """Validate a task type name."""
    return _check(
        _TASK_TYPE,
        value,
        "task type",
        "start with an ASCII letter or '_', then up to 127 of letters, digits, '_', '.', ':', '-'",
    )


def check_name(value: object, kind: str = "name") -> str:
    """Validate a step or workflow name: an identifier that may also contain '-'."""
    return _check(_NAME, value, kind, "start with a letter or '_', then letters, digits, '_', '-'")


def idempotent_task_id(idempotency_key: str) -> str:
    """Derive a task id from an idempotency key; any string is accepted."""
    digest = hashlib.sha256(normalise(idempotency_key).encode()).hexdigest()
    return f"idem-{digest[:40]}"


def task_key(task_id: str) -> str:
    """Key of a task object."""
    return f"{TASKS}{task_id}.json"


def task_id_from_key(key: str) -> str:
    """Task id of a key made by :func:`task_key`."""
    return key.removeprefix(TASKS).removesuffix(".json")


def _time_part(millis: int) -> str:
    return f"{max(millis, 0):0{_TIME_DIGITS}d}"


def ready_key(due_millis: int, task_type: str, task_id: str, snapshot: str | None = None) -> str:
    """Key of a ready hint: sorts by due time, then type and id; the snapshot goes last."""
    sep = HINT_SEPARATOR
    key = f"{READY}{_time_part(due_millis)}{sep}{task_type}{sep}{task_id}"
    return key if snapshot is None else f"{key}{sep}{snapshot}"


def ready_key_cutoff(now_millis: int) -> str:
    """Return a key that sorts after every ready hint due at or before ``now_millis``."""
    return f"{READY}{_time_part(now_millis)}{chr(ord(HINT_SEPARATOR) + 1)}"


def parse_ready_key(key: str) -> tuple[int, str, str]:
    """Split a ready hint key into (due ms, task type, task id), ignoring a snapshot."""
    return split_ready_key(key)[:3]


def split_ready_key(key: str) -> tuple[int, str, str, str | None]:
    """Split a ready hint key into (due ms, task type, task id, snapshot or None).

    Raises ValueError for a key of another shape.
    """
    parts = key.removeprefix(READY).split(HINT_SEPARATOR, 3)
    if len(parts) < 3:
        raise ValueError(f"not a ready hint key: {key!r}")
    snapshot = parts[3] if len(parts) == 4 else None
    return int(parts[0]), parts[1], parts[2], snapshot


def step_task_id(run_id: str, step: str, index: int | None = None) -> str:
    """Deterministic id of a step's task, or of one item of a mapped step."""
    return f"{run_id}.{step}" if index is None else f"{run_id}.{step}.{index}"


def run_tasks_prefix(run_id: str) -> str:
    """Prefix of the keys of every task of one run."""
    return f"{TASKS}{run_id}."


def run_key(run_id: str) -> str:
    """Key of a run object."""
    return f"{RUNS}{run_id}.json"


def run_id_from_key(key: str) -> str:
    """Run id of a key made by :func:`run_key`."""
    return key.removeprefix(RUNS).removesuffix(".json")


def map_width_key(run_id: str, node: str) -> str:
    """Key of the object that records how many items a map node has in this run."""
    return f"{WIDTHS}{run_id}/{node}"


MAP_GROUP_SIZE = 100
"""Map items per group: a finished item lists only its group, never all items."""


def done_prefix(run_id: str, node: str | None = None) -> str:
    """Prefix of the done markers of a run, or of one of its nodes."""
    base = f"{DONE}{run_id}/"
    return base if node is None else f"{base}{node}/"


def node_done_key(run_id: str, node: str) -> str:
    """Key of the marker written once a node (every item, for a map) has finished."""
    return f"{done_prefix(run_id, node)}all"


def map_group(index: int) -> int:
    """Group of a map item."""
    return index // MAP_GROUP_SIZE


def item_done_prefix(run_id: str, node: str, group: int) -> str:
    """Prefix of the done markers of one group of map items."""
    return f"{done_prefix(run_id, node)}g{group:06d}/"


def item_done_key(run_id: str, node: str, index: int) -> str:
    """Key of the marker written once one map item has finished."""
    return f"{item_done_prefix(run_id, node, map_group(index))}{index:08d}"


def group_done_prefix(run_id: str, node: str) -> str:
    """Prefix of the markers of map groups whose items have all finished."""
    return f"{done_prefix(run_id, node)}groups/"


def group_done_key(run_id: str, node: str, group: int) -> str:
    """Key of the marker written once every item of a map group has finished."""
    return f"{group_done_prefix(run_id, node)}{group:06d}"


def blob_key(digest: str) -> str:
    """Key of a content-addressed blob."""
    return f"{BLOBS}{digest}"


def doctor_prefix(check_id: str) -> str:
    """Prefix of the scratch objects of one run of the store checks."""
    return f"{DOCTOR}{check_id}/"
