"""Bare Tornado websocket, the ceiling: echo each message; fan out with a loop of write_message.

Each fan-out call (the whole loop) is timed (``GET /bench-stats``, see
``_common.BroadcastTimes``).  ``--listen default`` listens as
``Application.listen`` does, on Tornado's default backlog.
"""

from __future__ import annotations

import argparse
from typing import ClassVar

import tornado.web
import tornado.websocket

from bench.servers._common import BROADCAST_TIMES, STATS_ROUTE, serve


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


class Fanout(tornado.websocket.WebSocketHandler):
    peers: ClassVar[set[Fanout]] = set()

    def open(self) -> None:
        Fanout.peers.add(self)

    def on_close(self) -> None:
        Fanout.peers.discard(self)

    def on_message(self, message: str | bytes) -> None:
        started = BROADCAST_TIMES.start()
        for peer in Fanout.peers:
            if peer is not self:
                peer.write_message(message)
        BROADCAST_TIMES.stop(started)


def make_application(options: argparse.Namespace) -> tornado.web.Application:
    return tornado.web.Application([(r"/echo", Echo), (r"/fanout", Fanout), STATS_ROUTE])


if __name__ == "__main__":
    serve(make_application, __doc__.splitlines()[0])
