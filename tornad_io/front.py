"""``PollFront``: what ``SocketIOServer``'s ``HTTPServer`` calls, so that polls skip the application's routing.

A poll or a send of xhr-polling or jsonp-polling is most of a polling
session's requests, and each one routed by the application pays for a
``tornado.httputil.HTTPServerRequest`` (its query parsed, then deep-copied)
and for the walk through the application's rules: together about a sixth of
what the server spends on such a request.  ``PollFront`` sits where Tornado's
``HTTPServer`` expects the application (an ``HTTPServerConnectionDelegate``):
Tornado still reads and parses every request (and applies ``xheaders`` and
TLS); the front looks at the path, and a request for a bound poll route goes
straight to its :class:`~tornad_io.transports.polling.PollingTransport`, which
makes the ``HTTPServerRequest`` only if it needs one (a handshake does).
Every other request goes to the application, as if the front were not there.

Routing stays the application's: the front answers a request only where the
application would have routed it to the same transport.  It reads the
application's rules (``wildcard_router``) in order and stops at the first
rule it cannot judge from the path alone; a path matching an earlier rule of
the application's own (a ``PathMatches`` rule, a ``routes()`` rule) goes to
the application.  An application with host rules (``add_handlers``) is left
entirely to its own routing.  Tornado's checks of the request head are kept:
a request with a query string, or whose ``Host`` the front has not yet seen
pass ``HTTPServerRequest``'s own checks, gets its ``HTTPServerRequest`` at
once (a bad one is refused by Tornado with 400, as without the front).

Use it with an ``HTTPServer`` of your own as ``HTTPServer(PollFront(application))``;
``SocketIOServer`` and :class:`tornad_io.testing.AppServer` do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import NamedTuple

import tornado.http1connection
import tornado.httputil
import tornado.routing
import tornado.web

from tornad_io.routing import EnginePollMatcher, EngineURLPattern, PollMatcher, URLPattern
from tornad_io.transports.polling import PollingTransport, PollRoute

__all__ = ["PollFront"]

log = logging.getLogger(__name__)

#: Matchers whose ``match`` is ``None`` whenever their ``regex`` does not match the path: a path one of
#: them matches may be the application's, a path none matches is not theirs.
_PATH_MATCHERS = (tornado.routing.PathMatches, URLPattern, EngineURLPattern, PollMatcher, EnginePollMatcher)

#: ``Host`` values remembered as having passed ``HTTPServerRequest``'s checks (forgotten all at once beyond it).
KNOWN_HOSTS = 64


class FrontRule(NamedTuple):
    """One of the application's rules as the front sees it: a path pattern, and the poll route it leads to."""

    regex: re.Pattern[str]
    #: The bound route, or ``None``: a path the pattern matches goes to the application.
    route: PollRoute | None


class PollFront(tornado.httputil.HTTPServerConnectionDelegate):
    """The ``HTTPServer``'s delegate: polls to their transport, every other request to ``application``."""

    def __init__(self, application: tornado.web.Application) -> None:
        self.application = application
        self._rules: list[FrontRule] = []
        #: ``len()`` of the application's rule lists the rules were read from (``add_handlers`` grows them).
        self._read_from: tuple[int, int] = (-1, -1)
        self._known_hosts: set[str] = set()

    def __repr__(self) -> str:
        return f"PollFront({self.application!r})"

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        return FrontRequest(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.application.on_close(server_conn)

    def rules(self) -> list[FrontRule]:
        """The poll routes the front may answer for, in the application's order; read again when rules change."""
        application = self.application
        current = (len(application.default_router.rules), len(application.wildcard_router.rules))
        if current != self._read_from:
            self._read_from = current
            self._rules = front_rules(application)
        return self._rules

    def host_known(self, host: str) -> bool:
        return host in self._known_hosts

    def remember_host(self, host: str) -> None:
        if len(self._known_hosts) >= KNOWN_HOSTS:
            self._known_hosts.clear()
        self._known_hosts.add(host)


def front_rules(application: tornado.web.Application) -> list[FrontRule]:
    """The application's rules up to its last bound poll route, or none if the path cannot decide them."""
    if len(application.default_router.rules) != 1:
        return []  # host rules (add_handlers) come first and match on Host: the application routes everything
    rules: list[FrontRule] = []
    last_route = 0
    for rule in application.wildcard_router.rules:
        matcher, target = rule.matcher, rule.target
        if type(matcher) not in _PATH_MATCHERS:
            break  # any path may be this rule's: nothing after it is the front's to answer
        assert isinstance(matcher, (tornado.routing.PathMatches, URLPattern, PollMatcher))
        if (
            type(matcher) is PollMatcher
            and isinstance(target, PollRoute)
            and target.application is application
            and target.registry is not None
        ):
            rules.append(FrontRule(matcher.regex, target))
            last_route = len(rules)
        else:
            rules.append(FrontRule(matcher.regex, None))
    return rules[:last_route]


class FrontRequest(tornado.httputil.HTTPMessageDelegate):
    """One request through the front: a poll route's transport, or the application's own delegate."""

    __slots__ = ("front", "server_conn", "request_conn", "delegate")

    def __init__(
        self, front: PollFront, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> None:
        self.front = front
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.delegate: tornado.httputil.HTTPMessageDelegate | None = None

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        delegate: tornado.httputil.HTTPMessageDelegate | None = self._poll_transport(start_line, headers)
        if delegate is None:
            delegate = self.front.application.start_request(self.server_conn, self.request_conn)
        self.delegate = delegate
        return delegate.headers_received(start_line, headers)

    def _poll_transport(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> PollingTransport | None:
        wire = self.request_conn
        if not isinstance(wire, tornado.http1connection.HTTP1Connection):
            return None
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        path, _, query = start_line.path.partition("?")
        for regex, route in self.front.rules():
            found = regex.match(path)
            if found is None:
                continue
            if route is None:
                return None  # an earlier rule of the application's may want it
            request = None
            host = headers.get("Host")
            if query or host is None or not self.front.host_known(host):
                # Tornado's checks of the head (Host, the query string) raise HTTPInputError: a 400, as usual.
                request = tornado.httputil.HTTPServerRequest(
                    connection=wire, server_connection=self.server_conn, start_line=start_line, headers=headers
                )
                self.front.remember_host(request.host)
            return route.transports[found["protocol"]](
                route, wire, found, request=request, server_connection=self.server_conn
            )
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()
