"""Map urllib3's transport errors to the botocore exceptions boto3 raises for them.

The store's retry logic (``_retry``) uses these botocore types to separate a
request that never reached the server from one whose response was lost. A
failed connect is never applied. A closed connection, a read timeout or a
cut-off body may follow a request that the server applied.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)
from urllib3 import exceptions as urllib3_errors


class InvalidResponseError(BotoCoreError):
    """An S3 response that lacks a field the request needs or is not valid XML."""

    fmt = "{operation} returned an invalid response: {detail}"


def transport_error(error: Exception, url: str, *, body_started: bool) -> BotoCoreError:
    """Return the botocore exception for ``error`` raised while requesting ``url``.

    ``body_started`` is True when the status line and headers had arrived and
    the error came while reading the body.
    """
    if isinstance(error, urllib3_errors.ReadTimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=error)
    if body_started:
        return ResponseStreamingError(error=error)
    # NewConnectionError (refused, unreachable, DNS failure) subclasses
    # ConnectTimeoutError in urllib3 2, so it is checked first.
    if isinstance(error, urllib3_errors.NewConnectionError):
        return EndpointConnectionError(endpoint_url=url, error=error)
    if isinstance(error, urllib3_errors.ConnectTimeoutError):
        return ConnectTimeoutError(endpoint_url=url, error=error)
    if isinstance(error, urllib3_errors.SSLError):
        return SSLError(endpoint_url=url, error=error)
    if isinstance(error, urllib3_errors.ProtocolError | OSError):
        return ConnectionClosedError(endpoint_url=url)
    return HTTPClientError(error=error)
