"""The websocket fast path: after Tornado's handshake, tornad_io reads and writes the socket itself.

Tornado parses the upgrade request, routes it, applies ``check_origin``,
``xheaders`` and TLS, and writes the ``101``.  For a plain TCP connection,
:func:`take_over` then moves the socket from Tornado's ``IOStream`` to an
:class:`AdoptedWebSocket`, an ``asyncio.BufferedProtocol`` whose frames are
cut by :class:`tornad_io.rfc6455.FrameReader`.  Why: per message, Tornado's
stream turns read interest on and off and makes a Future per read and write,
which cost more than all of Socket.IO (bench/README.md has the figures).
Here the socket stays registered for reading, every arrival is handled in
one callback, and all connections of a thread share one receive buffer
(the reader copies only an incomplete frame).

The hand-over uses public APIs only: the stream's socket is ``dup()``-ed and
the stream closed (so Tornado never touches the descriptor asyncio now
owns), the bytes Tornado had already read past the request are taken with a
partial ``read_bytes`` and replayed, and ``loop.connect_accepted_socket``
builds the asyncio transport.  TLS streams stay with Tornado's reader, as
does every websocket when ``socket_io_websocket_takeover`` is ``False``.

Limits are the connection's (:mod:`tornad_io.connection`) and the message
rules :func:`tornad_io.transports.messages.deliver`'s, as on Tornado's path;
this module adds only RFC 6455 itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, cast

import tornado.iostream
import tornado.websocket

from tornad_io import rfc6455
from tornad_io.connection import Connection, HandlerFactory, TransportKind
from tornad_io.dialects import Frame
from tornad_io.transports.messages import deliver

if TYPE_CHECKING:
    import tornado.httputil
    import tornado.web

    from tornad_io.registry import Registry

__all__ = ["AdoptedWebSocket", "adoptable_stream", "take_over"]

log = logging.getLogger(__name__)

#: Bytes one receive can bring; every connection of a thread reads into the same buffer.
RECEIVE_BUFFER_SIZE: Final = 256 * 1024

#: Seconds the client has to answer our close frame before the TCP connection is cut.
CLOSE_GRACE: Final = 5.0

_buffers = threading.local()


def receive_buffer() -> memoryview:
    """This thread's receive buffer: safe to share, as each arrival is consumed before the next read."""
    view: memoryview | None = getattr(_buffers, "view", None)
    if view is None:
        view = _buffers.view = memoryview(bytearray(RECEIVE_BUFFER_SIZE))
    return view


class UpgradedHandler(Protocol):
    """What the takeover reads from the Tornado handler that did the handshake (``WebSocketTransport``)."""

    @property
    def protocol(self) -> str: ...

    @property
    def handler_class(self) -> HandlerFactory: ...

    @property
    def extra_re(self) -> str | None: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def application(self) -> tornado.web.Application: ...

    @property
    def request(self) -> tornado.httputil.HTTPServerRequest: ...

    @property
    def ws_connection(self) -> tornado.websocket.WebSocketProtocol | None: ...

    @property
    def open_session(self) -> Callable[[Any, dict[str, Any]], None]: ...

    @property
    def wire_bytes(self) -> Callable[[list[Frame]], bytes]: ...

    def get_compression_options(self) -> dict[str, Any] | None: ...


def adoptable_stream(handler: UpgradedHandler) -> tornado.iostream.IOStream | None:
    """The plain TCP stream under an upgraded ``handler``, or ``None`` where Tornado must keep reading.

    TLS streams (``SSLIOStream``) and compressed websockets stay with
    Tornado, as does everything when the application turned the takeover off.
    """
    if not handler.registry.settings.websocket_takeover or handler.get_compression_options() is not None:
        return None
    stream = getattr(handler.ws_connection, "stream", None)
    if type(stream) is not tornado.iostream.IOStream:
        return None
    return stream


