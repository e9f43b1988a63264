"""An HTTP proxy on 127.0.0.1 that injects S3 faults between a client and an S3 server.

Point an S3 client at :attr:`FaultProxy.endpoint`. The proxy forwards each
request to ``upstream`` with its headers unchanged, Host included, so a
SigV4 signature made for the proxy's address still verifies upstream
(checked with SeaweedFS 4.48, which verifies against the Host header it
receives). :class:`ProxyRule` objects pick requests by method, URL path
prefix and header, and fail some of them: every one, the first ``count``, or
each with a probability drawn from a seeded generator.

Faults, as :class:`ProxyFault`:

- ``SLOW_DOWN``: 503 SlowDown with S3's XML error body, not forwarded.
- ``CONFLICT``: 409 ConditionalRequestConflict, not forwarded.
- ``DROP_RESPONSE``: forwarded and applied upstream, then the client's
  connection is closed before any response byte, as when a response is lost.
- ``DELAY``: wait ``delay`` seconds, then forward.

Only loopback upstreams are accepted. Every socket has a timeout, and
:meth:`FaultProxy.stop` closes open client connections and joins the threads.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import random
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

from buquet.store import S3Store

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_SECONDS = 30.0
"""Timeout of idle client connections and of each upstream request."""
MAX_DELAY_SECONDS = 20.0
"""Largest ``delay`` a DELAY rule accepts, below the client read timeouts used in tests."""
STOP_TIMEOUT_SECONDS = 10.0
# Headers that belong to one connection. They are not copied from the
# upstream response, whose body the proxy reads whole and re-frames.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class ProxyFault(StrEnum):
    """A fault the proxy injects into one request."""

    SLOW_DOWN = "slow_down"
    CONFLICT = "conflict"
    DROP_RESPONSE = "drop_response"
    DELAY = "delay"


_ERROR_RESPONSES = {
    ProxyFault.SLOW_DOWN: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    ProxyFault.CONFLICT: (
        409,
        "Conflict",
        "ConditionalRequestConflict",
        "A conflicting conditional operation is currently in progress against this resource.",
    ),
}


@dataclass(frozen=True)
class ProxyRule:
    """A selection of requests that get ``fault``.

    ``method`` (e.g. ``"PUT"``) and ``header`` (a request header that must be
    present, e.g. ``"If-Match"``) match any request when None. ``path_prefix``
    is matched against the decoded URL path, e.g. ``"/bucket/prefix/tasks/"``.
    ``skip`` matching requests pass before the first injection, and at most
    ``count`` are injected (no limit when None). ``delay`` is in seconds and
    applies to DELAY only.
    """

    fault: ProxyFault
    method: str | None = None
    path_prefix: str = ""
    header: str | None = None
    count: int | None = None
    probability: float = 1.0
    skip: int = 0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"invalid probability {self.probability!r}: use 0.0 to 1.0")
        if self.skip < 0 or (self.count is not None and self.count < 0):
            raise ValueError("invalid proxy rule: skip and count must not be negative")
        if not 0.0 <= self.delay <= MAX_DELAY_SECONDS:
            raise ValueError(f"invalid delay {self.delay!r} s: use 0 to {MAX_DELAY_SECONDS} s")

    def selects(self, method: str, path: str, header_names: Iterable[str]) -> bool:
        """Check whether a request of ``method`` on ``path`` is one this rule picks."""
        if self.method is not None and method != self.method.upper():
            return False
        if not path.startswith(self.path_prefix):
            return False
        if self.header is None:
            return True
        return self.header.lower() in {name.lower() for name in header_names}


class _Rules:
    """The rules of one proxy with their counters, shared by the handler threads."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[ProxyRule] = []
        self._matched: list[int] = []
        self._fired: list[int] = []
        self.injected: Counter[tuple[ProxyFault, str]] = Counter()

    def replace(self, rules: Iterable[ProxyRule]) -> None:
        with self._lock:
            self._rules = list(rules)
            self._matched = [0] * len(self._rules)
            self._fired = [0] * len(self._rules)

    def draw(self, method: str, path: str, header_names: Iterable[str]) -> ProxyRule | None:
        """Return the rule that fires for this request, counting it; None for no fault."""
        names = list(header_names)
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.selects(method, path, names):
                    continue
                self._matched[index] += 1
                if self._fires(index, rule):
                    self._fired[index] += 1
                    self.injected[rule.fault, method] += 1
                    return rule
        return None

    def _fires(self, index: int, rule: ProxyRule) -> bool:
        if self._matched[index] <= rule.skip:
            return False
        if rule.count is not None and self._fired[index] >= rule.count:
            return False
        return rule.probability >= 1.0 or self._random.random() < rule.probability


