"""SocketIOHandler as an application sees it: routes, hooks, state, sends."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io
import tornad_io.socket_io
from tests.helpers import Recorder, messages
from tornad_io import SocketIOHandler
from tornad_io.codec import encode_frame
from tornad_io.registry import registry_for


def test_the_handler_is_importable_from_both_2010_paths() -> None:
    assert tornad_io.SocketIOHandler is tornad_io.socket_io.SocketIOHandler


def test_routes_is_one_rule_that_application_accepts() -> None:
    rule = SocketIOHandler.routes("socket.io")
    assert isinstance(rule, tuple) and len(rule) == 2
    tornado.web.Application([rule])


def test_write_points_to_send() -> None:
    handler = SocketIOHandler.__new__(SocketIOHandler)
    with pytest.raises(RuntimeError, match=r"self\.send"):
        handler.write("raw")


class Recording(SocketIOHandler):
    recorder: Recorder

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.opened_with = (args, kwargs)
        self.count = 0
        self.recorder.add("open", args, kwargs)

    def on_message(self, message: Any) -> None:
        self.count += 1  # state set in on_open is still here
        self.recorder.add("message", message, self.count, self.protocol, self.session.id)
        self.send({"count": self.count})


class WebSocketCase(tornado.testing.AsyncHTTPTestCase):
    async def ws(self, path: str) -> tornado.websocket.WebSocketClientConnection:
        url = self.get_url(path).replace("http", "ws", 1)
        request = tornado.httpclient.HTTPRequest(url, headers={"Origin": self.get_url("")})
        return await tornado.websocket.websocket_connect(request)


class TestRoutes(WebSocketCase):
    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        handler = type("H", (Recording,), {"recorder": self.recorder})
        return tornado.web.Application([
            handler.routes("echoTest", "(?P<sec_a>123)(?P<sec_b>.*)", extraSep="/"),
            handler.routes("plain/*"),
            handler.routes("unnamed", r"(\d+)-(?P<word>[a-z]+)-(\d+)", extraSep="/"),
        ])

    @tornado.testing.gen_test
    async def test_named_groups_and_extra_reach_on_open_as_kwargs(self) -> None:
        ws = await self.ws("/echoTest/123abc/websocket")
        await ws.read_message()
        await self.recorder.wait("open")
        assert self.recorder.of("open") == [("open", (), {"extra": "123abc", "sec_a": "123", "sec_b": "abc"})]
        ws.close()

    @tornado.testing.gen_test
    async def test_unnamed_groups_arrive_as_args_despite_named_ones(self) -> None:
        response = await self.http_client.fetch(self.get_url("/unnamed/12-abc-34/xhr-polling//1"))
        assert response.code == 200
        assert self.recorder.of("open") == [("open", ("12", "34"), {"extra": "12-abc-34", "word": "abc"})]

    @tornado.testing.gen_test
    async def test_resource_is_a_regular_expression(self) -> None:
        response = await self.http_client.fetch(self.get_url("/plain/xhr-polling//1"))
        assert response.code == 200
        assert self.recorder.of("open") == [("open", (), {})]

    @tornado.testing.gen_test
    async def test_unknown_transport_is_404(self) -> None:
        response = await self.http_client.fetch(self.get_url("/plain/carrier-pigeon//1"), raise_error=False)
        assert response.code == 404


class TestHandlerState(WebSocketCase):
    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        self.handler = type("H", (Recording,), {"recorder": self.recorder})
        return tornado.web.Application([self.handler.routes("socket.io")])

    @tornado.testing.gen_test
    async def test_state_protocol_and_session_are_per_connection(self) -> None:
        ws = await self.ws("/socket.io/websocket")
        (sid,) = messages(await ws.read_message())  # type: ignore[arg-type]
        await ws.write_message(encode_frame("a") + encode_frame("b"))
        assert messages(await ws.read_message()) == [{"count": 1}]  # type: ignore[arg-type]
        assert messages(await ws.read_message()) == [{"count": 2}]  # type: ignore[arg-type]
        assert self.recorder.of("message") == [
            ("message", "a", 1, "websocket", sid),
            ("message", "b", 2, "websocket", sid),
        ]
        connection = registry_for(self._app).get(sid)
        assert connection is not None
        connection.handler.session["user"] = "alice"
        connection.handler.session.save()
        assert connection.handler.session["user"] == "alice"
        ws.close()


class AsyncHandler(SocketIOHandler):
    recorder: Recorder

    async def on_open(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.05)  # wait-ok: a slow on_open (e.g. a database lookup)
        self.send("ready")

    async def on_message(self, message: Any) -> None:
        self.recorder.add("start", message)
        await asyncio.sleep(0.02 if message == "slow" else 0)  # wait-ok: an awaiting handler
        self.recorder.add("end", message)
        self.send(message)

    async def on_close(self) -> None:
        await asyncio.sleep(0)  # wait-ok: an on_close that awaits something
        self.recorder.add("close")


class TestCoroutineHooks(WebSocketCase):
    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        handler = type("H", (AsyncHandler,), {"recorder": self.recorder})
        return tornado.web.Application([handler.routes("socket.io")])

    @tornado.testing.gen_test
    async def test_messages_wait_for_on_open_and_for_each_other(self) -> None:
        ws = await self.ws("/socket.io/websocket")
        sid, ready = messages(await ws.read_message())  # type: ignore[arg-type]
        assert ready == "ready"  # the id is written only once on_open finished
        await ws.write_message(encode_frame("slow") + encode_frame("fast"))
        assert messages(await ws.read_message()) == ["slow"]  # type: ignore[arg-type]
        assert messages(await ws.read_message()) == ["fast"]  # type: ignore[arg-type]
        kinds = [(kind, message) for kind, message in self.recorder.events if kind in ("start", "end")]
        assert kinds == [("start", "slow"), ("end", "slow"), ("start", "fast"), ("end", "fast")]
        ws.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close",)]


class Faulty(SocketIOHandler):
    def on_message(self, message: Any) -> None:
        if message == "boom":
            raise ValueError("boom")
        self.send(message)


class TestUserExceptions(WebSocketCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([Faulty.routes("socket.io")])

    @tornado.testing.gen_test
    async def test_an_exception_in_on_message_is_logged_and_the_connection_goes_on(
        self,
    ) -> None:
        ws = await self.ws("/socket.io/websocket")
        await ws.read_message()
        with tornado.testing.ExpectLog(logging.getLogger("tornad_io.connection"), ".*on_message of .* raised"):
            await ws.write_message(encode_frame("boom") + encode_frame("after"))
            assert messages(await ws.read_message()) == ["after"]  # type: ignore[arg-type]
        ws.close()


SEED_EXAMPLE = '''
import logging
from tornad_io import SocketIOHandler

class EchoHandler(SocketIOHandler):
    def on_open(self, *args, **kwargs):
        logging.info("Socket.IO Client connected with protocol '%s' {session id: '%s'}" % (self.protocol, self.session.id))
        logging.info("Extra Data for Open: '%s'" % (kwargs.get('extra', None)))

    def on_message(self, message):
        logging.info("[echo] %s" % message)
        self.send("[echo] %s" % message)

    def on_close(self):
        logging.info("Closing Socket.IO Client for protocol '%s'" % (self.protocol))

echoRoute = EchoHandler.routes("echoTest", "(?P<sec_a>123)(?P<sec_b>.*)", extraSep='/')
'''


class TestSeedExample(WebSocketCase):
    def get_app(self) -> tornado.web.Application:
        namespace: dict[str, Any] = {}
        exec(SEED_EXAMPLE, namespace)  # the 2010 README's example, as written there
        return tornado.web.Application([namespace["echoRoute"]])

    @tornado.testing.gen_test
    async def test_the_seed_echo_handler_runs_as_written(self) -> None:
        ws = await self.ws("/echoTest/123xyz/websocket")
        await ws.read_message()
        await ws.write_message(encode_frame("OMG! Ponies!"))
        assert messages(await ws.read_message()) == ["[echo] OMG! Ponies!"]  # type: ignore[arg-type]
        ws.close()
