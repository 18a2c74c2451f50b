"""``PollFront``: polls straight to their transport, and nothing else different from the application's routing.

Each test serves an application through the front (``AppServer`` does, as
``SocketIOServer`` does) and checks on the wire what a client would see:
the same answers the application's own routing gives, Tornado's 400 for a
bad request head, ``xheaders`` applied, and rules of the application's own
still winning where they come first.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.httputil
import tornado.web

from tests.helpers import app_for, echo_handler, messages
from tests.transports.test_polling_delegate import closed_by_server, connect, form, read_answer, request
from tornad_io.front import KNOWN_HOSTS, PollFront, front_rules
from tornad_io.registry import registry_for
from tornad_io.testing import AppServer
from tornad_io.transports.polling import PollRoute


class Plain(tornado.web.RequestHandler):
    def get(self, *args: Any) -> None:
        self.write("plain")


class CountingRequest:
    """Counts the ``HTTPServerRequest`` objects made while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made = 0
        original = tornado.httputil.HTTPServerRequest.__init__

        def counting(request: Any, *args: Any, **kwargs: Any) -> None:
            self.made += 1
            original(request, *args, **kwargs)

        monkeypatch.setattr(tornado.httputil.HTTPServerRequest, "__init__", counting)


@pytest.fixture
def server() -> Iterator[AppServer]:
    app = tornado.web.Application([(r"/", Plain), echo_handler().routes("socket.io")], socket_io_close_timeout=600.0)
    with AppServer(app) as running:
        yield running


def open_session(raw: socket.socket, pending: bytearray, *extra: str) -> str:
    raw.sendall(request("GET", "/socket.io/xhr-polling//1", "HTTP/1.1", b"", *extra))
    status, _, body = read_answer(raw, pending)
    assert status == b"HTTP/1.1 200 OK", body
    sid, welcome = messages(body)
    assert welcome == "welcome"
    assert isinstance(sid, str)
    return sid


