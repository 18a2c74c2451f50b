"""The Engine.IO v4 endpoint: today's socket.io-client under the same mount as the 0.6 URLs.

``socket.io-client`` 3.x/4.x requests ``/<resource>[<extraSep><extra>]/?EIO=4&transport=...``
(its default ``path`` is ``/socket.io/``, so ``routes("socket.io")`` serves
it unchanged).  Each request lands on one of:

* :class:`EnginePolling`: ``transport=polling``; a ``GET`` without ``sid`` is
  the handshake, answered with the OPEN packet; with ``sid`` a long poll;
  a ``POST`` carries packets.  Bodies are Engine.IO payloads (packets joined
  by ``\\x1e``, binary as ``b`` plus base64).  It is the 0.6
  :class:`~tornad_io.transports.polling.PollingTransport` with another body
  format: the same limits, deadlines and upload claim.
* :class:`EngineWebSocket`: ``transport=websocket``; without ``sid`` a session
  of its own, with one the upgrade of a polling session (the probe is
  handled in :mod:`tornad_io.transports.messages`).  It is the 0.6
  :class:`~tornad_io.transports.websocket.WebSocketTransport` writing one
  WebSocket message per packet, on either reader.
* :class:`EngineRefusal`: any other ``EIO`` request (another protocol
  version, an unknown transport), answered 400 with the error the client
  understands.

v5 follows the same switches as 0.6: ``socket_io_v5`` for all of it,
``enabled_protocols`` ``websocket`` and ``xhr-polling`` for its two transports.
Errors are answered as node's server does: a status and a JSON body
``{"code": <n>, "message": "..."}``.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import logging
from typing import Any, ClassVar

import simplejson
import tornado.httputil
import tornado.web

from tornad_io import engineio, rfc6455
from tornad_io.codec import ProtocolError
from tornad_io.connection import Connection
from tornad_io.dialects import SOCKET_IO_06, Frame
from tornad_io.registry import registry_for
from tornad_io.transports.base import TransportHandler, open_engine_connection, transport_enabled
from tornad_io.transports.http import Refusal, log_refusal
from tornad_io.transports.polling import PLAIN_TEXT, PollingTransport
from tornad_io.transports.websocket import WebSocketTransport

__all__ = ["EngineError", "EnginePolling", "EngineRefusal", "EngineWebSocket", "engine_refusal"]

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"


class EngineError(enum.IntEnum):
    """The error codes of an Engine.IO HTTP error body."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


