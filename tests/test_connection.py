"""The connection life cycle: one close path, on_close exactly once, timers and registries emptied."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import RawStream, Recorder, app_for, echo_handler, messages
from tornad_io import SocketIOHandler
from tornad_io.codec import Heartbeat, encode_frame
from tornad_io.connection import State
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
        assert connection._beat_timer is None
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
