"""The ``flashsocket`` transport: the websocket transport, plus the Flash movie's draft-76 wire.

The 0.6 client's flashsocket transport is its websocket transport running on
web-socket-js, a ``WebSocket`` facade over ``WebSocketMain.swf``.  Two kinds of
client therefore open ``ws://host:port/<resource>/flashsocket``:

* a browser with a native WebSocket whose page selected flashsocket: it speaks
  RFC 6455 and is served exactly like the websocket transport;
* the Flash movie, which speaks only draft-76 (hixie-76).  Its request carries
  ``Sec-WebSocket-Key1`` and ``Sec-WebSocket-Key2``, which Tornado's handler
  would answer with 426, so :class:`FlashSocketTransport` takes the stream
  over and speaks the draft itself (protocol-0.6.md §4.1-4.2, pitfall 24).

Draft-76 in short: after the request headers the client sends 8 raw bytes
("key3"), possibly only once it has seen the 101 (HAProxy holds them back), so
the 101 is written at once and the 16-byte digest of both keys and key3 when
key3 has arrived.  Then each message travels as ``0x00 <UTF-8 text> 0xFF``
(here: one 0.6 payload per message), and ``0xFF 0x00`` closes.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import struct
from typing import Any, ClassVar, Final

import tornado.gen
import tornado.http1connection
import tornado.iostream

from tornad_io.codec import ProtocolError
from tornad_io.connection import Connection, TransportKind
from tornad_io.dialects import Frame
from tornad_io.transports.base import joined, open_connection, transport_enabled
from tornad_io.transports.websocket import WebSocketTransport

__all__ = ["Draft76Socket", "FlashSocketTransport", "draft76_answer"]

log = logging.getLogger(__name__)

#: The draft-76 closing handshake, sent by either side.
CLOSING_FRAME: Final = b"\xff\x00"

#: Seconds a closing frame may take to drain before the TCP connection is cut anyway.
CLOSE_GRACE: Final = 5.0


def _key_number(key: str) -> int:
    """The number a draft-76 ``Sec-WebSocket-Key1/2`` value encodes.

    Its digits, read as one decimal number, divided by its count of spaces;
    the division must be exact and the result fit in 32 bits.
    """
    digits = "".join(char for char in key if char in "0123456789")
    spaces = key.count(" ")
    if not digits or len(digits) > 20 or spaces == 0:
        raise ValueError(f"not a draft-76 key (needs digits and spaces): {key!r}")
    number, remainder = divmod(int(digits), spaces)
    if remainder or number >= 1 << 32:
        raise ValueError(f"not a draft-76 key (digits / spaces is not a 32-bit integer): {key!r}")
    return number


def draft76_answer(key1: str, key2: str, key3: bytes) -> bytes:
    """The 16 bytes a draft-76 server sends after its 101: MD5 of both key numbers and key3.

    Raises :class:`ValueError` for a malformed key or a key3 that is not 8 bytes.
    """
    if len(key3) != 8:
        raise ValueError(f"key3 must be 8 bytes, not {len(key3)}")
    challenge = struct.pack(">II", _key_number(key1), _key_number(key2)) + key3
    return hashlib.md5(challenge, usedforsecurity=False).digest()


class FlashSocketTransport(WebSocketTransport):
    """RFC 6455 like the websocket transport, or draft-76 when the request carries both keys."""

    protocol: ClassVar[str] = "flashsocket"

    #: Seconds a draft-76 client has to send key3 once it has its 101.
    key3_timeout: ClassVar[float] = 10.0

    async def get(self, *args: Any, **kwargs: Any) -> None:
        headers = self.request.headers
        if "Sec-WebSocket-Key1" not in headers or "Sec-WebSocket-Key2" not in headers:
            await super().get(*args, **kwargs)
            return
        refusal = self._draft76_refusal()
        if refusal is not None:
            await self._refuse(*refusal)
            return
        response = self._draft76_response()
        stream = self.detach()  # Tornado forgets the request; on_close will not run for it
        wire = Draft76Socket(self, stream)
        try:
            stream.write(response)
        except tornado.iostream.StreamClosedError:
            return
        await wire.serve(headers["Sec-WebSocket-Key1"], headers["Sec-WebSocket-Key2"], kwargs)

    # -- draft-76 handshake ------------------------------------------------------------------

    def _draft76_refusal(self) -> tuple[int, str] | None:
        """``(status, reason)`` if this draft-76 upgrade must be refused, else ``None``."""
        headers = self.request.headers
        if not transport_enabled(self.registry, self.protocol):
            return 403, f"{self.protocol} is not enabled"
        if headers.get("Upgrade", "").strip().lower() != "websocket":
            return 400, 'Upgrade must be "WebSocket"'
        if "upgrade" not in (token.strip().lower() for token in headers.get("Connection", "").split(",")):
            return 400, 'Connection must be "Upgrade"'
        if "Host" not in headers or "Origin" not in headers:
            return 400, "a draft-76 handshake needs Host and Origin"
        if not self.check_origin(headers["Origin"]):
            return 403, f"origin {headers['Origin']!r} is not in socket_io_origins"
        try:
            draft76_answer(headers["Sec-WebSocket-Key1"], headers["Sec-WebSocket-Key2"], bytes(8))
        except ValueError as exc:
            return 400, str(exc)
        return None

    def _draft76_response(self) -> bytes:
        headers = self.request.headers
        scheme = "wss" if self.request.protocol == "https" else "ws"
        lines = [
            "HTTP/1.1 101 WebSocket Protocol Handshake",
            "Upgrade: WebSocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Origin: {headers['Origin']}",
            f"Sec-WebSocket-Location: {scheme}://{headers['Host']}{self.request.uri}",
        ]
        if "Sec-WebSocket-Protocol" in headers:
            lines.append(f"Sec-WebSocket-Protocol: {headers['Sec-WebSocket-Protocol']}")
        # Tornado decoded the request as Latin-1, so encoding back gives the bytes received.
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with ``reason`` as the body, then close: the client must not wait."""
        log.warning("%d %s (draft-76 flashsocket): %s", status, self.request.uri, reason)
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Connection", "close")
        try:
            await self.finish(reason)
        except tornado.iostream.StreamClosedError:
            pass
        connection = self.request.connection
        if isinstance(connection, tornado.http1connection.HTTP1Connection):
            connection.close()


