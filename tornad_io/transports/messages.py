"""What a WebSocket message means to its connection: one set of rules for both readers.

A websocket is read either by Tornado's own frame reader (TLS, or
``socket_io_websocket_takeover`` off) or by tornad_io's
(:mod:`tornad_io.transports.takeover`).  Both hand every complete message to
:func:`deliver`, so a binary message, a malformed payload or too many frames
end the connection with the same close code and log line whichever path read
it.
"""

from __future__ import annotations

import logging

from tornad_io.codec import ProtocolError, TooManyFrames
from tornad_io.connection import Connection
from tornad_io.rfc6455 import CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG, CLOSE_UNSUPPORTED_DATA

__all__ = ["deliver"]

log = logging.getLogger(__name__)


def deliver(connection: Connection, message: str | bytes) -> tuple[int, str] | None:
    """Feed one WebSocket message to ``connection``.

    Returns ``None``, or the close code and reason to end the websocket with
    when the message is not a well-formed 0.6 payload (nothing of it is
    delivered then).
    """
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