def test_polls_and_sends_of_an_open_session_make_no_request_object(
    server: AppServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        counter = CountingRequest(monkeypatch)
        sid = open_session(raw, pending)
        assert counter.made == 1  # the handshake: the handler's self.request
        for text in ("one", "two", "three"):
            payload = form(f"~m~{len(text)}~m~{text}")
            raw.sendall(request("POST", f"/socket.io/xhr-polling/{sid}/send", "HTTP/1.1", payload))
            assert read_answer(raw, pending)[2] == b"ok"
            raw.sendall(request("GET", f"/socket.io/xhr-polling/{sid}/2"))
            assert messages(read_answer(raw, pending)[2]) == [text]
        assert counter.made == 1


def test_other_requests_are_the_applications(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/"))
        assert read_answer(raw, pending)[2] == b"plain"
        raw.sendall(request("GET", "/nowhere"))
        assert read_answer(raw, pending)[0] == b"HTTP/1.1 404 Not Found"
        raw.sendall(request("GET", "/socket.io/"))  # the resource's own page: a rule inside routes()
        assert read_answer(raw, pending)[0] == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize(
    "host_lines",
    [
        [],  # HTTP/1.1 needs a Host
        ["Host: a.example, b.example"],
        ["Host: a.example", "Host: b.example"],
        ["Host: bad host"],
    ],
    ids=["missing", "comma", "twice", "invalid"],
)
def test_a_bad_host_is_refused_by_tornado_even_after_good_ones(server: AppServer, host_lines: list[str]) -> None:
    with connect(server.port) as raw:
        sid = open_session(raw, bytearray())
    head = "\r\n".join([f"GET /socket.io/xhr-polling/{sid}/2 HTTP/1.1", *host_lines]) + "\r\n\r\n"
    with connect(server.port) as raw:
        raw.sendall(head.encode())
        status = raw.recv(65536).split(b"\r\n", 1)[0]
        assert status == b"HTTP/1.1 400 Bad Request"
        assert closed_by_server(raw)


def test_a_poll_with_a_query_string_is_served(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        sid = open_session(raw, pending)
        raw.sendall(request("POST", f"/socket.io/xhr-polling/{sid}/send?t=1", "HTTP/1.1", form("~m~2~m~hi")))
        assert read_answer(raw, pending)[2] == b"ok"
        raw.sendall(request("GET", f"/socket.io/xhr-polling/{sid}/2?t=2&t=3"))
        assert messages(read_answer(raw, pending)[2]) == ["hi"]


def test_a_cross_origin_send_is_refused_and_a_same_origin_one_served(server: AppServer) -> None:
    with connect(server.port) as raw:
        pending = bytearray()
        sid = open_session(raw, pending)
        raw.sendall(
            request("POST", f"/socket.io/xhr-polling/{sid}/send", "HTTP/1.1", form("~m~1~m~x"), "Origin: http://evil.example")
        )
        status, _, body = read_answer(raw, pending)
        assert (status, body) == (b"HTTP/1.1 403 Origin not allowed", b"Origin not allowed")
    with connect(server.port) as raw:  # (a refused send's connection is closed: its body was never read)
        pending = bytearray()
        raw.sendall(
            request("POST", f"/socket.io/xhr-polling/{sid}/send", "HTTP/1.1", form("~m~1~m~y"), "Origin: http://127.0.0.1")
        )
        status, headers, body = read_answer(raw, pending)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"ok")
        assert headers["access-control-allow-origin"] == "http://127.0.0.1"


def test_xheaders_apply_to_polls_the_front_answers() -> None:
    handler = echo_handler()
    seen: list[tuple[str | None, str]] = []

    class Remembering(handler):  # type: ignore[valid-type,misc]
        def on_open(self, *args: Any, **kwargs: Any) -> None:
            seen.append((self.request.remote_ip, self.request.protocol))
            super().on_open(*args, **kwargs)

    app = app_for(Remembering)
    with AppServer(app, xheaders=True) as served, connect(served.port) as raw:
        pending = bytearray()
        sid = open_session(raw, pending, "X-Real-Ip: 203.0.113.7", "X-Forwarded-Proto: https")
        assert seen == [("203.0.113.7", "https")]
        # The page is https (what the proxy says): its origin is the server's own.
        raw.sendall(
            request(
                "POST",
                f"/socket.io/xhr-polling/{sid}/send",
                "HTTP/1.1",
                form("~m~1~m~z"),
                "Origin: https://127.0.0.1",
                "X-Forwarded-Proto: https",
            )
        )
        assert read_answer(raw, pending)[:3:2] == (b"HTTP/1.1 200 OK", b"ok")


def test_a_rule_of_the_applications_before_routes_still_wins() -> None:
    app = tornado.web.Application([(r"/socket\.io/xhr-polling/taken/.*", Plain), echo_handler().routes("socket.io")])
    with AppServer(app) as served, connect(served.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/socket.io/xhr-polling/taken/1"))
        assert read_answer(raw, pending)[2] == b"plain"
        sid = open_session(raw, pending)  # every other poll URL is still the front's
        assert sid


def test_a_matcher_it_cannot_judge_leaves_the_rest_to_the_application() -> None:
    class Everything(tornado.routing.Matcher):
        def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
            return {} if request.headers.get("X-Mine") else None

    app = tornado.web.Application([(Everything(), Plain), echo_handler().routes("socket.io")])
    registry_for(app).bind()
    assert front_rules(app) == []
    with AppServer(app) as served, connect(served.port) as raw:
        pending = bytearray()
        raw.sendall(request("GET", "/socket.io/xhr-polling//1", "HTTP/1.1", b"", "X-Mine: 1"))
        assert read_answer(raw, pending)[2] == b"plain"
        assert open_session(raw, pending)


def test_host_rules_leave_routing_to_the_application() -> None:
    app = app_for(echo_handler())
    with AppServer(app) as served:
        front = PollFront(app)
        assert [rule.route for rule in front.rules() if rule.route is not None]
        served.call(lambda: app.add_handlers(r"127\.0\.0\.1", [(r"/socket\.io/xhr-polling/.*", Plain)]))
        assert front.rules() == []  # read again: rules were added
        with connect(served.port) as raw:
            pending = bytearray()
            raw.sendall(request("GET", "/socket.io/xhr-polling//1"))  # (Host: 127.0.0.1)
            assert read_answer(raw, pending)[2] == b"plain"


def test_the_rules_are_the_bound_poll_routes_and_what_comes_before_them() -> None:
    app = tornado.web.Application(
        [(r"/", Plain), echo_handler().routes("socket.io"), echo_handler().routes("other"), (r"/after", Plain)]
    )
    assert front_rules(app) == []  # no route bound yet: the application routes (and binds) first
    registry_for(app).bind()
    rules = front_rules(app)
    routes = [rule.route for rule in rules if rule.route is not None]
    assert len(routes) == 2 and all(isinstance(route, PollRoute) and route.application is app for route in routes)
    assert rules[-1].route is routes[-1]  # nothing after the last route is read
    assert rules[0].route is None and rules[0].regex.pattern == "/$"


def test_the_hosts_it_remembers_are_bounded() -> None:
    front = PollFront(tornado.web.Application())
    for number in range(KNOWN_HOSTS * 3):
        front.remember_host(f"host{number}.example")
        assert len(front._known_hosts) <= KNOWN_HOSTS
    assert front.host_known(f"host{KNOWN_HOSTS * 3 - 1}.example")  # the newest is always remembered
