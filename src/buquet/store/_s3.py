"""A store in an S3 bucket; works with any S3-compatible server."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from buquet.errors import AmbiguousWrite, ConfigError, ListingError, PreconditionFailed, StoreError
from buquet.store._base import DEFAULT_PAGE_SIZE, ListPage, StoredObject
from buquet.store._clock import ServerClock
from buquet.store._retry import (
    ErrorKind,
    RetryPolicy,
    advice,
    classify,
    describe,
    may_have_been_applied,
)
from buquet.store._s3http import MAX_DELETE_KEYS, S3HttpClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SIGNING_REGION = "us-east-1"
# now() measures the offset again when the newest Date header is older than this.
_CLOCK_REFRESH_SECONDS = 300.0
# Bound on the pages followed by continuation token while a truncated listing
# returns no keys, so a misbehaving server cannot make a listing loop forever.
_MAX_EMPTY_PAGES = 100


def endpoint_from_env(environ: Mapping[str, str]) -> str | None:
    """Return the endpoint from ``S3_ENDPOINT``, else ``AWS_ENDPOINT_URL``, else None."""
    return environ.get("S3_ENDPOINT") or environ.get("AWS_ENDPOINT_URL") or None


def check_endpoint(endpoint: str | None) -> str | None:
    """Reject an endpoint that is not an http:// or https:// URL with a host."""
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"invalid S3 endpoint {endpoint!r}: use a URL such as http://127.0.0.1:8333 "
            "(set by S3_ENDPOINT or AWS_ENDPOINT_URL)"
        )
    return endpoint


