"""A small HTTP/1.1 client with kept-alive connections, for the S3 client.

Each request goes out in one ``sendall``, and the status line and headers
are parsed here. The standard library's parser (through the ``email``
package) cost more CPU than everything else in a small S3 request. Bodies
are read by ``Content-Length``, in chunks, or up to the connection's close.
Nothing is retried here: a failure raises :class:`TransportError` naming how
far the request got, and the caller decides.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO, Literal

logger = logging.getLogger(__name__)

Stage = Literal["connect", "connect-timeout", "tls", "send", "response", "read-timeout", "body"]
"""The step at which a request failed: before it was sent (the first three), or after."""

MAX_LINE = 65_536
"""Maximum length of an accepted status or header line."""
MAX_HEADERS = 200
"""Maximum number of header lines in one response."""
_NO_BODY_STATUSES = frozenset({204, 304})
_CONTINUE_LOW, _CONTINUE_HIGH = 100, 200


class TransportError(Exception):
    """A request that failed below HTTP; ``stage`` is how far it got."""

    def __init__(self, stage: Stage, detail: str) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Response:
    """A whole response: status, headers with lower-case names, and body.

    ``reusable`` is whether the connection can carry another request.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    reusable: bool


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The address, scheme and timeouts of a server."""

    scheme: str
    host: str
    port: int
    connect_timeout: float
    read_timeout: float
    ca_bundle: str | None = None


class ConnectionPool:
    """Kept-alive connections to one endpoint, at most ``maxsize`` of them idle.

    When every connection is busy a new one is opened, and it is closed
    after use if the pool is full: a caller does not wait for a free one.
    """

    def __init__(self, endpoint: Endpoint, maxsize: int) -> None:
        self.endpoint = endpoint
        self.maxsize = maxsize
        self.num_connections = 0
        """Connections opened so far."""
        self.num_requests = 0
        """Requests sent so far."""
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._tls = _tls_context(endpoint) if endpoint.scheme == "https" else None
        # A pool dropped without close() still closes its sockets.
        weakref.finalize(self, _close_all, self._idle)

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Send one request and read its whole response."""
        connection = self._take()
        try:
            response = connection.exchange(method, target, headers, body)
        except BaseException:
            connection.close()
            raise
        if response.reusable:
            self._give_back(connection)
        else:
            connection.close()
        return response

    def close(self) -> None:
        """Close the idle connections; busy ones close when they are given back."""
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
            self.maxsize = 0
        _close_all(idle)

    def _take(self) -> _Connection:
        with self._lock:
            self.num_requests += 1
            while self._idle:
                connection = self._idle.pop()
                if not connection.dropped():
                    return connection
                connection.close()
            self.num_connections += 1
        return _Connection.open(self.endpoint, self._tls)

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.maxsize:
                self._idle.append(connection)
                return
        connection.close()


def _close_all(connections: list[_Connection]) -> None:
    for connection in connections:
        connection.close()


def _tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=endpoint.ca_bundle)


class _Connection:
    """One socket and its buffered reader."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file: BinaryIO = sock.makefile("rb")

    @classmethod
    def open(cls, endpoint: Endpoint, tls: ssl.SSLContext | None) -> _Connection:
        address = (endpoint.host, endpoint.port)
        try:
            sock = socket.create_connection(address, timeout=endpoint.connect_timeout)
        except TimeoutError as error:
            raise TransportError("connect-timeout", f"{error} ({endpoint.host})") from error
        except OSError as error:
            raise TransportError("connect", f"{error} ({endpoint.host})") from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=endpoint.host)
            except (ssl.SSLError, OSError) as error:
                sock.close()
                raise TransportError("tls", str(error)) from error
        sock.settimeout(endpoint.read_timeout)
        return cls(sock)

    def dropped(self) -> bool:
        """Check whether an idle connection became readable: closed by the server, or garbage."""
        poller = select.poll()
        try:
            poller.register(self._sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError as error:
            logger.debug("closing a connection failed: %s", error)

    def exchange(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        self._send(method, target, headers, body)
        try:
            status, version, response_headers = self._read_head()
            data, to_close = self._read_body(method, status, response_headers)
        except TimeoutError as error:
            raise TransportError("read-timeout", str(error)) from error
        reusable = (
            not to_close
            and version == b"HTTP/1.1"
            and response_headers.get("connection", "").lower() != "close"
        )
        return Response(status, response_headers, data, reusable)

    def _send(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> None:
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body or method in ("PUT", "POST"):
            lines.append(f"content-length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self._sock.sendall(head + body if body else head)
        except OSError as error:
            raise TransportError("send", str(error)) from error

    def _read_head(self) -> tuple[int, bytes, dict[str, str]]:
        while True:
            status, version = self._read_status()
            headers = self._read_headers()
            # An interim 1xx response precedes the real one.
            if not _CONTINUE_LOW <= status < _CONTINUE_HIGH:
                return status, version, headers

    def _read_status(self) -> tuple[int, bytes]:
        line = self._line("response")
        if not line:
            raise TransportError("response", "connection closed before the response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise TransportError("response", f"invalid status line {line[:100]!r}")
        return int(parts[1]), parts[0]

    def _read_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self._line("response")
            if line in (b"\r\n", b"\n"):
                return headers
            name, colon, value = line.partition(b":")
            if not colon:
                detail = "connection closed in the headers" if not line else f"bad line {line!r}"
                raise TransportError("response", detail)
            # A repeated header keeps its last value: S3 repeats none that buquet reads.
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        raise TransportError("response", f"more than {MAX_HEADERS} header lines")

    def _read_body(self, method: str, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
        """Read the body; also return whether the connection must be closed after it."""
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            return b"", False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(), False
        length = headers.get("content-length")
        if length is None:
            return self._read("body", -1), True
        if not length.isdigit():
            raise TransportError("response", f"invalid Content-Length {length!r}")
        return self._read_exactly(int(length)), False

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._line("body")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise TransportError("body", f"invalid chunk size line {line[:100]!r}") from None
            if size == 0:
                self._skip_trailers()
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._line("body")

    def _skip_trailers(self) -> None:
        for _ in range(MAX_HEADERS):
            line = self._line("body")
            if line in (b"\r\n", b"\n"):
                return
            if not line:
                raise TransportError("body", "connection closed in the trailers")
        raise TransportError("body", f"more than {MAX_HEADERS} trailer lines")

    def _read_exactly(self, size: int) -> bytes:
        data = self._read("body", size)
        if len(data) < size:
            raise TransportError("body", f"connection closed after {len(data)} of {size} bytes")
        return data

    def _line(self, stage: Stage) -> bytes:
        try:
            line = self._file.readline(MAX_LINE + 1)
        except TimeoutError:
            raise
        except OSError as error:
            raise TransportError(stage, str(error)) from error
        if len(line) > MAX_LINE:
            raise TransportError(stage, f"line longer than {MAX_LINE} bytes")
        return line

    def _read(self, stage: Stage, size: int) -> bytes:
        try:
            return self._file.read(size)
        except TimeoutError:
            raise
        except OSError as error:
            raise TransportError(stage, str(error)) from error
