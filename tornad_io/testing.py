"""Helpers for testing Socket.IO handlers without a browser.

``AppServer`` runs a Tornado application on ``127.0.0.1`` and a free port in a
background thread, so synchronous code (a plain test, a Playwright script) can
talk to it.  ``SocketIOClient`` speaks the 0.6 protocol over websocket or
xhr-polling, the two transports a modern browser picks.

    with AppServer(application) as server:
        client = SocketIOClient(server.url, transport="websocket")
        client.connect()
        client.send("hello")
        assert client.receive(timeout=5) == "hello"
        client.close()
"""

from __future__ import annotations

import asyncio
import http.client
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from tornad_io import codec
from tornad_io.registry import registry_for

__all__ = ["AppServer", "SocketIOClient", "ClientClosed"]

T = TypeVar("T")


class AppServer:
    """Serve ``application`` on ``127.0.0.1:<free port>`` from a background thread.

    Use it as a context manager.  ``call`` runs a function (or coroutine
    function) on the server's IOLoop and returns its result, which is how a
    test reads server-side state without racing the loop.
    """

    def __init__(self, application: tornado.web.Application, **server_options: Any) -> None:
        self.application = application
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
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(self.application, **self._server_options)
        server.add_sockets(sockets)
        self._ready.set()
        await self._stopping.wait()
        server.stop()
        registry_for(self.application).close_all("shutdown")
        await asyncio.sleep(0)  # let the on_close callbacks run
        await server.close_all_connections()


class ClientClosed(Exception):
    """The server ended the connection (or refused it)."""


class SocketIOClient:
    """A blocking Socket.IO 0.6 client for tests: websocket or xhr-polling.

    ``receive`` returns the next application message (heartbeats are echoed
    for you and never returned): a ``str``, or the decoded value of a ``~j~``
    frame.  Run it from a thread other than the server's loop (``AppServer``
    does that for you).
    """

    def __init__(self, base_url: str, resource: str = "socket.io", transport: str = "websocket") -> None:
        if transport not in ("websocket", "xhr-polling"):
            raise ValueError(f"SocketIOClient speaks websocket and xhr-polling, not {transport!r}")
        self.base_url = base_url.rstrip("/")
        self.resource = resource.strip("/")
        self.transport = transport
        self.session_id: str | None = None
        self.heartbeats_echoed = 0
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._closed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._ws: tornado.websocket.WebSocketClientConnection | None = None
        self._poll: http.client.HTTPConnection | None = None
        self._poll_lock = threading.Lock()

    # -- public API -------------------------------------------------------------------

    def connect(self, timeout: float = 10) -> str:
        """Handshake and return the session id."""
        if self.transport == "websocket":
            self._run(self._ws_connect(), timeout)
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
        """Go away the way a browser does: close the socket, or abort the held poll."""
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

    # -- xhr-polling --------------------------------------------------------------------

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, self.resource, self.transport, *parts])

    def _poll_once(self, handshake: bool = False, timeout: float = 60) -> None:
        stamp = str(int(time.time() * 1000))
        url = urllib.parse.urlsplit(self._url("" if handshake else self.session_id or "", stamp))
        poll = http.client.HTTPConnection(url.netloc, timeout=timeout)
        try:
            with self._poll_lock:  # close() aborts the current poll, as a closing browser tab does
                if self.closed:
                    return
                poll.connect()
                self._poll = poll
            poll.request("GET", url.path)
            response = poll.getresponse()
            body = response.read().decode("utf-8")
        except OSError as exc:  # includes the abort by close()
            self._mark_closed()
            raise ClientClosed(f"poll failed: {exc}") from exc
        finally:
            poll.close()
        if response.status != 200:
            self._mark_closed()
            raise ClientClosed(f"poll answered {response.status}: {body}")
        self._on_payload(body)

    def _poll_forever(self) -> None:
        while not self.closed:
            try:
                self._poll_once()
            except ClientClosed:
                return

    # -- shared -------------------------------------------------------------------------

    def _send_payload(self, payload: str) -> None:
        if self.closed:
            raise ClientClosed("the connection is closed")
        if self.transport == "websocket":
            assert self._ws is not None
            ws = self._ws

            async def write() -> None:
                await ws.write_message(payload)

            self._run(write(), 10)
            return
        body = "data=" + urllib.parse.quote(payload, safe="~!*()'")
        request = urllib.request.Request(
            self._url(self.session_id or "", "send"),
            data=body.encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            self._mark_closed()
            raise ClientClosed(f"send failed: {exc}") from exc

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

