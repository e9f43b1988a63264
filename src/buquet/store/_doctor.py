"""Checks that a store provides what buquet relies on: conditions, ETags, clock, paging.

A store that accepts conditional writes but ignores their conditions looks
healthy until two workers run the same task. These checks write scratch
objects under ``doctor/<random id>/`` and delete them afterwards, so they are
safe to run against a bucket in use.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from buquet import keys
from buquet.errors import PreconditionFailed, StoreError
from buquet.store._base import ObjectStore
from buquet.store._s3 import S3Store

logger = logging.getLogger(__name__)

CREATE_IF_ABSENT = "create-if-absent"
STALE_IF_MATCH = "stale if-match"
ETAG_FORMAT = "etag format"
CONCURRENT_WRITERS = "concurrent writers"
CLOCK = "clock"
LISTING = "listing"

DEFAULT_CLOCK_TOLERANCE_SECONDS = 30.0
CONCURRENT_WRITER_COUNT = 8
CONCURRENT_ROUNDS = 3
# Bounds the wait of each writer for the others, so a stuck thread cannot hang the check.
_BARRIER_TIMEOUT_SECONDS = 60.0
LISTING_KEY_COUNT = 3
LISTING_PAGE_SIZE = 2
# Three keys need two pages; more than this means the listing does not advance.
_MAX_LISTING_PAGES = 10

_NO_CONDITIONS_FIX = (
    "two workers could both claim one task; use a store that enforces If-None-Match "
    "and If-Match on PutObject and DeleteObject"
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one store check, with a one-line detail for people."""

    name: str
    passed: bool
    detail: str


class _CheckFailed(Exception):
    """Internal: the store behaved wrongly; the message is the result's detail."""


