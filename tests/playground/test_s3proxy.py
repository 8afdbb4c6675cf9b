"""The fault matrix's S3 proxy (``tidbops_playground.s3server.S3Proxy``) in each mode, in front of a plain HTTP
server on loopback: pass forwards, hang accepts and never answers, slow delays answers, refuse is a stopped
server (connections refused, open ones cut) and leaving it listens on the same port again."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tidbops_playground.s3server import S3Proxy

pytestmark = pytest.mark.playground


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a connection outlives one request

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[S3Proxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    p = S3Proxy(int(server.server_address[1]))
    try:
        yield p
    finally:
        p.close()
        server.shutdown()
        server.server_close()


def _get(conn: http.client.HTTPConnection) -> bytes:
    conn.request("GET", "/")
    return conn.getresponse().read()


def test_pass_forwards_and_slow_delays_each_answer(proxy: S3Proxy) -> None:
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=5)
    assert _get(conn) == b"ok"
    proxy.set_mode("slow", delay=0.3)
    started = time.monotonic()
    assert _get(conn) == b"ok"
    assert time.monotonic() - started >= 0.3
    conn.close()


def test_hang_accepts_and_never_answers(proxy: S3Proxy) -> None:
    proxy.set_mode("hang")
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=0.5)
    with pytest.raises(TimeoutError):
        _get(conn)  # the connection was accepted (no refusal): the read times out
    conn.close()
    proxy.set_mode("pass")
    assert _get(http.client.HTTPConnection(proxy.host, proxy.port, timeout=5)) == b"ok"


def test_refuse_is_a_stopped_server_and_pass_listens_on_the_same_port_again(proxy: S3Proxy) -> None:
    port = proxy.port
    open_conn = http.client.HTTPConnection(proxy.host, port, timeout=5)
    assert _get(open_conn) == b"ok"
    proxy.set_mode("refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, port), timeout=2)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        _get(open_conn)  # the open keep-alive connection was cut, not kept serving
    proxy.set_mode("pass")
    assert proxy.port == port
    assert _get(http.client.HTTPConnection(proxy.host, port, timeout=5)) == b"ok"
