"""What the HTTP transports share: the rules every request is held to, and the send POST.

Every HTTP transport receives client messages the same way: a POST of a
form-encoded ``data`` field holding one payload, answered ``200 text/plain ok``
(the 0.6 client treats any other status as a disconnect).

Two kinds of request object apply these rules: :class:`HTTPTransport`, the
Tornado ``RequestHandler`` of the streaming transports (htmlfile,
xhr-multipart), and the polling transports' lighter ``HTTPMessageDelegate``
(:mod:`tornad_io.transports.polling`).  So each rule is written once, here,
as a plain function that returns a :class:`Refusal` (or ``None`` when the
request may go on); each caller logs it with :func:`log_refusal` and answers
it its own way.  The log lines, and so the setting each one names, are the
same whichever path refused.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import tornado.http1connection
import tornado.httputil
import tornado.iostream
import tornado.web

from tornad_io.codec import Message, ProtocolError, TooManyFrames, decode_payload
from tornad_io.connection import Connection, HandlerFactory, TransportKind
from tornad_io.dialects import Frame
from tornad_io.origins import Origin
from tornad_io.registry import Registry, registry_for
from tornad_io.settings import Settings
from tornad_io.timers import Wait
from tornad_io.transports.base import open_connection, server_origin

__all__ = [
    "NO_STORE",
    "HTTPTransport",
    "Refusal",
    "body_timeout_refusal",
    "chunked_too_large",
    "claim_upload",
    "cors_headers",
    "decode_upload",
    "expects_body",
    "find_connection",
    "form_data",
    "header_names",
    "log_refusal",
    "release_upload",
    "request_refusal",
    "session_ended",
    "upload_backlog_refusal",
]

log = logging.getLogger(__name__)

#: Headers of every transport response: never cached, never sniffed into another type.
#: (No ``Pragma: no-cache``: HTTP/1.1 caches obey ``Cache-Control``, and each header
#: costs every polling answer about 7,000 instructions in ``HTTP1Connection.write_headers``.)
NO_STORE: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is answered with an error: its status, the reason (also the body) and a log detail."""

    status: int
    reason: str
    detail: str = ""


def log_refusal(method: str | None, path: str, refusal: Refusal) -> None:
    """The one WARNING line of a refused request: ``<status> <method> <path>: <reason><detail>``."""
    log.warning("%d %s %s: %s%s", refusal.status, method, path, refusal.reason, refusal.detail)


def form_data(body: bytes) -> str:
    """The ``data`` field of a form-encoded body (``+`` is a space; UTF-8).

    Raises ``ValueError`` when the body has no ``data`` field or is not UTF-8.
    """
    if body.startswith(b"data=") and body.isascii():
        # What every client sends: one field, read without parse_qs's general machinery.
        # (As text: ``in`` on bytes first tries the needle as an int, raising and clearing a TypeError.)
        text = body.decode("ascii")
        if "&" not in text:
            value = text[5:].replace("+", " ")
            if "%" not in value:
                return value
            if "\\" not in value:
                try:
                    # Each %HH as \xHH, decoded in C by the unicode_escape codec (one character per
                    # byte, hence latin-1 back to bytes); a malformed escape such as %zz, which a form
                    # reader keeps as text, raises and is left to the general path below.
                    escaped = value.replace("%", "\\x").encode("ascii")
                    return escaped.decode("unicode_escape").encode("latin-1").decode("utf-8")
                except UnicodeError:
                    pass
    text = body.decode("ascii")
    fields = urllib.parse.parse_qs(
        text, keep_blank_values=True, strict_parsing=False, encoding="utf-8", errors="strict"
    )
    values = fields.get("data")
    if not values:
        raise ValueError("the body has no 'data' field")
    return values[0]


def header_names(headers: tornado.httputil.HTTPHeaders) -> frozenset[str]:
    """The names of ``headers``, in Tornado's Http-Header-Case, to test with ``in`` at C speed.

    ``name in headers`` normalizes ``name`` on every call (a split, a capitalize
    per word, a join); a request's checks ask about half a dozen names, so
    they ask this set instead, made once per request.
    """
    return frozenset(headers)


def request_refusal(
    registry: Registry,
    protocol: str,
    headers: tornado.httputil.HTTPHeaders,
    reached: Callable[[], Origin | None],
    names: frozenset[str] | None = None,
) -> Refusal | None:
    """The checks every transport request passes before anything else: enabled, origin, Content-Length.

    ``reached()`` is the origin the request reached (asked only when the
    request names an origin of its own); ``names`` is :func:`header_names` of
    the request's headers, if the caller has it already.
    """
    settings = registry.settings
    if protocol not in settings.enabled_protocols:
        return Refusal(403, f"{protocol} is not enabled")
    if names is None:
        names = header_names(headers)
    if "Origin" in names or "Referer" in names or "Sec-Fetch-Site" in names:
        refused = settings.origins.refusal(headers, reached())
        if refused is not None:
            return Refusal(403, "Origin not allowed", f" ({refused})")
    if "Content-Length" in names:  # (asked first: a missing header costs HTTPHeaders.get a KeyError)
        length = headers["Content-Length"]
        if not length.isdigit():
            return Refusal(400, "Bad Content-Length")
        if int(length) > settings.max_message_size:
            return Refusal(413, "Payload too large", f" (Content-Length {length})")
    return None


