"""The websocket transport over a real RFC 6455 connection."""

from __future__ import annotations

from typing import Any

import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import app_for, echo_handler, messages
from tornad_io.codec import Heartbeat, encode_frame
from tornad_io.registry import registry_for


class WebSocketTestCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return app_for(self.handler, **self.settings)

    async def connect(self, path: str = "/socket.io/websocket") -> tornado.websocket.WebSocketClientConnection:
        url = self.get_url(path).replace("http", "ws", 1)
        request = tornado.httpclient.HTTPRequest(url, headers={"Origin": self.get_url("")})
        return await tornado.websocket.websocket_connect(request)

    async def read(self, ws: tornado.websocket.WebSocketClientConnection) -> list[Any]:
        data = await ws.read_message()
        assert data is not None, "the server closed the websocket"
        return messages(data)


class TestWebSocket(WebSocketTestCase):
    @tornado.testing.gen_test
    async def test_first_message_is_the_session_id_then_what_on_open_sent(self) -> None:
        ws = await self.connect()
        sid, greeting = await self.read(ws)
        assert sid in registry_for(self._app)
        assert greeting == "welcome"
        ws.close()

    @tornado.testing.gen_test
    async def test_every_frame_of_a_message_is_delivered_in_order_and_echoed(self) -> None:
        ws = await self.connect()
        await self.read(ws)
        sent = ["plain", "hi é中😀 end", {"a": [1, [2, "x"]], "s": "y"}]
        await ws.write_message(
            encode_frame("plain") + encode_frame("~h~5") + encode_frame("hi é中😀 end")
            + encode_frame('~j~{"a":[1,[2,"x"]],"s":"y"}')
        )
        received = []
        while len(received) < 3:
            received += await self.read(ws)
        assert received == sent
        ws.close()

    @tornado.testing.gen_test
    async def test_closing_the_socket_runs_on_close_once(self) -> None:
        ws = await self.connect()
        sid, _ = await self.read(ws)
        ws.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]
        assert sid not in registry_for(self._app)

    @tornado.testing.gen_test
    async def test_a_malformed_payload_closes_only_that_connection(self) -> None:
        healthy = await self.connect()
        await self.read(healthy)
        broken = await self.connect()
        await self.read(broken)
        with tornado.testing.ExpectLog("tornad_io.transports.messages", "closing .*: malformed payload"):
            await broken.write_message("~m~9~m~short")
            assert await broken.read_message() is None
        assert broken.close_code == 1007
        await healthy.write_message(encode_frame("still here"))
        assert await self.read(healthy) == ["still here"]
        healthy.close()

    @tornado.testing.gen_test
    async def test_server_close_closes_the_socket(self) -> None:
        ws = await self.connect()
        sid, _ = await self.read(ws)
        registry_for(self._app).get(sid).handler.close()  # type: ignore[union-attr]
        assert await ws.read_message() is None
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1


class TestHeartbeats(WebSocketTestCase):
    settings = {"socket_io_heartbeat_interval": 0.1, "socket_io_heartbeat_timeout": 0.2}

    @tornado.testing.gen_test
    async def test_echoed_heartbeats_keep_the_connection(self) -> None:
        ws = await self.connect()
        await self.read(ws)
        tokens = []
        for _ in range(3):
            [beat] = messages(await ws.read_message())  # type: ignore[arg-type]
            assert isinstance(beat, Heartbeat)
            tokens.append(beat.number)
            await ws.write_message(encode_frame(f"~h~{beat.number}"))  # the 0.6 client echoes it verbatim
        assert len(set(tokens)) == 3  # a fresh token each time
        assert self.recorder.of("close") == []
        assert self.recorder.of("message") == []  # heartbeats never reach the application
        ws.close()

    @tornado.testing.gen_test
    async def test_an_echo_sharing_its_payload_with_messages_counts_too(self) -> None:
        # A lone echo takes a shortcut past the decoder; one among other frames must still count.
        ws = await self.connect()
        await self.read(ws)

        async def next_beat() -> Heartbeat:
            while True:  # (the handler echoes the messages sent along)
                for message in messages(await ws.read_message()):  # type: ignore[arg-type]
                    if isinstance(message, Heartbeat):
                        return message

        for number in range(3):
            beat = await next_beat()
            await ws.write_message(encode_frame(f"before {number}") + encode_frame(f"~h~{beat.number}"))
        await next_beat()  # the third echo counted too
        assert self.recorder.of("message") == [("message", f"before {n}") for n in range(3)]
        assert self.recorder.of("close") == []
        ws.close()

    @tornado.testing.gen_test
    async def test_a_missed_heartbeat_ends_the_connection(self) -> None:
        ws = await self.connect()
        await self.read(ws)
        [beat] = messages(await ws.read_message())  # type: ignore[arg-type]
        assert isinstance(beat, Heartbeat)
        await ws.write_message(encode_frame("~h~0"))  # a stale or invented token does not count
        assert await ws.read_message() is None
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1

    @tornado.testing.gen_test
    async def test_a_client_echoing_a_counter_blindly_is_still_closed(self) -> None:
        # A client that never reads but sends ~h~1, ~h~2, ... must not pass for alive.
        ws = await self.connect()
        for number in range(1, 20):
            await ws.write_message(encode_frame(f"~h~{number}"))
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1


class TestDisabled(WebSocketTestCase):
    settings = {"enabled_protocols": ["xhr-polling"]}

    @tornado.testing.gen_test
    async def test_disabled_websocket_is_refused_with_403(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.websocket", "403"):
            try:
                await self.connect()
            except tornado.httpclient.HTTPClientError as error:
                assert error.code == 403
            else:
                raise AssertionError("the upgrade was accepted")


class TestWebSocketOnTornadosReader(TestWebSocket):
    """The same, read by Tornado's own frame reader (as TLS websockets always are)."""

    settings = {"socket_io_websocket_takeover": False}


class TestHeartbeatsOnTornadosReader(TestHeartbeats):
    settings = {**TestHeartbeats.settings, "socket_io_websocket_takeover": False}


class TestDirectFrames(WebSocketTestCase):
    """On Tornado's reader, frames are written straight to its stream; these are the internals that relies on."""

    settings = {"socket_io_websocket_takeover": False}

    @tornado.testing.gen_test
    async def test_the_protocol_still_has_what_the_direct_write_reads(self) -> None:
        ws = await self.connect()
        await self.read(ws)
        [connection] = registry_for(self._app).connections()
        protocol = connection._transport.ws_connection  # type: ignore[union-attr]
        # If Tornado renames either, push_frames silently takes the slower public path: fail here instead.
        assert protocol._compressor is None
        assert protocol.stream is not None
        ws.close()

    @tornado.testing.gen_test
    async def test_every_frame_length_encoding_arrives_intact(self) -> None:
        ws = await self.connect()
        await self.read(ws)
        [connection] = registry_for(self._app).connections()
        for size in (0, 125, 126, 65535, 65536, 200_000):
            text = ("é" if size % 2 else "x") * size
            connection.send(text)
            assert await self.read(ws) == [text]
        ws.close()
