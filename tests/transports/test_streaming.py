"""htmlfile and xhr-multipart: byte-level checks of the streams and their life cycle."""

from __future__ import annotations

import re
from typing import Any

import tornado.testing
import tornado.web

from tests.helpers import RawStream, app_for, echo_handler, messages
from tornad_io import SocketIOHandler
from tornad_io.codec import Heartbeat, encode_frame
from tornad_io.registry import registry_for

SCRIPT = re.compile(rb'<script>parent\.s\._\(("(?:[^"\\]|\\.)*"), document\);</script>')


def script_payload(chunk: bytes) -> str:
    import json

    found = SCRIPT.fullmatch(chunk)
    assert found, chunk
    payload: str = json.loads(found.group(1))
    return payload


class StreamingCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return app_for(self.handler, **self.settings)

    async def post(self, protocol: str, sid: str, payload: str) -> int:
        response = await self.http_client.fetch(
            self.get_url(f"/socket.io/{protocol}/{sid}/send"), method="POST",
            body="data=" + tornado.escape.url_escape(payload, plus=False), raise_error=False,
        )
        return response.code


class TestHTMLFile(StreamingCase):
    @tornado.testing.gen_test
    async def test_preamble_then_one_script_per_payload(self) -> None:
        stream = await RawStream.open(self.get_http_port(), "/socket.io/htmlfile//1234")
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/html; charset=UTF-8"
        assert stream.headers["transfer-encoding"] == "chunked"
        assert stream.headers["cache-control"] == "no-store"
        preamble = await stream.chunk()
        assert preamble.startswith(b"<html><body>") and len(preamble) >= 256 and preamble.strip() == b"<html><body>"
        sid, welcome = messages(script_payload(await stream.chunk()))
        assert welcome == "welcome"
        assert await self.post("htmlfile", sid, "~m~11~m~hi é中😀 end") == 200
        assert messages(script_payload(await stream.chunk())) == ["hi é中😀 end"]
        stream.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]

    @tornado.testing.gen_test
    async def test_a_message_cannot_leave_the_script_element(self) -> None:
        stream = await RawStream.open(self.get_http_port(), "/socket.io/htmlfile//1")
        await stream.chunk()
        sid, _ = messages(script_payload(await stream.chunk()))
        hostile = "</script><script>alert(1)</script><!--<script>\u2028\u2029&amp;"
        registry_for(self._app).get(sid).handler.send(hostile)  # type: ignore[union-attr]
        chunk = await stream.chunk()
        body = chunk[len(b"<script>"):-len(b"</script>")]
        assert b"<" not in body and b">" not in body and b"&" not in body
        assert all(byte < 0x80 for byte in chunk)
        assert messages(script_payload(chunk)) == [hostile]
        stream.close()


class TestXHRMultipart(StreamingCase):
    @tornado.testing.gen_test
    async def test_parts_with_lf_line_ends_and_a_random_boundary(self) -> None:
        stream = await RawStream.open(self.get_http_port(), "/socket.io/xhr-multipart/")
        content_type = stream.headers["content-type"]
        found = re.fullmatch(r'multipart/x-mixed-replace;boundary="(socketio[0-9a-f]{16})"', content_type)
        assert found, content_type
        boundary = found.group(1).encode()
        body = b""
        while body.count(b"--" + boundary) < 2:
            body += await stream.chunk()
        assert body.startswith(b"--" + boundary + b"\n")
        part = body[len(boundary) + 3:]
        assert part.startswith(b"Content-Type: text/plain; charset=UTF-8\n\n")
        payload = part.split(b"\n\n", 1)[1].rsplit(b"\n--" + boundary + b"\n", 1)[0]
        sid, welcome = messages(payload)
        assert welcome == "welcome"
        assert await self.post("xhr-multipart", sid, "~m~2~m~é中") == 200
        part = await stream.chunk()
        assert part == "Content-Type: text/plain; charset=UTF-8\n\n~m~2~m~é中\n--".encode() + boundary + b"\n"
        stream.close()
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_each_stream_has_its_own_boundary(self) -> None:
        first = await RawStream.open(self.get_http_port(), "/socket.io/xhr-multipart/")
        second = await RawStream.open(self.get_http_port(), "/socket.io/xhr-multipart/")
        assert first.headers["content-type"] != second.headers["content-type"]
        first.close()
        second.close()

    @tornado.testing.gen_test
    async def test_a_cors_preflight_is_answered(self) -> None:
        response = await self.http_client.fetch(
            self.get_url("/socket.io/xhr-multipart/"), method="OPTIONS",
            headers={"Access-Control-Request-Method": "GET", "Origin": self.get_url("")},
        )
        assert response.code == 200
        assert "GET" in response.headers["Access-Control-Allow-Methods"]


class TestStreamHeartbeats(StreamingCase):
    settings = {"socket_io_heartbeat_interval": 0.1, "socket_io_heartbeat_timeout": 0.3}

    @tornado.testing.gen_test
    async def test_heartbeats_flow_on_the_stream_and_a_missed_echo_ends_it(self) -> None:
        stream = await RawStream.open(self.get_http_port(), "/socket.io/htmlfile//1")
        await stream.chunk()
        sid, _ = messages(script_payload(await stream.chunk()))
        [beat] = messages(script_payload(await stream.chunk()))
        assert isinstance(beat, Heartbeat)
        echo = encode_frame(f"~h~{beat.number}")
        assert await self.post("htmlfile", sid, echo + "~m~5~m~after") == 200
        assert messages(script_payload(await stream.chunk())) == ["after"]  # batched echo loses nothing
        [second] = messages(script_payload(await stream.chunk()))  # never echoed
        assert isinstance(second, Heartbeat) and second.number != beat.number
        await self.recorder.wait("close")
        assert await stream.chunk() == b""  # the stream ends so the client notices
        stream.close()


class Refuser(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> bool:
        return False


class TestRefusedStream(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([Refuser.routes("socket.io")])

    @tornado.testing.gen_test
    async def test_a_refused_stream_is_a_plain_403(self) -> None:
        for protocol in ("htmlfile", "xhr-multipart"):
            response = await self.http_client.fetch(self.get_url(f"/socket.io/{protocol}//1"), raise_error=False)
            assert response.code == 403
            assert b"~m~" not in response.body
