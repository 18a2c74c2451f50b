"""What a mount serves besides transports: the client script, a page for people, a 404 that helps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tornado.testing
import tornado.web

from tests.helpers import app_for, echo_handler
from tornad_io.registry import registry_for
from tornad_io.settings import Settings
from tornad_io.unrouted import UnroutedHandler

CLIENT_JS = Path(__file__).resolve().parent.parent / "node_modules/socket.io/support/socket.io-client/socket.io.js"


class PagesCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        handler = echo_handler()
        app = tornado.web.Application(
            [handler.routes("socket.io"), handler.routes("chat", r"(?P<room>[a-z]+)", "/")], **self.settings
        )
        registry_for(app)  # as SocketIOServer does at start-up
        return app


@pytest.mark.skipif(not CLIENT_JS.exists(), reason="the npm client is installed by `make setup`")
class TestClientScript(PagesCase):
    settings = {"socket_io_client_js": str(CLIENT_JS)}

    @tornado.testing.gen_test
    async def test_the_client_is_served_where_node_served_it_and_revalidated(self) -> None:
        for path in ("/socket.io/socket.io.js", "/chat/kitchen/socket.io.js"):
            response = await self.http_client.fetch(self.get_url(path))
            assert response.body == CLIENT_JS.read_bytes()
            assert response.headers["Content-Type"] == "application/javascript; charset=UTF-8"
            assert response.headers["Cache-Control"] == "no-cache"
            again = await self.http_client.fetch(
                self.get_url(path), headers={"If-None-Match": response.headers["Etag"]}, raise_error=False
            )
            assert again.code == 304

    @tornado.testing.gen_test
    async def test_the_resource_root_says_where_the_client_is(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/"))
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert b"Socket.IO 0.6 endpoint" in response.body
        assert b"/socket.io/socket.io.js" in response.body


class TestWithoutClientScript(PagesCase):
    @tornado.testing.gen_test
    async def test_the_root_names_the_setting_and_the_script_is_a_404_that_does_too(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io"))
        assert b"socket_io_client_js" in response.body
        assert b"resource: 'socket.io'" in response.body
        with tornado.testing.ExpectLog("tornad_io.pages", ".*set socket_io_client_js"):
            script = await self.http_client.fetch(self.get_url("/socket.io/socket.io.js"), raise_error=False)
        assert script.code == 404

    @tornado.testing.gen_test
    async def test_a_page_with_the_wrong_resource_gets_a_warning_naming_the_mounted_ones(self) -> None:
        for path in ("/chats/websocket", "/wrong/xhr-polling//1", "/a/b/jsonp-polling//1/0"):
            with tornado.testing.ExpectLog("tornad_io.unrouted", ".*routes\\(\\) mounted 'socket.io', 'chat'"):
                response = await self.http_client.fetch(self.get_url(path), raise_error=False)
            assert response.code == 404

    @tornado.testing.gen_test
    async def test_other_unknown_urls_are_a_quiet_404(self) -> None:
        response = await self.http_client.fetch(self.get_url("/favicon.ico"), raise_error=False)
        assert response.code == 404


def test_an_application_default_handler_is_left_alone() -> None:
    class Mine(tornado.web.RequestHandler):
        pass

    app = app_for(echo_handler(), default_handler_class=Mine)
    registry_for(app)
    assert app.settings["default_handler_class"] is Mine
    other = app_for(echo_handler())
    registry_for(other)
    assert other.settings["default_handler_class"] is UnroutedHandler


def test_a_client_js_that_does_not_exist_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="socket_io_client_js .*not a readable file.*npm install"):
        Settings.from_application({"socket_io_client_js": str(tmp_path / "missing.js")})
