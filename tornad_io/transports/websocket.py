"""The ``websocket`` transport: Tornado's RFC 6455 handler carrying 0.6 payloads.

Each WebSocket text message is one payload (``~m~`` frames).  The client
opens ``ws://host:port/<resource>/websocket`` with no session id: every
upgrade is a handshake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, ClassVar

import tornado.iostream
import tornado.websocket

from tornad_io import rfc6455
from tornad_io.connection import Connection, HandlerFactory, TransportKind
from tornad_io.dialects import Frame
from tornad_io.origins import Origin
from tornad_io.registry import registry_for
from tornad_io.transports.base import TransportHandler, joined, open_connection, server_origin, transport_enabled
from tornad_io.transports.messages import deliver
from tornad_io.transports.takeover import adoptable_stream, take_over

__all__ = ["WebSocketTransport"]

log = logging.getLogger(__name__)

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

    def open(self, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        """Open the session: on a plain TCP socket, after handing it to tornad_io's own reader."""
        stream = adoptable_stream(self)
        if stream is not None:
            return take_over(self, stream, kwargs)
        # Messages are small and already coalesced while a write is pending; Nagle's
        # algorithm would only add a delayed-ACK wait to each echo.
        self.set_nodelay(True)
        self.open_session(self, kwargs)
        return None

    # What differs between the 0.6 websocket and Engine.IO's, for both readers (static: the
    # reader that takes the socket over keeps the functions, not this handler).

    @staticmethod
    def open_session(transport: TransportHandler, path_kwargs: dict[str, Any]) -> None:
        """Open (or, for an Engine.IO upgrade, join) the session this websocket carries."""
        open_connection(transport, path_kwargs)

    @staticmethod
    def wire_bytes(frames: list[Frame]) -> bytes:
        """The WebSocket frames that carry ``frames``: one text message holding the 0.6 payload."""
        return rfc6455.text_frame(joined(frames))

    def on_message(self, message: str | bytes) -> asyncio.Future[None] | None:
        """Feed one payload; while the handler lags behind, Tornado reads no further (backpressure)."""
        connection = self.connection
        if connection is None:
            return None
        refusal = deliver(self, connection, message)
        if refusal is not None:
            self.close(*refusal)
            return None
        return connection.until_readable()

    def on_close(self) -> None:
        if self.connection is not None:
            self.connection.transport_lost(self)

    # -- Transport -------------------------------------------------------------------------

    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
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
                written: asyncio.Future[None] = stream.write(self.wire_bytes(frames))
            except tornado.iostream.StreamClosedError:
                return None  # on_close follows
            return written
        try:
            future = self.write_messages(frames)
        except tornado.websocket.WebSocketClosedError:
            return None  # on_close follows and ends the connection
        future.add_done_callback(_consume_write_error)
        return future

    def write_messages(self, frames: list[Frame]) -> asyncio.Future[None]:
        """``frames`` through Tornado's ``write_message`` (a compressing websocket)."""
        return self.write_message(joined(frames))

    def terminate(self, reason: str) -> None:
        self.close(1000, rfc6455.close_reason(reason))

    def abort(self) -> None:
        protocol = self.ws_connection
        stream = getattr(protocol, "stream", None)
        if stream is not None:
            stream.close()  # on_close follows; the unwritten frames go with the stream
        else:
            self.close()