def expects_body(headers: tornado.httputil.HTTPHeaders, names: frozenset[str] | None = None) -> bool:
    """Whether a body is still to come after the head (the body deadline then applies).

    ``names`` is :func:`header_names` of ``headers``, if the caller has it already.
    """
    if names is None:
        names = header_names(headers)
    if "Transfer-Encoding" in names:
        return True
    if "Content-Length" in names:
        length = headers["Content-Length"]
        return length.isdigit() and int(length) > 0
    return False


def cors_headers(origin: str) -> tuple[tuple[str, str], ...]:
    """CORS headers for an allowed origin: echoed, never ``*`` together with credentials."""
    if origin == "null":  # only reached when every origin is allowed
        return (("Vary", "Origin"), ("Access-Control-Allow-Origin", "*"))
    return (
        ("Vary", "Origin"),
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
    )


#: The answer to a CORS preflight (besides the CORS headers): the methods and headers a transport takes.
PREFLIGHT: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Max-Age", "600"),
)


def find_connection(registry: Registry, session_id: str, protocol: str) -> Connection | Refusal:
    """The session named in the URL, which must be one ``protocol`` carries.

    A request naming another transport's session (a poll for a websocket
    session, say) is refused and leaves that session untouched.
    """
    connection = registry.get(session_id)
    if connection is None:
        return Refusal(404, "Unknown or expired session")
    if connection.protocol != protocol:
        return Refusal(
            400, "The session belongs to another transport", f" ({connection.protocol}, not {protocol})"
        )
    return connection


def claim_upload(registry: Registry, session_id: str, protocol: str, claimant: object) -> Connection | Refusal:
    """Claim the session for one POST, before its body is read, unless another POST holds it.

    An unknown session is a 404 at once, so a body is buffered only for a
    live session; and the 0.6 client waits for the answer to one POST
    before it sends the next, so a second concurrent one (429) can only
    come from a client trying to queue more than the server would take.
    The claim lasts until :func:`release_upload`, however the request ends.
    """
    if not session_id:
        return Refusal(400, "A send needs a session id")
    found = find_connection(registry, session_id, protocol)
    if isinstance(found, Refusal):
        return found
    if found.upload is not None:
        return Refusal(
            429,
            "Another send of this session is in progress",
            " (a client sends the next payload only once the last one was answered; "
            "the answer waits while socket_io_max_pending_messages messages are undelivered)",
        )
    found.upload = claimant
    return found


def release_upload(connection: Connection | None, claimant: object) -> None:
    """End ``claimant``'s claim on ``connection`` (nothing if it holds none)."""
    if connection is not None and connection.upload is claimant:
        connection.upload = None


def chunked_too_large(size: int, settings: Settings) -> Refusal | None:
    """413 for a body that grew past ``socket_io_max_message_size`` as it arrived."""
    if size > settings.max_message_size:
        return Refusal(413, "Payload too large", " (a chunked body)")
    return None


def body_timeout_refusal(settings: Settings) -> Refusal:
    """408 for a body still incomplete ``socket_io_body_timeout`` seconds after its head."""
    return Refusal(
        408,
        "Request timeout",
        f" (the body did not arrive within socket_io_body_timeout, {settings.body_timeout:g} s)",
    )


def upload_backlog_refusal(connection: Connection) -> Refusal | None:
    """429 when a POST arrives while the session's earlier messages still wait for ``on_message``.

    Only a client that gave up waiting for the answer to its last send gets
    here: that answer waits until the backlog is below its bound.
    """
    if connection.until_readable() is not None:
        return Refusal(429, "Too many messages waiting", " (socket_io_max_pending_messages is reached)")
    return None