async def take_over(
    handler: UpgradedHandler, stream: tornado.iostream.IOStream, path_kwargs: dict[str, Any]
) -> None:
    """Move the upgraded socket under ``handler`` to an :class:`AdoptedWebSocket` and open its session.

    Tornado's handler is done after this: its reader finds the stream closed,
    and its ``on_close`` sees no connection.
    """
    try:
        await stream.write(b"")  # resolves once the 101 has left Tornado's buffer
        replay = _take_read_ahead(stream, handler.registry.settings.max_message_size)
    except tornado.iostream.StreamClosedError:
        return  # the client left during the handshake: nothing was opened
    if replay is None:
        log.warning(
            "closing websocket from %s: more than socket_io_max_message_size bytes arrived with the handshake",
            handler.request.remote_ip,
        )
        stream.close()
        return
    sock = socket.socket(fileno=os.dup(stream.socket.fileno()))
    stream.close()  # Tornado lets go of its descriptor; the duplicate keeps the connection
    adopted = AdoptedWebSocket(handler, path_kwargs, replay)
    try:
        await asyncio.get_running_loop().connect_accepted_socket(lambda: adopted, sock)
    except Exception:
        log.exception("could not take over the websocket from %s", handler.request.remote_ip)
        sock.close()


def _take_read_ahead(stream: tornado.iostream.IOStream, limit: int) -> bytes | None:
    """What Tornado read past the upgrade request (a client may send frames before seeing the 101).

    A partial read returns at once whatever is buffered; with nothing
    buffered it tries the socket once and, finding nothing either, stays
    pending until the stream closes.  ``None`` if more than ``limit`` bytes came.
    """
    future = asyncio.ensure_future(stream.read_bytes(limit + 1, partial=True))  # the same Future, typed
    if not future.done():
        future.add_done_callback(_ignore_closed)
        return b""
    data = future.result()
    return data if len(data) <= limit else None


