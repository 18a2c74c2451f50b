"""Bare Tornado long-poll echo, the ceiling for xhr-polling.

``GET /hello`` gives a client id; ``GET /poll/<id>`` is held until a message
is queued for the client; ``POST /send/<id>`` with a form field ``data``
queues that text.  A poll takes everything queued, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

import tornado.web

from bench.servers._common import serve


class Client:
    __slots__ = ("queue", "waiter")

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.waiter: asyncio.Future[None] | None = None


clients: dict[str, Client] = {}
ids = itertools.count(1)


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        client_id = str(next(ids))
        clients[client_id] = Client()
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(client_id)


class Poll(tornado.web.RequestHandler):
    async def get(self, client_id: str) -> None:
        client = clients.get(client_id)
        if client is None:
            raise tornado.web.HTTPError(404)
        if not client.queue:
            client.waiter = asyncio.get_running_loop().create_future()
            await client.waiter
            if self._finished or self.request.connection.stream.closed():  # type: ignore[union-attr]
                return  # the client gave up on this poll: what is queued waits for the next
        payload = "".join(client.queue)
        client.queue.clear()
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(payload)

    def on_connection_close(self) -> None:
        client = clients.get(self.path_args[0]) if self.path_args else None
        if client is not None and client.waiter is not None and not client.waiter.done():
            client.waiter.set_result(None)  # the held GET returns; its answer goes nowhere


class Send(tornado.web.RequestHandler):
    def post(self, client_id: str) -> None:
        client = clients.get(client_id)
        if client is None:
            raise tornado.web.HTTPError(404)
        client.queue.append(self.get_body_argument("data"))
        if client.waiter is not None and not client.waiter.done():
            client.waiter.set_result(None)
        client.waiter = None
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok")


def make_application(options: argparse.Namespace) -> tornado.web.Application:
    return tornado.web.Application([(r"/hello", Hello), (r"/poll/(\w+)", Poll), (r"/send/(\w+)", Send)])


if __name__ == "__main__":
    serve(make_application, __doc__.splitlines()[0])
