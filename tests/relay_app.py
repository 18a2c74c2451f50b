"""A small app for the multi-process tests: every message is broadcast to everyone else.

``/socket.io`` shouts to every client of the application; ``/rooms/<room>`` only to the others
in the same room.

Run as a separate server process with ``python -c "from tests.relay_app import main; main()" PORT_FILE
[setting=value ...]`` (importing, rather than running the file, keeps the handler's dotted name the
same in every process, which is how a broadcast finds its class).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import tornado.web

from tornad_io import SocketIOHandler, SocketIOServer
from tornad_io.registry import registry_for


class Shouter(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.send(f"hello from {self.settings.get('socket_io_worker_tag') or 'the only worker'}")

    def on_message(self, message: Any) -> None:
        type(self).broadcast(message, exclude=self)


class RoomShouter(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.room = kwargs["room"]
        self.join(self.room)
        self.send(f"in {self.room}")

    def on_message(self, message: Any) -> None:
        type(self).broadcast(message, room=self.room, exclude=self)


def make_app(handler: type[SocketIOHandler] = Shouter, **settings: Any) -> tornado.web.Application:
    return tornado.web.Application(
        [handler.routes("socket.io"), RoomShouter.routes("rooms", r"(?P<room>[a-z]+)", "/")], **settings
    )


def main() -> None:
    port_file, *pairs = sys.argv[1:]
    settings: dict[str, Any] = dict(pair.split("=", 1) for pair in pairs)

    async def serve() -> None:
        app = make_app(**settings)
        server = SocketIOServer(app, port=0, address="127.0.0.1", flash_policy_port=0)
        relay = registry_for(app).relay
        if relay is not None:  # ready only once subscribed: no broadcast of the test is missed
            await asyncio.wait_for(relay.connected.wait(), 10)
        partial = port_file + ".partial"
        with open(partial, "w") as out:
            out.write(str(server.port))
        os.rename(partial, port_file)
        await asyncio.Event().wait()

    asyncio.run(serve())