class _Scratch:
    """Scratch keys of one check, all under one prefix, deleted by :meth:`remove_all`."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self._keys: list[str] = []

    def key(self, name: str) -> str:
        key = self.prefix + name
        self._keys.append(key)
        return key

    def remove_all(self) -> None:
        for key in self._keys:
            try:
                self.store.delete(key)
            except StoreError as error:
                logger.warning(
                    "cannot delete scratch object %s (%s); delete it by hand", key, error
                )


Check = Callable[[_Scratch], str]


def check_store(
    store: ObjectStore,
    *,
    full: bool = True,
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE_SECONDS,
) -> list[CheckResult]:
    """Run the store checks and return one result per check, in a fixed order.

    ``full=False`` skips the concurrent-writers check, the only one that
    makes more than a handful of requests. ``clock_tolerance`` is the largest
    offset, in seconds, between the store's clock and the local clock that
    passes. A StoreError raised during a check fails that check; the others
    still run.
    """
    checks: list[tuple[str, Check]] = [
        (CREATE_IF_ABSENT, _check_create_if_absent),
        (STALE_IF_MATCH, _check_stale_if_match),
        (ETAG_FORMAT, _check_etag_format),
        (CLOCK, functools.partial(_check_clock, tolerance=clock_tolerance)),
        (LISTING, _check_listing),
    ]
    if full:
        checks.append((CONCURRENT_WRITERS, _check_concurrent_writers))
    prefix = keys.doctor_prefix(uuid.uuid4().hex)
    return [_run_check(store, prefix, name, check) for name, check in checks]


def failed_checks(results: list[CheckResult]) -> list[CheckResult]:
    """Return the results that did not pass."""
    return [result for result in results if not result.passed]


def _run_check(store: ObjectStore, prefix: str, name: str, check: Check) -> CheckResult:
    scratch = _Scratch(store, prefix)
    try:
        result = CheckResult(name, True, check(scratch))
    except _CheckFailed as failure:
        result = CheckResult(name, False, str(failure))
    except StoreError as error:
        result = CheckResult(name, False, f"{type(error).__name__}: {error}")
    finally:
        scratch.remove_all()
    logger.debug(
        "store check %r on %s: passed=%s, %s", name, store.url, result.passed, result.detail
    )
    return result


def _check_create_if_absent(scratch: _Scratch) -> str:
    key = scratch.key("create")
    scratch.store.create(key, b"first")
    try:
        scratch.store.create(key, b"second")
    except PreconditionFailed:
        return "a second create of the same key was rejected"
    raise _CheckFailed(
        f"a second create of an existing key succeeded: the store ignores If-None-Match: *, "
        f"so {_NO_CONDITIONS_FIX}"
    )


def _check_stale_if_match(scratch: _Scratch) -> str:
    store = scratch.store
    key = scratch.key("replace")
    first = store.create(key, b"version 1")
    _replace_or_fail(store, key, b"version 2", first, "a replace with the current ETag")
    try:
        store.replace(key, b"version 3", first)
    except PreconditionFailed:
        pass
    else:
        raise _CheckFailed(
            f"a replace with a stale ETag succeeded: the store ignores If-Match, so "
            f"{_NO_CONDITIONS_FIX}"
        )
    try:
        store.delete(key, first)
    except PreconditionFailed:
        return "stale ETags were rejected by replace and delete; the current one was accepted"
    raise _CheckFailed(
        f"a delete with a stale ETag removed the object: the store ignores If-Match on "
        f"delete, so {_NO_CONDITIONS_FIX}"
    )


def _replace_or_fail(store: ObjectStore, key: str, data: bytes, etag: str, operation: str) -> str:
    try:
        return store.replace(key, data, etag)
    except PreconditionFailed as error:
        raise _CheckFailed(
            f"{operation} ({etag}) was rejected: {error}; the store does not compare ETags "
            "as it returns them"
        ) from error


def _check_etag_format(scratch: _Scratch) -> str:
    store = scratch.store
    key = scratch.key("etag")
    created = store.create(key, b"etag format")
    stored = store.get(key)
    if stored is None:
        raise _CheckFailed(f"object {key!r} was not found right after its create")
    if stored.etag != created:
        raise _CheckFailed(
            f"create returned ETag {created!r} but get returned {stored.etag!r}; "
            "both must be the same string"
        )
    if len(created) < 2 or not created.startswith('"') or not created.endswith('"'):
        raise _CheckFailed(f"ETag {created!r} is not quoted as S3 returns ETags ('\"...\"')")
    _replace_or_fail(store, key, b"etag format 2", stored.etag, "a replace with the ETag from get")
    return f"create and get returned the same quoted ETag {created}"


def _check_clock(scratch: _Scratch, *, tolerance: float) -> str:
    store = scratch.store
    store_now = store.now()
    offset = (store_now - dt.datetime.now(dt.UTC)).total_seconds()
    if isinstance(store, S3Store):
        measured = store.clock_offset
        if measured is None:
            raise _CheckFailed(
                "no response of the S3 server carried a Date header, so buquet cannot read "
                "the store's clock; use a server that sends Date"
            )
        offset = measured
    if abs(offset) > tolerance:
        direction = "ahead of" if offset > 0 else "behind"
        raise _CheckFailed(
            f"the store's clock is {abs(offset):.1f} s {direction} this machine's clock "
            f"(tolerance {tolerance:g} s); fix the clocks with NTP"
        )
    return f"store clock minus local clock: {offset:+.3f} s"


def _check_listing(scratch: _Scratch) -> str:
    store = scratch.store
    created = [scratch.key(f"listing/{index}") for index in range(LISTING_KEY_COUNT)]
    for key in created:
        store.create(key, b"listed")
    listed, pages = _list_in_pages(store, scratch.prefix + "listing/")
    if listed != created:
        raise _CheckFailed(
            f"paging with max_keys={LISTING_PAGE_SIZE} returned {listed} in {pages} pages; "
            f"expected exactly {created} in order"
        )
    return f"{len(listed)} keys listed in {pages} pages of at most {LISTING_PAGE_SIZE}"


def _list_in_pages(store: ObjectStore, prefix: str) -> tuple[list[str], int]:
    listed: list[str] = []
    cursor = ""
    for page_number in range(1, _MAX_LISTING_PAGES + 1):
        page = store.list_page(prefix, cursor, LISTING_PAGE_SIZE)
        if len(page.keys) > LISTING_PAGE_SIZE:
            raise _CheckFailed(
                f"a page of the listing has {len(page.keys)} keys; max_keys was {LISTING_PAGE_SIZE}"
            )
        listed.extend(page.keys)
        if page.next_start_after is None:
            return listed, page_number
        cursor = page.next_start_after
    raise _CheckFailed(
        f"the listing of {LISTING_KEY_COUNT} keys did not end after {_MAX_LISTING_PAGES} pages"
    )


def _check_concurrent_writers(scratch: _Scratch) -> str:
    store = scratch.store
    key = scratch.key("contended")
    etag = store.create(key, b"round 0")
    with ThreadPoolExecutor(CONCURRENT_WRITER_COUNT, thread_name_prefix="buquet-doctor") as pool:
        for round_number in range(1, CONCURRENT_ROUNDS + 1):
            etag = _contended_round(scratch, pool, key, etag, round_number)
    return (
        f"{CONCURRENT_ROUNDS} rounds of {CONCURRENT_WRITER_COUNT} writers replacing one key "
        "from the same ETag: exactly one winner in each"
    )


def _contended_round(
    scratch: _Scratch, pool: ThreadPoolExecutor, key: str, etag: str, round_number: int
) -> str:
    barrier = threading.Barrier(CONCURRENT_WRITER_COUNT, timeout=_BARRIER_TIMEOUT_SECONDS)
    futures = [
        pool.submit(
            _replace_after_barrier,
            scratch.store,
            barrier,
            key,
            f"round {round_number} writer {writer}".encode(),
            etag,
        )
        for writer in range(CONCURRENT_WRITER_COUNT)
    ]
    outcomes = [future.result() for future in futures]
    winners = [outcome for outcome in outcomes if outcome is not None]
    if len(winners) != 1:
        raise _CheckFailed(
            f"round {round_number}: {len(winners)} of {CONCURRENT_WRITER_COUNT} replaces from "
            f"the same ETag succeeded, expected exactly 1; {_NO_CONDITIONS_FIX}"
        )
    stored = scratch.store.get(key)
    if stored is None or stored.etag != winners[0]:
        raise _CheckFailed(
            f"round {round_number}: the object's ETag is not the winner's ETag {winners[0]}"
        )
    return winners[0]


def _replace_after_barrier(
    store: ObjectStore, barrier: threading.Barrier, key: str, data: bytes, etag: str
) -> str | None:
    barrier.wait()
    try:
        return store.replace(key, data, etag)
    except PreconditionFailed:
        return None
