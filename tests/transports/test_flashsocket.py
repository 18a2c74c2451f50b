"""The flashsocket transport: RFC 6455 as websocket, and the Flash movie's draft-76 over a raw TCP stream."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
import tornado.httpclient
import tornado.iostream
import tornado.tcpclient
import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import app_for, echo_handler, messages
from tornad_io import SocketIOHandler
from tornad_io.codec import Heartbeat, encode_frame
from tornad_io.registry import registry_for
from tornad_io.transports import TRANSPORTS
from tornad_io.transports.flashsocket import FlashSocketTransport, draft76_answer

# The worked example of draft-hixie-thewebsocketprotocol-76, §5.2.
KEY1 = "18x 6]8vM;54 *(5:  {   U1]8  z [  8"
KEY2 = "1_ tx7X d  <  nw  334J702) 7]o}` 0"
KEY3 = b"Tm[K T2u"
ANSWER = b"fQJ,fN/4F4!~K~MH"

PATH = "/socket.io/flashsocket"


def flash_app(handler: type[SocketIOHandler], **settings: Any) -> tornado.web.Application:
    if "flashsocket" in TRANSPORTS:
        return app_for(handler, **settings)
    # Until the transport is registered, mount it alone at the URL the client uses.
    route = (r"/socket.io/flashsocket/?", FlashSocketTransport, {"handler_class": handler, "extra_re": None})
    return tornado.web.Application([route], **settings)


def test_the_drafts_worked_example() -> None:
    assert draft76_answer(KEY1, KEY2, KEY3) == ANSWER


def test_the_drafts_opening_handshake_sample() -> None:
    assert draft76_answer("4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00", b"^n:ds[4U") == b"8jKS'y:G*Co,Wxa-"


def test_the_handshake_node_answered_in_the_captures() -> None:
    # node06-captures/websocket-hixie.txt, case 2.
    key1 = "g 2 f9e$8e 45  1548h 8d"
    key2 = "b  2#4   d3f88!0#  h  11c2 $b 3"
    answer = b"%U\xf3Y\xca\x1f\x89\xb5\x816w\xc1\xf0y\x04\x1f"
    assert draft76_answer(key1, key2, b"\xd0\xe3\xdf]\x05\xf3\xc1f") == answer


@pytest.mark.parametrize(
    "key1",
    [
        "123456",  # no spaces
        "1 2 3",  # 123 is not a multiple of 2
        "no digits here",
        "42949672960 ",  # 2**32 * 10 / 1 space: too large
        "٣ ٣",  # Arabic-Indic digits are not digits here
    ],
)
def test_malformed_keys_are_refused(key1: str) -> None:
    with pytest.raises(ValueError):
        draft76_answer(key1, KEY2, KEY3)


def test_key3_must_be_eight_bytes() -> None:
    with pytest.raises(ValueError):
        draft76_answer(KEY1, KEY2, b"short")


class FlashSocketTestCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return flash_app(self.handler, **self.settings)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.get_http_port()}"

    def draft76_headers(self, **replaced: str) -> list[tuple[str, str]]:
        """The Flash movie's request headers, some values replaced."""
        headers = [
            ("Upgrade", "WebSocket"),
            ("Connection", "Upgrade"),
            ("Host", self.host),
            ("Origin", f"http://{self.host}"),
            ("Sec-WebSocket-Key1", KEY1),
            ("Sec-WebSocket-Key2", KEY2),
        ]
        return [(name, replaced.get(name, value)) for name, value in headers]

    async def send_request(
        self, headers: list[tuple[str, str]] | None = None, path: str = PATH
    ) -> tornado.iostream.IOStream:
        """Connect and send a draft-76 request without key3, as HAProxy forwards it."""
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", self.get_http_port())
        lines = [f"GET {path} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers or self.draft76_headers()]
        await stream.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return stream

    async def read_head(self, stream: tornado.iostream.IOStream) -> tuple[str, dict[str, str]]:
        head = (await stream.read_until(b"\r\n\r\n")).decode("latin-1")
        status, *lines = head.strip().split("\r\n")
        return status, dict(line.split(": ", 1) for line in lines)

    async def handshake(self, **kwargs: Any) -> tornado.iostream.IOStream:
        stream = await self.send_request(**kwargs)
        status, _ = await self.read_head(stream)
        assert status == "HTTP/1.1 101 WebSocket Protocol Handshake"
        await stream.write(KEY3)
        assert await stream.read_bytes(16) == ANSWER
        return stream

    async def read_frame(self, stream: tornado.iostream.IOStream) -> list[Any]:
        assert await stream.read_bytes(1) == b"\x00"
        return messages((await stream.read_until(b"\xff"))[:-1])

    async def write_frame(self, stream: tornado.iostream.IOStream, payload: str) -> None:
        await stream.write(b"\x00" + payload.encode("utf-8") + b"\xff")

    async def connect(self) -> tuple[tornado.iostream.IOStream, str]:
        """A draft-76 session: the stream and its session id, the greeting consumed."""
        stream = await self.handshake()
        received = await self.read_frame(stream)
        while len(received) < 2:
            received += await self.read_frame(stream)
        sid, greeting = received
        assert greeting == "welcome"
        return stream, sid

    async def assert_refused(self, stream: tornado.iostream.IOStream, status: int) -> None:
        response = await stream.read_until_close()  # returns only once the server has closed
        assert response.startswith(f"HTTP/1.1 {status} ".encode())
        assert b"\r\nConnection: close\r\n" in response


class TestRFC6455(FlashSocketTestCase):
    @tornado.testing.gen_test
    async def test_a_native_websocket_gets_a_session_id_and_an_echo(self) -> None:
        url = self.get_url(PATH).replace("http", "ws", 1)
        request = tornado.httpclient.HTTPRequest(url, headers={"Origin": self.get_url("")})
        ws = await tornado.websocket.websocket_connect(request)
        data = await ws.read_message()
        assert data is not None
        sid, greeting = messages(data)
        assert sid in registry_for(self._app)
        assert greeting == "welcome"
        assert registry_for(self._app).get(sid).protocol == "flashsocket"  # type: ignore[union-attr]
        await ws.write_message(encode_frame("hi é中😀 end"))
        assert messages(await ws.read_message() or "") == ["hi é中😀 end"]
        ws.close()
        await self.recorder.wait("close")


class TestDraft76(FlashSocketTestCase):
    @tornado.testing.gen_test
    async def test_the_101_comes_before_key3_and_the_digest_after_it(self) -> None:
        headers = [*self.draft76_headers(), ("Sec-WebSocket-Protocol", "sample")]
        stream = await self.send_request(headers, path=PATH + "?x=1&y=2")
        status, response_headers = await self.read_head(stream)  # key3 not sent yet
        assert status == "HTTP/1.1 101 WebSocket Protocol Handshake"
        assert response_headers == {
            "Upgrade": "WebSocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Origin": f"http://{self.host}",
            "Sec-WebSocket-Location": f"ws://{self.host}{PATH}?x=1&y=2",
            "Sec-WebSocket-Protocol": "sample",
        }
        await stream.write(KEY3)
        assert await stream.read_bytes(16) == ANSWER
        sid, greeting = await self.read_frame(stream)
        assert sid in registry_for(self._app)
        assert registry_for(self._app).get(sid).protocol == "flashsocket"  # type: ignore[union-attr]
        assert greeting == "welcome"
        stream.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_key3_sent_with_the_headers_as_the_flash_movie_does(self) -> None:
        stream = await self.send_request()
        await stream.write(KEY3)
        status, _ = await self.read_head(stream)
        assert status == "HTTP/1.1 101 WebSocket Protocol Handshake"
        assert await stream.read_bytes(16) == ANSWER
        sid, _ = await self.read_frame(stream)
        assert sid in registry_for(self._app)
        stream.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_messages_travel_both_ways_in_utf8_frames(self) -> None:
        stream, _ = await self.connect()
        text = "hi é中😀 end"
        await self.write_frame(stream, encode_frame(text))
        assert await self.read_frame(stream) == [text]
        await self.write_frame(stream, encode_frame('~j~{"k": ["v", 1], "t": "é😀"}'))
        assert await self.read_frame(stream) == [{"k": ["v", 1], "t": "é😀"}]
        # Raw bytes on the wire: UTF-8 between 0x00 and 0xFF, lengths in UTF-16 units.
        await self.write_frame(stream, encode_frame("😀"))
        assert await stream.read_until(b"\xff") == b"\x00~m~2~m~\xf0\x9f\x98\x80\xff"
        assert [event[1] for event in self.recorder.of("message")] == [text, {"k": ["v", 1], "t": "é😀"}, "😀"]
        stream.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_the_clients_closing_frame_ends_the_session_once(self) -> None:
        stream, sid = await self.connect()
        await stream.write(b"\xff\x00")
        assert await stream.read_until_close() == b"\xff\x00"  # the server answers in kind and closes
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]
        assert sid not in registry_for(self._app)

    @tornado.testing.gen_test
    async def test_a_vanished_client_ends_the_session(self) -> None:
        stream, sid = await self.connect()
        stream.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]

    @tornado.testing.gen_test
    async def test_a_server_close_sends_the_closing_frame(self) -> None:
        stream, sid = await self.connect()
        registry_for(self._app).get(sid).handler.close()  # type: ignore[union-attr]
        assert await stream.read_until_close() == b"\xff\x00"
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]

    @tornado.testing.gen_test
    async def test_header_names_and_values_in_any_case(self) -> None:
        headers = [
            ("uPGRADE", "websocket"),
            ("connection", "keep-alive, UPGRADE"),
            ("HOST", self.host),
            ("origin", f"http://{self.host}"),
            ("SEC-WEBSOCKET-KEY1", KEY1),
            ("sec-websocket-key2", KEY2),
        ]
        stream = await self.handshake(headers=headers)
        sid, _ = await self.read_frame(stream)
        assert sid in registry_for(self._app)
        stream.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_bad_keys_get_400_and_a_closed_connection(self) -> None:
        for key1 in ("123456", "1 2 3", "42949672960 "):
            headers = self.draft76_headers(**{"Sec-WebSocket-Key1": key1})
            with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "400 .*not a draft-76 key"):
                await self.assert_refused(await self.send_request(headers), 400)
        assert self.recorder.of("open") == []

    @tornado.testing.gen_test
    async def test_a_wrong_upgrade_or_connection_gets_400(self) -> None:
        for bad in (("Upgrade", "h2c"), ("Connection", "keep-alive")):
            headers = self.draft76_headers(**dict([bad]))
            with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "400"):
                await self.assert_refused(await self.send_request(headers), 400)

    @tornado.testing.gen_test
    async def test_a_foreign_origin_gets_403(self) -> None:
        headers = self.draft76_headers(Origin="http://evil.test")
        with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "403 .*origin"):
            await self.assert_refused(await self.send_request(headers), 403)
        assert self.recorder.of("open") == []

    @tornado.testing.gen_test
    async def test_other_origins_are_decided_by_check_origin(self) -> None:
        with mock.patch.object(FlashSocketTransport, "check_origin", lambda _, origin: origin == "http://friend.test"):
            stream = await self.handshake(headers=self.draft76_headers(Origin="http://friend.test"))
            with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "403 .*origin"):
                refused = await self.send_request(self.draft76_headers(Origin="http://stranger.test"))
                await self.assert_refused(refused, 403)
        sid, _ = await self.read_frame(stream)
        assert sid in registry_for(self._app)
        stream.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_invalid_utf8_closes_only_that_connection(self) -> None:
        healthy, _ = await self.connect()
        broken, sid = await self.connect()
        with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "closing .*not valid UTF-8"):
            await broken.write(b"\x00~m~1~m~\xc3\x28\xff")
            assert await broken.read_until_close() == b"\xff\x00"
            await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]
        await self.write_frame(healthy, encode_frame("still here"))
        assert await self.read_frame(healthy) == ["still here"]
        healthy.close()

    @tornado.testing.gen_test
    async def test_a_malformed_payload_closes_the_connection(self) -> None:
        stream, sid = await self.connect()
        with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "closing .*malformed payload"):
            await self.write_frame(stream, "~m~9~m~short")
            assert await stream.read_until_close() == b"\xff\x00"
            await self.recorder.wait("close")
        assert self.recorder.of("message") == []

    @tornado.testing.gen_test
    async def test_a_client_that_never_sends_key3_is_disconnected(self) -> None:
        with mock.patch.object(FlashSocketTransport, "key3_timeout", 0.1):
            stream = await self.send_request()
            status, _ = await self.read_head(stream)
            assert status == "HTTP/1.1 101 WebSocket Protocol Handshake"
            with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "closing .*no key3"):
                assert await stream.read_until_close() == b""
        assert self.recorder.of("open") == []


