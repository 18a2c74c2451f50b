"""The target of ``python -m bench.attacks``: tornad_io handlers to attack, and a /debug census.

Built only from tornad_io's public API (``SocketIOHandler``, ``Handler.routes``,
``Handler.broadcast``, ``tornad_io.stats``, ``SocketIOServer``).  Settings
beyond the library's defaults come as JSON in the environment variable
``ATTACK_TARGET_SETTINGS`` (or ``--settings``), and keyword arguments for
``SocketIOServer`` (Tornado ``HTTPServer`` options) in
``ATTACK_TARGET_SERVER_OPTIONS``, so each attack can lower a limit to make it
visible in time.

Resources:

* ``/socket.io``: echo; the message ``flood:<seconds>`` makes the handler send
  1 KiB messages as fast as it can (yielding to the IOLoop every
  ``FLOOD_BATCH`` messages) until its connection closes or the seconds pass.
* ``/room``: ``broadcast(message, exclude=self)`` to every other client of the room.
* ``/slow``: ``async def on_message`` that awaits ``asyncio.sleep(0.05)``.
* ``/lifecycle``: ``async def on_open`` that awaits ``asyncio.sleep(0.2)``.
* ``GET /debug``: JSON: the path tornad_io was imported from, ``tornad_io.stats``, hook counts per handler class,
  asyncio tasks and, unless ``?gc=0``, a census of live Tornado and tornad_io
  objects after ``gc.collect()`` (the debug request's own objects left out);
  ``?closes=1&since=<monotonic time>`` adds the sessions closed since then.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from typing import Any

# Another copy of tornad_io to attack (``python -m bench.attacks --library DIR``), ahead of this checkout's.
if os.environ.get("ATTACK_TARGET_LIBRARY"):
    sys.path.insert(0, os.environ["ATTACK_TARGET_LIBRARY"])

import tornado.http1connection  # noqa: E402
import tornado.httputil  # noqa: E402
import tornado.iostream  # noqa: E402
import tornado.web  # noqa: E402
import tornado.websocket  # noqa: E402

import tornad_io  # noqa: E402
from bench.servers._common import raise_fd_limit  # noqa: E402
from tornad_io import SocketIOHandler, SocketIOServer  # noqa: E402

#: Messages a flood sends between two yields to the IOLoop.
FLOOD_BATCH = 200
FLOOD_MESSAGE = "f" * 1024
#: A flood never lasts longer than this, whatever it was asked.
MAX_FLOOD_SECONDS = 60.0

#: Hook calls per handler class: on_open, on_open_done, on_close, messages, messages_done.
HOOKS: dict[str, dict[str, int]] = {}
#: (session id, handler class, opened at, closed at, close reason if the library tells) of ended sessions.
CLOSES: deque[tuple[str, str, float | None, float, str | None]] = deque(maxlen=20_000)
FLOODS = {"started": 0, "messages": 0}
_TASKS: set[asyncio.Future[Any]] = set()


def _count(handler: SocketIOHandler, hook: str) -> None:
    counts = HOOKS.setdefault(type(handler).__name__, {})
    counts[hook] = counts.get(hook, 0) + 1


class Counted(SocketIOHandler):
    """Counts its hooks and records when (and, if the library says, why) its session ended."""

    closed = False
    opened_at: float | None = None

    def on_open(self, *args: Any, **kwargs: Any) -> Any:
        _count(self, "on_open")
        _count(self, "on_open_done")
        self.opened_at = time.monotonic()

    def on_close(self) -> None:
        self.closed = True
        _count(self, "on_close")
        # The reason is not public API: read it when present, for the report only.
        reason = getattr(getattr(self, "_connection", None), "close_reason", None)
        CLOSES.append((self.session_id, type(self).__name__, self.opened_at, time.monotonic(), reason))


class Echo(Counted):
    def on_message(self, message: Any) -> None:
        _count(self, "messages")
        if isinstance(message, str) and message.startswith("flood"):
            seconds = float(message.partition(":")[2] or MAX_FLOOD_SECONDS)
            task = asyncio.ensure_future(self.flood(min(seconds, MAX_FLOOD_SECONDS)))
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)
            return
        self.send(message)

    async def flood(self, seconds: float) -> None:
        FLOODS["started"] += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.closed and loop.time() < deadline:
            for _ in range(FLOOD_BATCH):
                self.send(FLOOD_MESSAGE)
            FLOODS["messages"] += FLOOD_BATCH
            await asyncio.sleep(0)


class Room(Counted):
    def on_message(self, message: Any) -> None:
        _count(self, "messages")
        self.broadcast(message, exclude=self)


class Slow(Counted):
    async def on_message(self, message: Any) -> None:
        _count(self, "messages")
        await asyncio.sleep(0.05)
        _count(self, "messages_done")


class Lifecycle(Counted):
    async def on_open(self, *args: Any, **kwargs: Any) -> None:
        _count(self, "on_open")
        self.opened_at = time.monotonic()
        await asyncio.sleep(0.2)
        _count(self, "on_open_done")


def census() -> dict[str, int]:
    """Live objects after a full collection, without the debug request's own handler, request and stream."""
    gc.collect()
    counts = {
        "gc_objects": 0,
        "request_handlers": -1,
        "websocket_handlers": 0,
        "http_requests": -1,
        "http1_connections": -1,
        "iostreams": -1,
        "tornad_io_connections": 0,
        "socketio_handlers": 0,
        "write_buffered_bytes": 0,
        "read_buffered_bytes": 0,
    }
    objects = gc.get_objects()
    counts["gc_objects"] = len(objects)
    for obj in objects:
        if isinstance(obj, tornado.web.RequestHandler):
            counts["request_handlers"] += 1
            if isinstance(obj, tornado.websocket.WebSocketHandler):
                counts["websocket_handlers"] += 1
        elif isinstance(obj, tornado.httputil.HTTPServerRequest):
            counts["http_requests"] += 1
        elif isinstance(obj, tornado.http1connection.HTTP1Connection):
            counts["http1_connections"] += 1
        elif isinstance(obj, tornado.iostream.BaseIOStream):
            counts["iostreams"] += 1
            try:
                counts["write_buffered_bytes"] += len(obj._write_buffer)
                counts["read_buffered_bytes"] += int(obj._read_buffer_size)
            except (AttributeError, TypeError):
                pass  # Tornado's private buffers changed shape: the counts stay
        elif isinstance(obj, SocketIOHandler):
            counts["socketio_handlers"] += 1
        else:
            kind = type(obj)
            if kind.__name__ == "Connection" and kind.__module__.startswith("tornad_io"):
                counts["tornad_io_connections"] += 1
    del objects
    return counts


