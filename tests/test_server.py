"""SocketIOServer inside a running IOLoop: listens where the settings say, stops cleanly."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest
import tornado.tcpclient
import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io.server
from tests.helpers import echo_handler, messages
from tornad_io import SocketIOServer
from tornad_io.registry import registry_for


class TestSocketIOServer(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_listens_on_socket_io_port_and_stops(self) -> None:
        with socket.socket() as probe:  # a free port to put in the settings
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app = tornado.web.Application([echo_handler().routes("socket.io")], socket_io_port=port, flash_policy_port=0)
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
        app = tornado.web.Application([echo_handler().routes("socket.io")], socket_io_port=1, flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.port not in (0, 1)
        server.stop()

    @tornado.testing.gen_test
    async def test_flashsocket_brings_the_policy_server_and_stop_closes_it(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.flash_policy_server is not None
        policy_port = server.flash_policy_server.port
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", policy_port)
        await stream.write(b"<policy-file-request/>\0")
        answer = await stream.read_until_close()
        assert answer.endswith(b"</cross-domain-policy>\n\0")
        server.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", policy_port), timeout=5).close()

    @tornado.testing.gen_test
    async def test_no_policy_server_without_flashsocket(self) -> None:
        app = tornado.web.Application(
            [echo_handler().routes("socket.io")], enabled_protocols=["websocket", "xhr-polling"]
        )
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.flash_policy_server is None
        server.stop()

    @tornado.testing.gen_test
    async def test_a_refused_policy_port_is_a_hint_not_a_crash(self) -> None:
        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")  # what binding 843 without root raises

        app = tornado.web.Application([echo_handler().routes("socket.io")])
        original = tornad_io.server.FlashPolicyServer
        tornad_io.server.FlashPolicyServer = refuse  # type: ignore[assignment,misc]
        try:
            with tornado.testing.ExpectLog("tornad_io.server", ".*port 843 .*map port 843"):
                server = SocketIOServer(app, port=0, address="127.0.0.1")
        finally:
            tornad_io.server.FlashPolicyServer = original  # type: ignore[misc]
        assert server.flash_policy_server is None
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{server.port}/socket.io/xhr-polling//1"
        )
        assert response.code == 200
        server.stop()

    @tornado.testing.gen_test
    async def test_stop_ends_open_connections_with_on_close(self) -> None:
        handler = echo_handler()
        app = tornado.web.Application([handler.routes("socket.io")], flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/websocket")
        await ws.read_message()
        server.stop()
        await handler.recorder.wait("close")
        assert await ws.read_message() is None
        assert len(registry_for(app)) == 0

    @tornado.testing.gen_test
    async def test_tornado_timeouts_have_defaults_unless_passed(self) -> None:
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.http_server.conn_params.header_timeout == tornad_io.server.IDLE_CONNECTION_TIMEOUT == 60.0
        assert server.http_server.conn_params.body_timeout == 5.0 + tornad_io.server.BODY_TIMEOUT_MARGIN
        server.stop()
        app = tornado.web.Application(
            [echo_handler().routes("socket.io")], flash_policy_port=0, socket_io_body_timeout=2.0
        )
        server = SocketIOServer(app, port=0, address="127.0.0.1")
        assert server.http_server.conn_params.body_timeout == 2.0 + tornad_io.server.BODY_TIMEOUT_MARGIN
        server.stop()
        server = SocketIOServer(app, port=0, address="127.0.0.1", idle_connection_timeout=5.0, body_timeout=None)
        assert server.http_server.conn_params.header_timeout == 5.0
        assert server.http_server.conn_params.body_timeout is None  # the caller's choice, even "none"
        server.stop()

    @tornado.testing.gen_test(timeout=30)
    async def test_the_idle_timeout_closes_a_half_sent_head_but_no_held_poll_or_websocket(self) -> None:
        app = tornado.web.Application(
            [echo_handler().routes("socket.io")], flash_policy_port=0, socket_io_poll_timeout=1.0
        )
        server = SocketIOServer(app, port=0, address="127.0.0.1", idle_connection_timeout=0.3)
        ws = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/socket.io/websocket")
        assert messages(await ws.read_message())[1] == "welcome"  # type: ignore[arg-type]
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", server.port)
        await stream.write(b"POST /socket.io/xhr-polling/0000aaaa/send HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert await stream.read_until_close() == b""  # closed, unanswered, well before the test's timeout
        client = tornado.httpclient.AsyncHTTPClient()
        handshake = await client.fetch(f"http://127.0.0.1:{server.port}/socket.io/xhr-polling//1")
        sid = messages(handshake.body)[0]
        held = await client.fetch(f"http://127.0.0.1:{server.port}/socket.io/xhr-polling/{sid}/2")
        assert held.code == 200 and held.body == b""  # held for the poll timeout, longer than the idle one
        await ws.write_message("~m~5~m~still")
        assert messages(await ws.read_message()) == ["still"]  # type: ignore[arg-type]
        ws.close()
        server.stop()

    @tornado.testing.gen_test
    async def test_a_second_process_on_the_policy_port_is_a_warning(self) -> None:
        first = SocketIOServer(
            tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0),
            port=0, address="127.0.0.1",
        )
        assert first.flash_policy_server is not None
        taken = first.flash_policy_server.port
        app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=taken)
        with tornado.testing.ExpectLog("tornad_io.server", f".*port {taken} is taken"):
            second = SocketIOServer(app, port=0, address="127.0.0.1")
        assert second.flash_policy_server is None
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{second.port}/socket.io/xhr-polling//1"
        )
        assert response.code == 200
        first.stop()
        second.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
class TestTLS(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_ssl_options_reach_the_http_server(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            cert, key = self_signed_certificate(Path(directory))
            app = tornado.web.Application([echo_handler().routes("socket.io")], flash_policy_port=0)
            server = SocketIOServer(
                app, port=0, address="127.0.0.1", ssl_options={"certfile": str(cert), "keyfile": str(key)}
            )
            client = tornado.httpclient.AsyncHTTPClient()
            response = await client.fetch(
                f"https://127.0.0.1:{server.port}/socket.io/xhr-polling//1", validate_cert=False
            )
            assert messages(response.body)[1] == "welcome"
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            ws = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(f"wss://127.0.0.1:{server.port}/socket.io/websocket",
                                               ssl_options=context)
            )
            assert messages(await ws.read_message())[1] == "welcome"  # type: ignore[arg-type]
            ws.close()
            server.stop()
