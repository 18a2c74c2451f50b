"""Socket.IO v5 end to end with a client no one here wrote: python-socketio's ``AsyncClient``.

Each test runs a real server on ``127.0.0.1`` (port 0) in the test's own
event loop, and the client against it, over each way a client can connect:
polling only, websocket only, and polling upgraded to websocket, the
websocket ones on both readers (``socket_io_websocket_takeover`` on and off).
The 0.6 side of the mixed-room tests is :class:`tornad_io.testing.SocketIOClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import socketio
import tornado.httpserver
import tornado.netutil
import tornado.web

import tornad_io
from tests.helpers import queued_callbacks_run
from tests.relay_app import Shouter
from tests.servers import RedisServer
from tests.test_relay import relay_of, start_worker, wait_for
from tornad_io import SocketIOHandler
from tornad_io.connection import Connection
from tornad_io.dialects import V5_REFUSED
from tornad_io.registry import registry_for
from tornad_io.relay import RedisRelay
from tornad_io.testing import AppServer, SocketIOClient

T = TypeVar("T")

#: Seconds any one wait may take before the test fails (generous: a busy machine is no reason to fail).
WAIT = 10.0


@dataclass(frozen=True)
class Mode:
    transports: tuple[str, ...]
    takeover: bool = True

    @property
    def upgrades(self) -> bool:
        return len(self.transports) > 1

    @property
    def final_transport(self) -> str:
        return self.transports[-1]


MODES = [
    pytest.param(Mode(("polling",)), id="polling"),
    pytest.param(Mode(("websocket",)), id="websocket"),
    pytest.param(Mode(("websocket",), takeover=False), id="websocket-tornado-reader"),
    pytest.param(Mode(("polling", "websocket")), id="upgrade"),
    pytest.param(Mode(("polling", "websocket"), takeover=False), id="upgrade-tornado-reader"),
]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


def run(scenario: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    """Run one test's scenario in a fresh event loop, bounded as a whole."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


class Seen:
    """What happened, in order, with a way to wait until something has happened often enough."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._changed: asyncio.Event | None = None

    def add(self, kind: str, *details: Any) -> None:
        self.events.append((kind, *details))
        if self._changed is not None:
            self._changed.set()

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == kind]

    def values(self, kind: str) -> list[Any]:
        """The one detail of each ``kind`` event."""
        return [event[1] for event in self.of(kind)]

    async def until(self, kind: str, count: int = 1, timeout: float = WAIT) -> list[tuple[Any, ...]]:
        async def enough() -> None:
            while len(self.of(kind)) < count:
                if self._changed is None:
                    self._changed = asyncio.Event()
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(f"{count} {kind!r} expected, saw {self.events}") from None
        return self.of(kind)


class Served:
    """An application served in the running loop on 127.0.0.1 and a free port."""

    def __init__(self, application: tornado.web.Application) -> None:
        self.application = application
        self.port = 0
        self._server: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def registry(self) -> Any:
        return registry_for(self.application)

    def connections(self) -> list[Connection]:
        return list(self.registry.connections())

    def only_connection(self) -> Connection:
        [connection] = self.connections()
        return connection

    def handler(self) -> Any:
        """The handler object of the one session being served."""
        return self.only_connection().handler

    async def __aenter__(self) -> Served:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(self.application)
        self._server.add_sockets(sockets)
        self.registry.bind()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.stop()
        self.registry.close_all("shutdown")
        await queued_callbacks_run()
        await self._server.close_all_connections()

    async def until_empty(self, timeout: float = WAIT) -> None:
        """Until every session of the application has ended."""
        async def empty() -> None:
            while len(self.registry):
                await asyncio.sleep(0.01)  # wait-ok: polling a condition, bounded by the timeout

        await asyncio.wait_for(empty(), timeout)


class Client:
    """python-socketio's AsyncClient, recording every event it gets, in order."""

    def __init__(self, mode: Mode, reconnection: bool = False, **options: Any) -> None:
        self.mode = mode
        self.sio = socketio.AsyncClient(reconnection=reconnection, reconnection_delay=0.05, **options)
        self.seen = Seen()
        sio, seen = self.sio, self.seen

        @sio.event
        async def connect() -> None:
            seen.add("connect", sio.transport())

        @sio.event
        async def connect_error(data: Any) -> None:
            seen.add("connect_error", data)

        @sio.event
        async def disconnect(reason: Any = None) -> None:
            seen.add("disconnect", reason)

        @sio.on("message")
        async def message(*args: Any) -> None:
            seen.add("message", *args)

        @sio.on("*")
        async def any_event(event: str, *args: Any) -> None:
            seen.add("event", event, args)

    async def connect(self, url: str, **options: Any) -> Client:
        await self.sio.connect(url, transports=list(self.mode.transports), wait_timeout=WAIT, **options)
        return self

    def on(self, event: str, handler: Callable[..., Awaitable[Any]]) -> None:
        self.sio.on(event, handler)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@contextlib.asynccontextmanager
