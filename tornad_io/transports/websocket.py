"""The ``websocket`` transport: Tornado's RFC 6455 handler carrying 0.6 payloads.

Each WebSocket text message is one payload (``~m~`` frames).  The client
opens ``ws://host:port/<resource>/websocket`` with no session id: every
upgrade is a handshake.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any, ClassVar, Final

import tornado.iostream
import tornado.websocket

from tornad_io.codec import ProtocolError, TooManyFrames
from tornad_io.connection import Connection, HandlerFactory, TransportKind
from tornad_io.origins import Origin
from tornad_io.registry import registry_for
from tornad_io.transports.base import open_connection, server_origin, transport_enabled

__all__ = ["WebSocketTransport"]

log = logging.getLogger(__name__)

#: The RFC 6455 opcode of a text frame: every 0.6 payload is text.
TEXT_FRAME = 0x1

#: RFC 6455 close codes used when the client breaks the protocol.
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009

#: The most UTF-8 bytes a close frame's reason can hold (125 minus the 2-byte code).
MAX_CLOSE_REASON: Final = 123


def close_reason(reason: str) -> str:
    """``reason`` cut to what a close frame can carry, never inside a UTF-8 sequence."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON].decode("utf-8", errors="ignore")


#: The last payload framed and its frame: a broadcast pushes one str object to every receiver.
_last_frame: tuple[str, bytes] | None = None


def _wire_frame(payload: str) -> bytes:
    """An unmasked, final RFC 6455 text frame carrying ``payload`` (built once per payload object)."""
    global _last_frame
    last = _last_frame
    if last is not None and last[0] is payload:
        return last[1]
    data = payload.encode("utf-8")
    length = len(data)
    if length < 126:
        header = bytes((0x80 | TEXT_FRAME, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | TEXT_FRAME, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | TEXT_FRAME, 127, length)
    frame = header + data
    _last_frame = (payload, frame)
    return frame


def _consume_write_error(future: asyncio.Future[Any]) -> None:
    # A write that fails because the client vanished is reported through on_close.
    if not future.cancelled():
        future.exception()


class WebSocketTransport(tornado.websocket.WebSocketHandler):
    protocol: ClassVar[str] = "websocket"
    kind: ClassVar[TransportKind] = TransportKind.SOCKET

    connection: Connection | None = None

    def initialize(self, handler_class: HandlerFactory, extra_re: str | None) -> None:
        self.handler_class = handler_class
        self.extra_re = extra_re
        self.registry = registry_for(self.application)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not transport_enabled(self.registry, self.protocol):
            log.warning("403 %s: %s is not in enabled_protocols", self.request.uri, self.protocol)
            self.set_status(403)
            self.finish(f"{self.protocol} is not enabled")
            return
        await super().get(*args, **kwargs)

    @property
    def max_message_size(self) -> int:
        """Larger messages close the connection (Tornado answers with close code 1009)."""
        return self.registry.settings.max_message_size

    def check_origin(self, origin: str) -> bool:
        """The ``socket_io_origins`` policy (default: the server's own origin only)."""
        if self.registry.settings.origins.allows(Origin.parse(origin), server_origin(self.request)):
            return True
        log.warning(
            "403 %s upgrade from origin %r: not in socket_io_origins (add it there to allow its pages)",
            self.protocol,
            origin,
        )
        return False

    def open(self, *args: Any, **kwargs: Any) -> None:
        # Messages are small and already coalesced while a write is pending; Nagle's
        # algorithm would only add a delayed-ACK wait to each echo.
        self.set_nodelay(True)
        open_connection(self, kwargs)

    def on_message(self, message: str | bytes) -> asyncio.Future[None] | None:
        """Feed one payload; while the handler lags behind, Tornado reads no further (backpressure)."""
        connection = self.connection
        if connection is None:
            return None
        if isinstance(message, bytes):
            log.warning("closing %s: binary WebSocket message (0.6 payloads are text)", connection.short_id)
            self.close(UNSUPPORTED_DATA, "binary messages are not Socket.IO 0.6 payloads")
            return None
        try:
            connection.feed(message)
        except TooManyFrames as exc:
            log.warning("closing %s: %s; socket_io_max_frames sets the limit", connection.short_id, exc)
            self.close(MESSAGE_TOO_BIG, "too many frames in one message")
            return None
        except ProtocolError as exc:
            log.warning("closing %s: malformed payload: %s", connection.short_id, exc)
            self.close(INVALID_PAYLOAD, "malformed Socket.IO frame")
            return None
        return connection.until_readable()

    def on_close(self) -> None:
        if self.connection is not None:
            self.connection.transport_lost(self)

    # -- Transport -------------------------------------------------------------------------

    def push_payload(self, payload: str) -> asyncio.Future[None] | None:
        protocol = self.ws_connection
        if protocol is None or protocol.is_closing():
            return None  # on_close follows and ends the connection
        stream = getattr(protocol, "stream", None)
        if stream is not None and getattr(protocol, "_compressor", True) is None:
            # Tornado's write_message wraps every frame in an asyncio Task; writing the
            # uncompressed text frame to the stream saves most of the per-message cost,
            # and a broadcast builds its frame once for every receiver (bench/README.md).
            # A compressing protocol goes the public way.
            try:
                written: asyncio.Future[None] = stream.write(_wire_frame(payload))
            except tornado.iostream.StreamClosedError:
                return None  # on_close follows
            return written
        try:
            future = self.write_message(payload)
        except tornado.websocket.WebSocketClosedError:
            return None  # on_close follows and ends the connection
        future.add_done_callback(_consume_write_error)
        return future

    def terminate(self, reason: str) -> None:
        self.close(1000, close_reason(reason))

    def abort(self) -> None:
        protocol = self.ws_connection
        stream = getattr(protocol, "stream", None)
        if stream is not None:
            stream.close()  # on_close follows; the unwritten frames go with the stream
        else:
            self.close()