def _ignore_closed(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()  # StreamClosedError: the stream was closed on purpose


class AdoptedWebSocket(asyncio.BufferedProtocol):
    """One websocket after the takeover: the :class:`~tornad_io.connection.Transport` of its session."""

    kind: ClassVar[TransportKind] = TransportKind.SOCKET

    def __init__(self, handler: UpgradedHandler, path_kwargs: dict[str, Any], replay: bytes) -> None:
        # What open_connection reads from a TransportHandler; the Tornado handler itself is let go.
        self.protocol: str = handler.protocol
        self.handler_class: HandlerFactory = handler.handler_class
        self.extra_re: str | None = handler.extra_re
        self.registry: Registry = handler.registry
        self.application: tornado.web.Application = handler.application
        self.request: tornado.httputil.HTTPServerRequest = handler.request
        self.connection: Connection | None = None
        self._open_session = handler.open_session
        self._wire_bytes = handler.wire_bytes
        self._open_kwargs: dict[str, Any] | None = path_kwargs
        self._replay = replay
        self._reader = rfc6455.FrameReader(self.registry.settings.max_message_size)
        self._buffer = receive_buffer()
        self._wire: asyncio.Transport | None = None
        self._drained: asyncio.Future[None] | None = None  # set while asyncio's write buffer is full
        self._reading_paused = False
        self._backlog: Iterator[rfc6455.Event] | None = None  # events read but held back while paused
        self._closing = False  # our close frame is sent: only the client's close is awaited
        self._grace: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<AdoptedWebSocket {self.protocol} from {self.request.remote_ip}>"

    # -- asyncio.BufferedProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the asyncio.Transport methods without subclassing it.
        self._wire = cast(asyncio.Transport, transport)
        kwargs, self._open_kwargs = self._open_kwargs or {}, None
        self._open_session(self, kwargs)
        replay, self._replay = self._replay, b""
        if replay:
            self._received(replay)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._received(self._buffer[:nbytes])

    def eof_received(self) -> bool:
        return False  # the client half-closed without a close frame: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._wire = None
        self.resume_writing()
        connection = self.connection
        if connection is not None:
            connection.transport_lost(self)

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # -- client to server ---------------------------------------------------------------------

    def _received(self, data: bytes | memoryview) -> None:
        try:
            events = self._reader.feed(data)
        except rfc6455.WebSocketError as exc:
            self._process(iter(exc.events))  # what the client completed before breaking the protocol
            log.warning(
                "closing websocket %s from %s: %s (close code %d)",
                self._short_id(),
                self.request.remote_ip,
                exc.reason,
                exc.code,
            )
            self._fail(exc.code, exc.reason)
            return
        self._process(iter(events))

    def _process(self, events: Iterator[rfc6455.Event]) -> None:
        """Act on ``events`` in order; stop, keeping the rest, when the handler falls behind."""
        connection = self.connection
        for event in events:
            if self._closing or connection is None:
                if isinstance(event, rfc6455.Close):
                    self._close_wire()
                continue
            if isinstance(event, (str, rfc6455.Binary)):
                refusal = deliver(self, connection, event if isinstance(event, str) else event.data)
                if refusal is not None:
                    self._fail(*refusal)
                    continue
                readable = connection.until_readable()
                if readable is not None and self._wire is not None:
                    # The handler lags behind: nothing more is read or handed over until it
                    # catches up, so TCP pushes back on the client.
                    self._backlog = events
                    self._reading_paused = True
                    self._wire.pause_reading()
                    readable.add_done_callback(self._resume_reading)
                    return
            elif isinstance(event, rfc6455.Ping):
                self._write(rfc6455.pong_frame(event.payload))
            elif isinstance(event, rfc6455.Close):
                # The client's closing handshake: answer with its code, then end the TCP connection.
                self._send_close(event.code, "")
                self._close_wire()

    def _resume_reading(self, _: asyncio.Future[None]) -> None:
        backlog, self._backlog = self._backlog, None
        self._reading_paused = False
        if backlog is not None:
            self._process(backlog)
        if not self._reading_paused and self._wire is not None:
            self._wire.resume_reading()

    def _short_id(self) -> str:
        return self.connection.short_id if self.connection is not None else "(not opened)"

    # -- server to client ---------------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        if self._wire is not None and not self._closing:
            self._wire.write(frame)

    def _send_close(self, code: int | None, reason: str) -> None:
        """Start the closing handshake: a close frame, then the client has ``CLOSE_GRACE`` to answer."""
        wire = self._wire
        if self._closing or wire is None:
            return
        self._closing = True
        wire.write(rfc6455.close_frame(code, reason))  # the reason is cut to fit there
        if self._reading_paused:
            self._reading_paused = False
            wire.resume_reading()  # the client's close frame must be read
            backlog, self._backlog = self._backlog, None
            if backlog is not None:
                self._process(backlog)  # a close frame may already be among them
        self._grace = asyncio.get_running_loop().call_later(CLOSE_GRACE, wire.abort)

    def _fail(self, code: int, reason: str) -> None:
        """End a websocket whose client broke the rules: the close frame says why; no answer is awaited."""
        self._send_close(code, reason)
        self._close_wire()

    def _close_wire(self) -> None:
        """Close the TCP connection once what was written has gone (RFC 6455: the server closes first)."""
        if self._wire is not None:
            self._wire.close()

    # -- Transport ----------------------------------------------------------------------------

    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
        wire = self._wire
        if wire is None or self._closing:
            return None  # connection_lost follows and ends the connection
        wire.write(self._wire_bytes(frames))
        return self._drained  # None unless asyncio's buffer is over its high-water mark

    def terminate(self, reason: str) -> None:
        self._send_close(1000, reason)

    def abort(self) -> None:
        if self._wire is not None:
            self._wire.abort()  # connection_lost follows; the unwritten frames go with the socket