def region_from_env(environ: Mapping[str, str]) -> str | None:
    """Return the region from ``S3_REGION``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``."""
    for name in ("S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name):
            return environ[name]
    return None


def make_client(
    endpoint_url: str | None,
    region: str | None,
    max_pool_connections: int,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
) -> S3HttpClient:
    """Create buquet's own S3 client, which retries nothing, so a lost response is never
    hidden by a silent retry. Custom endpoints get path-style addressing and, without a
    region, sign for ``us-east-1``. Credentials default to botocore's usual chain."""
    if endpoint_url and not region:
        region = DEFAULT_SIGNING_REGION
    return S3HttpClient(
        endpoint_url=endpoint_url,
        region=region,
        max_pool_connections=max_pool_connections,
        access_key=access_key,
        secret_key=secret_key,
        session_token=session_token,
    )


class S3Store:
    """An object store under ``prefix`` in an S3 bucket.

    Conditional writes use ``If-None-Match: *`` (create) and ``If-Match``
    (replace, delete). 412 PreconditionFailed, 409 ConditionalRequestConflict,
    and 404 on an ``If-Match`` write or delete raise PreconditionFailed.
    Throttling, 5xx and connection errors are retried with capped, jittered
    exponential backoff (``retry``); then StoreError is raised with the last
    error as ``__cause__``.

    A conditional write whose attempt may have been applied although its
    response was lost (closed connection, read timeout, HTTP 500, 502 or 504)
    and whose retry then fails its condition raises AmbiguousWrite, not
    PreconditionFailed: the retry may have found the first attempt's own
    object or ETag. A write that runs out of retries after such an attempt
    raises AmbiguousWrite too. Callers resolve both by reading the object
    again and checking a token they wrote into it.

    ``endpoint_url`` and ``region`` default to ``S3_ENDPOINT`` /
    ``AWS_ENDPOINT_URL`` and ``S3_REGION`` / ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION`` from ``environ`` (default ``os.environ``).
    ``client`` replaces buquet's own S3 client (:class:`S3HttpClient`); a
    boto3 S3 client works too, e.g. with moto in tests.

    NOTE: SeaweedFS 4.48 lists keys in directory order (``a/b`` before
    ``a-b``), not in S3's byte order, so ``iter_keys(..., end_before=...)``
    can stop early there when key segments differ only after a ``-``, ``.``
    or similar character that sorts before ``/``. Every key is still listed.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        max_pool_connections: int = 32,
        client: S3Client | S3HttpClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.bucket = bucket
        self.prefix = _normalise_prefix(prefix)
        self.url = f"s3://{bucket}/{self.prefix}".removesuffix("/")
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = ServerClock()
        self._client: S3Client | S3HttpClient = client or make_client(
            check_endpoint(endpoint_url or endpoint_from_env(environ)),
            region or region_from_env(environ),
            max_pool_connections,
        )

    @property
    def clock_offset(self) -> float | None:
        """The store's clock minus the local clock, in seconds, from recent ``Date``
        headers; None before the first response that carried one."""
        return self._clock.offset

    def get(self, key: str) -> StoredObject | None:
        def read() -> tuple[bytes, str]:
            sent_at = time.time()
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            self._observe(response, sent_at)
            return response["Body"].read(), response["ETag"]

        try:
            data, etag = self._call("GetObject", key, read)
        except _NotFoundError:
            return None
        except _ConditionError as exc:
            cause = exc.__cause__
            raise StoreError(
                f"GetObject of {key!r} failed: {describe(cause or exc)}", key=key
            ) from cause
        return StoredObject(key, data, etag)

    def create(self, key: str, data: bytes) -> str:
        return self._put(key, data, {"IfNoneMatch": "*"}, "already exists")

    def replace(self, key: str, data: bytes, etag: str) -> str:
        return self._put(key, data, {"IfMatch": etag}, "changed or is missing")

    def put(self, key: str, data: bytes) -> str:
        return self._put(key, data, {}, "")

    def delete(self, key: str, etag: str | None = None) -> None:
        condition: dict[str, Any] = {"IfMatch": etag} if etag is not None else {}
        try:
            self._request(
                "DeleteObject",
                key,
                lambda: self._client.delete_object(
                    Bucket=self.bucket, Key=self._full(key), **condition
                ),
                write=True,
            )
        except _NotFoundError as exc:
            if etag is None:
                return
            raise _condition_failed(exc, "DeleteObject", key, "is missing") from exc.__cause__
        except _ConditionError as exc:
            raise _condition_failed(
                exc, "DeleteObject", key, "changed or is missing"
            ) from exc.__cause__

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` without conditions, up to 1000 per DeleteObjects request.

        Missing keys count as deleted. Raises StoreError naming the first key,
        in the order given, that the server failed to delete. The chunks before
        that key's chunk are deleted, and the chunks after it are not sent.
        SeaweedFS 4.48 supports DeleteObjects, as the conformance tests check.
        """
        for start in range(0, len(keys), MAX_DELETE_KEYS):
            self._delete_chunk(keys[start : start + MAX_DELETE_KEYS])

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        arguments: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": self._full(prefix),
            "MaxKeys": max_keys,
        }
        if start_after:
            arguments["StartAfter"] = self._full(start_after)
        for _ in range(_MAX_EMPTY_PAGES):
            response = self._list(prefix, arguments)
            keys = [self._relative(item["Key"]) for item in response.get("Contents", [])]
            if not response.get("IsTruncated"):
                return ListPage(keys, None)
            if keys:
                return ListPage(keys, keys[-1])
            token = response.get("NextContinuationToken")
            if not token:
                raise ListingError(
                    f"listing of {self._full(prefix)!r} in bucket {self.bucket!r} is truncated "
                    "but has no keys and no continuation token; the S3 server is not "
                    "compatible with ListObjectsV2 paging"
                )
            arguments["ContinuationToken"] = token
        raise ListingError(
            f"listing of {self._full(prefix)!r} in bucket {self.bucket!r} returned "
            f"{_MAX_EMPTY_PAGES} truncated pages without keys"
        )

    def now(self) -> dt.datetime:
        age = self._clock.age()
        if age is None or age > _CLOCK_REFRESH_SECONDS:
            self._measure_clock()
        return self._clock.now()

    def close(self) -> None:
        self._client.close()

    def _put(self, key: str, data: bytes, condition: dict[str, Any], failed_state: str) -> str:
        def write() -> Any:
            return self._client.put_object(
                Bucket=self.bucket, Key=self._full(key), Body=data, **condition
            )

        try:
            response = self._request("PutObject", key, write, write=True)
        except (_ConditionError, _NotFoundError) as exc:
            if not condition:
                cause = exc.__cause__
                raise StoreError(
                    f"PutObject of {key!r} failed: {describe(cause or exc)}", key=key
                ) from cause
            raise _condition_failed(exc, "PutObject", key, failed_state) from exc.__cause__
        return str(response["ETag"])

    def _delete_chunk(self, keys: Sequence[str]) -> None:
        request: Any = {"Objects": [{"Key": self._full(key)} for key in keys], "Quiet": True}
        try:
            response = self._request(
                "DeleteObjects",
                keys[0],
                lambda: self._client.delete_objects(Bucket=self.bucket, Delete=request),
            )
        except (_ConditionError, _NotFoundError) as exc:
            cause = exc.__cause__
            raise StoreError(
                f"DeleteObjects of {len(keys)} keys from {keys[0]!r} failed: "
                f"{describe(cause or exc)}; check the bucket name",
                key=keys[0],
            ) from cause
        failures = {
            self._relative(str(error.get("Key", ""))): error
            for error in response.get("Errors", [])
            if error.get("Code") != "NoSuchKey"
        }
        if not failures:
            return
        key = next((key for key in keys if key in failures), next(iter(failures)))
        error = failures[key]
        raise StoreError(
            f"DeleteObjects failed to delete {key!r}: {error.get('Code')} "
            f"{error.get('Message', '')}; delete the keys again",
            key=key,
        )

    def _list(self, prefix: str, arguments: dict[str, Any]) -> Any:
        try:
            return self._request(
                "ListObjectsV2", prefix, lambda: self._client.list_objects_v2(**arguments)
            )
        except (_ConditionError, _NotFoundError) as exc:
            raise StoreError(
                f"ListObjectsV2 of {self._full(prefix)!r} failed: bucket {self.bucket!r} "
                "not found or condition rejected; check the bucket name",
                key=prefix,
            ) from exc.__cause__

    def _measure_clock(self) -> None:
        self._list("", {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": 1})

    def _request(
        self, operation: str, key: str, send: Callable[[], Any], *, write: bool = False
    ) -> Any:
        """Send a request whose response carries the ``Date`` header, with retries."""

        def timed() -> Any:
            sent_at = time.time()
            response = send()
            self._observe(response, sent_at)
            return response

        return self._call(operation, key, timed, write=write)

    def _call(
        self, operation: str, key: str, attempt_once: Callable[[], T], *, write: bool = False
    ) -> T:
        """Run ``attempt_once`` with retries of transient errors.

        For a ``write``, it remembers whether a failed attempt may have been
        applied, so that a later condition failure or the last error is
        reported as ambiguous.
        """
        maybe_applied = False
        for attempt in range(self._retry.max_attempts):
            sent_at = time.time()
            try:
                return attempt_once()
            except (ClientError, BotoCoreError) as exc:
                kind = self._after_error(exc, sent_at)
                if kind is not ErrorKind.TRANSIENT:
                    raise _signal(kind, operation, key, exc, maybe_applied) from exc
                maybe_applied = maybe_applied or (write and may_have_been_applied(exc))
                if attempt + 1 == self._retry.max_attempts:
                    raise self._exhausted(operation, key, attempt + 1, exc, maybe_applied) from exc
                delay = self._retry.delay(attempt)
                logger.info(
                    "%s of %r failed with %s; will retry in %.2f s (attempt %s of %s)",
                    operation, key, describe(exc), delay, attempt + 1, self._retry.max_attempts,
                )  # fmt: skip
                self._sleep(delay)
        raise AssertionError("unreachable: the retry loop returns or raises")

    def _exhausted(
        self, operation: str, key: str, attempts: int, exc: Exception, maybe_applied: bool
    ) -> StoreError:
        message = (
            f"{operation} of {key!r} in bucket {self.bucket!r} failed after "
            f"{attempts} attempts: {describe(exc)}"
        )
        if maybe_applied:
            return AmbiguousWrite(
                f"{message}; an attempt may have been applied, so read the object to check",
                key=key,
            )
        return StoreError(message, key=key)

    def _after_error(self, exc: Exception, sent_at: float) -> ErrorKind:
        if isinstance(exc, ClientError):
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            self._clock.observe(headers.get("date"), sent_at, time.time())
        return classify(exc)

    def _observe(self, response: Any, sent_at: float) -> None:
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        self._clock.observe(headers.get("date"), sent_at, time.time())

    def _full(self, key: str) -> str:
        return self.prefix + key

    def _relative(self, full_key: str) -> str:
        return full_key.removeprefix(self.prefix)


class _RejectedError(Exception):
    """Internal: the server rejected the request.

    ``after_lost_response`` is True when an earlier attempt of the same write
    may have been applied.
    """

    def __init__(self, after_lost_response: bool = False) -> None:
        super().__init__()
        self.after_lost_response = after_lost_response


class _NotFoundError(_RejectedError):
    """Internal: the request got 404 / NoSuchKey."""


class _ConditionError(_RejectedError):
    """Internal: the request got 412 or 409 ConditionalRequestConflict."""


def _signal(
    kind: ErrorKind, operation: str, key: str, exc: Exception, after_lost_response: bool
) -> Exception:
    if kind is ErrorKind.NOT_FOUND:
        return _NotFoundError(after_lost_response)
    if kind is ErrorKind.PRECONDITION:
        return _ConditionError(after_lost_response)
    return StoreError(f"{operation} of {key!r} failed: {describe(exc)}{advice(exc)}", key=key)


def _condition_failed(
    exc: _RejectedError, operation: str, key: str, failed_state: str
) -> StoreError:
    """Build the error of a conditional write whose condition failed."""
    if exc.after_lost_response:
        return AmbiguousWrite(
            f"{operation} of {key!r}: the response of an earlier attempt was lost and the "
            f"retry found the object {failed_state}; the earlier attempt may have been "
            "applied, so read the object to check",
            key=key,
        )
    return PreconditionFailed(f"object {key!r} {failed_state}", key=key)


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""
