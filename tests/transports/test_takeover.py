"""The websocket fast path: Tornado's handshake, then tornad_io's own RFC 6455 reader on the socket."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import ssl
import struct
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import app_for, echo_handler, messages
from tests.test_server import self_signed_certificate
from tornad_io import SocketIOServer
from tornad_io.codec import encode_frame
from tornad_io.registry import registry_for
from tornad_io.transports.takeover import AdoptedWebSocket
from tornad_io.transports.websocket import WebSocketTransport

UPGRADE = (
    "GET /socket.io/websocket HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Origin: http://127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def client_frame(payload: bytes | str, opcode: int = 0x1, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    """A client-to-server frame, masked as RFC 6455 requires unless told otherwise."""
    data = payload.encode() if isinstance(payload, str) else payload
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", first, (0x80 if masked else 0) | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, (0x80 if masked else 0) | 126, length)
    else:
        header = struct.pack("!BBQ", first, (0x80 if masked else 0) | 127, length)
    if not masked:
        return header + data
    key = os.urandom(4)
    return header + key + bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


class RawWebSocket:
    """A byte-level websocket client: sends exactly what a test says, reads server frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, after_request: bytes = b"") -> RawWebSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(UPGRADE.format(port=port).encode() + after_request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        """The next server frame as (opcode, payload); servers never mask."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        assert not second & 0x80, "a server frame must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def text(self) -> list[Any]:
        opcode, payload = await self.frame()
        assert opcode == 0x1, (opcode, payload)
        return messages(payload.decode())

    async def close_code(self) -> int | None:
        """Read until the server's close frame; its code (``None`` for an empty body)."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if payload else None

    async def closed_by_server(self) -> bool:
        """True once the server has closed the TCP connection."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), 10)
        except ConnectionResetError:
            return True
        return rest == b""

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()


class TakeoverTestCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return app_for(self.handler, **self.settings)

    async def raw(self, after_request: bytes = b"") -> RawWebSocket:
        return await RawWebSocket.open(self.get_http_port(), after_request)

    async def opened(self) -> RawWebSocket:
        ws = await self.raw()
        sid, greeting = await ws.text()
        assert greeting == "welcome"
        return ws

    def only_connection_transport(self) -> object:
        [connection] = registry_for(self._app).connections()
        return connection._transport


class TestTakeover(TakeoverTestCase):
    @tornado.testing.gen_test
    async def test_a_plain_tcp_websocket_is_read_by_tornad_io_after_tornados_handshake(self) -> None:
        # If Tornado's WebSocketProtocol ever loses the public-looking ``stream`` attribute,
        # every websocket silently stays on Tornado's reader: this fails instead.
        ws = await self.opened()
        assert isinstance(self.only_connection_transport(), AdoptedWebSocket)
        ws.send(client_frame(encode_frame("hi é中😀")))
        assert await ws.text() == ["hi é中😀"]
        ws.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_frames_sent_with_the_upgrade_request_are_not_lost(self) -> None:
        # Tornado has read them together with the request; they are replayed to the new reader.
        early = client_frame(encode_frame("first")) + client_frame(encode_frame("second"))
        ws = await self.raw(after_request=early)
        received: list[Any] = []
        while len(received) < 4:
            received += await ws.text()
        assert received[1:] == ["welcome", "first", "second"]
        ws.close()

    @tornado.testing.gen_test
    async def test_a_ping_is_answered_with_a_pong_carrying_its_payload(self) -> None:
        ws = await self.opened()
        ws.send(client_frame(b"are you there", opcode=0x9))
        assert await ws.frame() == (0xA, b"are you there")
        ws.close()

    @tornado.testing.gen_test
    async def test_a_fragmented_message_with_a_ping_between_its_parts_arrives_whole(self) -> None:
        ws = await self.opened()
        payload = encode_frame("one message in three parts")
        ws.send(
            client_frame(payload[:5], fin=False)
            + client_frame(b"p", opcode=0x9)
            + client_frame(payload[5:12], opcode=0x0, fin=False)
            + client_frame(payload[12:], opcode=0x0)
        )
        assert await ws.frame() == (0xA, b"p")
        assert await ws.text() == ["one message in three parts"]
        ws.close()

    @tornado.testing.gen_test
    async def test_a_message_split_at_every_byte_arrives_whole(self) -> None:
        ws = await self.opened()
        data = client_frame(encode_frame("split é中😀"))
        for index in range(len(data)):
            ws.send(data[index : index + 1])
            await ws.writer.drain()
        assert await ws.text() == ["split é中😀"]
        ws.close()

    @tornado.testing.gen_test
    async def test_the_clients_close_is_answered_with_its_code_and_on_close_runs_once(self) -> None:
        ws = await self.opened()
        ws.send(client_frame(struct.pack("!H", 1001) + b"bye", opcode=0x8))
        assert await ws.close_code() == 1001
        assert await ws.closed_by_server()
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1
        assert registry_for(self._app).connections() == []

    @tornado.testing.gen_test
    async def test_a_client_that_just_disconnects_ends_its_session(self) -> None:
        ws = await self.opened()
        ws.close()
        await self.recorder.wait("close")
        assert registry_for(self._app).connections() == []

    @tornado.testing.gen_test
    async def test_the_server_closing_sends_a_close_frame_then_ends_the_tcp_connection(self) -> None:
        ws = await self.opened()
        [connection] = registry_for(self._app).connections()
        connection.close()
        assert await ws.close_code() == 1000
        ws.send(client_frame(struct.pack("!H", 1000), opcode=0x8))
        assert await ws.closed_by_server()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_protocol_violations_get_their_close_code_and_leave_a_neighbour_served(self) -> None:
        cases = [
            ("unmasked frame", client_frame(encode_frame("x"), masked=False), 1002),
            ("reserved bit", client_frame(encode_frame("x"), rsv=0b100), 1002),
            ("reserved opcode", client_frame(b"x", opcode=0x3), 1002),
            ("continuation first", client_frame(b"x", opcode=0x0), 1002),
            ("invalid UTF-8", client_frame(b"~m~2~m~\xc3\x28"), 1007),
            ("binary message", client_frame(b"\x00\x01", opcode=0x2), 1003),
            ("malformed 0.6 payload", client_frame("~m~9~m~short"), 1007),
        ]
        neighbour = await self.opened()
        for name, data, code in cases:
            ws = await self.opened()
            ws.send(data)
            assert await ws.close_code() == code, name
            assert await ws.closed_by_server(), name
            neighbour.send(client_frame(encode_frame(name)))
            assert await neighbour.text() == [name]
        neighbour.close()

    @tornado.testing.gen_test
    async def test_freed_after_the_client_leaves(self) -> None:
        ws = await self.opened()
        adopted = weakref.ref(self.only_connection_transport())
        ws.close()
        await self.recorder.wait("close")
        await asyncio.sleep(0)  # wait-ok: one loop turn for asyncio to drop its transport
        gc.collect()
        assert adopted() is None


    @tornado.testing.gen_test
    async def test_tornados_handler_is_let_go_while_the_session_lives(self) -> None:
        ws = await self.opened()
        ws.send(client_frame(encode_frame("alive")))
        assert await ws.text() == ["alive"]
        gc.collect()
        assert [o for o in gc.get_objects() if isinstance(o, WebSocketTransport)] == []
        ws.close()
        await self.recorder.wait("close")


class TestTakeoverLimits(TakeoverTestCase):
    settings = {"socket_io_max_message_size": 1000}

    @tornado.testing.gen_test
    async def test_a_message_over_socket_io_max_message_size_is_refused_with_1009(self) -> None:
        ws = await self.opened()
        with tornado.testing.ExpectLog("tornad_io.transports.takeover", ".*close code 1009"):
            ws.send(client_frame(encode_frame("x" * 2000)))
            assert await ws.close_code() == 1009
        assert await ws.closed_by_server()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_too_much_data_with_the_handshake_is_refused(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.takeover", ".*with the handshake"):
            ws = await self.raw(after_request=client_frame(encode_frame("x" * 1500)))
            assert await ws.closed_by_server()
        assert registry_for(self._app).connections() == []


class TestTakeoverOff(TakeoverTestCase):
    settings = {"socket_io_websocket_takeover": False}

    @tornado.testing.gen_test
    async def test_tornados_reader_keeps_the_socket_when_the_application_says_so(self) -> None:
        ws = await self.opened()
        assert isinstance(self.only_connection_transport(), WebSocketTransport)
        ws.send(client_frame(encode_frame("still echoed")))
        assert await ws.text() == ["still echoed"]
        ws.close()
        await self.recorder.wait("close")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
class TestTls(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_a_tls_websocket_stays_on_tornados_reader_and_works(self) -> None:
        handler = echo_handler()
        app = app_for(handler)
        with tempfile.TemporaryDirectory() as directory:
            cert, key = self_signed_certificate(Path(directory))
            tls = {"certfile": str(cert), "keyfile": str(key)}
            server = SocketIOServer(app, port=0, address="127.0.0.1", ssl_options=tls)
            try:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                request = tornado.httpclient.HTTPRequest(
                    f"wss://127.0.0.1:{server.port}/socket.io/websocket",
                    headers={"Origin": f"https://127.0.0.1:{server.port}"},
                    ssl_options=context,
                )
                ws = await tornado.websocket.websocket_connect(request)
                sid, greeting = messages(await ws.read_message())  # type: ignore[arg-type]
                [connection] = registry_for(app).connections()
                assert isinstance(connection._transport, WebSocketTransport)
                await ws.write_message(encode_frame("over TLS"))
                assert messages(await ws.read_message()) == ["over TLS"]  # type: ignore[arg-type]
                ws.close()
                await handler.recorder.wait("close")
            finally:
                server.stop()


class TestStop(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_stop_closes_taken_over_websockets(self) -> None:
        handler = echo_handler()
        app = app_for(handler)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        ws = await RawWebSocket.open(server.port)
        await ws.text()
        server.stop()
        assert await ws.close_code() == 1000
        ws.send(client_frame(struct.pack("!H", 1000), opcode=0x8))
        assert await ws.closed_by_server()
        await handler.recorder.wait("close")
