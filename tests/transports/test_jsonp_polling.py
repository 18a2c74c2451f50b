"""jsonp-polling: script responses, the callback index, and the hidden form's posts."""

from __future__ import annotations

import json
import re

import tornado.testing
import tornado.web
from tornado.httpclient import HTTPResponse

from tests.helpers import ThroughPollFront, app_for, echo_handler, messages
from tornad_io.registry import registry_for

CALL = re.compile(r'io\.JSONP\[(\d+)\]\._\(("(?:[^"\\]|\\.)*")\);')


def script_payload(body: bytes) -> tuple[int, str]:
    found = CALL.fullmatch(body.decode("ascii"))
    assert found, body
    return int(found.group(1)), json.loads(found.group(2))


class JSONPCase(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.handler = echo_handler()
        self.recorder = self.handler.recorder
        return app_for(self.handler, socket_io_poll_timeout=0.2, socket_io_close_timeout=1.0)

    async def get(self, path: str) -> HTTPResponse:
        return await self.http_client.fetch(self.get_url(path), raise_error=False)

    async def form_post(self, sid: str, body: str) -> HTTPResponse:
        # what a browser's form submission sends: no charset, + for space, CRLF line breaks
        return await self.http_client.fetch(
            self.get_url(f"/socket.io/jsonp-polling/{sid}/1700000000000/0"), method="POST", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"}, raise_error=False,
        )

    async def handshake(self) -> str:
        response = await self.get("/socket.io/jsonp-polling//1700000000000/0")
        sid: str = messages(script_payload(response.body)[1])[0]
        return sid


class TestJSONP(JSONPCase):
    @tornado.testing.gen_test
    async def test_handshake_is_a_script_calling_the_indexed_callback(self) -> None:
        response = await self.get("/socket.io/jsonp-polling//1700000000000/3")
        assert response.code == 200
        assert response.headers["Content-Type"] == "text/javascript; charset=UTF-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        index, payload = script_payload(response.body)
        assert index == 3
        assert messages(payload)[1] == "welcome"

    @tornado.testing.gen_test
    async def test_an_idle_poll_calls_back_with_an_empty_string(self) -> None:
        sid = await self.handshake()
        response = await self.get(f"/socket.io/jsonp-polling/{sid}/1700000000001/0")
        assert response.body == b'io.JSONP[0]._("");'

    @tornado.testing.gen_test
    async def test_leading_zeros_are_normalised(self) -> None:
        response = await self.get("/socket.io/jsonp-polling//1/007")
        assert response.body.startswith(b"io.JSONP[7]._(")

    @tornado.testing.gen_test
    async def test_a_bad_callback_index_is_400_and_never_echoed(self) -> None:
        for tail in ("1700000000000", "1/alert(1)", "1/1234567", "1/-1", "1/0x1"):
            response = await self.get(f"/socket.io/jsonp-polling//{tail}")
            assert response.code == 400, tail
            assert b"alert" not in response.body and b"0x1" not in response.body

    @tornado.testing.gen_test
    async def test_hostile_messages_stay_inside_the_string(self) -> None:
        sid = await self.handshake()
        hostile = '");alert(1);//</script><!--\u2028\u2029'
        registry_for(self._app).get(sid).handler.send(hostile)  # type: ignore[union-attr]
        response = await self.get(f"/socket.io/jsonp-polling/{sid}/1700000000001/0")
        assert b"<" not in response.body and all(byte < 0x80 for byte in response.body)
        assert messages(script_payload(response.body)[1]) == [hostile]


class TestFormPosts(JSONPCase):
    @tornado.testing.gen_test
    async def test_line_breaks_the_form_made_crlf_arrive_as_sent(self) -> None:
        sid = await self.handshake()
        response = await self.form_post(sid, "data=%7Em%7E3%7Em%7Ea%0D%0Ab%7Em%7E9%7Em%7Ehello+you")
        assert response.code == 200 and response.body == b"ok"
        assert [m for _, m in self.recorder.of("message")] == ["a\nb", "hello you"]

    @tornado.testing.gen_test
    async def test_json_from_the_form(self) -> None:
        sid = await self.handshake()
        body = "data=" + tornado.escape.url_escape('~m~15~m~~j~{"s":"x\\ny"}', plus=True)
        assert (await self.form_post(sid, body)).code == 200
        assert self.recorder.of("message") == [("message", {"s": "x\ny"})]


# The same tests through PollFront, as SocketIOServer serves them (above: through the application's routing).


class TestJSONPThroughFront(ThroughPollFront, TestJSONP):
    pass


class TestFormPostsThroughFront(ThroughPollFront, TestFormPosts):
    pass
