"""S3 requests rejected for a skewed clock fail at once, with an error that names the clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from buquet.errors import PreconditionFailed, StoreError
from buquet.store import S3Store
from buquet.store._retry import ErrorKind, advice, classify

BUCKET = "unit-bucket"
SKEW_CODE = "RequestTimeTooSkewed"
SKEW_MESSAGE = "The difference between the request time and the current time is too large."


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="unit", aws_secret_access_key="unit"
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def store(client: Any, delays: list[float]) -> S3Store:
    return S3Store(BUCKET, "pre", client=client, sleep=delays.append)


def add_skew_error(stubber: Stubber, method: str) -> None:
    stubber.add_client_error(
        method, service_error_code=SKEW_CODE, service_message=SKEW_MESSAGE, http_status_code=403
    )


def test_skew_get_not_retried(store: S3Store, stubber: Stubber, delays: list[float]) -> None:
    add_skew_error(stubber, "get_object")

    with pytest.raises(StoreError) as caught:
        store.get("a")

    message = str(caught.value)
    assert SKEW_CODE in message
    assert "clock" in message
    assert "NTP" in message
    assert delays == []
    assert caught.value.key == "a"
    stubber.assert_no_pending_responses()


def test_skew_create_not_retried(store: S3Store, stubber: Stubber, delays: list[float]) -> None:
    add_skew_error(stubber, "put_object")

    with pytest.raises(StoreError) as caught:
        store.create("a", b"1")

    assert not isinstance(caught.value, PreconditionFailed)
    assert "clock" in str(caught.value)
    assert delays == []
    stubber.assert_no_pending_responses()


def test_skew_listing_names_clock(store: S3Store, stubber: Stubber, delays: list[float]) -> None:
    add_skew_error(stubber, "list_objects_v2")

    with pytest.raises(StoreError) as caught:
        store.list_page("tasks/")

    assert "clock" in str(caught.value)
    assert delays == []
    stubber.assert_no_pending_responses()


def test_skew_classified_fatal() -> None:
    error = ClientError(
        {
            "Error": {"Code": SKEW_CODE, "Message": SKEW_MESSAGE},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "GetObject",
    )

    assert classify(error) is ErrorKind.FATAL
    assert "NTP" in advice(error)


def test_other_errors_get_no_advice() -> None:
    error = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "GetObject",
    )

    assert advice(error) == ""
