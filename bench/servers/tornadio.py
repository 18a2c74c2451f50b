"""tornad_io, the contestant: an echo handler and a broadcasting handler (websocket, xhr-polling, v5).

The fan-out handler uses ``Handler.broadcast(message, exclude=self)`` when
the library has it, and otherwise the loop an application had to write
before: ``send`` to every other open handler.  Each fan-out call is timed
(``GET /bench-stats``, see ``_common.BroadcastTimes``).

The same routes serve Socket.IO v5 (Engine.IO v4, ``/socket.io/?EIO=4&…``
and ``/fanout/?EIO=4&…``, both on the main namespace): ``send`` reaches a
v5 client as its ``message`` event, and its ``message`` events arrive as
``on_message``, so the handlers are the ones the 0.6 contestants use.

Heartbeats (and v5's Engine.IO pings) are pushed out of the way (3,600 s) unless
``--heartbeat-interval default`` (tornad_io's own default) or a number of
seconds is given; ``--listen default`` serves through
``tornad_io.SocketIOServer`` with its defaults (its listen backlog included),
``--listen bench`` through the ``tornad_io.front.PollFront`` that
``SocketIOServer`` puts in front of the application.
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

import tornado.web

from bench.servers._common import BROADCAST_TIMES, STATS_ROUTE, serve
from tornad_io import SocketIOHandler, SocketIOServer

HAS_BROADCAST = hasattr(SocketIOHandler, "broadcast")
try:  # (the bench also runs older tornad_io trees, from before the front)
    from tornad_io.front import PollFront

    HAS_FRONT = True
except ImportError:
    HAS_FRONT = False


class Echo(SocketIOHandler):
    def on_message(self, message: Any) -> None:
        self.send(message)


if HAS_BROADCAST:

    class Fanout(SocketIOHandler):
        def on_message(self, message: Any) -> None:
            started = BROADCAST_TIMES.start()
            self.broadcast(message, exclude=self)
            BROADCAST_TIMES.stop(started)

else:

    class Fanout(SocketIOHandler):  # type: ignore[no-redef]
        peers: ClassVar[set[SocketIOHandler]] = set()

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            self.peers.add(self)

        def on_close(self) -> None:
            self.peers.discard(self)

        def on_message(self, message: Any) -> None:
            started = BROADCAST_TIMES.start()
            for peer in list(self.peers):
                if peer is not self:
                    peer.send(message)
            BROADCAST_TIMES.stop(started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--heartbeat-interval",
        default="off",
        help="off (3,600 s: none lands in a measurement; the default), default (tornad_io's), or seconds",
    )


def make_application(options: argparse.Namespace) -> tornado.web.Application:
    settings: dict[str, Any] = {
        "enabled_protocols": ["websocket", "xhr-polling"],
        # No empty poll answer may land inside a measurement.
        "socket_io_poll_timeout": 600.0,
    }
    if options.heartbeat_interval == "off":
        settings["socket_io_heartbeat_interval"] = 3600.0  # no heartbeat inside a measurement either
        settings["socket_io_ping_interval"] = 3600.0  # nor an Engine.IO ping (the v5 contestants)
    elif options.heartbeat_interval != "default":
        settings["socket_io_heartbeat_interval"] = float(options.heartbeat_interval)
    return tornado.web.Application([Echo.routes("socket.io"), Fanout.routes("fanout"), STATS_ROUTE], **settings)


def listen_default(application: tornado.web.Application, port: int, server_options: dict[str, Any]) -> tuple[int, Any]:
    """``SocketIOServer`` inside the running loop: it listens at once, with its own defaults."""
    server = SocketIOServer(application, port=port, address="127.0.0.1", **server_options)
    return server.port, server.stop


if __name__ == "__main__":
    serve(
        make_application,
        __doc__.splitlines()[0],
        add_arguments=add_arguments,
        listen_default=listen_default,
        front=PollFront if HAS_FRONT else None,
    )
