"""The polling transports' ``HTTPMessageDelegate`` path: what only it does.

Polls and sends are answered by :class:`~tornad_io.transports.polling.PollingTransport`
writing straight to Tornado's ``HTTP1Connection``, so keep-alive, HTTP/1.0
and ``Connection: close`` are checked on the wire here; and an application
served before its registry exists reaches that path through the bootstrap
handler once, then directly.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable, Iterator

import pytest
import tornado.http1connection
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.routing
import tornado.web

from tests.helpers import app_for, echo_handler, messages
from tornad_io.connection import Connection
from tornad_io.registry import bind_routes, registry_for
from tornad_io.testing import AppServer
from tornad_io.transports.http import PREFLIGHT, cors_headers
from tornad_io.transports.polling import PLAIN_TEXT, PollingTransport, PollRoute, ResponseHeaders, fixed_fields
from tornad_io.transports.xhr_polling import XHRPollingTransport
from tornad_io.unrouted import UnroutedHandler

TIMEOUT = 10.0


def read_answer(raw: socket.socket, pending: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    """One response from ``raw`` (status line, headers, Content-Length body); extra bytes stay in ``pending``."""
    while b"\r\n\r\n" not in pending:
        chunk = raw.recv(65536)
        assert chunk, f"closed before a complete head: {bytes(pending)!r}"
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    body = bytearray(rest)
    while len(body) < length:
        chunk = raw.recv(65536)
        assert chunk, "closed before the whole body"
        body += chunk
    pending[:] = body[length:]
    return status, headers, bytes(body[:length])


def closed_by_server(raw: socket.socket) -> bool:
    """Whether the server closes the connection (it sends nothing more first)."""
    try:
        return raw.recv(1) == b""
    except ConnectionResetError:
        return True


def request(method: str, path: str, version: str = "HTTP/1.1", body: bytes = b"", *extra: str) -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1", *extra]
    if method == "POST":
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def form(payload: str) -> bytes:
    return b"data=" + payload.encode()


@pytest.fixture(scope="module")
def server() -> Iterator[AppServer]:
    with AppServer(app_for(echo_handler(), socket_io_close_timeout=600.0)) as running:
        yield running


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def handshake(raw: socket.socket, pending: bytearray) -> str:
    raw.sendall(request("GET", "/socket.io/xhr-polling//1"))
    status, headers, body = read_answer(raw, pending)
    assert status == b"HTTP/1.1 200 OK"
    found = messages(body)
    assert found[1] == "welcome"
    sid: str = found[0]
    return sid


def test_answers_carry_the_transport_headers(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/socket.io/xhr-polling//1", "HTTP/1.1", b"", "Origin: http://127.0.0.1"))
        status, headers, _ = read_answer(raw, pending)
    assert status == b"HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["access-control-allow-origin"] == "http://127.0.0.1"
    assert headers["access-control-allow-credentials"] == "true"
    assert "connection" not in headers  # HTTP/1.1 keep-alive needs no header


def test_response_headers_behave_as_tornados() -> None:
    """``ResponseHeaders`` fills HTTPHeaders' private dictionaries: Tornado must not tell it from its own.

    Fails the day Tornado keeps headers differently (or a name we send is not in Http-Header-Case).
    """
    extra = (*cors_headers("http://a.example"), *PREFLIGHT)
    ours = ResponseHeaders(fixed_fields(PLAIN_TEXT), 2, extra)
    theirs = tornado.httputil.HTTPHeaders()
    for name, value in (*fixed_fields(PLAIN_TEXT), ("Content-Length", "2"), *extra):
        theirs.add(name, value)
    assert sorted(ours.get_all()) == sorted(theirs.get_all())
    assert len(ours) == len(theirs)
    for name, value in theirs.get_all():
        assert name in ours and name.lower() in ours
        assert ours[name.upper()] == value
        assert ours.get_list(name.lower()) == [value]
    # What HTTP1Connection.write_headers does with it: asks, then adds fields.
    assert "Transfer-Encoding" not in ours
    ours["Connection"] = "close"
    theirs["Connection"] = "close"
    ours.add("Vary", "Accept")
    theirs.add("Vary", "Accept")
    assert ours["Vary"] == theirs["Vary"] == "Origin,Accept"
    assert sorted(ours.get_all()) == sorted(theirs.get_all())
    assert sorted(ours.copy().get_all()) == sorted(theirs.get_all())
    assert str(ours).count("\n") == len(list(theirs.get_all()))


def test_poll_send_poll_pipelined_on_one_keep_alive_connection(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        sid = handshake(raw, pending)
        # Both requests in one write: Tornado reads the poll once the send is answered.
        raw.sendall(
            request("POST", f"/socket.io/xhr-polling/{sid}/send", body=form("~m~5~m~hello"))
            + request("GET", f"/socket.io/xhr-polling/{sid}/2")
        )
        assert read_answer(raw, pending)[2] == b"ok"
        assert messages(read_answer(raw, pending)[2]) == ["hello"]
        # And a poll held first, answered by a send on the same session from another connection.
        raw.sendall(request("GET", f"/socket.io/xhr-polling/{sid}/3"))
        with connect(server.port) as other:
            other.sendall(request("POST", f"/socket.io/xhr-polling/{sid}/send", body=form("~m~5~m~again")))
            assert read_answer(other, bytearray())[2] == b"ok"
        assert messages(read_answer(raw, pending)[2]) == ["again"]


def test_connection_close_is_honoured(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/socket.io/xhr-polling//1", "HTTP/1.1", b"", "Connection: close"))
        status, headers, body = read_answer(raw, pending)
        assert status == b"HTTP/1.1 200 OK" and messages(body)[1] == "welcome"
        assert headers["connection"] == "close"
        assert closed_by_server(raw)


def test_http_1_0_without_keep_alive_is_closed_after_its_answer(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/socket.io/xhr-polling//1", "HTTP/1.0"))
        status, headers, body = read_answer(raw, pending)
        assert status.endswith(b"200 OK") and messages(body)[1] == "welcome"
        assert closed_by_server(raw)


def test_http_1_0_keep_alive_stays_open(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/socket.io/xhr-polling//1", "HTTP/1.0", b"", "Connection: keep-alive"))
        status, headers, body = read_answer(raw, pending)
        assert headers["connection"].lower() == "keep-alive"
        sid = messages(body)[0]
        raw.sendall(
            request(
                "POST", f"/socket.io/xhr-polling/{sid}/send", "HTTP/1.0", form("~m~2~m~hi"), "Connection: keep-alive"
            )
        )
        assert read_answer(raw, pending)[2] == b"ok"


def live_delegates(app: tornado.web.Application) -> list[PollingTransport]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, PollingTransport) and o.application is app]


async def until(condition: Callable[[], bool]) -> bool:
    """Wait (on the server's loop, up to ``TIMEOUT``) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.01)  # wait-ok: polling a condition the server's own reads change, bounded
    return condition()


def test_many_polls_and_sends_leave_nothing_behind(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        sid = handshake(raw, pending)
        for number in range(300):
            text = f"m{number}"
            raw.sendall(request("POST", f"/socket.io/xhr-polling/{sid}/send", body=form(f"~m~{len(text)}~m~{text}")))
            assert read_answer(raw, pending)[2] == b"ok"
            raw.sendall(request("GET", f"/socket.io/xhr-polling/{sid}/{number}"))
            assert messages(read_answer(raw, pending)[2]) == [text]
        connection = registry_for(server.application).get(sid)
        assert isinstance(connection, Connection)

        def state() -> tuple[int, object, object, int]:
            held = connection._transport
            return len(live_delegates(server.application)), connection.upload, held, len(connection._lingering)

        assert server.call(state) == (0, None, None, 0)
        # A poll held when its client leaves is reported once, and freed.
        raw.sendall(request("GET", f"/socket.io/xhr-polling/{sid}/held"))
        assert server.call(until, lambda: connection._transport is not None)
    assert server.call(until, lambda: connection._transport is None)
    assert server.call(state) == (0, None, None, 0)
    assert connection.state.value == "open"  # a poll may come back within the close timeout


# -- the bootstrap: an application served before its registry exists -------------------------


def test_an_application_served_before_its_registry_binds_on_its_first_poll() -> None:
    rule = echo_handler().routes("socket.io")
    first = tornado.web.Application([rule])
    second = tornado.web.Application([rule])  # one rule tuple, two applications: each binds its own route

    def poll_routes(app: tornado.web.Application) -> list[PollRoute]:
        found = []

        def walk(router: object) -> None:
            for each in getattr(router, "rules", ()):
                if isinstance(each.target, PollRoute):
                    found.append(each.target)
                elif isinstance(each.target, tornado.routing.Router):
                    walk(each.target)

        walk(app.wildcard_router)
        return found

    assert all(route.application is None for route in poll_routes(first) + poll_routes(second))
    with AppServerWithoutRegistry(first) as running, connect(running.port) as raw:
        pending = bytearray()
        sid = handshake(raw, pending)  # through PollBootstrap
        assert {route.application for route in poll_routes(first)} == {first}
        raw.sendall(request("POST", f"/socket.io/xhr-polling/{sid}/send", body=form("~m~2~m~hi")))
        assert read_answer(raw, pending)[2] == b"ok"  # straight to the delegate
        raw.sendall(request("GET", f"/socket.io/xhr-polling/{sid}/2"))
        assert messages(read_answer(raw, pending)[2]) == ["hi"]
    assert all(route.application is None for route in poll_routes(second))


def test_bound_poll_routes_get_a_rule_of_their_own_just_before_their_routes_rule() -> None:
    """One router less per poll and send; the rules before ``routes()`` (and a host's) still come first."""

    class Taken(tornado.web.RequestHandler):
        def get(self) -> None:
            self.finish("mine")

    handler = echo_handler()
    app = tornado.web.Application([(r"/socket\.io/xhr-polling/taken/.*", Taken), handler.routes("socket.io")])
    app.add_handlers(r"example\.com", [handler.routes("elsewhere")])
    registry = registry_for(app)
    bind_routes(app, registry)  # again (PollBootstrap does, for rules added later): nothing twice

    def hoisted(router: tornado.routing.RuleRouter) -> tuple[list[object], list[object]]:
        """The PollRoutes of ``router``'s own rules, and those nested in its ``routes()`` rule."""
        mine = [rule.target for rule in router.rules if isinstance(rule.target, PollRoute)]
        outer = next(rule for rule in router.rules if isinstance(rule.target, tornado.routing.RuleRouter))
        nested = [rule.target for rule in outer.target.rules if isinstance(rule.target, PollRoute)]
        return mine, nested

    top = app.wildcard_router.rules
    assert top[0].target is Taken
    assert all(isinstance(rule.target, PollRoute) for rule in top[1:3])
    mine, nested = hoisted(app.wildcard_router)
    assert mine == nested and len(mine) == 2  # 0.6 polling and Engine.IO polling, the very bound routes
    assert all(route.application is app for route in mine)
    host_router = app.default_router.rules[0].target
    assert not any(isinstance(rule.target, PollRoute) for rule in app.default_router.rules)
    mine, nested = hoisted(host_router)
    assert mine == nested and len(mine) == 2

    class Wire(tornado.http1connection.HTTP1Connection):
        def __init__(self) -> None:
            """Only routed, never read or written."""

    wire = Wire()

    def target(path: str, host: str = "127.0.0.1") -> object:
        """The PollingTransport class or the RequestHandler class that ``GET path`` is routed to."""
        start_line = tornado.httputil.RequestStartLine("GET", path, "HTTP/1.1")
        headers = tornado.httputil.HTTPHeaders({"Host": host})
        found = app.find_handler(
            tornado.httputil.HTTPServerRequest(start_line=start_line, headers=headers, connection=wire)
        )
        return type(found) if isinstance(found, PollingTransport) else getattr(found, "handler_class", None)

    assert target("/socket.io/xhr-polling/taken/1") is Taken
    assert target("/socket.io/xhr-polling/abc/1") is XHRPollingTransport
    assert target("/elsewhere/xhr-polling/abc/1", "example.com") is XHRPollingTransport
    assert target("/elsewhere/xhr-polling/abc/1") is UnroutedHandler


class AppServerWithoutRegistry:
    """A plain ``HTTPServer`` in a thread, as ``application.listen`` starts one: no registry made first."""

    def __init__(self, application: tornado.web.Application) -> None:
        self.application = application
        self._inner = AppServer(tornado.web.Application())  # only for its thread and loop

    def __enter__(self) -> AppServerWithoutRegistry:
        self._inner.start()

        def listen() -> int:
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            self._http = tornado.httpserver.HTTPServer(self.application)
            self._http.add_sockets(sockets)
            port: int = sockets[0].getsockname()[1]
            return port

        self.port = self._inner.call(listen)
        return self

    def __exit__(self, *exc_info: object) -> None:
        def stop() -> None:
            self._http.stop()
            registry_for(self.application).close_all("shutdown")

        self._inner.call(stop)
        self._inner.stop()
