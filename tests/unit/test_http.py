"""The HTTP/1.1 client under the S3 client: bodies, kept-alive connections and failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from s3http_server import Reply, ScriptedServer

from buquet.store._http import ConnectionPool, Endpoint, TransportError

HEADERS = {"host": "127.0.0.1"}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def pool(server: ScriptedServer) -> Iterator[ConnectionPool]:
    port = int(server.endpoint.rsplit(":", 1)[1])
    connection_pool = ConnectionPool(Endpoint("http", "127.0.0.1", port, 2.0, 2.0), maxsize=2)
    yield connection_pool
    connection_pool.close()


def wait_for_close(pool: ConnectionPool) -> None:
    """Wait until the server has closed the pool's idle connection."""
    [idle] = pool._idle
    for _ in range(500):
        if idle.dropped():
            return
        time.sleep(0.01)
    raise AssertionError("the server kept the connection open")


def test_content_length_body(pool: ConnectionPool, server: ScriptedServer) -> None:
    server.script(Reply(body=b"hello", headers={"ETag": '"e"'}))

    response = pool.request("GET", "/b/k", HEADERS, b"")

    assert response.status == 200
    assert response.body == b"hello"
    assert response.headers["etag"] == '"e"'


def test_request_sends_body_and_length(pool: ConnectionPool, server: ScriptedServer) -> None:
    pool.request("PUT", "/b/k?x=1", HEADERS, b"{}")

    [request] = server.requests
    assert request.method == "PUT"
    assert request.path == "/b/k?x=1"
    assert request.headers["content-length"] == "2"
    assert request.body == b"{}"


def test_chunked_body_joined(pool: ConnectionPool, server: ScriptedServer) -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server.script(Reply(raw=raw), Reply(body=b"again"))

    first = pool.request("GET", "/b/k", HEADERS, b"")
    second = pool.request("GET", "/b/k", HEADERS, b"")

    assert first.body == b"hello world"
    assert second.body == b"again"
    assert pool.num_connections == 1


def test_body_without_length_read_to_close(pool: ConnectionPool, server: ScriptedServer) -> None:
    server.script(Reply(raw=b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close_after=True))

    response = pool.request("GET", "/b/k", HEADERS, b"")
    pool.request("GET", "/b/k", HEADERS, b"")

    assert response.body == b"until the end"
    assert not response.reusable
    assert pool.num_connections == 2


def test_connection_close_not_reused(pool: ConnectionPool, server: ScriptedServer) -> None:
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    server.script(Reply(raw=raw, close_after=True))

    response = pool.request("GET", "/b/k", HEADERS, b"")
    pool.request("GET", "/b/k", HEADERS, b"")

    assert response.body == b"ok"
    assert pool.num_connections == 2


def test_interim_response_skipped(pool: ConnectionPool, server: ScriptedServer) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-Id: 7\r\n\r\n"
    server.script(Reply(raw=raw))

    response = pool.request("DELETE", "/b/k", HEADERS, b"")

    assert response.status == 204
    assert response.headers["x-id"] == "7"
    assert response.body == b""


def test_idle_connection_closed_by_server(pool: ConnectionPool, server: ScriptedServer) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    server.script(Reply(raw=raw, close_after=True), Reply(body=b"fresh"))

    pool.request("GET", "/b/k", HEADERS, b"")
    wait_for_close(pool)
    response = pool.request("GET", "/b/k", HEADERS, b"")

    assert response.body == b"fresh"
    assert pool.num_connections == 2


def test_cut_body_fails_in_body(pool: ConnectionPool, server: ScriptedServer) -> None:
    server.script(Reply(body=b"0123456789", cut_body_at=4))

    with pytest.raises(TransportError) as caught:
        pool.request("GET", "/b/k", HEADERS, b"")

    assert caught.value.stage == "body"
    assert "4 of 10 bytes" in str(caught.value)


def test_invalid_status_line(pool: ConnectionPool, server: ScriptedServer) -> None:
    server.script(Reply(raw=b"SPEAK FRIEND\r\n\r\n", close_after=True))

    with pytest.raises(TransportError) as caught:
        pool.request("GET", "/b/k", HEADERS, b"")

    assert caught.value.stage == "response"
    assert "invalid status line" in str(caught.value)


def test_closed_before_response(pool: ConnectionPool, server: ScriptedServer) -> None:
    server.script(Reply(close_before_reply=True))

    with pytest.raises(TransportError) as caught:
        pool.request("PUT", "/b/k", HEADERS, b"1")

    assert caught.value.stage == "response"


def test_refused_connection_fails_at_connect() -> None:
    closed_pool = ConnectionPool(Endpoint("http", "127.0.0.1", 1, 2.0, 2.0), maxsize=1)

    with pytest.raises(TransportError) as caught:
        closed_pool.request("GET", "/b/k", HEADERS, b"")

    assert caught.value.stage == "connect"


def test_read_timeout(server: ScriptedServer) -> None:
    port = int(server.endpoint.rsplit(":", 1)[1])
    slow_pool = ConnectionPool(Endpoint("http", "127.0.0.1", port, 2.0, 0.2), maxsize=1)
    server.script(Reply(delay=1.0))

    with pytest.raises(TransportError) as caught:
        slow_pool.request("GET", "/b/k", HEADERS, b"")

    assert caught.value.stage == "read-timeout"
    slow_pool.close()
