"""Unit tests of S3Store: error mapping, retries, listing and the Date-header clock.

Responses come from botocore's Stubber, from moto, or from a small fake
client; nothing here opens a network connection.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber
from moto import mock_aws

from buquet.errors import AmbiguousWrite, ConfigError, ListingError, PreconditionFailed, StoreError
from buquet.store import RetryPolicy, S3Store
from buquet.store._clock import ServerClock
from buquet.store._retry import ErrorKind, classify
from buquet.store._s3 import make_client
from buquet.store._s3http import S3HttpClient

BUCKET = "unit-bucket"
ETAG = '"0123456789abcdef0123456789abcdef"'


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="unit", aws_secret_access_key="unit"
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def store(client: Any, delays: list[float]) -> S3Store:
    return S3Store(BUCKET, "pre", client=client, sleep=delays.append)


def _error(stubber: Stubber, method: str, code: str, status: int) -> None:
    stubber.add_client_error(method, service_error_code=code, http_status_code=status)


def _http_date(moment: float) -> str:
    return email.utils.formatdate(moment, usegmt=True)


def test_create_412_raises_precondition(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "put_object", "PreconditionFailed", 412)

    with pytest.raises(PreconditionFailed) as caught:
        store.create("a", b"1")

    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.key == "a"


def test_replace_409_conflict_raises_precondition(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "put_object", "ConditionalRequestConflict", 409)

    with pytest.raises(PreconditionFailed):
        store.replace("a", b"1", ETAG)


def test_replace_404_raises_precondition(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "put_object", "NoSuchKey", 404)

    with pytest.raises(PreconditionFailed):
        store.replace("a", b"1", ETAG)


def test_delete_404_with_etag_raises(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "delete_object", "NoSuchKey", 404)

    with pytest.raises(PreconditionFailed):
        store.delete("a", ETAG)


def test_delete_412_raises_precondition(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "delete_object", "PreconditionFailed", 412)

    with pytest.raises(PreconditionFailed):
        store.delete("a", ETAG)


def test_delete_404_without_etag_succeeds(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "delete_object", "NoSuchKey", 404)

    store.delete("a")


def test_put_412_is_store_error(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "put_object", "PreconditionFailed", 412)

    with pytest.raises(StoreError) as caught:
        store.put("a", b"1")

    assert not isinstance(caught.value, PreconditionFailed)


def test_no_such_bucket_is_store_error(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "put_object", "NoSuchBucket", 404)

    with pytest.raises(StoreError) as caught:
        store.replace("a", b"1", ETAG)

    assert not isinstance(caught.value, PreconditionFailed)
    assert "NoSuchBucket" in str(caught.value)


def test_get_missing_returns_none(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "get_object", "NoSuchKey", 404)

    assert store.get("a") is None


def test_access_denied_not_retried(store: S3Store, stubber: Stubber, delays: list[float]) -> None:
    _error(stubber, "get_object", "AccessDenied", 403)

    with pytest.raises(StoreError) as caught:
        store.get("a")

    assert "AccessDenied" in str(caught.value)
    assert delays == []


def test_conditions_sent_with_prefix(store: S3Store, stubber: Stubber) -> None:
    stubber.add_response(
        "put_object",
        {"ETag": ETAG},
        {"Bucket": BUCKET, "Key": "pre/a", "Body": b"1", "IfNoneMatch": "*"},
    )
    stubber.add_response(
        "put_object",
        {"ETag": ETAG},
        {"Bucket": BUCKET, "Key": "pre/a", "Body": b"2", "IfMatch": ETAG},
    )
    stubber.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": "pre/a", "IfMatch": ETAG})

    assert store.create("a", b"1") == ETAG
    assert store.replace("a", b"2", ETAG) == ETAG
    store.delete("a", ETAG)


def test_retries_503_and_500_then_succeeds(
    store: S3Store, stubber: Stubber, delays: list[float]
) -> None:
    _error(stubber, "put_object", "SlowDown", 503)
    _error(stubber, "put_object", "InternalError", 500)
    stubber.add_response("put_object", {"ETag": ETAG})

    etag = store.create("a", b"1")

    assert etag == ETAG
    assert len(delays) == 2


def test_retries_exhausted_raise_store_error(
    client: Any, stubber: Stubber, delays: list[float]
) -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=0.05, cap_seconds=2.0)
    store = S3Store(BUCKET, client=client, retry=policy, sleep=delays.append)
    for _ in range(4):
        _error(stubber, "get_object", "SlowDown", 503)

    with pytest.raises(StoreError) as caught:
        store.get("a")

    assert not isinstance(caught.value, PreconditionFailed)
    assert isinstance(caught.value.__cause__, ClientError)
    assert "4 attempts" in str(caught.value)
    assert len(delays) == 3


class _FlakyClient:
    """A fake client whose first ``failures`` calls raise ``error``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def put_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return {"ETag": ETAG, "ResponseMetadata": {"HTTPHeaders": {}}}


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
    ],
    ids=["connection", "read-timeout"],
)
def test_transport_errors_retried(error: Exception, delays: list[float]) -> None:
    fake = _FlakyClient(failures=2, error=error)
    store = S3Store(BUCKET, client=fake, sleep=delays.append)  # type: ignore[arg-type]

    assert store.put("a", b"1") == ETAG
    assert fake.calls == 3
    assert len(delays) == 2


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=0.05, cap_seconds=2.0)

    for attempt in range(12):
        ceiling = min(2.0, 0.05 * 2**attempt)
        samples = [policy.delay(attempt) for _ in range(50)]

        assert all(0.0 <= sample <= ceiling for sample in samples)
        assert len(set(samples)) > 1


