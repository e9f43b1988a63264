"""Map the HTTP client's transport errors to the botocore exceptions boto3 raises for them.

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
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

from buquet.store._http import TransportError


class InvalidResponseError(BotoCoreError):
    """An S3 response that lacks a field the request needs or is not valid XML."""

    fmt = "{operation} returned an invalid response: {detail}"


def transport_error(error: TransportError, url: str) -> BotoCoreError:
    """Return the botocore exception for ``error`` raised while requesting ``url``."""
    stage = error.stage
    if stage == "connect":
        return EndpointConnectionError(endpoint_url=url, error=error)
    if stage == "connect-timeout":
        return ConnectTimeoutError(endpoint_url=url, error=error)
    if stage == "tls":
        return SSLError(endpoint_url=url, error=error)
    if stage == "read-timeout":
        return ReadTimeoutError(endpoint_url=url, error=error)
    if stage == "body":
        return ResponseStreamingError(error=error)
    return ConnectionClosedError(endpoint_url=url)