async def connected(served: Served, mode: Mode, **options: Any) -> AsyncIterator[Client]:
    client = Client(mode)
    await client.connect(served.url, **options)
    try:
        yield client
    finally:
        await client.close()


def app_with(handler: type[SocketIOHandler], mode: Mode | None = None, **settings: Any) -> tornado.web.Application:
    if mode is not None:
        settings.setdefault("socket_io_websocket_takeover", mode.takeover)
    return tornado.web.Application([handler.routes("socket.io")], **settings)


# -- the handler ---------------------------------------------------------------------------------------------------


def five_handler() -> type[SocketIOHandler]:
    """A fresh handler class (its own audience and record) exercising the whole v5 API."""

    class Five(SocketIOHandler):
        seen = Seen()

        def on_open(self, *args: Any, **kwargs: Any) -> Any:
            self.seen.add("open", args, kwargs, self.protocol, self.protocol_version)
            auth = kwargs.get("auth")
            refusal = auth.get("refuse") if isinstance(auth, dict) else None
            self.send("welcome")
            if refusal == "false":
                return False
            if refusal == "raise":
                raise RuntimeError("on_open refuses by raising (a test)")
            return None

        def on_message(self, message: Any) -> Any:
            self.seen.add("message", message, self.protocol)
            if message == "bye":
                self.send("bye")
                self.close()
                return None
            self.send(message)
            return ("got", message)

        def on_event(self, event: str, *args: Any) -> Any:
            self.seen.add("event", event, args)
            if event == "ack-none":
                return None
            if event == "ack-tuple":
                return (1, "two", Decimal("3.25"))
            if event == "ack-value":
                return {"args": list(args)}
            if event == "ack-coroutine":
                return self.later(*args)
            if event == "echo":
                self.emit("echo", *args)
                return args
            if event == "ask":
                for question in args:
                    self.emit("question", question, callback=self.answered)
                return None
            return None

        async def later(self, *args: Any) -> Any:
            # Suspends once, as a hook awaiting real work would: the ack must wait for the result.
            resumed = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(resumed.set_result, None)
            await resumed
            return ("later", *args)

        def answered(self, *answer: Any) -> None:
            self.seen.add("answer", answer)

        def on_close(self) -> None:
            self.seen.add("close", self.session_id)

    return Five


def seen_of(handler: type[SocketIOHandler]) -> Seen:
    seen: Seen = handler.seen  # type: ignore[attr-defined]
    return seen


# -- opening -------------------------------------------------------------------------------------------------------