class TestLimits(FlashSocketTestCase):
    settings = {"socket_io_max_message_size": 64}  # bytes of UTF-8 on the wire

    @tornado.testing.gen_test
    async def test_a_message_over_the_limit_closes_the_connection(self) -> None:
        stream, sid = await self.connect()
        fits = "é中" * 8  # 48 bytes with its frame header
        await self.write_frame(stream, encode_frame(fits))
        assert await self.read_frame(stream) == [fits]
        with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "closing .*larger than 64 bytes"):
            await self.write_frame(stream, encode_frame("x" * 60))
            await stream.read_until_close()
            await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]


class TestHeartbeats(FlashSocketTestCase):
    settings = {"socket_io_heartbeat_interval": 0.1, "socket_io_heartbeat_timeout": 0.5}

    @tornado.testing.gen_test
    async def test_heartbeats_run_over_draft76(self) -> None:
        stream, _ = await self.connect()
        for _ in range(2):
            frame = await stream.read_until(b"\xff")
            [beat] = messages(frame[1:-1].decode())
            assert isinstance(beat, Heartbeat)
            await self.write_frame(stream, encode_frame(f"~h~{beat.number}"))
        assert self.recorder.of("close") == []
        stream.close()
        await self.recorder.wait("close")


class TestDisabled(FlashSocketTestCase):
    settings = {"enabled_protocols": ["websocket", "xhr-polling"]}

    @tornado.testing.gen_test
    async def test_draft76_to_a_disabled_flashsocket_gets_403(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.flashsocket", "403 .*not enabled"):
            stream = await self.send_request()
            await self.assert_refused(stream, 403)

    @tornado.testing.gen_test
    async def test_rfc6455_to_a_disabled_flashsocket_gets_403(self) -> None:
        url = self.get_url(PATH).replace("http", "ws", 1)
        with tornado.testing.ExpectLog("tornad_io.transports.websocket", "403"):
            with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
                await tornado.websocket.websocket_connect(url)
        assert refused.value.code == 403
