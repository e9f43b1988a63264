"""A scripted HTTP server on 127.0.0.1 for unit tests of buquet's S3 client.

Each request gets the next :class:`Reply` of the script and is recorded with
its raw path, headers and body. A reply can also close the connection before
any response byte, or send fewer body bytes than its Content-Length.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

S3_DATE = "Fri, 04 Dec 2026 12:00:00 GMT"


@dataclass(frozen=True)
class Reply:
    """A scripted response; ``cut_body_at`` sends only that many body bytes, then closes.

    ``close_after`` closes the connection after a ``raw`` response.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close_before_reply: bool = False
    cut_body_at: int | None = None
    delay: float = 0.0
    raw: bytes | None = None
    """Sent as the whole response instead of the fields above."""
    close_after: bool = False


@dataclass(frozen=True)
class Recorded:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10.0
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        self._reply()

    def do_PUT(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        self._reply()

    def do_DELETE(self) -> None:
        self._reply()

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.requests.append(Recorded(self.command, self.path, headers, body))
            reply = self.server.replies.popleft() if self.server.replies else Reply()
        time.sleep(reply.delay)
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first, as in the read-timeout test.
            self.close_connection = True

    def _send(self, reply: Reply) -> None:
        if reply.close_before_reply:
            self.close_connection = True
            return
        if reply.raw is not None:
            self.wfile.write(reply.raw)
            self.wfile.flush()
            self.close_connection = reply.close_after
            return
        self.send_response(reply.status)
        self.send_header("Date", S3_DATE)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.cut_body_at is None:
            self.wfile.write(reply.body)
            return
        self.wfile.write(reply.body[: reply.cut_body_at])
        self.wfile.flush()
        self.close_connection = True


class ScriptedServer:
    """A context manager that serves scripted replies on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._server.lock:
            return list(self._server.requests)

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests; requests past the script get 200 OK."""
        with self._server.lock:
            self._server.replies.extend(replies)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._thread.join(10)
        self._server.server_close()
