"""End-to-end tests with the official socket.io-client 4.x (Socket.IO v5) in Chromium, Firefox and WebKit.

The handler is a 2010-style ``SocketIOHandler`` (``on_open`` / ``on_message`` / ``on_close``) plus
the v5 hook ``on_event`` and ``emit``, mounted with ``routes("socket.io")``, the client's default
path. page_v5.html opens one socket per *mode*: ``default`` (the client's default transports:
polling, then the upgrade to websocket), ``websocket`` (``transports: ["websocket"]``) and
``polling`` (``transports: ["polling"]``). Each test runs in every engine (tests/engines.py):

* ``test_connect_echo_and_acks``, per mode: connect; the ``on_open`` message after the client's
  ``connect``; ``self.protocol`` ("polling", then "websocket" after the upgrade); echo of text,
  unicode, a JSON object and binary; acks both ways.
* ``test_refusal``: ``on_open`` returns ``False`` for the three modes at once.
* ``test_reconnect_after_a_server_restart``: the three modes at once, across a server stopped and
  started again on the same port.
* ``test_idle_then_echo`` (last of each engine): a page of three sockets, opened when the engine's
  first test starts (``idle_page``), idle for 30 s at least on a server of default settings: each
  socket gets at least one ping (the default ping interval is 25 s), stays connected, and echoes
  afterwards. The polling sockets' held polls also reach the default 20 s poll timeout on the way.
  The engine's other tests run meanwhile (about 15 to 20 s), so the 30 s cost only the rest:
  the issue's 30 s with the real default timers, rather than shorter ones, at about 15 s an engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.web
from sio_browser import LoggedPage, NoFavicon

from tests.engines import ENGINE_NAMES, Engine, javascript, wait_until
from tests.helpers import static_rule
from tornad_io import SocketIOHandler
from tornad_io.registry import registry_for
from tornad_io.testing import AppServer

HERE = Path(__file__).resolve().parent
PAGE_V5_HTML = HERE / "page_v5.html"

MODES = ("default", "websocket", "polling")
#: The Engine.IO transport each mode connects on (the handshake's transport).
FIRST_TRANSPORT = {"default": "polling", "websocket": "websocket", "polling": "polling"}
#: The transport each mode ends up on.
FINAL_TRANSPORT = {"default": "websocket", "websocket": "websocket", "polling": "polling"}
#: The engine's transport at the socket's connect event: the default mode's upgrade may finish before
#: the CONNECT answer arrives (the CONNECT itself always goes out on polling: on_open sees "polling").
AT_CONNECT = {mode: {FIRST_TRANSPORT[mode], FINAL_TRANSPORT[mode]} for mode in MODES}

#: Sent with socket.send, echoed with self.send: (as the page hands it over, as the server gets it,
#: as the client gets it back).
ECHOES: list[tuple[Any, Any, Any]] = [
    ("plain ascii text", "plain ascii text", "plain ascii text"),
    ("unicode: 中文 日本語 한국어 😀🎉 é", "unicode: 中文 日本語 한국어 😀🎉 é", "unicode: 中文 日本語 한국어 😀🎉 é"),
    (
        {"a": [1, [2, "x"]], "s": "y", "f": 1.5, "n": None, "ok": True},
        {"a": [1, [2, "x"]], "s": "y", "f": Decimal("1.5"), "n": None, "ok": True},
        {"a": [1, [2, "x"]], "s": "y", "f": 1.5, "n": None, "ok": True},
    ),
    (
        {"$arraybuffer": [0, 1, 2, 254, 255]},
        b"\x00\x01\x02\xfe\xff",
        {"$binary": [0, 1, 2, 254, 255], "type": "ArrayBuffer"},
    ),
    ({"$uint8array": [104, 105, 0]}, b"hi\x00", {"$binary": [104, 105, 0], "type": "ArrayBuffer"}),
]


class V5Record:
    """What the handlers saw, as (mode, kind, details...) tuples, written from the server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[Any, ...]] = []

    def add(self, mode: str, kind: str, *details: Any) -> None:
        with self._lock:
            self.events.append((mode, kind, *details))

    def of(self, mode: str, kind: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [event[2:] for event in self.events if event[0] == mode and event[1] == kind]

    def summary(self) -> str:
        with self._lock:
            return "server saw:\n" + "\n".join(f"  {event!r}" for event in self.events)


def make_v5_app(record: V5Record, client_js: Path, **settings: Any) -> tornado.web.Application:
    """The echo application for page_v5.html; each socket names its mode in its URL (``?mode=``)."""

    class V5EchoHandler(SocketIOHandler):  # type: ignore[misc]
        @property
        def mode(self) -> str:
            return self.request.query_arguments.get("mode", [b"?"])[-1].decode()

        def on_open(self, *args: Any, **kwargs: Any) -> Any:
            record.add(self.mode, "open", self.protocol, self.protocol_version, kwargs)
            if kwargs.get("auth", {}).get("refuse"):
                return False
            self.send("welcome")
            return None

        def on_message(self, message: Any) -> None:
            record.add(self.mode, "message", message, self.protocol)
            self.send(message)

        def on_event(self, event: str, *args: Any) -> Any:
            record.add(self.mode, "event", event, args)
            if event == "echo":
                return args  # a tuple: the ack carries each argument
            if event == "protocol":
                return self.protocol
            if event == "ask":
                mode = self.mode

                def answered(*answer: Any) -> None:
                    record.add(mode, "answer", answer)
                    self.send({"answer": list(answer)})

                self.emit("question", *args, callback=answered)
            return None

        def on_close(self) -> None:
            record.add(self.mode, "close")

    return tornado.web.Application(
        [
            static_rule(r"/v5/socket\.io\.min\.js", client_js, "text/javascript"),
            static_rule(r"/page_v5\.html", PAGE_V5_HTML, "text/html; charset=utf-8"),
            (r"/favicon\.ico", NoFavicon),
            V5EchoHandler.routes("socket.io"),
        ],
        **settings,
    )


class V5Page(LoggedPage):
    """Drives one page_v5.html window in any engine; explains failures with its log and the server's."""

    def __init__(self, engine: Engine, server: AppServer, record: V5Record, modes: tuple[str, ...], **query: str):
        super().__init__()
        self.engine = engine
        self.server = server
        self.record = record
        self.modes = modes
        params = {"modes": ",".join(modes), **query}
        self.url = f"{server.url}/page_v5.html?{urlencode(params)}"
        self.page = engine.open(self.url)

    def heading(self) -> str:
        return f"page_v5 ({self.engine.version}, modes {','.join(self.modes)})"

    def describe(self, notes_tail: int = 60) -> str:
        return super().describe(notes_tail)

    def entries(self, mode: str, event: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.log() if e["mode"] == mode and (event is None or e["event"] == event)]

    def events(self, mode: str) -> list[str]:
        """The mode's socket events: the engine's pings and upgrade left out (they come when they come:
        the upgrade may even finish before the socket's CONNECT is answered)."""
        return [e["event"] for e in self.entries(mode) if e["event"] not in ("ping", "upgrade")]

    def messages(self, mode: str) -> list[Any]:
        return [e["value"] for e in self.entries(mode, "message")]

    def last_message_at(self, mode: str) -> float:
        """When (the page's clock) the mode's last message arrived."""
        return float(self.entries(mode, "message")[-1]["t"])

    def wait_for(self, expression: str, what: str, timeout: float = 15.0) -> Any:
        assert self.page is not None, "the page is closed"
        return wait_until(self.page, expression, timeout=timeout, what=what, describe=self.describe)

    def wait_count(self, mode: str, event: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        self.wait_for(
            f"(window.LOG || []).filter(e => e.mode === {javascript(mode)} && e.event === {javascript(event)})"
            f".length >= {count}",
            what=f"{count} {event} event(s) of the {mode} socket",
            timeout=timeout,
        )
        return self.entries(mode, event)

    def wait_messages(self, mode: str, count: int, timeout: float = 15.0) -> list[Any]:
        self.wait_count(mode, "message", count, timeout)
        return self.messages(mode)

    def wait_server(self, check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.describe()}")
            time.sleep(0.05)  # wait-ok: polling server state

    def send(self, mode: str, values: list[Any]) -> None:
        self.evaluate(f"window.send({javascript(mode)}, {javascript(values)})")

    def emit_with_ack(self, mode: str, ident: str, event: str, *args: Any) -> list[Any]:
        """``socket.emit(event, ...args, ack)`` in the page; the values the ack was called with."""
        arguments = ", ".join(javascript(value) for value in (mode, ident, event, list(args)))
        self.evaluate(f"window.emitWithAck({arguments})")
        self.wait_for(
            f"window.LOG.some(e => e.event === 'ack' && e.id === {javascript(ident)})",
            what=f"the ack of {event!r} ({ident}) on the {mode} socket",
        )
        (ack,) = [e for e in self.entries(mode, "ack") if e["id"] == ident]
        values: list[Any] = ack["values"]
        return values

    def transport(self, mode: str) -> str:
        return self.evaluate(f"window.transportOf({javascript(mode)})")  # type: ignore[no-any-return]

    def wait_connected(self, mode: str, count: int = 1) -> dict[str, Any]:
        """Wait for the mode's ``count``-th connect (failing early on connect_error without retry)."""
        self.wait_for(
            f"(window.LOG || []).filter(e => e.mode === {javascript(mode)} && e.event === 'connect').length >= {count}"
            f" || (window.LOG || []).some(e => e.mode === {javascript(mode)} && e.event === 'connect_error'"
            " && !e.active)",
            what=f"connect #{count} of the {mode} socket",
        )
        connects = self.entries(mode, "connect")
        assert len(connects) >= count, f"the {mode} socket was refused\n{self.describe()}"
        return connects[count - 1]


Servers = Callable[..., tuple[AppServer, V5Record]]


@pytest.fixture
def start_v5_server(socket_io_v5_js: Path) -> Iterator[Servers]:
    """``start_v5_server(port=0, **settings)``: the v5 echo app on 127.0.0.1, stopped after the test."""
    started: list[AppServer] = []

    def start(port: int = 0, record: V5Record | None = None, **settings: Any) -> tuple[AppServer, V5Record]:
        record = V5Record() if record is None else record
        server = AppServer(make_v5_app(record, socket_io_v5_js, **settings), port=port).start()
        started.append(server)
        return server, record

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def v5_pages() -> Iterator[list[V5Page]]:
    """The pages a test opens go here and are closed at its end, whatever happened."""
    opened: list[V5Page] = []
    yield opened
    for page in opened:
        page.close()


#: The idle test's length: the default ping interval (25 s) plus margin, as the issue asks.
IDLE_SECONDS = 30.0


@pytest.fixture(scope="module")
def idle_page(engine: Engine, socket_io_v5_js: Path) -> Iterator[V5Page]:
    """A page of three sockets, one per mode, on a server of default settings (25 s pings), opened
    when this engine's first test starts, so that it idles while the others run (every test of the
    module requests it: ``pytestmark``). ``test_idle_then_echo``, the engine's last, checks it."""
    record = V5Record()
    with AppServer(make_v5_app(record, socket_io_v5_js)) as server:
        page = V5Page(engine, server, record, MODES)
        try:
            yield page
        finally:
            page.close()


pytestmark = pytest.mark.usefixtures("idle_page")

per_mode = pytest.mark.parametrize(
    ("engine", "mode"),
    [pytest.param(engine, mode, id=f"{engine}-{mode}") for engine in ENGINE_NAMES for mode in MODES],
    indirect=["engine"],
    scope="module",  # the engine's scope: else pytest restarts the browser for every mode
)


@per_mode
def test_connect_echo_and_acks(start_v5_server: Servers, v5_pages: list[V5Page], engine: Engine, mode: str) -> None:
    server, record = start_v5_server()
    page = V5Page(engine, server, record, (mode,))
    v5_pages.append(page)

    connect = page.wait_connected(mode)
    assert connect["transport"] in AT_CONNECT[mode], page.describe()
    assert page.wait_messages(mode, 1) == ["welcome"], page.describe()
    # on_open's message arrives after the client's connect event.
    assert page.events(mode)[:2] == ["connect", "message"], page.describe()
    ((protocol, version, kwargs),) = record.of(mode, "open")
    assert (protocol, version) == (FIRST_TRANSPORT[mode], "5"), page.describe()
    assert "auth" not in kwargs, page.describe()  # the client sent no auth payload

    if mode == "default":
        # The client upgrades to websocket by itself; the handler's protocol follows.
        page.wait_count(mode, "upgrade", 1)
        assert page.entries(mode, "upgrade")[0]["transport"] == "websocket", page.describe()
    assert page.transport(mode) == FINAL_TRANSPORT[mode], page.describe()
    assert page.emit_with_ack(mode, "protocol", "protocol") == [FINAL_TRANSPORT[mode]], page.describe()

    # Echo: text, unicode, a JSON object (its float a Decimal on the server), ArrayBuffer and Uint8Array.
    page.send(mode, [sent for sent, _, _ in ECHOES])
    received = page.wait_messages(mode, 1 + len(ECHOES))
    assert received == ["welcome", *(back for _, _, back in ECHOES)], page.describe()
    messages = record.of(mode, "message")
    assert [message for message, _ in messages] == [got for _, got, _ in ECHOES], page.describe()
    assert all(isinstance(message, bytes) for message, _ in messages[-2:]), page.describe()
    assert {protocol for _, protocol in messages} == {FINAL_TRANSPORT[mode]}, page.describe()

    # Client to server with an ack: on_event's return value (a tuple: one ack argument each).
    values = page.emit_with_ack(mode, "echo", "echo", "text ✓", {"k": [1, "x"]}, {"$uint8array": [0, 1, 255]})
    assert values == ["text ✓", {"k": [1, "x"]}, {"$binary": [0, 1, 255], "type": "ArrayBuffer"}], page.describe()
    assert record.of(mode, "event")[-1] == ("echo", ("text ✓", {"k": [1, "x"]}, b"\x00\x01\xff")), page.describe()

    # Server to client with an ack: self.emit(..., callback=...), answered by the page's ack function;
    # on_event returned None, so the client's own ack comes back with no arguments.
    assert page.emit_with_ack(mode, "ask", "ask", "why?", {"$arraybuffer": [1, 2]}) == [], page.describe()
    (question,) = page.wait_count(mode, "question", 1)
    assert question["values"] == ["why?", {"$binary": [1, 2], "type": "ArrayBuffer"}], page.describe()
    answer = page.wait_messages(mode, 2 + len(ECHOES))[-1]
    assert answer == {"answer": ["because", {"$binary": [7, 8, 9], "type": "ArrayBuffer"}]}, page.describe()
    assert record.of(mode, "answer") == [(("because", b"\x07\x08\x09"),)], page.describe()

    assert "disconnect" not in page.events(mode), page.describe()
    assert len(page.entries(mode, "connect")) == 1, page.describe()
    assert record.of(mode, "close") == [], page.describe()


def test_refusal(start_v5_server: Servers, v5_pages: list[V5Page], engine: Engine) -> None:
    """on_open returns False: each mode's connect_error fires, connect never does, on_close never runs."""
    server, record = start_v5_server()
    page = V5Page(engine, server, record, MODES, refuse="1")
    v5_pages.append(page)

    for mode in MODES:
        (refused,) = page.wait_count(mode, "connect_error", 1)
        assert "refused" in refused["message"], page.describe()
        assert refused["active"] is False, page.describe()  # a refusal: the client does not retry
        ((protocol, version, kwargs),) = record.of(mode, "open")
        assert (protocol, version, kwargs.get("auth")) == (FIRST_TRANSPORT[mode], "5", {"refuse": True}), (
            page.describe()
        )

    # The client closes its engine; the server lets the connections go without on_close.
    registry = registry_for(server.application)
    page.wait_server(lambda: server.call(lambda: len(registry.connections())) == 0, "the refused connections to end")
    for mode in MODES:
        assert page.events(mode) == ["connect_error"], page.describe()
        assert record.of(mode, "close") == [], page.describe()
        assert len(record.of(mode, "open")) == 1, page.describe()


def test_reconnect_after_a_server_restart(start_v5_server: Servers, v5_pages: list[V5Page], engine: Engine) -> None:
    """The server stops and a new one starts on the same port: every socket reconnects by itself and echoes."""
    first, before = start_v5_server()
    page = V5Page(engine, first, before, MODES)
    v5_pages.append(page)
    for mode in MODES:
        page.wait_connected(mode)
        page.wait_messages(mode, 1)
    page.wait_count("default", "upgrade", 1)

    first.stop()
    for mode in MODES:
        (lost,) = page.wait_count(mode, "disconnect", 1)
        assert lost["reason"] in ("transport close", "transport error"), page.describe()  # not "io server disconnect"
    assert sorted(mode for mode, kind, *_ in before.events if kind == "close") == sorted(MODES), page.describe()

    second, after = start_v5_server(port=first.port)
    page.record = after
    for mode in MODES:
        connect = page.wait_connected(mode, 2)
        assert connect["transport"] in AT_CONNECT[mode], page.describe()
        assert page.wait_messages(mode, 2) == ["welcome", "welcome"], page.describe()
        assert len(page.entries(mode, "reconnect")) == 1, page.describe()
    page.wait_count("default", "upgrade", 2)  # the new engine upgrades too
    for mode in MODES:
        page.send(mode, [f"back on {mode}"])
    for mode in MODES:
        assert page.wait_messages(mode, 3) == ["welcome", "welcome", f"back on {mode}"], page.describe()
        assert [opened[0] for opened in after.of(mode, "open")] == [FIRST_TRANSPORT[mode]], page.describe()
        assert after.of(mode, "message") == [(f"back on {mode}", FINAL_TRANSPORT[mode])], page.describe()
    retrying = ("reconnect_attempt", "connect_error", "reconnect")  # while the server was away
    for mode in MODES:
        seen = [event for event in page.events(mode) if event not in retrying]
        assert seen == ["connect", "message", "disconnect", "connect", "message", "message"], page.describe()


def test_idle_then_echo(idle_page: V5Page, engine: Engine) -> None:
    """The idle page's three sockets (default ping interval, 25 s) idle for 30 s or more: each gets
    at least one ping, none disconnects, and each echoes afterwards."""
    page = idle_page
    for mode in MODES:
        page.wait_connected(mode)
        page.wait_messages(mode, 1)
    (upgrade,) = page.wait_count("default", "upgrade", 1)
    # Idle since the last of the sockets connected, got its welcome or upgraded (the page's clock).
    since = max(upgrade["t"], *(page.last_message_at(mode) for mode in MODES))

    # Whatever of the 30 s the engine's other tests did not take, watched every second.
    while page.evaluate("window.elapsed()") - since < IDLE_SECONDS:
        for mode in MODES:
            assert "disconnect" not in page.events(mode), page.describe()
        time.sleep(1)  # wait-ok: the point of this test is 30 s of real idleness, watched every second

    for mode in MODES:
        assert len(page.entries(mode, "connect")) == 1, page.describe()
        assert page.entries(mode, "ping"), f"no ping reached the {mode} socket\n{page.describe()}"
        assert page.events(mode) == ["connect", "message"], page.describe()
        assert page.transport(mode) == FINAL_TRANSPORT[mode], page.describe()
        page.send(mode, [f"still here on {mode}"])
    for mode in MODES:
        assert page.wait_messages(mode, 2) == ["welcome", f"still here on {mode}"], page.describe()
        assert page.record.of(mode, "close") == [], page.describe()