class _ListingClient:
    """A fake client that returns the given ListObjectsV2 responses in order."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = responses
        self.requests: list[dict[str, Any]] = []

    def list_objects_v2(self, **arguments: Any) -> dict[str, Any]:
        self.requests.append(arguments)
        return self.responses[len(self.requests) - 1]


def test_truncated_listing_without_token_raises() -> None:
    fake = _ListingClient([{"IsTruncated": True, "Contents": []}] * 3)
    store = S3Store(BUCKET, client=fake)  # type: ignore[arg-type]

    with pytest.raises(ListingError, match="truncated but has no keys and no continuation token"):
        store.list_page("tasks/")

    assert len(fake.requests) == 1


def test_truncated_listing_follows_token_when_empty() -> None:
    fake = _ListingClient(
        [
            {"IsTruncated": True, "NextContinuationToken": "t1"},
            {"IsTruncated": False, "Contents": [{"Key": "pre/tasks/a"}]},
        ]
    )
    store = S3Store(BUCKET, "pre", client=fake)  # type: ignore[arg-type]

    page = store.list_page("tasks/")

    assert page.keys == ["tasks/a"]
    assert page.next_start_after is None
    assert fake.requests[1]["ContinuationToken"] == "t1"


def test_listing_pages_by_start_after() -> None:
    fake = _ListingClient(
        [{"IsTruncated": True, "Contents": [{"Key": "pre/t/a"}, {"Key": "pre/t/b"}]}]
    )
    store = S3Store(BUCKET, "/pre/", client=fake)  # type: ignore[arg-type]

    page = store.list_page("t/", "t/0", max_keys=2)

    assert page.keys == ["t/a", "t/b"]
    assert page.next_start_after == "t/b"
    assert fake.requests[0] == {
        "Bucket": BUCKET,
        "Prefix": "pre/t/",
        "StartAfter": "pre/t/0",
        "MaxKeys": 2,
    }


def test_date_header_sets_offset(store: S3Store, stubber: Stubber) -> None:
    server_time = time.time() + 100.0
    metadata = {"HTTPStatusCode": 200, "HTTPHeaders": {"date": _http_date(server_time)}}
    stubber.add_response("put_object", {"ETag": ETAG, "ResponseMetadata": metadata})

    store.put("a", b"1")

    offset = store.clock_offset
    assert offset is not None
    assert 98.5 < offset < 101.5
    local_plus_offset = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=100)
    assert abs((store.now() - local_plus_offset).total_seconds()) < 1.5


def test_date_header_on_error_counts(store: S3Store, stubber: Stubber) -> None:
    stubber.add_client_error(
        "get_object",
        service_error_code="NoSuchKey",
        http_status_code=404,
        response_meta={"HTTPHeaders": {"date": _http_date(time.time() - 50.0)}},
    )

    assert store.get("a") is None

    offset = store.clock_offset
    assert offset is not None
    assert -51.5 < offset < -48.5


def test_now_without_samples_lists_once(store: S3Store, stubber: Stubber) -> None:
    metadata = {"HTTPStatusCode": 200, "HTTPHeaders": {"date": _http_date(time.time() + 30)}}
    stubber.add_response(
        "list_objects_v2",
        {"IsTruncated": False, "ResponseMetadata": metadata},
        {"Bucket": BUCKET, "Prefix": "pre/", "MaxKeys": 1},
    )

    store_now = store.now()

    assert store.clock_offset is not None
    assert store_now.tzinfo is not None
    assert store_now > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=28)


def test_server_clock_narrows_interval() -> None:
    ticks = iter(float(n) for n in range(100))
    clock = ServerClock(monotonic=lambda: next(ticks))
    # Offset is exactly 10.25 s: the server's truncated Date and tight request bounds.
    for local in (1000.0, 1000.5, 1000.8):
        server = local + 10.25
        clock.observe(_http_date(int(server)), local - 0.01, local + 0.01)

    offset = clock.offset
    assert offset is not None
    assert abs(offset - 10.25) < 0.3


def test_server_clock_resets_on_step() -> None:
    ticks = iter(float(n) for n in range(100))
    clock = ServerClock(monotonic=lambda: next(ticks))
    clock.observe(_http_date(1010), 1000.0, 1000.0)

    clock.observe(_http_date(1500), 1100.0, 1100.0)

    offset = clock.offset
    assert offset is not None
    assert 399.0 < offset < 401.0


def test_server_clock_ignores_bad_date() -> None:
    clock = ServerClock()

    clock.observe("not a date", 1.0, 2.0)
    clock.observe(None, 1.0, 2.0)

    assert clock.offset is None


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("PreconditionFailed", 412, ErrorKind.PRECONDITION),
        ("ConditionalRequestConflict", 409, ErrorKind.PRECONDITION),
        ("NoSuchKey", 404, ErrorKind.NOT_FOUND),
        ("NoSuchBucket", 404, ErrorKind.FATAL),
        ("SlowDown", 503, ErrorKind.TRANSIENT),
        ("InternalError", 500, ErrorKind.TRANSIENT),
        ("BadGateway", 502, ErrorKind.TRANSIENT),
        ("GatewayTimeout", 504, ErrorKind.TRANSIENT),
        ("ThrottlingException", 400, ErrorKind.TRANSIENT),
        ("AccessDenied", 403, ErrorKind.FATAL),
        ("BucketAlreadyExists", 409, ErrorKind.FATAL),
    ],
)
def test_classify_by_code_and_status(code: str, status: int, kind: ErrorKind) -> None:
    error = ClientError(
        {
            "Error": {"Code": code, "Message": "any text"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutObject",
    )

    assert classify(error) is kind


@pytest.fixture
def moto_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("S3_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        # moto intercepts boto3 only, so the store gets a boto3 client.
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        store = S3Store(BUCKET, "pre", client=client)
        yield store
        store.close()


def test_moto_round_trip(moto_store: S3Store) -> None:
    etag = moto_store.create("tasks/a.json", b"1")
    new_etag = moto_store.replace("tasks/a.json", b"2", etag)

    stored = moto_store.get("tasks/a.json")

    assert stored is not None
    assert stored.data == b"2"
    assert stored.etag == new_etag
    assert moto_store.list_page("tasks/").keys == ["tasks/a.json"]
    assert moto_store.url == f"s3://{BUCKET}/pre"


def test_moto_if_match_missing_raises(moto_store: S3Store) -> None:
    with pytest.raises(PreconditionFailed):
        moto_store.replace("tasks/missing.json", b"1", ETAG)

    with pytest.raises(PreconditionFailed):
        moto_store.delete("tasks/missing.json", ETAG)


def test_moto_second_create_raises(moto_store: S3Store) -> None:
    moto_store.create("tasks/a.json", b"1")

    with pytest.raises(PreconditionFailed):
        moto_store.create("tasks/a.json", b"2")


def test_endpoint_and_region_from_env() -> None:
    store = S3Store(
        BUCKET,
        environ={"S3_ENDPOINT": "http://127.0.0.1:9", "S3_REGION": "eu-west-3"},
    )

    assert isinstance(store._client, S3HttpClient)
    assert store._client.endpoint_url == "http://127.0.0.1:9"
    assert store._client.region == "eu-west-3"
    store.close()


class _ScriptedClient:
    """A fake client whose calls raise or return the next entry of ``outcomes``."""

    def __init__(self, outcomes: list[Exception | dict[str, Any]]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def _next(self) -> dict[str, Any]:
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def put_object(self, **_: Any) -> dict[str, Any]:
        return self._next()

    def delete_object(self, **_: Any) -> dict[str, Any]:
        return self._next()


def _client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return ClientError(response, operation)


def _lost() -> Exception:
    return ConnectionClosedError(endpoint_url="http://127.0.0.1:9")


def _scripted_store(outcomes: list[Exception | dict[str, Any]]) -> tuple[S3Store, Any]:
    fake = _ScriptedClient(outcomes)
    store = S3Store(BUCKET, client=fake, sleep=lambda _: None)  # type: ignore[arg-type]
    return store, fake


@pytest.mark.parametrize(
    ("code", "status"),
    [("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)],
    ids=["412", "409"],
)
def test_create_lost_then_conflict_ambiguous(code: str, status: int) -> None:
    store, fake = _scripted_store([_lost(), _client_error(code, status)])

    with pytest.raises(AmbiguousWrite) as caught:
        store.create("a", b"1")

    assert caught.value.key == "a"
    assert isinstance(caught.value.__cause__, ClientError)
    assert fake.calls == 2


def test_replace_lost_then_412_ambiguous() -> None:
    store, _ = _scripted_store([_lost(), _client_error("PreconditionFailed", 412)])

    with pytest.raises(AmbiguousWrite):
        store.replace("a", b"1", ETAG)


def test_replace_500_then_412_ambiguous() -> None:
    outcomes: list[Exception | dict[str, Any]] = [
        _client_error("InternalError", 500),
        _client_error("PreconditionFailed", 412),
    ]
    store, _ = _scripted_store(outcomes)

    with pytest.raises(AmbiguousWrite):
        store.replace("a", b"1", ETAG)


def test_delete_lost_then_404_ambiguous() -> None:
    store, _ = _scripted_store([_lost(), _client_error("NoSuchKey", 404, "DeleteObject")])

    with pytest.raises(AmbiguousWrite):
        store.delete("a", ETAG)


def test_delete_lost_without_etag_succeeds() -> None:
    store, fake = _scripted_store([_lost(), _client_error("NoSuchKey", 404, "DeleteObject")])

    store.delete("a")

    assert fake.calls == 2


def test_slowdown_then_412_precondition() -> None:
    outcomes: list[Exception | dict[str, Any]] = [
        _client_error("SlowDown", 503),
        _client_error("PreconditionFailed", 412),
    ]
    store, _ = _scripted_store(outcomes)

    with pytest.raises(PreconditionFailed):
        store.create("a", b"1")


def test_connect_error_then_412_precondition() -> None:
    outcomes: list[Exception | dict[str, Any]] = [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        _client_error("PreconditionFailed", 412),
    ]
    store, _ = _scripted_store(outcomes)

    with pytest.raises(PreconditionFailed):
        store.create("a", b"1")


def test_lost_writes_exhausted_ambiguous() -> None:
    store, fake = _scripted_store([_lost() for _ in range(RetryPolicy().max_attempts)])

    with pytest.raises(AmbiguousWrite) as caught:
        store.replace("a", b"1", ETAG)

    assert "may have been applied" in str(caught.value)
    assert fake.calls == RetryPolicy().max_attempts


def test_lost_then_success_returns_etag() -> None:
    store, _ = _scripted_store([_lost(), {"ETag": ETAG, "ResponseMetadata": {"HTTPHeaders": {}}}])

    assert store.create("a", b"1") == ETAG


def test_make_client_endpoint_defaults() -> None:
    client = make_client("http://127.0.0.1:9", None, max_pool_connections=4)

    assert client.region == "us-east-1"
    assert client.max_pool_connections == 4


def test_get_409_is_store_error(store: S3Store, stubber: Stubber) -> None:
    _error(stubber, "get_object", "ConditionalRequestConflict", 409)

    with pytest.raises(StoreError) as caught:
        store.get("a")

    assert not isinstance(caught.value, PreconditionFailed)
    assert "ConditionalRequestConflict" in str(caught.value)


@pytest.mark.parametrize("endpoint", ["not-a-url", "127.0.0.1:8333", "ftp://127.0.0.1", "http://"])
def test_endpoint_without_http_url_rejected(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="invalid S3 endpoint") as caught:
        S3Store(BUCKET, environ={"S3_ENDPOINT": endpoint})

    assert repr(endpoint) in str(caught.value)
