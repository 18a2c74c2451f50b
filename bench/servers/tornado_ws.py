"""Bare Tornado websocket, the ceiling: echo each message; fan out with a loop of write_message."""

from __future__ import annotations

from typing import ClassVar

import tornado.web
import tornado.websocket

from bench.servers._common import serve


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
        for peer in Fanout.peers:
            if peer is not self:
                peer.write_message(message)


def make_application() -> tornado.web.Application:
    return tornado.web.Application([(r"/echo", Echo), (r"/fanout", Fanout)])


if __name__ == "__main__":
    serve(make_application, __doc__.splitlines()[0])
