"""xhr-polling over real HTTP: handshake, held polls, the shared queue, sends and errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import tornado.testing
import tornado.web
from tornado.httpclient import HTTPResponse

from tests.helpers import ThroughPollFront, app_for, echo_handler, messages
from tornad_io import SocketIOHandler
from tornad_io.registry import registry_for

FAST = {"socket_io_poll_timeout": 0.3, "socket_io_close_timeout": 0.5}


class PollingTestCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = FAST

    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return app_for(self.handler, **self.settings)

    async def get(self, path: str, **kwargs: Any) -> HTTPResponse:
        return await self.http_client.fetch(self.get_url(path), raise_error=False, **kwargs)

    async def post(self, sid: str, payload: str, **kwargs: Any) -> HTTPResponse:
        body = "data=" + tornado.escape.url_escape(payload, plus=False)
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return await self.http_client.fetch(
            self.get_url(f"/socket.io/xhr-polling/{sid}/send"),
            method="POST", body=body, headers=headers, raise_error=False, **kwargs,
        )

    async def handshake(self) -> tuple[str, list[Any]]:
        response = await self.get(f"/socket.io/xhr-polling//{int(time.time() * 1000)}")
        assert response.code == 200, response.body
        sid, *rest = messages(response.body)
        return sid, rest

    async def poll(self, sid: str) -> HTTPResponse:
        return await self.get(f"/socket.io/xhr-polling/{sid}/{int(time.time() * 1000)}")


class TestHandshakeAndPolls(PollingTestCase):
    @tornado.testing.gen_test
    async def test_handshake_answers_the_id_then_what_on_open_sent(self) -> None:
        response = await self.get("/socket.io/xhr-polling//1234")
        assert response.code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert int(response.headers["Content-Length"]) == len(response.body)
        sid, greeting = messages(response.body)
        assert sid.isalnum() and len(sid) >= 32
        assert greeting == "welcome"

    @tornado.testing.gen_test
    async def test_everything_sent_between_polls_arrives_in_one_payload_in_order(self) -> None:
        sid, _ = await self.handshake()
        connection = registry_for(self._app).get(sid)
        assert connection is not None
        for text in ("one", "hi é中😀 end", "three"):
            connection.handler.send(text)
        connection.handler.send({"n": [1, 2]})
        response = await self.poll(sid)
        assert messages(response.body) == ["one", "hi é中😀 end", "three", {"n": [1, 2]}]
        assert int(response.headers["Content-Length"]) == len(response.body)  # UTF-8 bytes

    @tornado.testing.gen_test
    async def test_a_held_poll_is_answered_when_a_message_is_sent(self) -> None:
        sid, _ = await self.handshake()
        held = asyncio.ensure_future(self.poll(sid))
        await asyncio.wait_for(self.post(sid, "~m~4~m~ping"), 5)
        response = await held
        assert messages(response.body) == ["ping"]

    @tornado.testing.gen_test
    async def test_an_idle_poll_is_answered_empty_after_the_poll_timeout(self) -> None:
        sid, _ = await self.handshake()
        started = time.monotonic()
        response = await self.poll(sid)
        assert response.code == 200 and response.body == b""
        assert time.monotonic() - started >= 0.25

    @tornado.testing.gen_test
    async def test_a_second_poll_answers_the_first_empty(self) -> None:
        sid, _ = await self.handshake()
        first = asyncio.ensure_future(self.poll(sid))
        await asyncio.sleep(0.05)  # wait-ok: let the first poll attach before the second
        second = asyncio.ensure_future(self.poll(sid))
        first_response = await first
        assert first_response.code == 200 and first_response.body == b""
        registry_for(self._app).get(sid).handler.send("after")  # type: ignore[union-attr]
        assert messages((await second).body) == ["after"]

    @tornado.testing.gen_test
    async def test_state_on_self_survives_across_requests(self) -> None:
        sid, _ = await self.handshake()
        for text in ("a", "b"):
            assert (await self.post(sid, f"~m~1~m~{text}")).code == 200
        connection = registry_for(self._app).get(sid)
        assert connection is not None and len(self.recorder.of("open")) == 1
        assert [m for _, m in self.recorder.of("message")] == ["a", "b"]


class TestSends(PollingTestCase):
    @tornado.testing.gen_test
    async def test_post_delivers_every_frame_and_answers_ok(self) -> None:
        sid, _ = await self.handshake()
        payload = "~m~5~m~first~m~4~m~~h~9~m~11~m~hi é中😀 end~m~10~m~~j~{\"a\":1}"
        response = await self.post(sid, payload)
        assert response.code == 200
        assert response.body == b"ok"
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert [m for _, m in self.recorder.of("message")] == ["first", "hi é中😀 end", {"a": 1}]

    @tornado.testing.gen_test
    async def test_plus_in_a_form_body_is_a_space(self) -> None:
        sid, _ = await self.handshake()
        response = await self.http_client.fetch(
            self.get_url(f"/socket.io/xhr-polling/{sid}/send"), method="POST",
            body="data=~m~3~m~a+b", raise_error=False,
        )
        assert response.code == 200
        assert self.recorder.of("message") == [("message", "a b")]

    @tornado.testing.gen_test
    async def test_a_malformed_frame_is_400_and_delivers_nothing(self) -> None:
        sid, _ = await self.handshake()
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 POST .*Malformed Socket.IO frame"):
            response = await self.post(sid, "~m~5~m~ok~m~oops")
        assert response.code == 400
        assert response.body == b"Malformed Socket.IO frame"
        assert self.recorder.of("message") == []
        assert (await self.post(sid, "~m~2~m~ok")).code == 200  # the session goes on

    @tornado.testing.gen_test
    async def test_unknown_session_is_404_for_polls_and_sends(self) -> None:
        assert (await self.poll("0123456789abcdef")).code == 404
        assert (await self.post("0123456789abcdef", "~m~1~m~x")).code == 404


class TestLifecycle(PollingTestCase):
    @tornado.testing.gen_test
    async def test_a_session_without_polls_ends_after_the_close_timeout(self) -> None:
        sid, _ = await self.handshake()
        await self.recorder.wait("close", timeout=5)
        assert self.recorder.of("close") == [("close", sid)]
        assert (await self.poll(sid)).code == 404
        assert sid not in registry_for(self._app)

    @tornado.testing.gen_test
    async def test_a_poll_within_the_close_timeout_keeps_the_session(self) -> None:
        sid, _ = await self.handshake()
        for _ in range(3):  # three poll timeouts (0.3 s) outlast the close timeout (0.5 s)
            assert (await self.poll(sid)).code == 200
        assert self.recorder.of("close") == []


class RefusingHandler(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> bool:
        self.send("never seen")
        return False


class TestRefusalAndSettings(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        echo = echo_handler()
        return tornado.web.Application(
            [RefusingHandler.routes("refuse"), echo.routes("socket.io")],
            enabled_protocols=["xhr-polling"], xsrf_cookies=True, compress_response=True, cookie_secret="s",
        )

    @tornado.testing.gen_test
    async def test_on_open_returning_false_refuses_without_a_session_id(self) -> None:
        response = await self.http_client.fetch(self.get_url("/refuse/xhr-polling//1"), raise_error=False)
        assert response.code == 403
        assert b"~m~" not in response.body

    @tornado.testing.gen_test
    async def test_disabled_transport_is_403(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/websocket"), raise_error=False)
        assert response.code == 403

    @tornado.testing.gen_test
    async def test_xsrf_cookies_and_gzip_do_not_get_in_the_way(self) -> None:
        response = await self.http_client.fetch(
            self.get_url("/socket.io/xhr-polling//1"), headers={"Accept-Encoding": "gzip"}, decompress_response=False
        )
        assert "Content-Encoding" not in response.headers
        sid = messages(response.body)[0]
        sent = await self.http_client.fetch(
            self.get_url(f"/socket.io/xhr-polling/{sid}/send"), method="POST", body="data=~m~1~m~x",
            headers={"Content-Type": "application/x-www-form-urlencoded"}, raise_error=False,
        )
        assert sent.code == 200 and sent.body == b"ok"


# The same tests through PollFront, as SocketIOServer serves them (above: through the application's routing).


class TestHandshakeAndPollsThroughFront(ThroughPollFront, TestHandshakeAndPolls):
    pass


class TestSendsThroughFront(ThroughPollFront, TestSends):
    pass


class TestLifecycleThroughFront(ThroughPollFront, TestLifecycle):
    pass


class TestRefusalAndSettingsThroughFront(ThroughPollFront, TestRefusalAndSettings):
    pass