def test_on_open_once_after_connect_with_extra_and_auth(mode: Mode) -> None:
    handler = five_handler()
    seen = seen_of(handler)
    app = tornado.web.Application(
        [handler.routes("echoTest", r"(\d+)(?P<name>[a-z]+)", "/")], socket_io_websocket_takeover=mode.takeover
    )

    async def scenario() -> None:
        async with Served(app) as served:
            client = await Client(mode).connect(served.url, socketio_path="/echoTest/123abc/", auth={"token": "t1"})
            await client.seen.until("message")
            # The first message from on_open arrives after the client's connect event.
            assert [kind for kind, *_ in client.seen.events] == ["connect", "message"]
            assert client.seen.values("message") == ["welcome"]
            expected = "polling" if mode.transports == ("polling",) else "websocket"
            [(_, args, kwargs, protocol, version)] = seen.of("open")
            assert args == ("123",)
            assert kwargs == {"extra": "123abc", "name": "abc", "auth": {"token": "t1"}}
            assert protocol == expected and version == "5"
            assert client.sio.transport() == mode.final_transport

            plain = await Client(mode).connect(served.url, socketio_path="/echoTest/123abc/")
            await plain.seen.until("message")
            # python-socketio always sends an auth object ({} by default); a CONNECT without one
            # (socket.io-client's default) leaves kwargs without "auth": see tests/transports/test_engine.py.
            assert seen.of("open")[1][2] == {"extra": "123abc", "name": "abc", "auth": {}}

            stats = tornad_io.stats(app)
            assert stats.connections == 2 and stats.by_transport == {mode.final_transport: 2}
            await client.sio.emit("message", "still one open")
            await seen.until("message")
            assert len(seen.of("open")) == 2  # once per connection, never again
            for each in (client, plain):
                await each.close()
            await seen.until("close", 2)
            assert tornad_io.stats(app).connections == 0

    run(scenario())


@pytest.mark.parametrize("how", ["false", "raise"])
def test_a_refused_connect_fires_connect_error_and_never_on_close(mode: Mode, how: str) -> None:
    handler = five_handler()
    seen = seen_of(handler)
    app = app_with(handler, mode)

    async def scenario() -> None:
        async with Served(app) as served:
            client = Client(mode)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(served.url, auth={"refuse": how})
            assert client.seen.values("connect_error") == [{"message": V5_REFUSED}]
            assert client.seen.of("message") == []  # what on_open sent is dropped with the refusal
            assert client.seen.of("connect") == []
            await served.until_empty()
            await queued_callbacks_run()
            assert len(seen.of("open")) == 1 and seen.of("close") == []

    run(scenario())


# -- messages, events, acks ----------------------------------------------------------------------------------------


def test_messages_of_every_kind_echo_both_ways(mode: Mode) -> None:
    handler = five_handler()
    seen = seen_of(handler)

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served, connected(served, mode) as client:
            await client.seen.until("message")
            sent: list[Any] = [
                "plain",
                "h\u00e9llo \u4e2d \U0001f600",
                {"a": [1, {"b": None}], "ok": True},
                [1, "two", [3]],
                "",
                "control \x1e\x00\n characters",  # \x1e separates polling records: it must travel escaped
            ]
            for value in sent:
                await client.sio.send(value)
            await client.sio.emit("message", ("several", 2, {"three": 3}))  # several arguments: one list
            await client.seen.until("message", 1 + len(sent) + 1)
            received = [value for value, _ in (event[1:] for event in seen.of("message"))]
            assert received == [*sent, ["several", 2, {"three": 3}]]
            assert client.seen.values("message")[1:] == [*sent, ["several", 2, {"three": 3}]]
            assert seen.of("message")[-1][2] == mode.final_transport  # self.protocol

    run(scenario())


