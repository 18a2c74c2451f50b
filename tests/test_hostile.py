"""Hostile input, table-driven: each gets a precise answer and a log line, and a healthy
connection on the same server keeps working."""

from __future__ import annotations

import http.client
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import app_for, echo_handler, messages
from tornad_io.testing import AppServer, SocketIOClient

LIMIT = 4096


@pytest.fixture(scope="module")
def server() -> Iterator[AppServer]:
    app = app_for(
        echo_handler(), socket_io_max_message_size=LIMIT, socket_io_close_timeout=60.0, socket_io_max_frames=10
    )
    with AppServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def healthy(server: AppServer) -> Iterator[SocketIOClient]:
    client = SocketIOClient(server.url, transport="websocket")
    client.connect()
    assert client.receive(timeout=5) == "welcome"
    yield client
    client.close()


def request(
    server: AppServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def new_session(server: AppServer, transport: str = "xhr-polling") -> str:
    """A fresh session of ``transport`` (xhr-polling or jsonp-polling)."""
    if transport == "jsonp-polling":
        status, body = request(server, "GET", "/socket.io/jsonp-polling//1/0")
        assert status == 200
        match = re.search(rb"~m~32~m~([0-9a-f]{32})", body)
        assert match is not None, body
        return match.group(1).decode()
    status, body = request(server, "GET", "/socket.io/xhr-polling//1")
    assert status == 200
    sid: str = messages(body)[0]
    return sid


@dataclass
class Case:
    name: str
    method: str
    path: str  # "{sid}" is replaced by a fresh session id
    status: int
    log: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


FOREIGN = {"Origin": "http://evil.example"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

CASES = [
    Case("unknown session poll", "GET", "/socket.io/xhr-polling/0000aaaa/1", 404, "Unknown or expired session"),
    Case("unknown session jsonp", "GET", "/socket.io/jsonp-polling/0000aaaa/1/0", 404, "Unknown or expired"),
    *[
        Case(f"unknown session send {t}", "POST", f"/socket.io/{t}/0000aaaa/send", 404, "Unknown or expired",
             b"data=~m~1~m~x", FORM)
        for t in ("xhr-polling", "jsonp-polling", "htmlfile", "xhr-multipart")
    ],
    *[
        Case(f"malformed frame {t}", "POST", f"/socket.io/{t}/{{sid}}/send", 400, "Malformed Socket.IO frame",
             b"data=~m~9~m~short", FORM)
        for t in ("xhr-polling", "jsonp-polling")
    ],
    Case("another transport's session", "POST", "/socket.io/jsonp-polling/{sid}/send", 400,
         "belongs to another transport", b"data=~m~1~m~x", FORM),
    Case("too many frames", "POST", "/socket.io/xhr-polling/{sid}/send", 400, "Too many frames.*socket_io_max_frames",
         b"data=" + b"~m~1~m~a" * 11, FORM),
    Case("invalid JSON", "POST", "/socket.io/xhr-polling/{sid}/send", 400, "Malformed .*invalid JSON",
         b"data=~m~5~m~~j~{x", FORM),
    Case("no data field", "POST", "/socket.io/xhr-polling/{sid}/send", 400, "form-encoded", b"nodata=1", FORM),
    Case("bad UTF-8", "POST", "/socket.io/xhr-polling/{sid}/send", 400, "form-encoded", b"data=%FF%FE", FORM),
    Case("oversized by Content-Length", "POST", "/socket.io/xhr-polling/{sid}/send", 413, "Payload too large",
         b"data=" + b"x" * LIMIT, FORM),
    Case("jsonp index not a number", "GET", "/socket.io/jsonp-polling//1/alert(1)", 400, "numeric callback index"),
    Case("jsonp index too long", "GET", "/socket.io/jsonp-polling//1/12345678", 400, "numeric callback index"),
    Case("unknown transport", "GET", "/socket.io/carrier-pigeon//1", 404, ""),
    Case("wrong method on a poll", "PUT", "/socket.io/xhr-polling//1", 405, ""),
    Case("wrong method on websocket", "POST", "/socket.io/websocket", 405, ""),
    Case("foreign origin poll", "GET", "/socket.io/xhr-polling//1", 403,
         "Origin not allowed.*evil.*socket_io_origins", None, FOREIGN),
    Case("foreign origin send", "POST", "/socket.io/xhr-polling/{sid}/send", 403,
         "Origin not allowed.*evil.*socket_io_origins", b"data=~m~1~m~x", {**FORM, **FOREIGN}),
    Case("foreign origin jsonp form", "POST", "/socket.io/jsonp-polling/{sid}/1/0", 403,
         "Origin not allowed.*socket_io_origins", b"data=~m~1~m~x", {**FORM, **FOREIGN}),
    Case("foreign page loads a jsonp script", "GET", "/socket.io/jsonp-polling//1/0", 403,
         "Origin not allowed.*socket_io_origins", None, {"Referer": "http://evil.example/page.html"}),
    Case("cross-site iframe without referer", "GET", "/socket.io/htmlfile//1", 403,
         "Origin not allowed.*socket_io_origins", None, {"Sec-Fetch-Site": "cross-site"}),
    Case("foreign websocket upgrade", "GET", "/socket.io/websocket", 403, "origin .*evil.*socket_io_origins",
         None, {**FOREIGN, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request(
    case: Case, server: AppServer, healthy: SocketIOClient, caplog: pytest.LogCaptureFixture
) -> None:
    own_transport = "jsonp-polling" if "/jsonp-polling/" in case.path and "another" not in case.name else "xhr-polling"
    path = case.path.format(sid=new_session(server, own_transport)) if "{sid}" in case.path else case.path
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status, body = request(server, case.method, path, case.body, case.headers)
    assert status == case.status, body
    assert b"Traceback" not in body
    if case.log:
        assert any(
            re.search(case.log, record.getMessage()) for record in caplog.records
        ), [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    healthy.send(f"still here after {case.name}")
    assert healthy.receive(timeout=5) == f"still here after {case.name}"


def test_an_oversized_chunked_body_is_cut_off(server: AppServer, healthy: SocketIOClient) -> None:
    sid = new_session(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(f"POST /socket.io/xhr-polling/{sid}/send HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for _ in range(LIMIT // 1024 + 2):
                raw.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
        except OSError:
            pass  # the server may close before we finish
        answer = raw.recv(200)
    assert answer.startswith(b"HTTP/1.1 413")
    healthy.send("after chunks")
    assert healthy.receive(timeout=5) == "after chunks"


@pytest.mark.parametrize(
    ("payload", "code"),
    [("~m~9~m~short", 1007), ("~m~1~m~" + "x" * LIMIT, 1009)],
    ids=["malformed", "oversized"],
)
def test_a_broken_websocket_message_closes_only_that_socket(
    payload: str, code: int, server: AppServer, healthy: SocketIOClient
) -> None:
    import tornado.websocket

    async def exchange() -> int | None:
        ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/websocket")
        await ws.read_message()
        await ws.write_message(payload)
        while await ws.read_message() is not None:
            pass
        return ws.close_code

    assert server.call(exchange) == code
    healthy.send("after websocket abuse")
    assert healthy.receive(timeout=5) == "after websocket abuse"


@pytest.fixture(scope="module")
def fuzz_session(server: AppServer) -> str:
    return new_session(server)


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@settings(max_examples=1500, deadline=None)
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(lambda text: ("data=" + text).encode("utf-8")))
def test_fuzzed_send_bodies_never_break_the_server(
    body: bytes, server: AppServer, fuzz_session: str, errors: ErrorRecords
) -> None:
    status, _ = request(server, "POST", f"/socket.io/xhr-polling/{fuzz_session}/send", body, FORM)
    assert status in (200, 400, 413)
    assert errors.records == []


def test_after_the_fuzz_the_healthy_connection_still_echoes(healthy: SocketIOClient, errors: ErrorRecords) -> None:
    healthy.send("after the fuzz")
    assert healthy.receive(timeout=5) == "after the fuzz"
    assert errors.records == []
