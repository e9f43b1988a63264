"""The store checks on stores that break one guarantee each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from buquet.errors import StoreError
from buquet.store import (
    CheckResult,
    ListPage,
    MemoryStore,
    S3Store,
    StoredObject,
    check_store,
    failed_checks,
)

ALL_CHECKS = [
    "create-if-absent",
    "stale if-match",
    "etag format",
    "clock",
    "listing",
    "concurrent writers",
]


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


class UnquotedEtagStore(MemoryStore):
    """A memory store whose ETags lack S3's quotes."""

    def _store(self, key: str, data: bytes) -> str:
        etag = super()._store(key, data).strip('"')
        self._objects[key] = StoredObject(key, bytes(data), etag)
        return etag


class ShortPageStore(MemoryStore):
    """A memory store whose listing ignores max_keys and returns everything at once."""

    def list_page(self, prefix: str, start_after: str = "", max_keys: int = 1000) -> ListPage:
        return super().list_page(prefix, start_after, 1000)


class FailingStore(MemoryStore):
    """A memory store whose every create fails, as on a bucket without write permission."""

    def create(self, key: str, data: bytes) -> str:
        raise StoreError(f"PutObject of {key!r} failed: AccessDenied", key=key)


def test_doctor_memory_names_every_check() -> None:
    results = check_store(MemoryStore())

    assert [result.name for result in results] == ALL_CHECKS
    assert failed_checks(results) == []


def test_doctor_quick_skips_concurrent_writers() -> None:
    results = check_store(MemoryStore(), full=False)

    assert [result.name for result in results] == ALL_CHECKS[:-1]


def test_doctor_removes_scratch_objects() -> None:
    store = MemoryStore()

    check_store(store)

    assert store.list_page("").keys == []


def test_doctor_unconditional_store_fails(unconditional_store: MemoryStore) -> None:
    results = _by_name(check_store(unconditional_store))

    assert not results["create-if-absent"].passed
    assert not results["stale if-match"].passed
    assert not results["concurrent writers"].passed
    assert "If-None-Match" in results["create-if-absent"].detail
    assert "If-Match" in results["stale if-match"].detail
    assert results["etag format"].passed
    assert results["clock"].passed
    assert results["listing"].passed


def test_doctor_unconditional_store_cleaned(unconditional_store: MemoryStore) -> None:
    check_store(unconditional_store)

    assert unconditional_store.list_page("").keys == []


def test_doctor_clock_skew_fails() -> None:
    store = MemoryStore(clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90))

    clock = _by_name(check_store(store, full=False))["clock"]

    assert not clock.passed
    assert "ahead of" in clock.detail
    assert "NTP" in clock.detail


def test_doctor_clock_tolerance_option() -> None:
    store = MemoryStore(clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90))

    clock = _by_name(check_store(store, full=False, clock_tolerance=120))["clock"]

    assert clock.passed
    assert "-9" in clock.detail


def test_doctor_unquoted_etag_fails() -> None:
    etag_format = _by_name(check_store(UnquotedEtagStore(), full=False))["etag format"]

    assert not etag_format.passed
    assert "not quoted" in etag_format.detail


def test_doctor_listing_ignoring_max_keys_fails() -> None:
    listing = _by_name(check_store(ShortPageStore(), full=False))["listing"]

    assert not listing.passed
    assert "max_keys was 2" in listing.detail


def test_doctor_store_error_fails_check() -> None:
    results = _by_name(check_store(FailingStore(), full=False))

    assert not results["create-if-absent"].passed
    assert "AccessDenied" in results["create-if-absent"].detail
    assert results["clock"].passed


def _drop_date_header(parsed: dict[str, Any], **_: Any) -> None:
    parsed.get("ResponseMetadata", {}).get("HTTPHeaders", {}).pop("date", None)


@pytest.fixture
def dateless_s3_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    """An S3Store on moto whose responses reach it without a Date header."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="doctor-test")
        client.meta.events.register("after-call.s3", _drop_date_header)
        store = S3Store("doctor-test", "pre", client=client)
        yield store
        store.close()


def test_doctor_s3_without_date_fails(dateless_s3_store: S3Store) -> None:
    clock = _by_name(check_store(dateless_s3_store, full=False))["clock"]

    assert not clock.passed
    assert "Date header" in clock.detail