def test_decimal_in_every_direction(mode: Mode) -> None:
    handler = five_handler()
    seen = seen_of(handler)

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served, connected(served, mode) as client:

            async def question(*args: Any) -> Any:
                return ("because", 2.5)

            client.on("question", question)
            await client.sio.send({"price": 1.5})  # client float -> Decimal in on_message
            await client.seen.until("message", 2)
            assert seen.of("message")[0][1] == {"price": Decimal("1.5")}
            assert client.seen.values("message")[1] == {"price": 1.5}  # Decimal -> JSON number
            assert await client.sio.call("ack-tuple", 0.125, timeout=WAIT) == (1, "two", 3.25)  # Decimal in an ack
            assert seen.of("event")[0] == ("event", "ack-tuple", (Decimal("0.125"),))  # in event arguments
            seen.events.clear()
            handler_object = served.handler()
            handler_object.emit("rate", Decimal("0.75"))  # Decimal in an emit
            await client.seen.until("event")
            assert client.seen.of("event") == [("event", "rate", (0.75,))]
            await client.sio.emit("ask", "why?")
            [(_, answer)] = await seen.until("answer")
            assert answer == ("because", Decimal("2.5"))  # the client's float in its ack

    run(scenario())


def test_on_event_acks_none_tuple_value_and_coroutine(mode: Mode) -> None:
    handler = five_handler()

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served, connected(served, mode) as client:
            call = client.sio.call
            assert await call("ack-none", timeout=WAIT) is None
            assert await call("ack-tuple", timeout=WAIT) == (1, "two", 3.25)
            assert await call("ack-value", ("x", [1]), timeout=WAIT) == {"args": ["x", [1]]}
            assert await call("ack-coroutine", ("a", "b"), timeout=WAIT) == ("later", "a", "b")
            assert await call("message", "with an ack", timeout=WAIT) == ("got", "with an ack")

    run(scenario())


def test_server_emit_with_a_callback_gets_the_client_ack(mode: Mode) -> None:
    handler = five_handler()
    seen = seen_of(handler)

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served, connected(served, mode) as client:

            async def question(text: str) -> Any:
                return None if text == "silent" else ("because", text.upper())

            client.on("question", question)
            await client.sio.emit("ask", ("why", "silent"))
            answers = await seen.until("answer", 2)
            assert sorted(answer for _, answer in answers) == [(), ("because", "WHY")]
            served.handler().emit("plain", "no ack wanted")
            await client.seen.until("event")
            assert client.seen.of("event") == [("event", "plain", ("no ack wanted",))]

    run(scenario())


def test_bytes_both_ways_nested_too(mode: Mode) -> None:
    handler = five_handler()
    seen = seen_of(handler)
    blob = bytes(range(256))

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served, connected(served, mode) as client:
            args = (blob, {"nested": [b"\xff\x00", "text"], "empty": b""})
            assert await client.sio.call("echo", args, timeout=WAIT) == args  # BINARY_EVENT in, BINARY_ACK out
            assert seen.of("event") == [("event", "echo", args)]
            [(_, name, echoed)] = await client.seen.until("event")
            assert (name, echoed) == ("echo", args)  # BINARY_EVENT out

            async def question(text: str) -> Any:
                return (b"raw " + text.encode(), {"more": [b"\x00"]})

            client.on("question", question)
            await client.sio.emit("ask", "q")
            [(_, answer)] = await seen.until("answer")
            assert answer == (b"raw q", {"more": [b"\x00"]})  # BINARY_ACK in
            served.handler().send({"blob": b"\x01"})  # bytes in a message
            await client.seen.until("message", 2)
            assert client.seen.values("message")[1] == {"blob": b"\x01"}

    run(scenario())