class Draft76Socket:
    """One draft-76 connection after its 101: the :class:`~tornad_io.connection.Transport` of a session."""

    protocol: ClassVar[str] = FlashSocketTransport.protocol
    kind: ClassVar[TransportKind] = TransportKind.SOCKET

    def __init__(self, handler: FlashSocketTransport, stream: tornado.iostream.IOStream) -> None:
        # What open_connection reads from a TransportHandler.
        self.handler_class = handler.handler_class
        self.extra_re = handler.extra_re
        self.registry = handler.registry
        self.application = handler.application
        self.request = handler.request
        self.connection: Connection | None = None
        self.stream = stream
        self.key3_timeout = handler.key3_timeout
        self.max_bytes = handler.max_message_size
        self._hang_up_task: asyncio.Future[None] | None = None

    async def serve(self, key1: str, key2: str, open_kwargs: dict[str, Any]) -> None:
        """Finish the handshake, open the session and read the client's frames until the end."""
        stream = self.stream
        try:
            key3 = await tornado.gen.with_timeout(
                datetime.timedelta(seconds=self.key3_timeout),
                stream.read_bytes(8),
                quiet_exceptions=tornado.iostream.StreamClosedError,
            )
            stream.write(draft76_answer(key1, key2, key3))
        except TimeoutError:
            log.warning("closing draft-76 flashsocket from %s: no key3 after the 101", self.request.remote_ip)
            stream.close()
            return
        except tornado.iostream.StreamClosedError:
            return
        stream.set_nodelay(True)  # as for the websocket transport
        connection = open_connection(self, open_kwargs)
        await self._read_frames(connection)
        connection.transport_lost(self)
        await self._hang_up()

    async def _read_frames(self, connection: Connection) -> None:
        """Feed the client's messages to ``connection`` until it closes, breaks the framing or the stream ends."""
        stream = self.stream
        try:
            while True:
                frame_type = await stream.read_bytes(1)
                if frame_type == b"\x00":
                    data = await stream.read_until(b"\xff", max_bytes=self.max_bytes + 1)
                    if not self._deliver(connection, data[:-1]):
                        return
                    readable = connection.until_readable()
                    if readable is not None:
                        await readable  # the handler lags behind: read nothing more until it catches up
                elif frame_type == b"\xff" and await stream.read_bytes(1) == b"\x00":
                    return  # the client's closing handshake
                else:
                    log.warning("closing %s: unsupported draft-76 frame", connection.short_id)
                    return
        except tornado.iostream.StreamClosedError:
            if isinstance(stream.error, tornado.iostream.UnsatisfiableReadError):
                log.warning("closing %s: a message is larger than %d bytes", connection.short_id, self.max_bytes)

    def _deliver(self, connection: Connection, data: bytes) -> bool:
        try:
            connection.feed(data.decode("utf-8"))
        except UnicodeDecodeError:
            log.warning("closing %s: a message is not valid UTF-8", connection.short_id)
            return False
        except ProtocolError as exc:
            log.warning("closing %s: malformed payload: %s", connection.short_id, exc)
            return False
        return True

    def _hang_up(self) -> asyncio.Future[None]:
        """Send the closing frame, let it drain (a few seconds at most), then close; once."""
        if self._hang_up_task is None:
            self._hang_up_task = asyncio.ensure_future(self._send_closing_frame())
        return self._hang_up_task

    async def _send_closing_frame(self) -> None:
        stream = self.stream
        try:
            await tornado.gen.with_timeout(
                datetime.timedelta(seconds=CLOSE_GRACE),
                stream.write(CLOSING_FRAME),
                quiet_exceptions=tornado.iostream.StreamClosedError,
            )
        except (TimeoutError, tornado.iostream.StreamClosedError):
            pass
        stream.close()

    # -- Transport -------------------------------------------------------------------------

    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
        if self._hang_up_task is not None or self.stream.closed():
            return None  # the read loop reports the loss
        try:
            return self.stream.write(b"\x00" + joined(frames).encode("utf-8") + b"\xff")
        except tornado.iostream.StreamClosedError:
            return None

    def terminate(self, reason: str) -> None:
        self._hang_up()

    def abort(self) -> None:
        self.stream.close()
