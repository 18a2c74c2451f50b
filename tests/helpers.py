"""Shared test scaffolding: a recording echo handler and payload helpers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.web

from tornad_io import SocketIOHandler
from tornad_io.codec import Json, decode_payload
from tornad_io.front import PollFront


class Recorder:
    """Events seen by one handler class, with an asyncio.Event per kind to wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._flags: dict[str, asyncio.Event] = {}

    def add(self, kind: str, *details: Any) -> None:
        self.events.append((kind, *details))
        self.flag(kind).set()

    def flag(self, kind: str) -> asyncio.Event:
        return self._flags.setdefault(kind, asyncio.Event())

    async def wait(self, kind: str, timeout: float = 10) -> None:
        await asyncio.wait_for(self.flag(kind).wait(), timeout)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == kind]


def echo_handler() -> type[SocketIOHandler]:
    """A fresh handler class: greets in on_open, echoes every message, records everything."""

    class Echo(SocketIOHandler):
        recorder = Recorder()

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            self.recorder.add("open", args, kwargs)
            self.send("welcome")

        def on_message(self, message: Any) -> None:
            self.recorder.add("message", message)
            self.send(message)

        def on_close(self) -> None:
            self.recorder.add("close", self.session_id)

    return Echo


class StaticFile(tornado.web.RequestHandler):
    """Serves one file's bytes, never cached: test pages and the npm client script."""

    def initialize(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type

    def get(self) -> None:
        self.set_header("Content-Type", self.content_type)
        self.set_header("Cache-Control", "no-store")
        self.write(self.body)


def static_rule(pattern: str, path: Path, content_type: str) -> tuple[str, type[StaticFile], dict[str, Any]]:
    """The rule that serves the file at ``path`` (read once, now) at ``pattern``."""
    return (pattern, StaticFile, {"body": path.read_bytes(), "content_type": content_type})


async def queued_callbacks_run() -> None:
    """Return once the IOLoop has run every callback queued before this call (no timing involved).

    A future resolved by ``call_soon`` completes after the callbacks already
    queued, e.g. the ``on_close`` calls a shutdown scheduled.
    """
    loop = asyncio.get_running_loop()
    turn: asyncio.Future[None] = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


def app_for(handler: type[SocketIOHandler], resource: str = "socket.io", **settings: Any) -> tornado.web.Application:
    return tornado.web.Application([handler.routes(resource)], **settings)


def messages(payload: str | bytes) -> list[Any]:
    """Decoded messages of a payload, JSON values unwrapped."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    return [m.value if isinstance(m, Json) else m for m in decode_payload(text)]


class RawStream:
    """A raw HTTP/1.1 GET kept open, for reading a streaming response chunk by chunk."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.status = 0
        self.headers: dict[str, str] = {}

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str] | None = None) -> RawStream:
        import tornado.tcpclient

        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", port)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        await stream.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = cls(stream)
        head = (await stream.read_until(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        raw.status = int(head[0].split()[1])
        raw.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        return raw

    async def chunk(self, timeout: float = 10) -> bytes:
        """The next chunk of a chunked body (b"" for the last one)."""
        size_line = await asyncio.wait_for(self.stream.read_until(b"\r\n"), timeout)
        size = int(size_line.strip(), 16)
        data: bytes = await self.stream.read_bytes(size + 2)
        return data[:-2]

    def close(self) -> None:
        self.stream.close()


class ThroughPollFront:
    """Mixed into a ``tornado.testing.AsyncHTTPTestCase``: serve its application as ``SocketIOServer`` does.

    The test case's own ``HTTPServer`` serves the application itself, so its
    requests take the application's routing; with this mixin first in the
    bases they go through :class:`tornad_io.front.PollFront`, and the same
    tests check the other path.
    """

    def get_http_server(self) -> tornado.httpserver.HTTPServer:
        case: Any = self
        # (AsyncHTTPTestCase keeps get_app()'s application as _app; these tests fail the day it does not.)
        return tornado.httpserver.HTTPServer(PollFront(case._app), **case.get_httpserver_options())