def test_a_raising_hook_is_named_in_the_log_and_the_connection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    mode = Mode(("websocket",))

    class Raising(SocketIOHandler):
        seen = Seen()

        async def on_message(self, message: Any) -> None:
            if message == "raise":
                raise ValueError("on_message raises (a test)")
            self.send(message)

        def on_event(self, event: str, *args: Any) -> None:
            if event == "ask":
                self.emit("question", callback=self.answered)
                return
            raise ValueError("on_event raises (a test)")

        def answered(self, *answer: Any) -> None:
            self.seen.add("answer", answer)
            raise ValueError("the ack callback raises (a test)")

    async def scenario() -> None:
        async with Served(app_with(Raising, mode)) as served, connected(served, mode) as client:

            async def question() -> str:
                return "because"

            client.on("question", question)
            with caplog.at_level(logging.ERROR, logger="tornad_io.connection"):
                await client.sio.send("raise")
                await client.sio.emit("anything")
                await client.sio.emit("ask")
                await Raising.seen.until("answer")
                await client.sio.send("still here")
                await client.seen.until("message")
            assert client.seen.values("message") == ["still here"]
            sid = served.only_connection().short_id
            assert [r.getMessage() for r in caplog.records] == [
                f"on_message of {sid} raised; the connection goes on",
                f"on_event of {sid} raised; the connection goes on",
                f"the ack callback of {sid} raised; the connection goes on",
            ]

    run(scenario())


# -- closing -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["from a hook after a send", "from outside"])
def test_server_close_disconnects_without_reconnecting(mode: Mode, where: str) -> None:
    handler = five_handler()
    seen = seen_of(handler)

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served:
            client = Client(mode, reconnection=True)
            await client.connect(served.url)
            await client.seen.until("message")
            if where == "from outside":
                served.handler().close()
            else:
                await client.sio.send("bye")  # the handler sends "bye", then closes
                await client.seen.until("message", 2)
            [(_, reason)] = await client.seen.until("disconnect")
            assert reason == client.sio.reason.SERVER_DISCONNECT
            await seen.until("close")
            await served.until_empty()
            assert client.sio._reconnect_task is None  # it is not coming back
            assert not client.sio.connected
            assert len(seen.of("open")) == 1 and len(seen.of("close")) == 1
            assert client.seen.of("connect_error") == []

    run(scenario())


def test_client_disconnect_runs_on_close_once(mode: Mode) -> None:
    handler = five_handler()
    seen = seen_of(handler)

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served:
            client = await Client(mode).connect(served.url)
            sid = served.only_connection().session_id
            await client.sio.disconnect()
            [(_, closed)] = await seen.until("close")
            assert closed == sid
            await served.until_empty()
            await queued_callbacks_run()
            assert len(seen.of("close")) == 1

    run(scenario())


# -- the 0.6 and v5 generations side by side -----------------------------------------------------------------------


def chat_handler() -> type[SocketIOHandler]:
    """Everyone joins the lobby; every message goes to the others in it, whichever client they use."""

    class Chat(SocketIOHandler):
        seen = Seen()

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            self.join("lobby")
            self.send(f"joined over {self.protocol_version}")

        def on_message(self, message: Any) -> None:
            type(self).broadcast(message, room="lobby", exclude=self)

        def on_close(self) -> None:
            self.seen.add("close", self.protocol_version)

    return Chat


async def connect_06(url: str, transport: str = "websocket", greeting: str = "joined over 0.6") -> SocketIOClient:
    client = SocketIOClient(url, transport=transport)
    await asyncio.to_thread(client.connect)
    assert await asyncio.to_thread(client.receive) == greeting
    return client


def test_emit_and_bytes_on_a_0_6_connection_raise_type_error() -> None:
    handler = five_handler()

    async def scenario() -> None:
        async with Served(app_with(handler)) as served:
            old = await connect_06(served.url, greeting="welcome")
            try:
                handler_object = served.handler()
                assert handler_object.protocol_version == "0.6"
                with pytest.raises(TypeError, match="0.6 clients have no events"):
                    handler_object.emit("news", 1)
                with pytest.raises(TypeError, match="bytes cannot be sent to a Socket.IO 0.6 client"):
                    handler_object.send(b"\x00")
                handler_object.send("still fine")
                assert await asyncio.to_thread(old.receive) == "still fine"
            finally:
                old.close()

    run(scenario())


