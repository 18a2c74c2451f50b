"""The HTTP upload path frees everything, and a body that does not arrive in time is a 408.

Every way a POST can end before its body is complete (the client resets, the
client half-closes, a 413 on a chunked body, a 400, the 408 deadline) must
free its handler, its request and its partial body; and the 408 deadline is
tornad_io's own, so it holds however the server was started.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from tests.helpers import app_for, echo_handler, messages, queued_callbacks_run
from tornad_io import SocketIOServer
from tornad_io.registry import registry_for
from tornad_io.testing import AppServer, SocketIOClient
from tornad_io.transports.http import HTTPTransport
from tornad_io.transports.polling import PollingTransport

T = TypeVar("T")

MiB = 1 << 20
DECLARED = 1_000_000  # under the default socket_io_max_message_size (1 MiB)
SENT = DECLARED - 1  # one byte short: the body never completes
MARKER = "X-Upload-Test"  # tells the uploads' requests apart from the healthy client's
TIMEOUT = 10.0  # generous: every wait below ends on an event, never on this


def new_session(port: int) -> str:
    """The send URL of a fresh xhr-polling session: a body is read only for a live session."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/socket.io/xhr-polling//1")
        sid = messages(connection.getresponse().read())[0]
    finally:
        connection.close()
    return f"/socket.io/xhr-polling/{sid}/send"


