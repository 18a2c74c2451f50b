"""What the HTTP transports share: headers, session lookup and the send POST.

Every HTTP transport receives client messages the same way: a POST of a
form-encoded ``data`` field holding one payload, answered ``200 text/plain ok``
(the 0.6 client treats any other status as a disconnect).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import urllib.parse
import weakref
from typing import Any, ClassVar, NoReturn

import tornado.http1connection
import tornado.iostream
import tornado.web

from tornad_io.codec import Message, ProtocolError, TooManyFrames, decode_payload
from tornad_io.connection import Connection, HandlerFactory, TransportKind
from tornad_io.registry import registry_for
from tornad_io.transports.base import open_connection, server_origin, transport_enabled

__all__ = ["HTTPTransport", "form_data"]

log = logging.getLogger(__name__)


def form_data(body: bytes) -> str:
    """The ``data`` field of a form-encoded body (``+`` is a space; UTF-8).

    Raises ``ValueError`` when the body has no ``data`` field or is not UTF-8.
    """
    fields = urllib.parse.parse_qs(
        body.decode("ascii"), keep_blank_values=True, strict_parsing=False, encoding="utf-8", errors="strict"
    )
    values = fields.get("data")
    if not values:
        raise ValueError("the body has no 'data' field")
    return values[0]


@tornado.web.stream_request_body
class HTTPTransport(tornado.web.RequestHandler):
    """Base of the polling and streaming transports.

    Bodies are streamed in (``stream_request_body``) so that one over
    ``socket_io_max_message_size`` is refused with 413 from its
    ``Content-Length``, or as soon as it grows past the limit, instead of
    being buffered whole first.
    """

    protocol: ClassVar[str]
    kind: ClassVar[TransportKind]

    connection: Connection | None = None
    #: The session this POST sends to, claimed in ``prepare`` until the request ends.
    connection_for_upload: Connection | None = None
    _released: asyncio.Future[None] | None = None
    _body_deadline: asyncio.TimerHandle | None = None

    def initialize(self, handler_class: HandlerFactory, extra_re: str | None) -> None:
        self.handler_class = handler_class
        self.extra_re = extra_re
        self.registry = registry_for(self.application)

    def prepare(self) -> None:
        # Polls and streams are written as they are: a gzip transform would
        # buffer a stream and is pointless on a poll of a few frames.
        self._transforms = []
        if not transport_enabled(self.registry, self.protocol):
            self.refuse(403, f"{self.protocol} is not enabled")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        headers = self.request.headers
        if "Origin" in headers or "Referer" in headers or "Sec-Fetch-Site" in headers:
            refusal = self.registry.settings.origins.refusal(headers, server_origin(self.request))
            if refusal is not None:
                self.refuse(403, "Origin not allowed", f" ({refusal})")
        if "Origin" in headers:
            self.allow_origin(headers["Origin"])
        self._body = bytearray()
        length = headers.get("Content-Length", "0")
        if not length.isdigit():
            self.refuse(400, "Bad Content-Length")
        if int(length) > self.registry.settings.max_message_size:
            self.refuse(413, "Payload too large", f" (Content-Length {length})")
        if self.request.method == "POST":
            self._claim_upload()
        if int(length) > 0 or "Transfer-Encoding" in headers:
            self._start_body_deadline()

    def _claim_upload(self) -> None:
        """Refuse a POST before its body is read unless it is the session's only one in progress.

        An unknown session is a 404 at once, so a body is buffered only for a
        live session; and the 0.6 client waits for the answer to one POST
        before it sends the next, so a second concurrent one (429) can only
        come from a client trying to queue more than the server would take.
        """
        session_id = self.path_kwargs.get("session_id") or ""
        if not session_id:
            self.refuse(400, "A send needs a session id")
        connection = self.find_connection(session_id)
        if connection.upload is not None:
            self.refuse(
                429,
                "Another send of this session is in progress",
                " (a client sends the next payload only once the last one was answered; "
                "the answer waits while socket_io_max_pending_messages messages are undelivered)",
            )
        connection.upload = self
        self.connection_for_upload = connection

    def _release_upload(self) -> None:
        connection = self.connection_for_upload
        if connection is not None:
            self.connection_for_upload = None
            if connection.upload is self:
                connection.upload = None

    def _start_body_deadline(self) -> None:
        """Answer 408 unless the body has fully arrived within ``socket_io_body_timeout`` seconds.

        tornad_io's own timer, so the deadline holds however the server was
        started.  It is cancelled when the body is complete (Tornado resolves
        the request's body future) and when the request ends in any way
        (``on_finish``, ``on_connection_close``); it holds the handler only
        weakly, so a forgotten timer cannot keep a request alive either.
        """
        body = self.request._body_future  # what RequestHandler._execute awaits before post()
        if body.done():
            return
        ref = weakref.ref(self)
        self._body_deadline = asyncio.get_running_loop().call_later(
            self.registry.settings.body_timeout, HTTPTransport._body_deadline_passed, ref
        )
        body.add_done_callback(lambda _: HTTPTransport._body_deadline_passed(ref, expired=False))

    @staticmethod
    def _body_deadline_passed(ref: weakref.ReferenceType[HTTPTransport], expired: bool = True) -> None:
        handler = ref()
        if handler is None:
            return
        handler._cancel_body_deadline()
        if expired:
            handler._body_timed_out()

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_timed_out(self) -> None:
        """Answer 408; Tornado then closes the connection once the answer is written.

        (``HTTP1Connection.finish`` disconnects when a response ends before
        its request body was read; the body read then fails and
        ``on_connection_close`` lets ``_execute`` return.)
        """
        if self._finished or self.request._body_future.done():
            return
        self._body.clear()
        log.warning(
            "408 %s %s: Request timeout (the body did not arrive within socket_io_body_timeout, %g s)",
            self.request.method,
            self.request.path,
            self.registry.settings.body_timeout,
        )
        self.send_error(408, reason="Request timeout")

    def compute_etag(self) -> None:
        """Transport responses are never cached; an ETag would only cost a hash."""
        return None

    def allow_origin(self, origin: str) -> None:
        """CORS headers for an allowed origin: echoed, never ``*`` together with credentials."""
        self.set_header("Vary", "Origin")
        if origin == "null":  # only reached when every origin is allowed
            self.set_header("Access-Control-Allow-Origin", "*")
        else:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body += chunk
        if len(self._body) > self.registry.settings.max_message_size:
            self._body.clear()
            log.warning("413 %s %s: Payload too large (a chunked body)", self.request.method, self.request.path)
            self.send_error(413, reason="Payload too large")
            connection = self.request.connection
            if isinstance(connection, tornado.http1connection.HTTP1Connection):
                connection.close()  # the rest of the body is never read

    def check_xsrf_cookie(self) -> None:
        """0.6 clients send no XSRF token; an app with ``xsrf_cookies=True`` must still work."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The reason phrase as plain text; never an HTML page or a traceback."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(self._reason)

    def refuse(self, status: int, reason: str, detail: str = "") -> NoReturn:
        """Log why, then answer ``status`` with ``reason`` as the body."""
        log.warning("%d %s %s: %s%s", status, self.request.method, self.request.path, reason, detail)
        raise tornado.web.HTTPError(status, reason=reason)

    def find_connection(self, session_id: str) -> Connection:
        """The session named in the URL, which must be one this transport carries.

        A request naming another transport's session (a poll for a websocket
        session, say) is refused and leaves that session untouched.
        """
        connection = self.registry.get(session_id)
        if connection is None:
            self.refuse(404, "Unknown or expired session")
        if connection.protocol != self.protocol:
            self.refuse(
                400, "The session belongs to another transport", f" ({connection.protocol}, not {self.protocol})"
            )
        return connection

    async def get(self, session_id: str = "", **kwargs: Any) -> None:
        """Carry the session named in the URL (a handshake when it names none) until released.

        The response stays open until the transport has written what it
        carries (a poll: one payload; a stream: until the connection ends) or
        the client goes away.
        """
        if session_id and self.kind is TransportKind.STREAM:
            self.refuse(400, "A stream is opened by a handshake only", f" ({self.protocol} names no session)")
        connection = self.find_connection(session_id) if session_id else None
        self._released = asyncio.get_running_loop().create_future()
        if connection is None:
            open_connection(self, kwargs)
        else:
            self.connection = connection
            connection.attach(self)
        if self.client_already_gone():
            self.on_connection_close()
        await self._released

    def release(self) -> None:
        """Let ``get`` return: the response is complete."""
        if self._released is not None and not self._released.done():
            self._released.set_result(None)

    def on_connection_close(self) -> None:
        """The client went away: before its body had arrived, or while its request was held.

        Tornado's own ``on_connection_close`` fails the streamed body's
        future; without it ``_execute`` would wait for the body forever and
        keep the handler, its request and the partial body alive.
        """
        super().on_connection_close()
        self._cancel_body_deadline()
        self._release_upload()
        body: bytearray | None = getattr(self, "_body", None)
        if body is not None:
            body.clear()
        self.release()
        if self.connection is not None:
            self.connection.transport_lost(self)

    def on_finish(self) -> None:
        self._cancel_body_deadline()
        self._release_upload()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A client that leaves mid-body is routine, not an error with a traceback."""
        if isinstance(value, tornado.iostream.StreamClosedError):
            log.debug("%s %s: the client left before its body was complete", self.request.method, self.request.path)
            return
        super().log_exception(typ, value, tb)

    def client_already_gone(self) -> bool:
        """Whether the client closed its connection before we started holding the response.

        Tornado registers its close callback only once a request has been
        read; a request that arrives together with the client's FIN never
        triggers ``on_connection_close``, so a held response checks once.
        """
        stream = getattr(self.request.connection, "stream", None)
        return stream is not None and bool(stream.closed())

    def write_session_ended(self, reason: str) -> None:
        """The answer to a request whose session ended before anything was written to it.

        403 when ``on_open`` refused or failed (the client never gets an id),
        else 404, which the 0.6.3 client answers by connecting again.
        """
        self.set_status(403 if reason in ("refused", "error") else 404)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"session ended: {reason}")

    @abc.abstractmethod
    def push_payload(self, payload: str) -> asyncio.Future[None] | None:
        """Write one payload to the client (see ``Transport``)."""

    @abc.abstractmethod
    def terminate(self, reason: str) -> None:
        """End the response because the connection closed (see ``Transport``)."""

    def abort(self) -> None:
        """Close the client's TCP connection, dropping whatever is still unwritten."""
        self.release()
        connection = self.request.connection
        if isinstance(connection, tornado.http1connection.HTTP1Connection):
            connection.close()

    async def post(self, session_id: str = "", **kwargs: Any) -> None:
        """A client payload: ``data=<frames>``, answered ``ok`` once the server can take more.

        While the session's handler lags behind (``socket_io_max_pending_messages``),
        the answer waits: the 0.6 client sends nothing new before it has one.
        """
        connection = self.connection_for_upload
        assert connection is not None  # claimed in prepare
        if connection.until_readable() is not None:
            # Only a client that gave up waiting for the answer to its last send gets here.
            self.refuse(429, "Too many messages waiting", " (socket_io_max_pending_messages is reached)")
        try:
            payload = form_data(bytes(self._body))
        except (ValueError, UnicodeDecodeError) as exc:
            self.refuse(400, "The body must be a form-encoded UTF-8 data field", f" ({exc})")
        settings = self.registry.settings
        try:
            messages = self.decode(payload, settings.max_message_size, settings.max_frames)
        except TooManyFrames as exc:
            self.refuse(400, "Too many frames in one payload", f" ({exc}; socket_io_max_frames sets the limit)")
        except ProtocolError as exc:
            self.refuse(400, "Malformed Socket.IO frame", f" ({exc})")
        self._body = bytearray()
        connection.receive(messages, len(payload))
        readable = connection.until_readable()
        if readable is not None:
            await readable
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok")

    def decode(self, payload: str, max_frame: int, max_frames: int) -> list[Message]:
        """Messages of a posted payload (the jsonp form needs a CRLF-aware reading)."""
        return decode_payload(payload, max_frame, max_frames)

    def options(self, *args: Any, **kwargs: Any) -> None:
        """A CORS preflight: say which methods and headers the transport takes."""
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok")
