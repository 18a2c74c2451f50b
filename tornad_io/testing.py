"""Helpers for testing Socket.IO handlers without a browser.

``AppServer`` runs a Tornado application on ``127.0.0.1`` and a free port in a
background thread, so synchronous code (a plain test, a Playwright script) can
talk to it.  ``SocketIOClient`` speaks the 0.6 protocol over websocket (what a
modern browser picks), xhr-polling and jsonp-polling (its fallbacks), and the
htmlfile and xhr-multipart streams.

    with AppServer(application) as server:
        client = SocketIOClient(server.url, transport="websocket")
        client.connect()
        client.send("hello")
        assert client.receive(timeout=5) == "hello"
        client.close()
"""

from __future__ import annotations

import asyncio
import codecs
import http.client
import json
import queue
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from tornad_io import codec
from tornad_io.front import PollFront
from tornad_io.registry import registry_for

__all__ = ["AppServer", "SocketIOClient", "ClientClosed"]

T = TypeVar("T")


class AppServer:
    """Serve ``application`` on ``127.0.0.1:<free port>`` (or ``port``) from a background thread.

    Use it as a context manager.  A test that restarts a server where its
    clients expect it passes the old one's ``port`` (Tornado binds with
    ``SO_REUSEADDR``, so a port just let go of can be taken again at once).  ``call`` runs a function (or coroutine
    function) on the server's IOLoop and returns its result, which is how a
    test reads server-side state without racing the loop.
    """

    def __init__(self, application: tornado.web.Application, port: int = 0, **server_options: Any) -> None:
        self.application = application
        self._wanted_port = port
        self._server_options = server_options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tornad_io-AppServer", daemon=True)
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("the test server did not start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=30)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., T | Awaitable[T]], *args: Any, timeout: float = 30) -> T:
        """Run ``fn(*args)`` on the server loop and return what it returns (awaited if needed)."""
        assert self._loop is not None, "start the server first"

        async def invoke() -> T:
            result = fn(*args)
            if isinstance(result, Awaitable):
                return await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() if it never got ready
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        sockets = tornado.netutil.bind_sockets(self._wanted_port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(PollFront(self.application), **self._server_options)
        server.add_sockets(sockets)
        registry_for(self.application).bind()  # this loop serves the application (and its relay)
        self._ready.set()
        await self._stopping.wait()
        server.stop()
        registry = registry_for(self.application)
        registry.close_all("shutdown")
        await registry.stop_relay()
        await asyncio.sleep(0)  # let the on_close callbacks run
        await server.close_all_connections()


#: A jsonp poll's answer: ``io.JSONP[<i>]._("<payload>");``.
_JSONP_CALL = re.compile(r'io\.JSONP\[\d+\]\._\(("(?:[^"\\]|\\.)*")\);')
#: One htmlfile payload: ``<script>parent.s._("<payload>", document);</script>``.
_HTMLFILE_SCRIPT = re.compile(r'<script>parent\.s\._\(("(?:[^"\\]|\\.)*"), document\);</script>')


def _split_stream(text: str, boundary: str | None) -> tuple[list[str], str]:
    """Complete payloads at the start of a stream's text, and the rest (an incomplete one).

    With a ``boundary``, the text is ``multipart/x-mixed-replace`` parts;
    without, htmlfile script tags (after the padded preamble).
    """
    payloads: list[str] = []
    if boundary is None:
        end = 0
        for found in _HTMLFILE_SCRIPT.finditer(text):
            payloads.append(json.loads(found.group(1)))
            end = found.end()
        return payloads, text[end:]
    opening, separator = f"--{boundary}\n", f"\n--{boundary}\n"
    if text.startswith(opening):
        text = text[len(opening):]
    while (headers_end := text.find("\n\n")) >= 0 and (part_end := text.find(separator, headers_end)) >= 0:
        payloads.append(text[headers_end + 2 : part_end])
        text = text[part_end + len(separator) :]
    return payloads, text


class ClientClosed(Exception):
    """The server ended the connection (or refused it)."""


class SocketIOClient:
    """A blocking Socket.IO 0.6 client for tests, over any transport but flashsocket.

    ``transport`` is ``"websocket"`` (the default), ``"xhr-polling"``,
    ``"jsonp-polling"``, ``"htmlfile"`` or ``"xhr-multipart"``; it speaks each
    the way the 0.6.3 browser client does.  ``receive`` returns the next
    application message (heartbeats are echoed for you and never returned): a
    ``str``, or the decoded value of a ``~j~`` frame.  Run it from a thread
    other than the server's loop (``AppServer`` does that for you).
    """

    TRANSPORTS = ("websocket", "xhr-polling", "jsonp-polling", "htmlfile", "xhr-multipart")

    def __init__(self, base_url: str, resource: str = "socket.io", transport: str = "websocket") -> None:
        if transport not in self.TRANSPORTS:
            raise ValueError(f"SocketIOClient speaks {', '.join(self.TRANSPORTS)}; not {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.resource = resource.strip("/")
        self.transport = transport
        self.session_id: str | None = None
        self.heartbeats_echoed = 0
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._closed = threading.Event()
        self._connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._ws: tornado.websocket.WebSocketClientConnection | None = None
        self._poll: http.client.HTTPConnection | None = None
        self._poll_lock = threading.Lock()

    # -- public API -------------------------------------------------------------------

    def connect(self, timeout: float = 10) -> str:
        """Handshake and return the session id."""
        if self.session_id is not None:
            raise RuntimeError("connect() was already called: one SocketIOClient is one session")
        if self.transport == "websocket":
            self._run(self._ws_connect(), timeout)
        elif self.transport in ("htmlfile", "xhr-multipart"):
            threading.Thread(target=self._stream, daemon=True).start()
            if not self._connected.wait(timeout) or self.session_id is None:
                self.close()
                raise ClientClosed(f"no session id over {self.transport} within {timeout} s")
        else:
            self._poll_once(handshake=True, timeout=timeout)
            threading.Thread(target=self._poll_forever, daemon=True).start()
        assert self.session_id is not None
        return self.session_id

    def send(self, *messages: Any) -> None:
        """Send one or more messages in one payload (str as is, anything else as ``~j~`` JSON)."""
        payload = "".join(codec.encode_message(m) for m in messages)
        self._send_payload(payload)

    def receive(self, timeout: float = 10) -> Any:
        """The next application message; raises ``TimeoutError`` or ``ClientClosed``."""
        if self.session_id is None and self._inbox.empty():
            raise RuntimeError("call connect() before receive(): the client has no session yet")
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no message within {timeout} s") from None
        if isinstance(item, ClientClosed):
            self._inbox.put(item)
            raise item
        return item

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float = 10) -> bool:
        return self._closed.wait(timeout)

    def close(self) -> None:
        """Go away the way a browser does: close the socket, or abort the held poll or stream."""
        if self._ws is not None:
            ws = self._ws
            self._loop.call_soon_threadsafe(ws.close)
        with self._poll_lock:
            self._mark_closed()
            poll = self._poll
            if poll is not None and poll.sock is not None:
                try:
                    poll.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already gone
        self._loop.call_soon_threadsafe(self._loop.stop)

    # -- websocket ----------------------------------------------------------------------

    def _run(self, coro: Awaitable[T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    async def _ws_connect(self) -> None:
        url = self.base_url.replace("http", "ws", 1) + f"/{self.resource}/websocket"
        request = tornado.httpclient.HTTPRequest(url, headers={"Origin": self.base_url})
        self._ws = await tornado.websocket.websocket_connect(request)
        first = await self._ws.read_message()
        if first is None:
            self._mark_closed()
            raise ClientClosed("the server closed the websocket before sending a session id")
        self._on_payload(first if isinstance(first, str) else first.decode())
        asyncio.ensure_future(self._ws_reader())

    async def _ws_reader(self) -> None:
        assert self._ws is not None
        while True:
            data = await self._ws.read_message()
            if data is None:
                self._mark_closed()
                return
            self._on_payload(data if isinstance(data, str) else data.decode())

    # -- HTTP transports ----------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join(["", self.resource, self.transport, *parts])

    def _open(
        self, method: str, path: str, body: str | None = None, timeout: float = 60
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A request (a GET that ``close()`` can abort); ``ClientClosed`` unless it answers 200."""
        connection = http.client.HTTPConnection(urllib.parse.urlsplit(self.base_url).netloc, timeout=timeout)
        headers = {"Origin": self.base_url}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        try:
            with self._poll_lock:
                if self.closed:
                    raise ClientClosed("the connection is closed")
                connection.connect()
                if method == "GET":
                    self._poll = connection
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except OSError as exc:  # includes the abort by close()
            connection.close()
            self._mark_closed()
            raise ClientClosed(f"{method} {path} failed: {exc}") from exc
        if response.status != 200:
            answer = response.read().decode("utf-8", "replace")
            connection.close()
            self._mark_closed()
            raise ClientClosed(f"{method} {path} answered {response.status}: {answer}")
        return connection, response

    def _poll_once(self, handshake: bool = False, timeout: float = 60) -> None:
        stamp = str(int(time.time() * 1000))
        parts = ["" if handshake else self.session_id or "", stamp]
        if self.transport == "jsonp-polling":
            parts.append("0")
        connection, response = self._open("GET", self._path(*parts), timeout=timeout)
        try:
            body = response.read().decode("utf-8")
        except OSError as exc:
            self._mark_closed()
            raise ClientClosed(f"poll failed: {exc}") from exc
        finally:
            connection.close()
        if self.transport == "jsonp-polling":
            found = _JSONP_CALL.fullmatch(body)
            if found is None:
                self._mark_closed()
                raise ClientClosed(f"not a jsonp callback: {body[:200]!r}")
            body = json.loads(found.group(1))
        self._on_payload(body)

    def _poll_forever(self) -> None:
        while not self.closed:
            try:
                self._poll_once()
            except ClientClosed:
                return

    def _stream(self) -> None:
        """Read an htmlfile or xhr-multipart stream until it ends, payload by payload."""
        try:
            connection, response = self._open("GET", self._path("", str(int(time.time() * 1000))), timeout=3600)
        except ClientClosed:
            self._connected.set()
            return
        param = response.headers.get_param("boundary")
        boundary = param if isinstance(param, str) and self.transport == "xhr-multipart" else None
        decoder = codecs.getincrementaldecoder("utf-8")()
        text = ""
        try:
            while chunk := response.read1(65536):
                text += decoder.decode(chunk)
                payloads, text = _split_stream(text, boundary)
                for payload in payloads:
                    self._on_payload(payload)
                    self._connected.set()
        except (OSError, http.client.HTTPException):
            pass  # the stream was cut: by close(), or by the server
        connection.close()
        self._mark_closed()
        self._connected.set()

    # -- shared -------------------------------------------------------------------------

    def _send_payload(self, payload: str) -> None:
        if self.closed:
            raise ClientClosed("the connection is closed")
        if self.session_id is None:
            raise RuntimeError("call connect() before send(): the client has no session yet")
        if self.transport == "websocket":
            assert self._ws is not None
            ws = self._ws

            async def write() -> None:
                await ws.write_message(payload)

            self._run(write(), 10)
            return
        body = "data=" + urllib.parse.quote(payload, safe="~!*()'")
        sid = self.session_id or ""
        tail = [sid, str(int(time.time() * 1000)), "0"] if self.transport == "jsonp-polling" else [sid, "send"]
        connection, response = self._open("POST", self._path(*tail), body=body, timeout=10)
        try:
            response.read()
        finally:
            connection.close()

    def _on_payload(self, payload: str) -> None:
        for message in codec.decode_payload(payload):
            if self.session_id is None and isinstance(message, str):
                self.session_id = message
            elif isinstance(message, codec.Heartbeat):
                self.heartbeats_echoed += 1
                self._echo_later(codec.encode_heartbeat(message.number))
            else:
                self._inbox.put(message.value if isinstance(message, codec.Json) else message)

    def _echo_later(self, payload: str) -> None:
        # Never block the reader (it may be the websocket's own loop) on the echo.
        if self.transport == "websocket":
            assert self._ws is not None
            self._ws.write_message(payload)
        else:
            threading.Thread(target=self._send_payload, args=(payload,), daemon=True).start()

    def _mark_closed(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._inbox.put(ClientClosed("the connection is closed"))

