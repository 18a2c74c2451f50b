"""What the polling transports share: each request answered by a light ``HTTPMessageDelegate``.

A poll (``GET``) or a send (``POST``) of xhr-polling or jsonp-polling is one
short request, and an echo costs two of them per message, so their cost per
request is most of a polling session's.  Tornado's ``RequestHandler`` does
much this transport never needs (output transforms, cookies, ETags,
``Date`` and ``Server`` headers, a coroutine per request); here Tornado
still parses HTTP/1.1, keeps connections alive, applies ``xheaders``
(``request.remote_ip``, ``request.protocol``) and TLS, and routes the request
through the application's rules (or, served by ``SocketIOServer``, its
:class:`~tornad_io.front.PollFront` does, from the path alone, before any
``HTTPServerRequest`` is made), but the request is answered by a
:class:`PollingTransport`, which writes its one response straight to
the HTTP connection (``write_headers`` with the body, then ``finish``).

Every rule of the HTTP transports (enabled, origin policy, CORS,
Content-Length, the upload claim, the 408 body deadline, 413 while a body
grows, 429, form decoding) is the function in :mod:`tornad_io.transports.http`
that the streaming transports' ``RequestHandler`` calls too; refusals are
logged by the same line.  What the delegate path lacks is Tornado's access
log: ``Application.log_request`` runs only for ``RequestHandler`` targets.

How a rule reaches its application: a :class:`PollRoute` is the rule's target
(a ``tornado.routing.Router``, so Tornado calls its ``find_handler``), but a
router is not told which application routed to it.  The route built by
``SocketIOHandler.routes`` holds an unbound :class:`PollRoute`; when the
application's registry is made (``SocketIOServer``, ``tornad_io.testing``,
or the first Socket.IO request), each of the application's own ``Rule``
objects gets a :class:`PollRoute` bound to it.  Until then the unbound route
declines (``find_handler`` returns ``None``) and the request falls through to
the next rule, :class:`PollBootstrap`, a ``RequestHandler`` that binds the
application and hands the request to the delegate it now routes to.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import tornado.http1connection
import tornado.httputil
import tornado.routing
import tornado.web

from tornad_io.codec import decode_payload
from tornad_io.connection import Connection, HandlerFactory, TransportKind
from tornad_io.dialects import Frame
from tornad_io.origins import Origin
from tornad_io.registry import ApplicationRoute, Registry, bind_routes, registry_for
from tornad_io.timers import Wait
from tornad_io.transports.base import joined, open_connection, url_kwargs
from tornad_io.transports.http import (
    NO_STORE,
    PREFLIGHT,
    Refusal,
    body_timeout_refusal,
    chunked_too_large,
    claim_upload,
    cors_headers,
    decode_upload,
    expects_body,
    find_connection,
    header_names,
    log_refusal,
    release_upload,
    request_refusal,
    session_ended,
    upload_backlog_refusal,
)

__all__ = ["PollBootstrap", "PollRoute", "PollingTransport"]

log = logging.getLogger(__name__)

PLAIN_TEXT = "text/plain; charset=UTF-8"

#: The status line of nearly every answer (a named tuple: one serves every response).
OK = tornado.httputil.ResponseStartLine("HTTP/1.1", 200, "OK")


class ResponseHeaders(tornado.httputil.HTTPHeaders):
    """The ``HTTPHeaders`` of one polling answer, filled without normalizing each name again.

    ``HTTPHeaders(fields)`` turns every name into Http-Header-Case (a split,
    a capitalize per word, a join) through ``MutableMapping.update``, about
    2.5 µs of each answer; these names are constants already in that case
    (the transport headers, CORS, the preflight's), so this fills the two
    dictionaries ``HTTPHeaders`` keeps directly.  Those are private to Tornado:
    ``test_response_headers_behave_as_tornados`` fails the day they change.
    A new object per answer: ``HTTP1Connection.write_headers`` adds
    ``Connection`` or ``Transfer-Encoding`` to the one it is given.
    """

    def __init__(self, fields: tuple[tuple[str, str], ...], length: int, *more: tuple[tuple[str, str], ...]) -> None:
        # (HTTPHeaders.__init__ is not called: it would only fill the same two dictionaries, slowly.)
        as_list: dict[str, list[str]] = {}
        for name, value in fields:
            as_list[name] = [value]  # a list of its own per answer: HTTPHeaders.add appends to it
        as_list["Content-Length"] = [str(length)]
        for extra in more:
            if extra:  # (most answers have no CORS and no extra fields)
                for name, value in extra:
                    as_list[name] = [value]
        self._as_list = as_list
        self._combined_cache = {}


@functools.cache
def fixed_fields(content_type: str) -> tuple[tuple[str, str], ...]:
    """The headers of every answer of ``content_type`` but its length (a transport has one or two types)."""
    return (("Content-Type", content_type), *NO_STORE)


class PollRoute(ApplicationRoute):
    """The rule target of the polling transports: a :class:`PollingTransport` per request.

    Unbound (as ``SocketIOHandler.routes`` builds it) it declines every
    request; :func:`tornad_io.registry.bind_routes` replaces it, in each
    application's own rules, with one bound to that application, and
    hoists a copy of that rule ahead of the ``routes()`` rule (``build_rule``
    puts it first among the rules matching its URLs).
    """

    hoistable = True

    def __init__(
        self,
        transports: Mapping[str, type[PollingTransport]],
        application: tornado.web.Application | None = None,
        registry: Registry | None = None,
        target_kwargs: dict[str, Any] | None = None,
    ) -> None:
        #: The transport of each protocol the rule's :class:`~tornad_io.routing.PollMatcher` matches.
        self.transports = transports
        self.application = application
        self.registry = registry
        options = target_kwargs or {}
        self.handler_class: HandlerFactory | None = options.get("handler_class")
        self.extra_re: str | None = options.get("extra_re")

    def __repr__(self) -> str:
        bound = "unbound" if self.application is None else "bound"
        return f"<PollRoute {', '.join(self.transports)} {bound}>"

    def bound_to(
        self, application: tornado.web.Application, registry: Registry, target_kwargs: dict[str, Any] | None
    ) -> PollRoute | None:
        if self.application is not None:
            return None
        return PollRoute(self.transports, application, registry, target_kwargs)

    def find_handler(self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any) -> PollingTransport | None:
        wire = request.connection
        if self.application is None or not isinstance(wire, tornado.http1connection.HTTP1Connection):
            return None  # not bound yet: PollBootstrap, the next rule, binds the application
        found: re.Match[str] = kwargs["found"]  # from PollMatcher
        return self.transports[found["protocol"]](self, wire, found, request=request)


class PollingTransport(tornado.httputil.HTTPMessageDelegate):
    """One request of a polling transport, and, while a poll is held, the session's transport.

    ``GET`` with no session id is the handshake; with one, a poll, held until
    the connection has something for the client (``push_frames``) or ends
    (``terminate``).  ``POST`` is a send, answered ``ok`` once the session
    can take more.  Each request writes exactly one response, and frees its
    timer, its upload claim and the connection's reference to it when it
    ends, however it ends.
    """

    protocol: ClassVar[str]
    #: The ``enabled_protocols`` name that switches this transport on (Engine.IO polling: ``xhr-polling``).
    enabled_as: ClassVar[str]
    kind: ClassVar[TransportKind] = TransportKind.POLL
    content_type: ClassVar[str] = PLAIN_TEXT

    #: The session this request polls (or opened); ``None`` for sends and refused requests.
    connection: Connection | None = None
    #: The session this POST sends to, claimed from its head until the request ends.
    upload: Connection | None = None
    #: Whether the response is written (or can no longer be).
    answered = False
    #: Whether the client's going away was already taken care of.
    gone = False
    #: The wait in the registry's ``body_deadlines`` while the body is still arriving.
    _deadline: Wait | None = None
    _cors: tuple[tuple[str, str], ...] = ()

    #: The request line and head, from ``headers_received`` (Tornado calls it first).
    start_line: tornado.httputil.RequestStartLine
    headers: tornado.httputil.HTTPHeaders
    method: str

    def __init__(
        self,
        route: PollRoute,
        wire: tornado.http1connection.HTTP1Connection,
        found: re.Match[str],
        request: tornado.httputil.HTTPServerRequest | None = None,
        server_connection: object | None = None,
    ) -> None:
        assert route.application is not None and route.registry is not None and route.handler_class is not None
        if request is not None:  # routed by the application, Tornado made it: it fills the cached property
            self.__dict__["request"] = request
        self._server_connection = server_connection
        #: The connection the request came on: the one response is written to it.
        self.wire = wire
        self.application: tornado.web.Application = route.application
        self.registry: Registry = route.registry
        self.handler_class: HandlerFactory = route.handler_class
        self.extra_re = route.extra_re
        #: The URL's match (:class:`~tornad_io.routing.PollMatcher`); the session id is ``""`` in a handshake.
        self.found = found
        self.session_id: str = found["session_id"]
        self.body = bytearray()

    @functools.cached_property
    def request(self) -> tornado.httputil.HTTPServerRequest:
        """Tornado's request object; made when first asked for if :class:`~tornad_io.front.PollFront` routed it.

        A handshake needs it (the handler's ``self.request``); a poll or a send
        of an open session usually never does: its checks read the head itself.
        """
        return tornado.httputil.HTTPServerRequest(
            connection=self.wire,
            server_connection=self._server_connection,
            start_line=self.start_line,
            headers=self.headers,
        )

    @property
    def path(self) -> str:
        """The request's path (what the route's pattern matched)."""
        return self.found.string

    def server_origin(self) -> Origin | None:
        """The origin this request reached (as ``request.protocol`` and ``request.host`` give it)."""
        return Origin.of_server(getattr(self.wire.context, "protocol", "http"), self.headers.get("Host", "127.0.0.1"))

    @functools.cached_property
    def path_kwargs(self) -> dict[str, bytes | None]:
        """The URL's named groups, percent-decoded, as Tornado passes them to a handler (read when needed)."""
        return url_kwargs(self.found)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    # -- HTTPMessageDelegate ---------------------------------------------------------------

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        self.start_line = start_line
        self.headers = headers
        self.method = method = start_line.method
        refusal = self.check_head()
        if refusal is not None:
            self.refuse(refusal)
            return
        if method != "GET" and method != "POST" and method != "OPTIONS":
            self.refuse(Refusal(405, "Method Not Allowed", f" ({self.protocol} takes GET, POST and OPTIONS)"))
            return
        names = header_names(headers)
        refusal = request_refusal(self.registry, self.enabled_as, headers, self.server_origin, names)
        if refusal is not None:
            self.refuse(refusal)
            return
        if "Origin" in names:
            self._cors = cors_headers(headers["Origin"])
        if method == "POST":
            claimed = claim_upload(self.registry, self.session_id, self.protocol, self)
            if isinstance(claimed, Refusal):
                self.refuse(claimed)
                return
            self.upload = claimed
        if expects_body(headers, names):
            self._deadline = self.registry.body_deadlines.add(self)

    def data_received(self, chunk: bytes) -> None:
        if self.answered:
            return
        self.body += chunk
        refusal = chunked_too_large(len(self.body), self.registry.settings)
        if refusal is not None:
            self.refuse(refusal)
            self.wire.close()  # the rest of the body is never read

    def finish(self) -> None:
        if self._deadline is not None:
            self._cancel_deadline()
        if self.answered:
            return
        method = self.method
        if method == "POST":
            self._send()
        elif method == "GET":
            self._poll()
        else:
            self.answer(200, PLAIN_TEXT, b"ok", PREFLIGHT)  # a CORS preflight

    def on_connection_close(self) -> None:
        """The client went away: mid-body, while its poll or send was held, or after its answer."""
        if self.gone:
            return
        self.gone = True
        self.answered = True  # nothing can be written any more
        self._cancel_deadline()
        self.body = bytearray()
        upload, self.upload = self.upload, None
        release_upload(upload, self)
        if self.connection is not None:
            self.connection.transport_lost(self)

    # -- the two requests --------------------------------------------------------------------

    def check_head(self) -> Refusal | None:
        """A transport's own check of a request's head, before the common ones (Engine.IO's: v5 enabled)."""
        return None

    def check_poll(self) -> Refusal | None:
        """A transport's own check of a GET (jsonp reads its callback index here)."""
        return None

    def _poll(self) -> None:
        refusal = self.check_poll()
        if refusal is not None:
            self.refuse(refusal)
            return
        session_id = self.session_id
        wire = self.wire
        if session_id:
            found = find_connection(self.registry, session_id, self.protocol)
            if isinstance(found, Refusal):
                self.refuse(found)
                return
            wire.set_close_callback(self.on_connection_close)
            self.connection = found
            found.attach(self)
        else:
            try:
                kwargs = {
                    name: None if value is None else value.decode("utf-8") for name, value in self.path_kwargs.items()
                }
            except UnicodeDecodeError as exc:
                self.refuse(Refusal(400, "The URL is not UTF-8", f" ({exc})"))
                return
            wire.set_close_callback(self.on_connection_close)
            self.open_session(kwargs)
        if not self.answered and wire.stream.closed():
            # The request came with the client's FIN: Tornado will not call the close callback.
            self.on_connection_close()

    def _send(self) -> None:
        connection = self.upload
        assert connection is not None  # claimed in headers_received
        refusal = upload_backlog_refusal(connection)
        if refusal is None:
            body, self.body = bytes(self.body), bytearray()
            refusal = self.receive_upload(connection, body)
            if refusal is None:
                readable = connection.until_readable()
                if readable is None:
                    self.answer(200, PLAIN_TEXT, b"ok")
                else:
                    # The answer waits while the session's handler lags behind: the client sends nothing new before it.
                    self.wire.set_close_callback(self.on_connection_close)
                    readable.add_done_callback(lambda _: self.answer(200, PLAIN_TEXT, b"ok"))
                return
        self.refuse(refusal)

    def open_session(self, path_kwargs: dict[str, str | None]) -> None:
        """Open the session a handshake GET asks for (Engine.IO opens a v5 one)."""
        open_connection(self, path_kwargs)

    def receive_upload(self, connection: Connection, body: bytes) -> Refusal | None:
        """Hand a POST's body to ``connection``, or say why it is refused (400)."""
        decoded = decode_upload(body, self.registry.settings, self.decode)
        if isinstance(decoded, Refusal):
            return decoded
        connection.receive(*decoded)
        return None

    def render(self, frames: list[Frame]) -> bytes:
        """The body of a poll's answer carrying ``frames``."""
        return self.render_payload(joined(frames)).encode("utf-8")

    #: ``decode(payload, max_frame, max_frames)``: the messages of a posted payload (the jsonp form
    #: needs a CRLF-aware reading); a static method, so each send calls the codec directly.
    decode = staticmethod(decode_payload)

    def render_payload(self, payload: str) -> str:
        """The response body for ``payload`` (jsonp wraps it in a callback)."""
        return payload

    # -- writing the one response ----------------------------------------------------------

    def answer(
        self,
        status: int,
        content_type: str,
        body: bytes,
        extra: tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> asyncio.Future[None] | None:
        """Write the response, once: status, headers, the whole body; then free what the request held.

        Returns the write's future (or ``None`` if the response was written before);
        it is done already when every byte went to the kernel at once.
        ``HTTP1Connection`` adds ``Connection: close`` (and closes after the
        write) when the client asked for it or is an HTTP/1.0 client without
        keep-alive, and answers an HTTP/1.0 keep-alive with ``Keep-Alive``.
        """
        if self.answered:
            return None
        self.answered = True
        if self._deadline is not None:
            self._cancel_deadline()
        if self.upload is not None:
            upload, self.upload = self.upload, None
            release_upload(upload, self)
        headers = ResponseHeaders(fixed_fields(content_type), len(body), self._cors, extra)
        if status == 200 and reason is None:
            start_line = OK
        else:
            if reason is None:
                reason = http.client.responses.get(status, "Unknown")
            start_line = tornado.httputil.ResponseStartLine("HTTP/1.1", status, reason)
        wire = self.wire
        # A HEAD answer has its Content-Length but no body (HTTP1Connection refuses one).
        written = wire.write_headers(start_line, headers, body if self.method != "HEAD" else None)
        wire.finish()
        return written

    def refuse(self, refusal: Refusal) -> None:
        """Log why, then answer with the refusal's status and its reason as the body."""
        log_refusal(self.method, self.path, refusal)
        self._cors = ()  # as the RequestHandler path: an error answer carries no CORS grant
        self.answer(refusal.status, PLAIN_TEXT, refusal.reason.encode("ascii"), reason=refusal.reason)

    # -- the body deadline -------------------------------------------------------------------

    def body_timed_out(self) -> None:
        """The registry's ``body_deadlines`` timer: answer 408; Tornado closes the connection after it."""
        self._deadline = None
        if self.answered:
            return
        self.body = bytearray()
        self.refuse(body_timeout_refusal(self.registry.settings))

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self.registry.body_deadlines.cancel(self._deadline)
            self._deadline = None

    # -- Transport ---------------------------------------------------------------------------

    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
        if self.answered:
            return None
        written = self.answer(200, self.content_type, self.render(frames))
        if self.connection is not None:
            self.connection.detach(self)
        return written

    def terminate(self, reason: str) -> None:
        if self.answered:
            return
        status, body = session_ended(reason)
        self.answer(status, PLAIN_TEXT, body)

    def abort(self) -> None:
        """Close the client's TCP connection, dropping whatever is still unwritten."""
        self.answered = True
        self.wire.close()



@tornado.web.stream_request_body
class PollBootstrap(tornado.web.RequestHandler):
    """The fallback rule behind an unbound :class:`PollRoute`: binds the application, then steps aside.

    Reached only by requests an application gets before its registry exists
    (an application started with ``listen`` or its own ``HTTPServer``, before
    any Socket.IO request).  It makes the registry (which binds the
    application's poll routes), routes the request again to the
    :class:`PollingTransport` the bound route now makes, and forwards it the
    request's events; the handler itself never writes.
    """

    delegate: PollingTransport | None = None

    def initialize(self, handler_class: HandlerFactory, extra_re: str | None) -> None:
        del handler_class, extra_re  # the bound route has its own copy

    def prepare(self) -> None:
        registry = registry_for(self.application)
        bind_routes(self.application, registry)  # rules added since the registry was made (add_handlers)
        delegate = self.application.find_handler(self.request)
        if not isinstance(delegate, PollingTransport):
            log.error(
                "%s %s: no polling delegate after binding (polling needs Tornado's HTTP/1 server), got %r",
                self.request.method,
                self.request.path,
                delegate,
            )
            raise tornado.web.HTTPError(500)
        self.delegate = delegate
        # From here the delegate answers; RequestHandler must neither write nor finish.
        self._finished = True
        request = self.request
        start_line = tornado.httputil.RequestStartLine(request.method or "GET", request.uri or "/", request.version)
        delegate.headers_received(start_line, request.headers)
        request._body_future.add_done_callback(self._body_complete)

    def _body_complete(self, body: asyncio.Future[None]) -> None:
        if self.delegate is not None and not body.cancelled() and body.exception() is None:
            self.delegate.finish()

    def data_received(self, chunk: bytes) -> None:
        if self.delegate is not None:
            self.delegate.data_received(chunk)

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()

    def check_xsrf_cookie(self) -> None:
        """0.6 clients send no XSRF token; the delegate is not subject to it either."""
