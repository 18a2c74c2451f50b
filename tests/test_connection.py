"""The connection life cycle: one close path, on_close exactly once, timers and registries emptied."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import tornado.tcpclient
import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import RawStream, Recorder, app_for, echo_handler, messages
from tornad_io import SocketIOHandler
from tornad_io.codec import Heartbeat, encode_frame
from tornad_io.connection import TRANSITIONS, State
from tornad_io.registry import registry_for


class LifecycleCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return app_for(self.handler, **self.settings)

    async def ws(self) -> tuple[tornado.websocket.WebSocketClientConnection, str]:
        ws = await tornado.websocket.websocket_connect(self.get_url("/socket.io/websocket").replace("http", "ws"))
        sid, _ = messages(await ws.read_message())  # type: ignore[arg-type]
        return ws, sid

    def assert_all_released(self) -> None:
        registry = registry_for(self._app)
        assert len(registry) == 0
        assert registry._sweeper is None


class TestOneClosePath(LifecycleCase):
    @tornado.testing.gen_test
    async def test_close_is_idempotent_and_on_close_runs_once_later(self) -> None:
        ws, sid = await self.ws()
        connection = registry_for(self._app).get(sid)
        assert connection is not None
        connection.handler.close()
        connection.handler.close()
        connection.close("again")
        assert self.recorder.of("close") == []  # never inside the caller
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]
        assert connection.state is State.CLOSED and connection.close_reason == "server close"
        assert connection._beat_wait is None
        self.assert_all_released()
        ws.close()

    @tornado.testing.gen_test
    async def test_sending_to_a_closed_connection_is_a_quiet_no_op(self) -> None:
        ws, sid = await self.ws()
        handler = registry_for(self._app).get(sid).handler  # type: ignore[union-attr]
        ws.close()
        await self.recorder.wait("close")
        with tornado.testing.ExpectLog("tornad_io.connection", ".*send on closed connection", level=10):
            handler.send("anyone there?")

    @tornado.testing.gen_test
    async def test_handlers_are_hashable_set_members(self) -> None:
        _, first = await self.ws()
        _, second = await self.ws()
        handlers = {registry_for(self._app).get(sid).handler for sid in (first, second)}  # type: ignore[union-attr]
        assert len(handlers) == 2


class Room(SocketIOHandler):
    """The 2010 chatroom pattern: a set of participants edited by on_open and on_close."""

    participants: set[SocketIOHandler]
    recorder: Recorder

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.participants.add(self)

    def on_message(self, message: Any) -> None:
        for participant in self.participants:  # not a copy: send must never edit the set
            participant.send(message)

    def on_close(self) -> None:
        self.participants.discard(self)
        self.recorder.add("close")


class TestBroadcastLoop(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.room = type("R", (Room,), {"participants": set(), "recorder": Recorder()})
        return tornado.web.Application([self.room.routes("socket.io")])

    @tornado.testing.gen_test
    async def test_sending_to_a_set_that_on_close_edits_is_safe(self) -> None:
        url = self.get_url("/socket.io/websocket").replace("http", "ws")
        sockets = [await tornado.websocket.websocket_connect(url) for _ in range(3)]
        for ws in sockets:
            await ws.read_message()
        gone = next(iter(self.room.participants))
        gone._connection.close("client gone")  # dead, but still in the set until on_close runs
        await sockets[0].write_message(encode_frame("to all"))
        await self.room.recorder.wait("close")
        assert len(self.room.participants) == 2
        for ws in sockets:
            ws.close()


class Refusing(SocketIOHandler):
    recorder: Recorder

    async def on_open(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError("no token")

    def on_close(self) -> None:
        self.recorder.add("close")


class TestOnOpenFailure(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        return tornado.web.Application([type("F", (Refusing,), {"recorder": self.recorder}).routes("socket.io")])

    @tornado.testing.gen_test
    async def test_an_exception_in_on_open_refuses_and_skips_on_close(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.connection", ".*on_open of .* raised"):
            ws = await tornado.websocket.websocket_connect(self.get_url("/socket.io/websocket").replace("http", "ws"))
            assert await ws.read_message() is None  # closed without a session id
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"), raise_error=False)
        assert response.code == 403 and b"~m~" not in response.body
        await asyncio.sleep(0.05)  # wait-ok: give a wrongly scheduled on_close the chance to run
        assert self.recorder.events == []
        assert len(registry_for(self._app)) == 0


class TestPollingLiveness(LifecycleCase):
    settings = {"socket_io_poll_timeout": 0.3, "socket_io_close_timeout": 0.3}

    @tornado.testing.gen_test
    async def test_an_old_keepalive_connection_closing_means_nothing(self) -> None:
        port = self.get_http_port()
        old = await RawStream.open(port, "/socket.io/xhr-polling//1")  # keep-alive connection A
        body = await old.stream.read_bytes(int(old.headers["content-length"]))
        sid = messages(body)[0]
        held = asyncio.ensure_future(  # the current poll, on connection B
            self.http_client.fetch(self.get_url(f"/socket.io/xhr-polling/{sid}/2"), request_timeout=10)
        )
        await asyncio.sleep(0.05)  # wait-ok: let the poll attach before the old connection goes
        old.close()
        registry_for(self._app).get(sid).handler.send("still here")  # type: ignore[union-attr]
        assert messages((await held).body) == ["still here"]
        assert self.recorder.of("close") == []

    @tornado.testing.gen_test
    async def test_a_session_ends_once_and_releases_everything(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        sid = messages(response.body)[0]
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]
        self.assert_all_released()


class TestStreamsOutliveThePollingTimers(LifecycleCase):
    settings = {
        "socket_io_poll_timeout": 0.05,
        "socket_io_close_timeout": 0.05,
        "socket_io_heartbeat_interval": 0.2,
        "socket_io_heartbeat_timeout": 1.0,
    }

    @tornado.testing.gen_test
    async def test_a_healthy_stream_is_never_ended_by_a_timer(self) -> None:
        stream = await RawStream.open(self.get_http_port(), "/socket.io/xhr-multipart/")
        started = time.monotonic()
        sid = None
        beats = 0
        while beats < 3:  # 0.6 s: twelve poll and close timeouts
            part = (await stream.chunk()).decode()
            payload = part.split("\n\n", 1)[1].rsplit("\n--", 1)[0] if "\n\n" in part else ""
            for message in messages(payload) if payload else []:
                if sid is None:
                    sid = message
                elif isinstance(message, Heartbeat):
                    beats += 1
                    response = await self.http_client.fetch(
                        self.get_url(f"/socket.io/xhr-multipart/{sid}/send"), method="POST",
                        body="data=" + encode_frame(f"~h~{message.number}"),
                    )
                    assert response.code == 200
        assert time.monotonic() - started > 0.5
        assert self.recorder.of("close") == []
        stream.close()
        await self.recorder.wait("close")


class BrokenClose(SocketIOHandler):
    def on_close(self) -> None:
        raise RuntimeError("cleanup failed")


class TestOnCloseFailure(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([BrokenClose.routes("socket.io")])

    @tornado.testing.gen_test
    async def test_an_exception_in_on_close_is_logged_and_everything_is_released(self) -> None:
        url = self.get_url("/socket.io/websocket").replace("http", "ws")
        ws = await tornado.websocket.websocket_connect(url)
        await ws.read_message()
        other = await tornado.websocket.websocket_connect(url)
        await other.read_message()
        with tornado.testing.ExpectLog("tornad_io.connection", ".*on_close of .* raised"):
            ws.close()
            while len(registry_for(self._app)) > 1:
                await asyncio.sleep(0.01)  # wait-ok: until the server saw the close
            await asyncio.sleep(0.05)  # wait-ok: on_close runs on a later loop iteration
        assert len(registry_for(self._app)) == 1
        other.close()


class SlowOpener(SocketIOHandler):
    """on_open awaits a gate the test opens, so a client can leave while it runs."""

    recorder: Recorder
    gate: asyncio.Event

    async def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.recorder.add("opening")
        await self.gate.wait()
        self.recorder.add("opened")

    def on_message(self, message: Any) -> None:
        self.send(message)

    def on_close(self) -> None:
        self.recorder.add("close")


class TestLeavingWhileOnOpenRuns(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        self.gate = asyncio.Event()
        handler = type("S", (SlowOpener,), {"recorder": self.recorder, "gate": self.gate})
        return app_for(handler, socket_io_close_timeout=60.0)

    async def until_released(self) -> None:
        registry = registry_for(self._app)
        while len(registry):
            await asyncio.sleep(0.01)  # wait-ok: polling a condition, not a timing guess

    @tornado.testing.gen_test
    async def test_a_websocket_that_leaves_still_gets_on_close_once_on_open_returns(self) -> None:
        ws = await tornado.websocket.websocket_connect(self.get_url("/socket.io/websocket").replace("http", "ws"))
        await self.recorder.wait("opening")
        connection = registry_for(self._app).connections()[0]
        ws.close()
        await self.until_released()
        assert connection.state is State.ABANDONED
        assert self.recorder.of("close") == []  # on_open has not returned yet
        self.gate.set()
        await self.recorder.wait("close")
        assert [event[0] for event in self.recorder.events] == ["opening", "opened", "close"]
        assert connection.state is State.CLOSED

    @tornado.testing.gen_test
    async def test_a_polling_handshake_that_leaves_is_released_at_once(self) -> None:
        # Its answer would have carried the only copy of the session id: nobody can come back.
        client = await tornado.tcpclient.TCPClient().connect("127.0.0.1", self.get_http_port())
        await client.write(b"GET /socket.io/xhr-polling//1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await self.recorder.wait("opening")
        client.close()
        await self.until_released()  # long before socket_io_close_timeout (60 s)
        self.gate.set()
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1


class TestForeignTransportRequests(LifecycleCase):
    @tornado.testing.gen_test
    async def test_a_poll_naming_a_websocket_session_is_refused_and_changes_nothing(self) -> None:
        ws, sid = await self.ws()
        with tornado.testing.ExpectLog("tornad_io.transports.http", ".*belongs to another transport"):
            poll = await self.http_client.fetch(self.get_url(f"/socket.io/xhr-polling/{sid}/1"), raise_error=False)
        assert poll.code == 400
        with tornado.testing.ExpectLog("tornad_io.transports.http", ".*belongs to another transport"):
            send = await self.http_client.fetch(
                self.get_url(f"/socket.io/jsonp-polling/{sid}/send"), method="POST",
                body="data=" + encode_frame("hijack"), raise_error=False,
            )
        assert send.code == 400
        await ws.write_message(encode_frame("still mine"))
        assert messages(await ws.read_message()) == ["still mine"]  # type: ignore[arg-type]
        assert self.recorder.of("message") == [("message", "still mine")]
        ws.close()


class TestCloseAlwaysCompletes(LifecycleCase):
    @tornado.testing.gen_test
    async def test_a_long_non_ascii_reason_still_closes_the_websocket(self) -> None:
        ws, sid = await self.ws()
        registry_for(self._app).get(sid).close("fermé " * 100)  # type: ignore[union-attr]
        assert await ws.read_message() is None
        assert ws.close_code == 1000
        assert ws.close_reason is not None and ws.close_reason.startswith("fermé")
        assert len(ws.close_reason.encode()) <= 123
        await self.recorder.wait("close")
        self.assert_all_released()

    @tornado.testing.gen_test
    async def test_a_failing_step_does_not_skip_the_others(self) -> None:
        ws, sid = await self.ws()
        registry = registry_for(self._app)
        connection = registry.get(sid)
        assert connection is not None

        def broken_remove(_: Any) -> None:
            raise RuntimeError("registry is broken")

        registry.remove = broken_remove  # type: ignore[method-assign]
        try:
            with tornado.testing.ExpectLog("tornad_io.connection", ".*while closing"):
                connection.close("test")
        finally:
            del registry.remove
        assert await ws.read_message() is None  # the wire was still ended
        await self.recorder.wait("close")  # and on_close still ran
        assert connection._beat_wait is None
        registry.remove(connection)

    def test_only_listed_transitions_are_possible(self) -> None:
        assert TRANSITIONS[State.CLOSED] == frozenset()
        assert State.OPEN not in TRANSITIONS[State.ABANDONED]
        for state in State:
            assert state not in TRANSITIONS[state]