def decode_upload(
    body: bytes, settings: Settings, decode: Callable[[str, int, int], list[Message]]
) -> tuple[list[Message], int] | Refusal:
    """The messages of a send's body and the payload's length, or why it is refused (400)."""
    try:
        payload = form_data(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return Refusal(400, "The body must be a form-encoded UTF-8 data field", f" ({exc})")
    try:
        messages = decode(payload, settings.max_message_size, settings.max_frames)
    except TooManyFrames as exc:
        return Refusal(400, "Too many frames in one payload", f" ({exc}; socket_io_max_frames sets the limit)")
    except ProtocolError as exc:
        return Refusal(400, "Malformed Socket.IO frame", f" ({exc})")
    return messages, len(payload)


def session_ended(reason: str) -> tuple[int, bytes]:
    """Status and body for a request whose session ended before anything was written to it.

    403 when ``on_open`` refused or failed (the client never gets an id),
    else 404, which the 0.6.3 client answers by connecting again.
    """
    return (403 if reason in ("refused", "error") else 404), f"session ended: {reason}".encode()


@tornado.web.stream_request_body
class HTTPTransport(tornado.web.RequestHandler):
    """Base of the streaming transports (htmlfile, xhr-multipart), a Tornado ``RequestHandler``.

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
    _body_deadline: Wait | None = None

    def initialize(self, handler_class: HandlerFactory, extra_re: str | None) -> None:
        self.handler_class = handler_class
        self.extra_re = extra_re
        self.registry = registry_for(self.application)

    def prepare(self) -> None:
        # Streams are written as they are: a gzip transform would buffer them.
        self._transforms = []
        self._body = bytearray()
        request = self.request
        refusal = request_refusal(self.registry, self.protocol, request.headers, lambda: server_origin(request))
        if refusal is not None:
            self.refuse(refusal)
        for name, value in NO_STORE:
            self.set_header(name, value)
        origin = self.request.headers.get("Origin")
        if origin is not None:
            for name, value in cors_headers(origin):
                self.set_header(name, value)
        if self.request.method == "POST":
            claimed = claim_upload(self.registry, self.path_kwargs.get("session_id") or "", self.protocol, self)
            if isinstance(claimed, Refusal):
                self.refuse(claimed)
            self.connection_for_upload = claimed
        if expects_body(self.request.headers):
            self._start_body_deadline()

    def _release_upload(self) -> None:
        connection, self.connection_for_upload = self.connection_for_upload, None
        release_upload(connection, self)

    def _start_body_deadline(self) -> None:
        """Answer 408 unless the body has fully arrived within ``socket_io_body_timeout`` seconds.

        tornad_io's own timer (the registry's ``body_deadlines``), so the
        deadline holds however the server was started.  It is cancelled when
        the body is complete (Tornado resolves the request's body future) and
        when the request ends in any way (``on_finish``, ``on_connection_close``),
        which also drops the timer's reference to the handler.
        """
        body = self.request._body_future  # what RequestHandler._execute awaits before post()
        if body.done():
            return
        self._body_deadline = self.registry.body_deadlines.add(self)
        ref = weakref.ref(self)
        body.add_done_callback(lambda _: HTTPTransport._body_arrived(ref))

    @staticmethod
    def _body_arrived(ref: weakref.ReferenceType[HTTPTransport]) -> None:
        handler = ref()
        if handler is not None:
            handler._cancel_body_deadline()

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self.registry.body_deadlines.cancel(self._body_deadline)
            self._body_deadline = None

    def body_timed_out(self) -> None:
        """Answer 408; Tornado then closes the connection once the answer is written.

        (``HTTP1Connection.finish`` disconnects when a response ends before
        its request body was read; the body read then fails and
        ``on_connection_close`` lets ``_execute`` return.)
        """
        self._body_deadline = None
        if self._finished or self.request._body_future.done():
            return
        self._body.clear()
        refusal = body_timeout_refusal(self.registry.settings)
        log_refusal(self.request.method, self.request.path, refusal)
        self.send_error(refusal.status, reason=refusal.reason)

    def compute_etag(self) -> None:
        """Transport responses are never cached; an ETag would only cost a hash."""
        return None

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body += chunk
        refusal = chunked_too_large(len(self._body), self.registry.settings)
        if refusal is not None:
            self._body.clear()
            log_refusal(self.request.method, self.request.path, refusal)
            self.send_error(refusal.status, reason=refusal.reason)
            connection = self.request.connection
            if isinstance(connection, tornado.http1connection.HTTP1Connection):
                connection.close()  # the rest of the body is never read

    def check_xsrf_cookie(self) -> None:
        """0.6 clients send no XSRF token; an app with ``xsrf_cookies=True`` must still work."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The reason phrase as plain text; never an HTML page or a traceback."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(self._reason)

    def refuse(self, refusal: Refusal) -> NoReturn:
        """Log why, then answer with the refusal's status and reason."""
        log_refusal(self.request.method, self.request.path, refusal)
        raise tornado.web.HTTPError(refusal.status, reason=refusal.reason)

    async def get(self, session_id: str = "", **kwargs: Any) -> None:
        """Open a session (a stream starts with the handshake) and carry it until released.

        The response stays open until the connection ends or the client goes away.
        """
        if session_id:
            self.refuse(Refusal(400, "A stream is opened by a handshake only", f" ({self.protocol} names no session)"))
        self._released = asyncio.get_running_loop().create_future()
        open_connection(self, kwargs)
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
        """The answer to a request whose session ended before anything was written to it."""
        status, body = session_ended(reason)
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(body)

    @abc.abstractmethod
    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
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
        refusal = upload_backlog_refusal(connection)
        if refusal is not None:
            self.refuse(refusal)
        decoded = decode_upload(bytes(self._body), self.registry.settings, decode_payload)
        if isinstance(decoded, Refusal):
            self.refuse(decoded)
        self._body = bytearray()
        connection.receive(*decoded)
        readable = connection.until_readable()
        if readable is not None:
            await readable
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok")

    def options(self, *args: Any, **kwargs: Any) -> None:
        """A CORS preflight: say which methods and headers the transport takes."""
        for name, value in PREFLIGHT:
            self.set_header(name, value)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok")