def test_a_0_6_and_a_v5_client_in_one_room_see_each_other(mode: Mode) -> None:
    handler = chat_handler()

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served:
            old = await connect_06(served.url, "xhr-polling" if mode.transports == ("polling",) else "websocket")
            async with connected(served, mode) as new:
                await new.seen.until("message")
                assert new.seen.values("message") == ["joined over 5"]
                await new.sio.send({"from": "v5", "n": 1.5})
                assert await asyncio.to_thread(old.receive) == {"from": "v5", "n": Decimal("1.5")}
                await asyncio.to_thread(old.send, "from 0.6", {"k": [1]})
                await new.seen.until("message", 3)
                assert new.seen.values("message")[1:] == ["from 0.6", {"k": [1]}]
            old.close()

    run(scenario())


def test_broadcasts_of_bytes_and_events_skip_0_6_members_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    handler = chat_handler()
    mode = Mode(("websocket",))

    async def scenario() -> None:
        async with Served(app_with(handler, mode)) as served:
            olds = [await connect_06(served.url) for _ in range(2)]
            async with connected(served, mode) as new:
                await new.seen.until("message")
                with caplog.at_level(logging.WARNING, logger="tornad_io.registry"):
                    handler.broadcast({"blob": b"\x00\x01"}, room="lobby")
                    handler.broadcast_event("news", 1, b"\xff", room="lobby")
                await new.seen.until("message", 2)
                await new.seen.until("event")
                assert new.seen.values("message")[1] == {"blob": b"\x00\x01"}
                assert new.seen.of("event") == [("event", "news", (1, b"\xff"))]
                handler.broadcast("text for all", room="lobby")
                for old in olds:  # the next thing the 0.6 clients get: nothing was queued for them before
                    assert await asyncio.to_thread(old.receive) == "text for all"
                await new.seen.until("message", 3)
            skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
            assert skipped == [
                "a broadcast of bytes skipped 2 Socket.IO 0.6 client(s): they cannot receive events or bytes",
                "a broadcast of event 'news' skipped 2 Socket.IO 0.6 client(s): they cannot receive events or bytes",
            ]
            for old in olds:
                old.close()

    run(scenario())


# -- hardening -----------------------------------------------------------------------------------------------------


def test_a_message_over_the_size_limit_is_refused(mode: Mode, caplog: pytest.LogCaptureFixture) -> None:
    handler = five_handler()
    seen = seen_of(handler)
    settings = {"socket_io_max_message_size": 4096, "socket_io_poll_timeout": 0.3, "socket_io_close_timeout": 0.5}

    async def scenario() -> None:
        async with Served(app_with(handler, mode, **settings)) as served:
            client = await Client(mode).connect(served.url)
            await client.seen.until("message")
            with caplog.at_level(logging.WARNING):
                await client.sio.send("x" * 10_000)
                # The session ends: a websocket is closed at once (code 1009); a polling client whose
                # POST got 413 stops polling, and its session times out.
                await seen.until("close")
            assert seen.of("message") == []
            if mode.final_transport == "websocket":
                await client.seen.until("disconnect")
                if mode.takeover:
                    assert any("message over 4096 bytes (close code 1009)" in r.getMessage() for r in caplog.records)
            else:
                assert any(
                    r.getMessage() == "413 POST /socket.io/: Payload too large (Content-Length 10016)"
                    for r in caplog.records
                )
            await client.close()

    run(scenario())