class Debug(tornado.web.RequestHandler):
    def get(self) -> None:
        stats = tornad_io.stats(self.application)
        report: dict[str, Any] = {
            "now": time.monotonic(),
            "library": os.path.dirname(os.path.abspath(tornad_io.__file__)),
            "connections": stats.connections,
            "by_transport": stats.by_transport,
            "queued_messages": stats.queued_messages,
            "buffered_bytes": getattr(stats, "buffered_bytes", None),
            "hooks": HOOKS,
            "floods": FLOODS,
            "tasks": len(asyncio.all_tasks()),
        }
        if self.get_argument("gc", "1") != "0":
            report["objects"] = census()
        if self.get_argument("closes", "0") == "1":
            since = float(self.get_argument("since", "0"))
            report["closes"] = [record for record in CLOSES if record[3] >= since]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(report))


def make_application(settings: dict[str, Any]) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/debug", Debug),
            Echo.routes("socket.io"),
            Room.routes("room"),
            Slow.routes("slow"),
            Lifecycle.routes("lifecycle"),
        ],
        # flashsocket would start a policy server on port 843: not attacked here.
        enabled_protocols=["websocket", "htmlfile", "xhr-multipart", "xhr-polling", "jsonp-polling"],
        **settings,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--settings", help="JSON object of application settings (default: $ATTACK_TARGET_SETTINGS)")
    options = parser.parse_args()
    settings = json.loads(options.settings or os.environ.get("ATTACK_TARGET_SETTINGS") or "{}")
    server_options = json.loads(os.environ.get("ATTACK_TARGET_SERVER_OPTIONS") or "{}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise_fd_limit()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        application = make_application(settings)
        server = SocketIOServer(application, port=options.port, address="127.0.0.1", **server_options)
        print(f"LISTENING {server.port}", flush=True)
        await stop.wait()
        server.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
