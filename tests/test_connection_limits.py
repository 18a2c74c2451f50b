"""Every queue of a connection is bounded: slow readers are cut off, fast writers pushed back.

Outcomes only (closed, bounded, delivered in order, neighbour served); no timing thresholds.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io
from tests.helpers import Recorder, app_for, echo_handler, messages, queued_callbacks_run
from tornad_io import SocketIOHandler
from tornad_io.codec import encode_frame
from tornad_io.connection import DELIVERY_BATCH, SLOW_CLIENT, Connection
from tornad_io.registry import registry_for

KIB = 1024


class Flooder(SocketIOHandler):
    """Echoes; the message ``flood`` makes it send 1 KiB messages until its connection ends."""

    recorder: Recorder
    gate: asyncio.Event

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.ended = False
        self.peak_buffered = 0

    async def on_message(self, message: Any) -> None:
        self.recorder.add("message", message)
        if message == "flood":
            self.recorder.add("flooding")
            chunk = "x" * KIB
            connection: Connection = self._connection
            while not self.ended and connection.state.value == "open":
                for _ in range(64):
                    self.send(chunk)
                    self.peak_buffered = max(self.peak_buffered, connection.buffered_bytes)
                await queued_callbacks_run()  # let the IOLoop write, read and close between bursts
        elif isinstance(message, str) and message.startswith("burst:"):
            for _ in range(int(message[6:])):
                self.send("z" * KIB)
        elif message == "wait":
            await self.gate.wait()
        else:
            self.send(message)

    def on_close(self) -> None:
        self.ended = True
        self.recorder.add("close", self._connection.close_reason, self.peak_buffered)


class LimitsCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        self.gate = asyncio.Event()
        handler = type("F", (Flooder,), {"recorder": self.recorder, "gate": self.gate})
        return app_for(handler, socket_io_close_timeout=60.0, **self.settings)

    @property
    def ws_url(self) -> str:
        return self.get_url("/socket.io/websocket").replace("http", "ws")

    async def healthy(self) -> tornado.websocket.WebSocketClientConnection:
        ws = await tornado.websocket.websocket_connect(self.ws_url)
        await ws.read_message()  # the session id, and what on_open sent: one payload
        return ws

    async def assert_echoes(self, ws: tornado.websocket.WebSocketClientConnection, text: str) -> None:
        await ws.write_message(encode_frame(text))
        assert messages(await ws.read_message()) == [text]  # type: ignore[arg-type]

    async def raw_socket(self, request: bytes) -> socket.socket:
        """A client that sends ``request`` and then never reads (a tiny receive window)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KIB)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", self.get_http_port()))
        await loop.sock_sendall(sock, request)
        return sock

    async def sessions_gone(self) -> None:
        registry = registry_for(self._app)
        while len(registry) > 1:  # the healthy neighbour stays
            await asyncio.sleep(0.01)  # wait-ok: polling a condition


def masked_text_frame(text: str) -> bytes:
    """A client-to-server WebSocket text frame (a zero mask: valid, and cheap for large frames)."""
    data = text.encode()
    if len(data) < 126:
        header = bytes([0x81, 0x80 | len(data)])
    elif len(data) < 1 << 16:
        header = bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + len(data).to_bytes(8, "big")
    return header + bytes(4) + data


