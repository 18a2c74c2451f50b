"""A small app for the multi-process tests: every message is broadcast to everyone else.

Run as a separate server process with ``python -c "from tests.fanout_app import main; main()" PORT_FILE
[setting=value ...]`` (importing, rather than running the file, keeps the handler's dotted name the
same in every process, which is how a broadcast finds its class).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import tornado.web

from tornad_io import SocketIOHandler, SocketIOServer


class Shouter(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.send(f"hello from {self.settings.get('socket_io_worker_tag') or 'the only worker'}")

    def on_message(self, message: Any) -> None:
        type(self).broadcast(message, exclude=self)


def make_app(handler: type[SocketIOHandler] = Shouter, **settings: Any) -> tornado.web.Application:
    return tornado.web.Application([handler.routes("socket.io")], **settings)


def main() -> None:
    port_file, *pairs = sys.argv[1:]
    settings: dict[str, Any] = dict(pair.split("=", 1) for pair in pairs)

    async def serve() -> None:
        server = SocketIOServer(make_app(**settings), port=0, address="127.0.0.1")
        with open(port_file, "w") as out:
            out.write(str(server.port))
        await asyncio.Event().wait()

    asyncio.run(serve())
