"""SocketIOServer inside a running IOLoop: listens where the settings say, stops cleanly."""

from __future__ import annotations

import socket

import pytest
import tornado.testing
import tornado.web

from tests.helpers import echo_handler, messages
from tornad_io import SocketIOServer


class TestSocketIOServer(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_listens_on_socket_io_port_and_stops(self) -> None:
        with socket.socket() as probe:  # a free port to put in the settings
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app = tornado.web.Application([echo_handler().routes("socket.io")], socket_io_port=port)
        server = SocketIOServer(app, address="127.0.0.1")
        assert server.port == port
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(f"http://127.0.0.1:{port}/socket.io/xhr-polling//1")
        assert messages(response.body)[1] == "welcome"
        server.stop()
        with pytest.raises(ConnectionRefusedError):  # the listener is gone
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    @tornado.testing.gen_test
    async def test_port_argument_overrides_the_setting(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], socket_io_port=1)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.port not in (0, 1)
        server.stop()