def upgrade_request(port: int) -> bytes:
    return (
        f"GET /socket.io/websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()


class TestSlowReaders(LimitsCase):
    settings = {"socket_io_max_buffer_size": 64 * KIB}

    @tornado.testing.gen_test(timeout=60)
    async def test_a_websocket_client_that_stops_reading_is_cut_off_with_bounded_memory(self) -> None:
        neighbour = await self.healthy()
        loop = asyncio.get_running_loop()
        attackers = []
        with tornado.testing.ExpectLog("tornad_io.connection", ".*socket_io_max_buffer_size"):
            for _ in range(3):
                sock = await self.raw_socket(upgrade_request(self.get_http_port()))
                await loop.sock_sendall(sock, masked_text_frame(encode_frame("flood")))
                attackers.append(sock)
            while len(self.recorder.of("close")) < 3:
                await self.recorder.wait("close", timeout=30)
                self.recorder.flag("close").clear()
        for _, reason, peak in self.recorder.of("close"):
            assert reason == SLOW_CLIENT
            assert peak <= 64 * KIB + 2 * KIB  # the limit, plus the one frame that crossed it
        await self.assert_echoes(neighbour, "still served")
        await self.sessions_gone()
        for sock in attackers:
            sock.close()
        neighbour.close()

    @tornado.testing.gen_test
    async def test_stats_show_the_bytes_waiting_between_polls(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        connection = registry_for(self._app).get(messages(response.body)[0])
        assert connection is not None
        connection.send("hello")
        counts = tornad_io.stats(self._app)
        assert (counts.queued_messages, counts.buffered_bytes) == (1, len(encode_frame("hello")))

    @tornado.testing.gen_test(timeout=60)
    async def test_a_slow_but_reading_client_gets_everything_in_order(self) -> None:
        # Frames queued behind an unfinished write go out together, as one payload.
        ws = await self.healthy()
        connection = registry_for(self._app).connections()[0]
        count = 3000
        for number in range(count):
            connection.send(f"{number:05d}" + "y" * 10)  # 48 KiB in all: under the limit
        received: list[str] = []
        while len(received) < count:
            received += messages(await ws.read_message())  # type: ignore[arg-type]
        assert received == [f"{number:05d}" + "y" * 10 for number in range(count)]
        assert self.recorder.of("close") == []
        ws.close()


class TestManyFrames(LimitsCase):
    def get_app(self) -> tornado.web.Application:
        handler = echo_handler()  # a plain (not async) on_message
        self.recorder = handler.recorder
        return app_for(handler, socket_io_max_frames=500)

    @tornado.testing.gen_test
    async def test_a_payload_over_the_frame_limit_closes_the_websocket_with_1009(self) -> None:
        ws = await self.healthy()
        with tornado.testing.ExpectLog("tornad_io.transports.messages", ".*socket_io_max_frames"):
            await ws.write_message(encode_frame("a") * 501)
            assert await ws.read_message() is None
        assert ws.close_code == 1009
        assert self.recorder.of("message") == []  # nothing of it was delivered

    @tornado.testing.gen_test
    async def test_a_large_payload_is_delivered_in_batches_and_in_order(self) -> None:
        ws = await self.healthy()
        connection = registry_for(self._app).connections()[0]
        texts = [f"m{number}" for number in range(500)]
        connection.feed("".join(encode_frame(text) for text in texts))
        # Delivery yields to the IOLoop after each batch, so other connections get their turn.
        assert len(self.recorder.of("message")) == DELIVERY_BATCH
        received: list[str] = []
        while len(received) < len(texts):
            received += messages(await ws.read_message())  # type: ignore[arg-type]
        assert received == texts
        ws.close()


class TestBackpressure(LimitsCase):
    settings = {"socket_io_max_pending_messages": 10}

    async def paused(self, connection: Connection) -> None:
        while connection._readable is None:
            await asyncio.sleep(0.01)  # wait-ok: polling a condition

    @tornado.testing.gen_test
    async def test_a_websocket_faster_than_on_message_is_not_read_further(self) -> None:
        ws = await self.healthy()
        connection = registry_for(self._app).connections()[0]
        await ws.write_message(encode_frame("wait"))  # on_message now awaits the gate
        for number in range(300):
            await ws.write_message(encode_frame(f"n{number}"))
        await self.paused(connection)
        await asyncio.sleep(0.2)  # wait-ok: give the server the chance to (wrongly) read on
        assert len(connection._inbox) == 11  # the limit, plus the message that crossed it
        self.gate.set()
        received: list[str] = []
        while len(received) < 300:
            received += messages(await ws.read_message())  # type: ignore[arg-type]
        assert received == [f"n{number}" for number in range(300)]
        ws.close()

    @tornado.testing.gen_test
    async def test_a_post_is_answered_only_when_on_message_catches_up(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        sid = messages(response.body)[0]
        connection = registry_for(self._app).get(sid)
        assert connection is not None
        payload = encode_frame("wait") + "".join(encode_frame(f"n{number}") for number in range(20))
        answer = asyncio.ensure_future(
            self.http_client.fetch(
                self.get_url(f"/socket.io/xhr-polling/{sid}/send"), method="POST", body="data=" + payload
            )
        )
        await self.paused(connection)
        assert not answer.done()
        # A second send while the first is held could only queue more: refused, nothing delivered.
        with tornado.testing.ExpectLog("tornad_io.transports.http", "429 POST"):
            second = await self.http_client.fetch(
                self.get_url(f"/socket.io/xhr-polling/{sid}/send"), method="POST",
                body="data=" + encode_frame("queue jumper"), raise_error=False,
            )
        assert second.code == 429
        self.gate.set()
        assert (await answer).body == b"ok"
        while len(self.recorder.of("message")) < 21:
            await asyncio.sleep(0.01)  # wait-ok: polling a condition
        assert [event[1] for event in self.recorder.of("message")] == ["wait"] + [f"n{n}" for n in range(20)]


class TestUnreadPollAnswers(LimitsCase):
    settings = {"socket_io_max_buffer_size": 4 << 20}

    @tornado.testing.gen_test(timeout=60)
    async def test_a_poller_that_never_reads_its_answers_is_cut_off(self) -> None:
        # Each poll arrives on a new TCP connection and its answer is never read. The kernel
        # takes about 2.8 MB per loopback socket; what it cannot take stays in the server and
        # counts against the limit after the poll was answered.
        neighbour = await self.healthy()
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        sid = messages(response.body)[0]
        polls = []
        with tornado.testing.ExpectLog("tornad_io.connection", ".*socket_io_max_buffer_size"):
            for number in range(10):
                if self.recorder.of("close"):
                    break
                sent = await self.http_client.fetch(
                    self.get_url(f"/socket.io/xhr-polling/{sid}/send"), method="POST",
                    body="data=" + encode_frame("burst:3800"), raise_error=False,
                )
                if sent.code != 200:
                    break
                request = f"GET /socket.io/xhr-polling/{sid}/{number} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                polls.append(await self.raw_socket(request))
                connection = registry_for(self._app).get(sid)
                while connection is not None and connection.queued and not self.recorder.of("close"):
                    await asyncio.sleep(0.01)  # wait-ok: until the poll took the burst
            await self.recorder.wait("close", timeout=30)
        [(_, reason, _)] = self.recorder.of("close")
        assert reason == SLOW_CLIENT
        assert len(polls) > 1  # an answered poll's unwritten bytes counted
        await self.assert_echoes(neighbour, "still served")
        for sock in polls:
            sock.close()
        neighbour.close()


class TestInboundAccounting(LimitsCase):
    @tornado.testing.gen_test
    async def test_a_heartbeat_only_payload_never_takes_over_another_payloads_count(self) -> None:
        # A waiting message's bytes must be released with it, whatever arrives meanwhile.
        ws = await self.healthy()
        connection = registry_for(self._app).connections()[0]
        await ws.write_message(encode_frame("wait"))  # on_message now awaits the gate
        await ws.write_message(encode_frame("queued"))
        while not connection._inbox:
            await asyncio.sleep(0.01)  # wait-ok: polling a condition
        connection.feed(encode_frame("~h~not-the-token"))  # only a (stale) heartbeat echo
        self.gate.set()
        assert messages(await ws.read_message()) == ["queued"]  # type: ignore[arg-type]
        assert (len(connection._inbox), connection._inbox_size) == (0, 0)
        ws.close()
