"""The origin policy on its own: patterns, effective ports, Referer and Sec-Fetch-Site."""

import pytest
import tornado.httpclient
import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import echo_handler
from tornad_io.origins import Origin, OriginPolicy

SERVER = Origin("http", "chat.example.com", 8888)


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("http://Example.COM", Origin("http", "example.com", 80)),
        ("https://example.com", Origin("https", "example.com", 443)),
        ("http://example.com:8080/some/page?x=1", Origin("http", "example.com", 8080)),
        ("http://[::1]:9000", Origin("http", "::1", 9000)),
        ("null", None),
        ("file:///etc/passwd", None),
        ("http://example.com:99999", None),
        ("javascript:alert(1)", None),
    ],
)
def test_parse(text: str, origin: Origin | None) -> None:
    assert Origin.parse(text) == origin


def test_default_allows_only_the_server_itself() -> None:
    policy = OriginPolicy()
    assert policy.allows(Origin.parse("http://chat.example.com:8888"), SERVER)
    assert not policy.allows(Origin.parse("http://chat.example.com:8889"), SERVER)
    assert not policy.allows(Origin.parse("https://chat.example.com:8888"), SERVER)
    assert not policy.allows(Origin.parse("http://evil.example"), SERVER)
    assert not policy.allows(None, SERVER)


@pytest.mark.parametrize(
    ("pattern", "origin", "allowed"),
    [
        ("*:*", "http://anything.example:1", True),
        ("*:*", "null", True),
        ("app.example.com:*", "https://app.example.com", True),
        ("app.example.com:443", "https://app.example.com", True),
        ("app.example.com:443", "http://app.example.com", False),  # effective port 80
        ("app.example.com:80", "http://app.example.com", True),
        ("*.example.com:*", "http://a.example.com:3000", True),
        ("*.example.com:*", "http://example.com", False),
        ("*.example.com:*", "http://evil-example.com", False),
        ("*:8080", "http://whoever.example:8080", True),
        ("*:8080", "http://whoever.example:8081", False),
        ("APP.example.com:*", "http://app.EXAMPLE.com", True),
    ],
)
def test_patterns(pattern: str, origin: str, allowed: bool) -> None:
    assert OriginPolicy([pattern]).allows(Origin.parse(origin), SERVER) is allowed


@pytest.mark.parametrize("bad", ["example.com", "example.com:", ":80", "example.com:http"])
def test_bad_patterns_are_clear_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        OriginPolicy([bad])


def test_a_single_string_is_refused() -> None:
    with pytest.raises(ValueError, match="list"):
        OriginPolicy("*:*")


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # old browsers, curl: nothing says cross-site
        ({"Origin": "http://chat.example.com:8888"}, False),
        ({"Origin": "http://evil.example"}, True),
        ({"Origin": "null"}, True),
        ({"Referer": "http://chat.example.com:8888/room"}, False),
        ({"Referer": "http://evil.example/page"}, True),  # a <script> or <iframe> from a foreign page
        ({"Sec-Fetch-Site": "cross-site"}, True),
        ({"Sec-Fetch-Site": "same-site"}, True),
        ({"Sec-Fetch-Site": "same-origin"}, False),
    ],
)
def test_refusal_by_headers(headers: dict[str, str], refused: bool) -> None:
    assert (OriginPolicy().refusal(headers, SERVER) is not None) is refused


def test_everything_is_allowed_with_star_star() -> None:
    policy = OriginPolicy(["*:*"])
    assert policy.refusal({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, SERVER) is None


class TestCORS(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        allowed = echo_handler()
        return tornado.web.Application(
            [allowed.routes("socket.io")], socket_io_origins=["app.example.com:*", "*.cdn.example:443"]
        )

    async def get(self, headers: dict[str, str], method: str = "GET") -> tornado.httpclient.HTTPResponse:
        return await self.http_client.fetch(
            self.get_url("/socket.io/xhr-polling//1"), method=method, headers=headers, raise_error=False
        )

    @tornado.testing.gen_test
    async def test_an_allowed_origin_is_echoed_with_credentials(self) -> None:
        response = await self.get({"Origin": "http://app.example.com"})
        assert response.code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://app.example.com"
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Vary"] == "Origin"

    @tornado.testing.gen_test
    async def test_a_preflight_from_an_allowed_origin(self) -> None:
        response = await self.get(
            {"Origin": "https://x.cdn.example", "Access-Control-Request-Method": "POST"}, method="OPTIONS"
        )
        assert response.code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://x.cdn.example"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]

    @tornado.testing.gen_test
    async def test_others_are_refused_even_on_a_preflight(self) -> None:
        for origin in ("http://x.cdn.example", "http://evil.example", "null"):
            response = await self.get({"Origin": origin}, method="OPTIONS")
            assert response.code == 403, origin
            assert "Access-Control-Allow-Origin" not in response.headers

    @tornado.testing.gen_test
    async def test_the_websocket_upgrade_follows_the_same_list(self) -> None:
        url = self.get_url("/socket.io/websocket").replace("http", "ws")
        ws = await tornado.websocket.websocket_connect(
            tornado.httpclient.HTTPRequest(url, headers={"Origin": "http://app.example.com"})
        )
        ws.close()
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(url, headers={"Origin": "http://evil.example"})
            )
        assert refused.value.code == 403


class TestAllowAll(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([echo_handler().routes("socket.io")], socket_io_origins=["*:*"])

    @tornado.testing.gen_test
    async def test_origin_null_gets_star_and_never_credentials(self) -> None:
        response = await self.http_client.fetch(
            self.get_url("/socket.io/xhr-polling//1"), headers={"Origin": "null"}
        )
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
