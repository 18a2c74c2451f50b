"""tornad_io, the contestant: an echo handler and a broadcasting handler (websocket, xhr-polling).

The fan-out handler uses ``Handler.broadcast(message, exclude=self)`` when
the library has it, and otherwise the loop an application had to write
before: ``send`` to every other open handler.
"""

from __future__ import annotations

from typing import Any, ClassVar

import tornado.web

from bench.servers._common import serve
from tornad_io import SocketIOHandler

HAS_BROADCAST = hasattr(SocketIOHandler, "broadcast")


class Echo(SocketIOHandler):
    def on_message(self, message: Any) -> None:
        self.send(message)


if HAS_BROADCAST:

    class Fanout(SocketIOHandler):
        def on_message(self, message: Any) -> None:
            self.broadcast(message, exclude=self)

else:

    class Fanout(SocketIOHandler):  # type: ignore[no-redef]
        peers: ClassVar[set[SocketIOHandler]] = set()

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            self.peers.add(self)

        def on_close(self) -> None:
            self.peers.discard(self)

        def on_message(self, message: Any) -> None:
            for peer in list(self.peers):
                if peer is not self:
                    peer.send(message)


def make_application() -> tornado.web.Application:
    return tornado.web.Application(
        [Echo.routes("socket.io"), Fanout.routes("fanout")],
        enabled_protocols=["websocket", "xhr-polling"],
        # No heartbeat or empty poll answer may land inside a measurement.
        socket_io_heartbeat_interval=3600.0,
        socket_io_poll_timeout=600.0,
    )


if __name__ == "__main__":
    serve(make_application, __doc__.splitlines()[0])
