"""What a WebSocket message means to its connection: one set of rules for both readers.

A websocket is read either by Tornado's own frame reader (TLS, or
``socket_io_websocket_takeover`` off) or by tornad_io's
(:mod:`tornad_io.transports.takeover`).  Both hand every complete message to
:func:`deliver`, so a malformed payload or too many frames end the
connection with the same close code and log line whichever path read it.

A 0.6 message is one payload of ``~m~`` frames (text only).  An Engine.IO
message is one packet; while the session is still polling, the websocket is
only probing: it answers ``2probe`` with ``3probe`` and switches the session
over on ``5`` (UPGRADE), and nothing else it carries counts.
"""

from __future__ import annotations

import logging

from tornad_io import engineio
from tornad_io.codec import ProtocolError, TooManyFrames
from tornad_io.connection import Connection, Transport
from tornad_io.dialects import SOCKET_IO_06
from tornad_io.rfc6455 import CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG, CLOSE_UNSUPPORTED_DATA

__all__ = ["deliver"]

log = logging.getLogger(__name__)

_PROBE_ANSWER = engineio.encode_packet(engineio.PONG_PROBE)


def deliver(transport: Transport, connection: Connection, message: str | bytes) -> tuple[int, str] | None:
    """Feed one WebSocket message that ``transport`` read to ``connection``.

    Returns ``None``, or the close code and reason to end the websocket with
    when the message breaks the protocol (nothing of it is delivered then).
    """
    if connection.dialect is not SOCKET_IO_06:
        return _deliver_packet(transport, connection, message)
    if isinstance(message, bytes):
        log.warning("closing %s: binary WebSocket message (0.6 payloads are text)", connection.short_id)
        return CLOSE_UNSUPPORTED_DATA, "binary messages are not Socket.IO 0.6 payloads"
    try:
        connection.feed(message)
    except TooManyFrames as exc:
        log.warning("closing %s: %s; socket_io_max_frames sets the limit", connection.short_id, exc)
        return CLOSE_MESSAGE_TOO_BIG, "too many frames in one message"
    except ProtocolError as exc:
        log.warning("closing %s: malformed payload: %s", connection.short_id, exc)
        return CLOSE_INVALID_PAYLOAD, "malformed Socket.IO frame"
    return None


def _deliver_packet(transport: Transport, connection: Connection, message: str | bytes) -> tuple[int, str] | None:
    try:
        packet = engineio.decode_packet(message)
    except engineio.EngineIOError as exc:
        log.warning("closing %s: malformed Engine.IO packet: %s", connection.short_id, exc)
        return CLOSE_INVALID_PAYLOAD, "malformed Engine.IO packet"
    if connection.protocol != transport.protocol:  # still polling: this websocket is a probe
        if packet.is_probe and packet.type is engineio.PacketType.PING:
            assert isinstance(_PROBE_ANSWER, str)
            transport.push_frames([_PROBE_ANSWER])
            connection.release_poll(transport)
        elif packet.type is engineio.PacketType.UPGRADE:
            connection.upgrade(transport)
        else:
            log.debug("%s: %s on a probing websocket ignored", connection.short_id, packet.type.name)
        return None
    try:
        connection.feed_engine([packet], len(message))
    except ProtocolError as exc:
        log.warning("closing %s: invalid Socket.IO packet: %s", connection.short_id, exc.reason)
        return CLOSE_INVALID_PAYLOAD, "invalid Socket.IO packet"
    return None
