"""A thousand connections come and go, politely and abruptly: nothing may stay behind."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import beaker.container
import tornado.testing
import tornado.web
import tornado.websocket

from tests.helpers import RawStream, messages
from tornad_io import SocketIOHandler
from tornad_io.connection import Connection
from tornad_io.registry import registry_for

CYCLES = 1000
AT_ONCE = 25


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Counting(SocketIOHandler):
    opened = 0
    closed = 0
    all_closed: asyncio.Event
    alive: weakref.WeakSet[Connection] = weakref.WeakSet()

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        type(self).opened += 1
        self.alive.add(self._connection)
        self.session["seen"] = True  # a Beaker session per connection, which must go too
        self.session.save()
        self.send("welcome")

    def on_close(self) -> None:
        type(self).closed += 1
        if type(self).closed == CYCLES:
            self.all_closed.set()


class TestSoak(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.handler = type("Soak", (Counting,), {"alive": weakref.WeakSet()})
        return tornado.web.Application(
            [self.handler.routes("socket.io")],
            socket_io_poll_timeout=0.2, socket_io_close_timeout=0.1,
        )

    async def websocket(self, abrupt: bool) -> None:
        ws = await tornado.websocket.websocket_connect(self.get_url("/socket.io/websocket").replace("http", "ws"))
        await ws.read_message()
        if abrupt:
            ws.protocol.stream.close()  # type: ignore[union-attr]  # no closing handshake
        else:
            ws.close()

    async def polling(self, protocol: str, suffix: str) -> None:
        response = await self.http_client.fetch(self.get_url(f"/socket.io/{protocol}//1{suffix}"))
        if protocol == "xhr-polling":
            sid = messages(response.body)[0]
            held = await RawStream.open(self.get_http_port(), f"/socket.io/{protocol}/{sid}/2")
            held.close()  # the tab closes during a held poll

    async def stream(self) -> None:
        stream = await RawStream.open(self.get_http_port(), "/socket.io/htmlfile//1")
        await stream.chunk()  # preamble
        await stream.chunk()  # session id
        stream.close()

    async def cycle(self, index: int) -> None:
        kind = index % 5
        if kind < 2:
            await self.websocket(abrupt=kind == 1)
        elif kind == 2:
            await self.polling("xhr-polling", "")
        elif kind == 3:
            await self.polling("jsonp-polling", "/0")
        else:
            await self.stream()

    @tornado.testing.gen_test(timeout=180)
    async def test_a_thousand_connections_leave_nothing_behind(self) -> None:
        self.handler.all_closed = asyncio.Event()
        sessions_before = len(beaker.container.MemoryNamespaceManager.namespaces.dict)
        gc.collect()
        baseline = rss_kib()
        for start in range(0, CYCLES, AT_ONCE):
            await asyncio.gather(*(self.cycle(index) for index in range(start, start + AT_ONCE)))
        await asyncio.wait_for(self.handler.all_closed.wait(), 30)
        await asyncio.sleep(0)  # wait-ok: one loop pass for the last close callbacks
        gc.collect()
        grown = rss_kib() - baseline
        print(f"\nsoak: {CYCLES} connections, RSS {baseline} KiB before, +{grown} KiB after")

        registry = registry_for(self._app)
        assert (self.handler.opened, self.handler.closed) == (CYCLES, CYCLES)
        assert len(registry) == 0
        assert registry._sweeper is None
        assert len(self.handler.alive) == 0  # no timer, queue or registry still holds a connection
        assert len(beaker.container.MemoryNamespaceManager.namespaces.dict) == sessions_before