@dataclass(frozen=True)
class _UpstreamResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], rules: _Rules) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.rules = rules
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_SECONDS
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._relay()

    def do_PUT(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def do_DELETE(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def _relay(self) -> None:
        body = self._read_body()
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        rule = self.server.rules.draw(self.command, path, self.headers.keys())
        fault = None if rule is None else rule.fault
        if fault is not None:
            logger.debug("injecting %s into %s %s", fault.value, self.command, self.path)
        if fault in _ERROR_RESPONSES:
            self._send_error_response(fault, path)
            return
        if rule is not None and fault is ProxyFault.DELAY:
            time.sleep(rule.delay)
        response = self._forward(body)
        if fault is ProxyFault.DROP_RESPONSE:
            self.close_connection = True
            return
        self._send_upstream_response(response)

    def _read_body(self) -> bytes:
        """Read the request body as sent: by Content-Length, or raw chunks with their framing."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_raw_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_raw_chunks(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = self.rfile.readline(65537)
            parts.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            parts.append(self.rfile.read(size + 2))
        while True:  # trailers, up to the empty line
            line = self.rfile.readline(65537)
            parts.append(line)
            if line in (b"\r\n", b"\n", b""):
                return b"".join(parts)

    def _forward(self, body: bytes) -> _UpstreamResponse:
        host, port = self.server.upstream
        connection = http.client.HTTPConnection(host, port, timeout=SOCKET_TIMEOUT_SECONDS)
        try:
            connection.putrequest(
                self.command, self.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in self.headers.items():
                # The handler already sent 100 Continue, and botocore does not sign Expect.
                if name.lower() != "expect":
                    connection.putheader(name, value)
            connection.endheaders(body if body else None)
            upstream = connection.getresponse()
            data = upstream.read()
            return _UpstreamResponse(upstream.status, upstream.reason, upstream.getheaders(), data)
        finally:
            connection.close()

    def _send_upstream_response(self, response: _UpstreamResponse) -> None:
        self.send_response_only(response.status, response.reason)
        length = None
        for name, value in response.headers:
            if name.lower() == "content-length":
                length = value
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", length or "0")
        else:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _send_error_response(self, fault: ProxyFault, path: str) -> None:
        status, reason, code, message = _ERROR_RESPONSES[fault]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{path}</Resource><RequestId>fault-proxy</RequestId></Error>"
        ).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class FaultProxy:
    """A fault-injecting proxy in front of the S3 server at ``upstream`` (a loopback URL).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    ``injected`` counts the faults by (fault, HTTP method).
    """

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        self.upstream = _loopback_address(upstream)
        self._rules = _Rules(seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def injected(self) -> Counter[tuple[ProxyFault, str]]:
        return self._rules.injected

    @property
    def endpoint(self) -> str:
        """The proxy's URL, for a client's ``endpoint_url``."""
        if self._server is None:
            raise RuntimeError("the proxy is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def set_rules(self, rules: Iterable[ProxyRule]) -> None:
        """Replace the rules and reset their counters; ``injected`` keeps counting."""
        self._rules.replace(rules)

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("the proxy is already running")
        self._server = _Server(self.upstream, self._rules)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        logger.debug("fault proxy on %s forwards to %s", self.endpoint, self.upstream)

    def stop(self) -> None:
        """Stop serving, close the client connections and join the handler threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join(STOP_TIMEOUT_SECONDS)
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _loopback_address(url: str) -> tuple[str, int]:
    """Return (host, port) of an ``http://`` URL, or raise ValueError unless it is loopback."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback or parts.port is None:
        raise ValueError(
            f"invalid upstream {url!r}: use http://127.0.0.1:<port>, a loopback address"
        )
    return host, parts.port


@dataclass
class FaultyS3:
    """S3 stores whose requests go through ``proxy`` to the SeaweedFS test server.

    ``store`` is the first handle; :meth:`open_store` opens more on the same
    prefix, each with its own connection pool.
    """

    proxy: FaultProxy
    bucket: str
    prefix: str
    open_store: Callable[[], S3Store]
    store: S3Store

    def path(self, key_prefix: str = "") -> str:
        """Return the URL path of this store's keys under ``key_prefix``, for ``path_prefix``."""
        return f"/{self.bucket}/{self.prefix}/{key_prefix}"
