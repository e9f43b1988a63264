"""Classification of S3 errors and the backoff between retries.

Errors are classified by their error code and HTTP status, never by message text.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
    }
)
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
# The server rejected the request's SigV4 timestamp. Retrying signs the same way
# and fails again, so the caller gets an error that names the clock instead.
CLOCK_SKEW_CODES = frozenset({"RequestTimeTooSkewed"})
# Transport errors raised after the request may have reached the server.
_AFTER_SEND_TRANSPORT_ERRORS = (
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
# Statuses after which the server may have applied the request. A 503 (SlowDown,
# ServiceUnavailable) is treated as a request the server rejected without applying it.
_MAYBE_APPLIED_STATUSES = frozenset({500, 502, 504})
_TRANSIENT_TRANSPORT_ERRORS = (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)


class ErrorKind(enum.Enum):
    """The consequence of a failed S3 request for its caller."""

    PRECONDITION = "precondition"
    """412 PreconditionFailed or 409 ConditionalRequestConflict: the condition did not hold."""
    NOT_FOUND = "not found"
    TRANSIENT = "transient"
    """Worth retrying: throttling, 5xx, connection errors and timeouts."""
    FATAL = "fatal"


def classify(error: Exception) -> ErrorKind:
    """Classify an exception raised by a boto3 call."""
    if isinstance(error, ClientError):
        return _classify_client_error(error)
    if isinstance(error, _TRANSIENT_TRANSPORT_ERRORS):
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def may_have_been_applied(error: Exception) -> bool:
    """Check whether a failed request may still have been applied by the server.

    True for connection errors after the request was sent (closed connection,
    read timeout, cut-off response) and for HTTP 500, 502 and 504. False when
    the connection was never made or the server rejected the request.
    """
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status in _MAYBE_APPLIED_STATUSES
    return isinstance(error, _AFTER_SEND_TRANSPORT_ERRORS)


def _classify_client_error(error: ClientError) -> ErrorKind:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status == 412 or code == "PreconditionFailed":
        return ErrorKind.PRECONDITION
    if code == "ConditionalRequestConflict":
        return ErrorKind.PRECONDITION
    if code == "NoSuchBucket" or code in CLOCK_SKEW_CODES:
        return ErrorKind.FATAL
    if status == 404 or code in _NOT_FOUND_CODES:
        return ErrorKind.NOT_FOUND
    if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUSES:
        return ErrorKind.TRANSIENT
    return ErrorKind.FATAL


def describe(error: BaseException) -> str:
    """Return the error code and HTTP status of a boto3 error, or its type name."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "?")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return f"{code} (HTTP {status})"
    if isinstance(error, BotoCoreError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


def advice(error: BaseException) -> str:
    """Return what to do about an error whose code has one known cause, else ``""``."""
    if not isinstance(error, ClientError):
        return ""
    if error.response.get("Error", {}).get("Code") in CLOCK_SKEW_CODES:
        return (
            ": this machine's clock differs from the S3 server's clock by more than the "
            "server accepts for signed requests, so fix the clock with NTP"
        )
    return ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter.

    Attempt ``n`` (from 0) waits a random time in [0, min(cap, base * 2**n)] seconds.
    """

    max_attempts: int = 8
    base_seconds: float = 0.05
    cap_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        """Return the wait in seconds after the failed attempt ``attempt`` (from 0)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0**attempt)
        return random.uniform(0.0, ceiling)
