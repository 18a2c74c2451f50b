"""The Flash socket policy server, over real sockets to a server on a free port."""

from __future__ import annotations

import os
import tempfile

import pytest
import tornado.iostream
import tornado.tcpclient
import tornado.testing

from tornad_io.websocket.flash import FlashPolicyServer, packaged_policy, policy_for_origins

REQUEST = b"<policy-file-request/>\x00"

HEADER = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE cross-domain-policy SYSTEM "http://www.macromedia.com/xml/dtds/cross-domain-policy.dtd">\n'
)


def test_policy_for_origins_has_one_line_per_origin() -> None:
    assert policy_for_origins(["127.0.0.1:*", "localhost:8071", "*:443"]) == HEADER + (
        "<cross-domain-policy>\n"
        '<allow-access-from domain="127.0.0.1" to-ports="*"/>\n'
        '<allow-access-from domain="localhost" to-ports="8071"/>\n'
        '<allow-access-from domain="*" to-ports="443"/>\n'
        "</cross-domain-policy>\n"
    )


def test_policy_for_origins_escapes_and_splits_at_the_last_colon() -> None:
    policy = policy_for_origins(['a"b&<c>:1', "[::1]:80"])
    assert "<allow-access-from domain='a\"b&amp;&lt;c&gt;' to-ports=\"1\"/>" in policy
    assert '<allow-access-from domain="[::1]" to-ports="80"/>' in policy


@pytest.mark.parametrize("origins", ["*:*", ["localhost"], [":80"], ["host:"]])
def test_policy_for_origins_rejects_what_is_not_a_list_of_host_port(origins: list[str]) -> None:
    with pytest.raises(ValueError):
        policy_for_origins(origins)


def test_the_packaged_policy_allows_everything() -> None:
    assert packaged_policy() == policy_for_origins(["*:*"])


class PolicyServerTestCase(tornado.testing.AsyncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.servers: list[FlashPolicyServer] = []

    def tearDown(self) -> None:
        for server in self.servers:
            server.stop()
        super().tearDown()

    def start(self, **kwargs: object) -> FlashPolicyServer:
        server = FlashPolicyServer(port=0, address="127.0.0.1", **kwargs)  # type: ignore[arg-type]
        self.servers.append(server)
        assert server.port > 0
        return server

    async def connect(self, server: FlashPolicyServer) -> tornado.iostream.IOStream:
        return await tornado.tcpclient.TCPClient().connect("127.0.0.1", server.port)

    async def exchange(self, server: FlashPolicyServer, request: bytes = REQUEST) -> bytes:
        """Send ``request``; everything the server wrote before it closed."""
        stream = await self.connect(server)
        await stream.write(request)
        return await stream.read_until_close()


class TestPolicyServer(PolicyServerTestCase):
    @tornado.testing.gen_test
    async def test_a_policy_request_gets_the_xml_and_a_nul_then_the_connection_closes(self) -> None:
        server = self.start()
        assert await self.exchange(server) == packaged_policy().encode() + b"\x00"

    @tornado.testing.gen_test
    async def test_a_policy_string_is_served(self) -> None:
        policy = policy_for_origins(["example.com:8080"])
        server = self.start(policy=policy)
        assert await self.exchange(server) == policy.encode() + b"\x00"

    @tornado.testing.gen_test
    async def test_a_policy_file_comes_first(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "policy.xml")
            with open(path, "w", encoding="utf-8") as file:
                file.write(policy_for_origins(["from-file.test:*"]))
            server = self.start(policy_file=path, policy=policy_for_origins(["from-string.test:*"]))
        assert b'domain="from-file.test"' in await self.exchange(server)  # read once, at construction

    @tornado.testing.gen_test
    async def test_an_unreadable_policy_file_is_a_warning_and_the_packaged_policy_is_served(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            missing = os.path.join(folder, "no-such-policy.xml")
            with tornado.testing.ExpectLog("tornad_io.websocket.flash", f"cannot read .*{missing}", level=30):
                server = self.start(policy_file=missing)
        assert await self.exchange(server) == packaged_policy().encode() + b"\x00"

    @tornado.testing.gen_test
    async def test_two_clients_are_served_independently(self) -> None:
        server = self.start()
        slow = await self.connect(server)
        await slow.write(REQUEST[:10])  # the rest comes later
        fast = await self.connect(server)
        await fast.write(REQUEST)
        assert await fast.read_until_close() == packaged_policy().encode() + b"\x00"
        assert not slow.closed()
        await slow.write(REQUEST[10:])
        assert await slow.read_until_close() == packaged_policy().encode() + b"\x00"

    @tornado.testing.gen_test
    async def test_garbage_is_closed_without_an_answer(self) -> None:
        server = self.start()
        assert await self.exchange(server, b"GET / HTTP/1.0\r\n\r\n\x00") == b""
        assert await self.exchange(server, b"<policy-file-request/>" * 4) == b""  # no NUL within 64 bytes

    @tornado.testing.gen_test
    async def test_a_silent_client_is_closed_after_the_request_timeout(self) -> None:
        server = self.start()
        server.request_timeout = 0.1
        stream = await self.connect(server)
        assert await stream.read_until_close() == b""