def head(path: str, length: str | None = None, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"{MARKER}: 1",
             "Content-Type: application/x-www-form-urlencoded"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def read_until_closed(raw: socket.socket) -> bytes:
    """Everything the server sends until it closes (a socket timeout fails the test)."""
    answer = b""
    while True:
        try:
            chunk = raw.recv(65536)
        except ConnectionResetError:
            return answer  # the server reset a socket it had answered: what was read stands
        if not chunk:
            return answer
        answer += chunk


def send_until_answered(raw: socket.socket, pieces: Iterator[bytes]) -> None:
    """Send pieces until the server answers (or stops reading); never more after its answer arrives."""
    for piece in pieces:
        readable, _, _ = select.select([raw], [], [], 0)
        if readable:
            return
        try:
            raw.sendall(piece)
        except OSError:
            return  # the server closed first


def rss() -> float:
    """This process's resident set, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the aborted uploads ------------------------------------------------------------------


def upload_then_fin(port: int, path: str) -> None:
    """The body one byte short, then a FIN; returns once the server has closed its side."""
    with connect(port) as raw:
        raw.sendall(head(path, str(DECLARED)) + b"x" * SENT)
        raw.shutdown(socket.SHUT_WR)
        assert read_until_closed(raw) == b""


def upload_then_reset(port: int, path: str) -> None:
    """The body one byte short, then a reset, once the server's handler is surely reading it."""
    with connect(port) as raw:
        raw.sendall(head(path, str(DECLARED), "Expect: 100-continue"))
        assert raw.recv(64).startswith(b"HTTP/1.1 100")  # sent after prepare(): the handler exists
        raw.sendall(b"x" * SENT)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def chunked_413(port: int, path: str) -> None:
    with connect(port) as raw:
        raw.sendall(head(path, None, "Transfer-Encoding: chunked"))
        chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        send_until_answered(raw, iter([chunk] * (2 * MiB // 65536)))
        assert read_until_closed(raw).startswith(b"HTTP/1.1 413 Payload too large")


def bad_length_400(port: int, path: str) -> None:
    """Refused by tornad_io's prepare() while the body is still coming."""
    with connect(port) as raw:
        send_until_answered(raw, iter([head(path, "12x"), b"x" * 1000]))
        assert read_until_closed(raw).startswith(b"HTTP/1.1 400 Bad Content-Length")


def bad_chunk_400(port: int, path: str) -> None:
    """Refused by Tornado mid-body (a malformed chunk): the handler never finishes, only hears the close."""
    with connect(port) as raw:
        raw.sendall(head(path, None, "Transfer-Encoding: chunked", "Expect: 100-continue"))
        assert raw.recv(64).startswith(b"HTTP/1.1 100")
        raw.sendall(b"10\r\n" + b"x" * 16 + b"\r\nzz\r\n")
        assert b"HTTP/1.1 400" in read_until_closed(raw)


# -- where the server runs ----------------------------------------------------------------


class Background:
    """An event loop in a thread that runs ``start`` (which returns the port and a stop function)."""

    def __init__(self, start: Callable[[], tuple[int, Callable[[], None]]]) -> None:
        self._start = start
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.port, self._stop = self.call(self._started)

    async def _started(self) -> tuple[int, Callable[[], None]]:
        return self._start()

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(30)

    def close(self) -> None:
        async def stop() -> None:
            self._stop()
            await queued_callbacks_run()  # the on_close callbacks of "shutdown"

        self.call(stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_socket_io_server(app: tornado.web.Application) -> tuple[int, Callable[[], None]]:
    server = SocketIOServer(app, port=0, address="127.0.0.1")  # inside a running loop: returns at once
    return server.port, server.stop


def start_application_listen(app: tornado.web.Application) -> tuple[int, Callable[[], None]]:
    port = free_port()
    http_server = app.listen(port, "127.0.0.1")

    def stop() -> None:
        http_server.stop()
        registry_for(app).close_all("shutdown")

    return port, stop


def start_own_http_server(app: tornado.web.Application) -> tuple[int, Callable[[], None]]:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    http_server = tornado.httpserver.HTTPServer(app)  # no timeouts of Tornado's at all
    http_server.add_sockets(sockets)

    def stop() -> None:
        http_server.stop()
        registry_for(app).close_all("shutdown")

    return sockets[0].getsockname()[1], stop


def alive(app: tornado.web.Application) -> tuple[int, int]:
    """Live handlers of ``app``'s HTTP transports, and live requests of the uploads."""
    gc.collect()
    objects = gc.get_objects()
    try:
        handlers = sum(1 for o in objects if isinstance(o, (HTTPTransport, PollingTransport)) and o.application is app)
        requests = sum(
            1 for o in objects if isinstance(o, tornado.httputil.HTTPServerRequest) and MARKER in o.headers
        )
    finally:
        del objects  # the list holds everything it found: it must not outlive this call
    return handlers, requests


async def leftovers(app: tornado.web.Application) -> tuple[int, int]:
    """What ``alive`` reports once the server has finished with connections the client already left.

    Waits (up to ``TIMEOUT``) for the server loop to process those closes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while (found := alive(app)) != (0, 0) and loop.time() < deadline:
        await asyncio.sleep(0.05)  # wait-ok: polling a condition (gc census) up to TIMEOUT
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[AppServer]:
    with AppServer(app_for(echo_handler(), socket_io_close_timeout=600.0)) as running:
        yield running


@pytest.fixture(scope="module")
def send_path(server: AppServer) -> str:
    return new_session(server.port)


@pytest.fixture(scope="module")
def healthy(server: AppServer) -> Iterator[SocketIOClient]:
    client = SocketIOClient(server.url, transport="websocket")
    client.connect()
    assert client.receive(timeout=TIMEOUT) == "welcome"
    yield client
    client.close()


def upload_released(server: AppServer, path: str) -> None:
    """Wait until the server has noticed the last upload's end (a session takes one POST at a time)."""
    connection = registry_for(server.application).get(path.split("/")[3])
    assert connection is not None

    async def released() -> None:
        while connection.upload is not None:
            await asyncio.sleep(0.01)  # wait-ok: polling a condition; server.call bounds it

    server.call(released)


def assert_all_freed(server: AppServer) -> None:
    assert server.call(leftovers, server.application) == (0, 0)


def test_aborted_uploads_free_their_handlers_requests_and_bodies(
    server: AppServer, healthy: SocketIOClient, send_path: str
) -> None:
    for _ in range(30):  # the allocator's working set, so the measurement below sees growth only
        upload_then_fin(server.port, send_path)
        upload_released(server, send_path)
        upload_then_reset(server.port, send_path)
        upload_released(server, send_path)
    assert_all_freed(server)
    before = rss()
    for _ in range(150):
        upload_then_fin(server.port, send_path)
        upload_released(server, send_path)
        upload_then_reset(server.port, send_path)
        upload_released(server, send_path)
    assert_all_freed(server)
    grown = rss() - before
    assert grown < 50 * MiB, f"RSS grew {grown / MiB:.0f} MiB over 300 aborted 1 MB uploads"
    healthy.send("after the uploads")
    assert healthy.receive(timeout=TIMEOUT) == "after the uploads"


@pytest.mark.parametrize(
    "refused", [chunked_413, bad_length_400, bad_chunk_400], ids=["chunked 413", "400 in prepare", "400 mid-body"]
)
def test_refused_uploads_free_their_handlers(
    refused: Callable[[int, str], None], server: AppServer, healthy: SocketIOClient, send_path: str
) -> None:
    for _ in range(10):
        refused(server.port, send_path)
        upload_released(server, send_path)
    assert_all_freed(server)
    healthy.send(f"after {refused.__name__}")
    assert healthy.receive(timeout=TIMEOUT) == f"after {refused.__name__}"


# -- the 408 deadline ---------------------------------------------------------------------


def slow_body(port: int, path: str) -> bytes:
    """Declare 1000 bytes, send one at a time until the server answers; what it sent before closing."""

    def dribble() -> Iterator[bytes]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            yield b"x"

    with connect(port) as raw:
        raw.sendall(head(path, "1000") + b"data=")
        for piece in dribble():
            readable, _, _ = select.select([raw], [], [], 0.1)  # a byte a tenth of a second, at most
            if readable:
                break
            try:
                raw.sendall(piece)
            except OSError:
                break
        return read_until_closed(raw)


@pytest.mark.parametrize(
    "start",
    [start_socket_io_server, start_application_listen, start_own_http_server],
    ids=["SocketIOServer", "application.listen", "own HTTPServer"],
)
def test_a_slow_body_gets_408_however_the_server_was_started(
    start: Callable[[tornado.web.Application], tuple[int, Callable[[], None]]], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_for(echo_handler(), socket_io_body_timeout=0.5, socket_io_close_timeout=600.0, flash_policy_port=0)
    running = Background(lambda: start(app))
    healthy = SocketIOClient(f"http://127.0.0.1:{running.port}", transport="websocket")
    try:
        healthy.connect()
        assert healthy.receive(timeout=TIMEOUT) == "welcome"
        with caplog.at_level(logging.WARNING, logger="tornad_io"):
            answer = slow_body(running.port, new_session(running.port))  # returns once the server closed
        assert answer.startswith(b"HTTP/1.1 408 Request timeout\r\n"), answer
        assert answer.endswith(b"\r\n\r\nRequest timeout")
        assert b"text/plain" in answer
        assert any(
            record.getMessage().startswith("408 POST") and "socket_io_body_timeout" in record.getMessage()
            for record in caplog.records
        ), [record.getMessage() for record in caplog.records]

        async def alive() -> tuple[int, int]:
            return await leftovers(app)

        assert running.call(alive) == (0, 0)
        healthy.send("after the slow body")
        assert healthy.receive(timeout=TIMEOUT) == "after the slow body"
    finally:
        healthy.close()
        running.close()


def read_one_answer(raw: socket.socket) -> bytes:
    """One complete keep-alive answer (its head and a Content-Length body)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(65536)
    head_, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(value) for name, _, value in (line.partition(b":") for line in head_.split(b"\r\n"))
        if name.strip().lower() == b"content-length"
    )
    while len(body) < length:
        body += raw.recv(65536)
    return answer


def test_a_complete_body_cancels_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    """A body that arrived in time is never answered 408 later, and its keep-alive connection stays usable."""
    app = app_for(echo_handler(), socket_io_body_timeout=0.5, socket_io_close_timeout=600.0)
    with AppServer(app) as fast, caplog.at_level(logging.WARNING), connect(fast.port) as early:
        path = new_session(fast.port)
        early.sendall(head(path, "13") + b"data=~m~1~m~x")
        assert read_one_answer(early).startswith(b"HTTP/1.1 200")
        # A slow body started after it: its 408 comes after the first one's deadline would have passed.
        assert slow_body(fast.port, new_session(fast.port)).startswith(b"HTTP/1.1 408")
        early.sendall(head(path, "13") + b"data=~m~1~m~y")
        assert read_one_answer(early).startswith(b"HTTP/1.1 200")
    timed_out = [r for r in caplog.records if r.name.startswith("tornad_io") and r.getMessage().startswith("408")]
    assert len(timed_out) == 1, [record.getMessage() for record in timed_out]
