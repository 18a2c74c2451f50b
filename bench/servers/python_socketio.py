"""python-socketio, the rival: ``AsyncServer(async_mode='tornado')`` echo and fan-out (Engine.IO v4).

Namespace ``/`` echoes every ``message`` event to its sender; namespace
``/fanout`` sends it to every other client of the namespace.  Defaults are
kept except the ping interval, raised so that no ping lands in a measurement.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio  # type: ignore[import-untyped]
import tornado.web

from bench.servers._common import serve


def make_application(options: argparse.Namespace) -> tornado.web.Application:
    sio = socketio.AsyncServer(async_mode="tornado", ping_interval=3600, ping_timeout=600, cors_allowed_origins="*")

    @sio.on("message")  # type: ignore[untyped-decorator]
    async def echo(sid: str, data: Any) -> None:
        await sio.send(data, to=sid)

    @sio.on("message", namespace="/fanout")  # type: ignore[untyped-decorator]
    async def fanout(sid: str, data: Any) -> None:
        await sio.send(data, namespace="/fanout", skip_sid=sid)

    return tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])


if __name__ == "__main__":
    serve(make_application, __doc__.splitlines()[0])