_MESSAGES: dict[EngineError, str] = {
    EngineError.UNKNOWN_TRANSPORT: "Transport unknown",
    EngineError.UNKNOWN_SID: "Session ID unknown",
    EngineError.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    EngineError.BAD_REQUEST: "Bad request",
    EngineError.FORBIDDEN: "Forbidden",
    EngineError.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


def error_body(code: EngineError) -> bytes:
    text: str = simplejson.dumps({"code": int(code), "message": _MESSAGES[code]})
    return text.encode("ascii")


def _code_of(refusal: Refusal) -> EngineError:
    if refusal.status == 404:
        return EngineError.UNKNOWN_SID
    if refusal.status == 403:
        return EngineError.FORBIDDEN
    return EngineError.BAD_REQUEST


def _as_engine_error(refusal: Refusal) -> tuple[Refusal, EngineError]:
    """``refusal`` as Engine.IO answers it, and its error code.

    An unknown session is a 400 there (0.6 says 404): the refusal is
    rewritten before it is logged, so the log line names the status sent.
    """
    code = _code_of(refusal)
    if code is EngineError.UNKNOWN_SID:
        refusal = dataclasses.replace(refusal, status=400)
    return refusal, code


def engine_refusal(enabled: bool) -> Refusal | None:
    """Why an ``EIO`` request is refused before its transport looks at it (``None``: it is not)."""
    if not enabled:
        return Refusal(403, "Socket.IO v5 is not enabled", " (socket_io_v5 is False)")
    return None


def query_value(request: tornado.httputil.HTTPServerRequest, name: str) -> str | None:
    values = request.query_arguments.get(name)
    if not values:
        return None
    return values[-1].decode("latin-1")


def _polling_upgrades(settings_protocols: frozenset[str]) -> list[str]:
    return ["websocket"] if "websocket" in settings_protocols else []


class EnginePolling(PollingTransport):
    """Engine.IO long-polling (``transport=polling``)."""

    protocol: ClassVar[str] = "polling"
    enabled_as: ClassVar[str] = "xhr-polling"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_id = query_value(self.request, "sid") or ""  # the query, not the path, names the session

    def check_head(self) -> Refusal | None:
        refusal = engine_refusal(self.registry.settings.v5)
        if refusal is None and self.method == "POST" and not self.session_id:
            refusal = Refusal(400, "A POST needs a session id", " (the handshake is a GET)")
        return refusal

    def open_session(self, path_kwargs: dict[str, str | None]) -> None:
        path_kwargs = {name: value for name, value in path_kwargs.items() if name not in ("protocol", "session_id")}
        open_engine_connection(self, path_kwargs, _polling_upgrades(self.registry.settings.enabled_protocols))

    def receive_upload(self, connection: Connection, body: bytes) -> Refusal | None:
        if connection.dialect is SOCKET_IO_06:
            return Refusal(400, "The session belongs to another transport", " (a Socket.IO 0.6 session)")
        try:
            text = body.decode("utf-8")
            packets = engineio.decode_payload(text, self.registry.settings.max_frames)
        except (UnicodeDecodeError, engineio.EngineIOError) as exc:
            connection.close("bad payload")
            return Refusal(400, "Malformed Engine.IO payload", f" ({exc})")
        try:
            connection.feed_engine(packets, len(text))
        except ProtocolError as exc:
            connection.close("bad packet")
            return Refusal(400, "Invalid Socket.IO packet", f" ({exc.reason})")
        return None

    def render(self, frames: list[Frame]) -> bytes:
        if not frames:
            return b"6"  # NOOP: an Engine.IO poll is never answered empty
        records = [
            frame if isinstance(frame, str) else engineio.BINARY_PREFIX + base64.b64encode(frame).decode("ascii")
            for frame in frames
        ]
        return engineio.SEPARATOR.join(records).encode("utf-8")

    def terminate(self, reason: str) -> None:
        if not self.answered:
            self.answer(200, PLAIN_TEXT, b"1")  # CLOSE: the client's engine closes (and reconnects)

    def refuse(self, refusal: Refusal) -> None:
        """Log why, then answer with the refusal's status and Engine.IO's JSON error.

        A poll for a session the server closed since the last poll gets its
        DISCONNECT instead, so that the client does not reconnect.
        """
        if refusal.status == 404 and self.method == "GET" and self.session_id:
            farewell = self.registry.take_farewell(self.session_id)
            if farewell is not None:
                self.answer(200, PLAIN_TEXT, self.render([*farewell, "1"]))
                return
        refusal, code = _as_engine_error(refusal)
        log_refusal(self.method, self.path, refusal)
        self._cors = ()
        self.answer(refusal.status, JSON_TYPE, error_body(code), reason=refusal.reason)


class EngineWebSocket(WebSocketTransport):
    """The Engine.IO websocket (``transport=websocket``): a session of its own, or an upgrade."""

    protocol: ClassVar[str] = "websocket"

    async def get(self, *args: Any, **kwargs: Any) -> None:
        refusal = engine_refusal(self.registry.settings.v5)
        sid = query_value(self.request, "sid")
        if refusal is None and not transport_enabled(self.registry, self.protocol):
            refusal = Refusal(403, "websocket is not enabled")  # as a disabled polling: the same JSON error
        elif refusal is None and self.request.headers.get("Upgrade", "").lower() != "websocket":
            # Tornado would answer a plain-text 400; an Engine.IO client reads the JSON error.
            refusal = Refusal(400, "Bad request", " (transport=websocket without 'Upgrade: websocket')")
        elif refusal is None and sid is not None:
            found = self.registry.get(sid)
            if found is None or found.dialect is SOCKET_IO_06:
                refusal = Refusal(404, "Unknown or expired session")
            elif found.protocol != "polling":
                refusal = Refusal(400, "The session is not polling", f" (it is on {found.protocol})")
        if refusal is not None:
            refusal, code = _as_engine_error(refusal)
            log_refusal(self.request.method, self.request.path, refusal)
            self.set_status(refusal.status)
            self.set_header("Content-Type", JSON_TYPE)
            self.finish(error_body(code))
            return
        await super().get(*args, **kwargs)

    @staticmethod
    def open_session(transport: TransportHandler, path_kwargs: dict[str, Any]) -> None:
        sid = query_value(transport.request, "sid")
        if sid is None:
            open_engine_connection(transport, path_kwargs, [])
            return
        found = transport.registry.get(sid)
        if found is None or found.protocol != "polling":
            # Gone (or upgraded by another probe) since the handshake was checked.
            transport.terminate("session gone")
            return
        transport.connection = found  # probing: the session switches over on UPGRADE
        found.join_probe(transport)

    @staticmethod
    def wire_bytes(frames: list[Frame]) -> bytes:
        """One WebSocket message per packet: text, or binary for an attachment."""
        if len(frames) == 1 and type(frames[0]) is str:
            return rfc6455.text_frame(frames[0])  # nearly every write: one event
        return b"".join(
            rfc6455.text_frame(frame) if isinstance(frame, str) else rfc6455.binary_frame(frame) for frame in frames
        )

    def write_messages(self, frames: list[Frame]) -> Any:
        future = None
        for frame in frames:
            future = self.write_message(frame, binary=isinstance(frame, bytes))
        assert future is not None
        return future


class EngineRefusal(tornado.web.RequestHandler):
    """Every other ``EIO`` request: a protocol version or a transport this server does not speak."""

    def initialize(self, handler_class: Any, extra_re: str | None) -> None:
        del handler_class, extra_re

    def _refuse(self) -> None:
        registry = registry_for(self.application)
        version = query_value(self.request, "EIO")
        transport = query_value(self.request, "transport")
        if not registry.settings.v5:
            refusal, code = engine_refusal(False), EngineError.FORBIDDEN
        elif version != str(engineio.PROTOCOL):
            refusal = Refusal(
                400,
                "Unsupported protocol version",
                f" (EIO={version}; served: EIO=4, i.e. socket.io-client 3.x and 4.x, and the Socket.IO 0.6 URLs)",
            )
            code = EngineError.UNSUPPORTED_PROTOCOL_VERSION
        elif transport in ("polling", "websocket"):
            refusal = Refusal(400, "Bad handshake method", f" ({self.request.method} for {transport})")
            code = EngineError.BAD_HANDSHAKE_METHOD
        else:
            refusal = Refusal(400, "Transport unknown", f" (transport={transport}; polling and websocket are served)")
            code = EngineError.UNKNOWN_TRANSPORT
        assert refusal is not None
        log_refusal(self.request.method, self.request.path, refusal)
        self.set_status(refusal.status if code is EngineError.FORBIDDEN else 400)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(error_body(code))

    def get(self, *args: Any, **kwargs: Any) -> None:
        self._refuse()

    def post(self, *args: Any, **kwargs: Any) -> None:
        self._refuse()

    def check_xsrf_cookie(self) -> None:
        """socket.io-client sends no XSRF token."""