def test_a_slow_handler_pauses_reading(mode: Mode, caplog: pytest.LogCaptureFixture) -> None:
    gate_holder: list[asyncio.Event] = []

    class Slow(SocketIOHandler):
        seen = Seen()

        async def on_message(self, message: Any) -> None:
            if message == "hold":
                await gate_holder[0].wait()
            self.seen.add("message", message)

    async def scenario() -> None:
        gate_holder.append(asyncio.Event())
        async with Served(app_with(Slow, mode, socket_io_max_pending_messages=2)) as served:
            async with connected(served, mode) as client:
                with caplog.at_level(logging.DEBUG, logger="tornad_io.connection"):
                    await client.sio.send("hold")
                    for n in range(30):
                        await client.sio.send(n)
                    connection = served.only_connection()

                    async def paused() -> None:
                        while connection._readable is None:
                            await asyncio.sleep(0.01)  # wait-ok: polling a condition, bounded below

                    await asyncio.wait_for(paused(), WAIT)
                    if mode.final_transport == "websocket":  # one packet per message: reading stops at the bound
                        assert len(connection._inbox) == 3
                    gate_holder[0].set()
                    await Slow.seen.until("message", 31)
                assert Slow.seen.values("message") == ["hold", *range(30)]
                assert any("pausing reads from" in r.getMessage() for r in caplog.records)

    run(scenario())


def test_unanswered_acks_are_bounded(mode: Mode, caplog: pytest.LogCaptureFixture) -> None:
    handler = five_handler()
    seen = seen_of(handler)

    async def scenario() -> None:
        gate = asyncio.Event()
        async with Served(app_with(handler, mode, socket_io_max_pending_acks=2)) as served:
            async with connected(served, mode) as client:

                async def question(text: str) -> str:
                    await gate.wait()
                    return f"answer to {text}"

                client.on("question", question)
                with caplog.at_level(logging.WARNING, logger="tornad_io.connection"):
                    await client.sio.emit("ask", ("q0", "q1", "q2"))
                    connection = served.only_connection()

                    async def emitted() -> None:
                        while connection._next_ack_id < 3:
                            await asyncio.sleep(0.01)  # wait-ok: polling a condition, bounded below

                    await asyncio.wait_for(emitted(), WAIT)
                warnings = [r.getMessage() for r in caplog.records if "oldest callback" in r.getMessage()]
                assert len(warnings) == 1
                assert "has not acked 3 emits; the oldest callback (ack 0) is dropped" in warnings[0]
                assert "socket_io_max_pending_acks is 2" in warnings[0]
                gate.set()
                answers = await seen.until("answer", 2)
                assert [answer for _, answer in answers] == [("answer to q1",), ("answer to q2",)]
                assert connection._acks == {}

    run(scenario())


# -- several processes ---------------------------------------------------------------------------------------------


def test_the_relay_carries_a_v5_event_with_bytes(redis_server: RedisServer) -> None:
    from tests.relay_app import make_app

    other, other_port = start_worker(f"socket_io_redis_url={redis_server.url}", "socket_io_worker_tag=w2")
    app = make_app(socket_io_redis_url=redis_server.url, socket_io_worker_tag="w1")
    mode = Mode(("websocket",))

    async def scenario(here: AppServer) -> None:
        remote = await Client(mode).connect(f"http://127.0.0.1:{other_port}")
        local = await Client(mode).connect(here.url)
        try:
            for client, tag in ((remote, "w2"), (local, "w1")):
                await client.seen.until("message")
                assert client.seen.values("message") == [f"hello from {tag}"]
            here.call(lambda: Shouter.broadcast_event("news", b"\x00\x01", {"k": [b"\xff"]}, application=app))
            for client in (local, remote):
                [(_, name, args)] = await client.seen.until("event")
                assert (name, args) == ("news", (b"\x00\x01", {"k": [b"\xff"]}))
        finally:
            for client in (local, remote):
                await client.close()

    try:
        with AppServer(app) as here:
            relay: RedisRelay = relay_of(here, app)
            wait_for(relay.connected.is_set)
            old_remote = SocketIOClient(f"http://127.0.0.1:{other_port}", transport="websocket")
            old_remote.connect()
            assert old_remote.receive() == "hello from w2"
            run(scenario(here))
            here.call(lambda: Shouter.broadcast("text", application=app))
            assert old_remote.receive() == "text"  # the event never reached the 0.6 client
            old_remote.close()
    finally:
        other.terminate()
        other.wait(10)
