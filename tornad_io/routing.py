"""The Tornado rule behind ``SocketIOHandler.routes``.

One rule matches every Socket.IO URL under a resource; inside it, one nested
rule per transport picks the Tornado handler that speaks that transport (for
the polling transports, a router that answers each request with a light
``HTTPMessageDelegate``; see :mod:`tornad_io.transports.polling`).  Once
bound to its application, each polling rule also gets a copy just before
the outer rule (:func:`tornad_io.registry.bind_routes`), so a poll or a send,
most requests, is routed through one router less.
The URL shapes are those the 0.6 client builds (protocol-0.6.md §3)::

    /<resource>[<extraSep><extra>]/websocket
    /<resource>[<extraSep><extra>]/<http transport>/<session id or empty>[/<anything>]

and, for people and for pages written for node's server, ``/<resource>/socket.io.js``
(the client, with ``socket_io_client_js``) and ``/<resource>/`` (what this is).
"""

from __future__ import annotations

import re
from typing import Any

import tornado.httputil
import tornado.routing

from tornad_io.connection import HandlerFactory, TransportKind
from tornad_io.pages import ClientScriptHandler, ResourceInfoHandler
from tornad_io.settings import ALL_PROTOCOLS
from tornad_io.transports import TRANSPORTS
from tornad_io.transports.base import url_kwargs
from tornad_io.transports.engine import EnginePolling, EngineRefusal, EngineWebSocket
from tornad_io.transports.polling import PollBootstrap, PollingTransport, PollRoute

__all__ = ["EnginePollMatcher", "EngineURLPattern", "PollMatcher", "URLPattern", "build_rule"]


class URLPattern(tornado.routing.Matcher):
    """Matches the request path against a regular expression and passes its named groups.

    Tornado's own ``PathMatches`` refuses patterns that mix named and unnamed
    groups, which an ``extraRE`` may well do; its unnamed groups are recovered
    for ``on_open`` from the ``extra`` text instead.
    """

    def __init__(self, pattern: str, resource: str | None = None) -> None:
        self.regex = re.compile(pattern + "$")
        #: The ``resource`` a ``routes()`` rule mounts (on its outer matcher), for error messages.
        self.resource = resource
        #: The outer matcher only selects the nested rules, which match again: its groups go nowhere.
        self.passes_groups = resource is None

    def __repr__(self) -> str:
        return f"URLPattern({self.regex.pattern!r})"

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        found = self.regex.match(request.path)
        if found is None:
            return None
        if not self.passes_groups:
            return {}
        return {"path_args": [], "path_kwargs": url_kwargs(found)}


class PollMatcher(tornado.routing.Matcher):
    """Matches the URLs of every polling transport with one regular expression, and passes the match itself.

    The hot path of a polling session (every poll and every send) is one
    regular expression here; its target, :class:`PollRoute`, picks the
    transport by the ``protocol`` group.  The rest of the URL is decoded
    only when a request needs it (a handshake's ``on_open`` arguments, the
    jsonp callback index), from the same match.
    """

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(pattern + "$")

    def __repr__(self) -> str:
        return f"PollMatcher({self.regex.pattern!r})"

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        found = self.regex.match(request.path)
        return None if found is None else {"found": found}


class EngineURLPattern(URLPattern):
    """:class:`URLPattern` for Engine.IO requests: the path, and ``EIO=4&transport=<transport>`` in the query.

    With ``transport`` ``None`` it matches every request with an ``EIO``
    argument (the ones the more specific rules before it did not take).
    """

    def __init__(self, pattern: str, transport: str | None) -> None:
        super().__init__(pattern)
        self.transport = None if transport is None else [transport.encode("ascii")]

    def __repr__(self) -> str:
        return f"EngineURLPattern({self.regex.pattern!r}, {self.transport!r})"

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        query = request.query_arguments
        if "EIO" not in query:
            return None
        if self.transport is not None and (query["EIO"] != _EIO4 or query.get("transport") != self.transport):
            return None
        return super().match(request)


class EnginePollMatcher(PollMatcher):
    """:class:`PollMatcher` for Engine.IO polling: the path, and ``EIO=4&transport=polling`` in the query."""

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        query = request.query_arguments
        if query.get("EIO") != _EIO4 or query.get("transport") != _POLLING:
            return None
        return super().match(request)


_EIO4 = [b"4"]
_POLLING = [b"polling"]


def _url_shape(kind: TransportKind, *protocols: str) -> str:
    """The path after the resource that transports of ``kind`` serve (protocol-0.6.md §3)."""
    name = "(?P<protocol>" + "|".join(re.escape(protocol) for protocol in protocols) + ")"
    if kind is TransportKind.SOCKET:
        return f"/{name}/?"  # ws://host:port/socket.io/websocket: every upgrade is a handshake
    # /xhr-polling//<ts> (handshake), /<sid>/<ts> (poll), /<sid>/send; jsonp adds /<index>
    return f"/{name}/(?P<session_id>[0-9A-Za-z]*)(?:/(?P<tail>.*))?"


Rule = tuple[URLPattern, list[tuple[tornado.routing.Matcher, Any, dict[str, Any]]]]


def build_rule(
    handler_class: HandlerFactory, resource: str, extra_re: str | None = None, extra_sep: str | None = None
) -> Rule:
    """``(URLPattern, [per-transport rules])``, a rule ``tornado.web.Application`` accepts.

    ``resource`` and ``extra_re`` are regular expressions; ``extra_sep`` is
    literal text between them.
    """
    prefix = f"/(?P<resource>{resource})"
    if extra_re is not None:
        prefix += re.escape(extra_sep or "") + f"(?P<extra>{extra_re})"
    protocols = "|".join(re.escape(protocol) for protocol in ALL_PROTOCOLS)
    options = {"handler_class": handler_class, "extra_re": extra_re}
    polling = {name: transport for name, transport in TRANSPORTS.items() if issubclass(transport, PollingTransport)}
    poll_url = prefix + _url_shape(TransportKind.POLL, *polling)
    transports: list[tuple[tornado.routing.Matcher, Any, dict[str, Any]]] = [
        # Every poll and every send: one pattern, then a delegate per request once the application is bound.
        (PollMatcher(poll_url), PollRoute(polling), options),
        # Until then the route declines and this handler binds the application.
        (URLPattern(poll_url), PollBootstrap, options),
    ]
    for transport in TRANSPORTS.values():
        if not issubclass(transport, PollingTransport):
            transports.append((URLPattern(prefix + _url_shape(transport.kind, transport.protocol)), transport, options))
    # Engine.IO (socket.io-client 3.x/4.x) at /<resource>[<sep><extra>]/?EIO=4&transport=...; the poll
    # route's pattern has the (empty) groups PollRoute and PollingTransport read: Engine.IO puts the
    # session id in the query.
    engine = prefix + "/?"
    engine_poll = engine + "(?P<protocol>)(?P<session_id>)"
    transports.append((EnginePollMatcher(engine_poll), PollRoute({"": EnginePolling}), options))
    transports.append((EngineURLPattern(engine_poll, "polling"), PollBootstrap, options))
    transports.append((EngineURLPattern(engine, "websocket"), EngineWebSocket, options))
    transports.append((EngineURLPattern(engine, None), EngineRefusal, options))
    transports.append((URLPattern(prefix + r"/socket\.io\.js"), ClientScriptHandler, options))
    transports.append((URLPattern(prefix + "/?"), ResourceInfoHandler, options))
    outer = prefix + rf"(?:/(?P<protocol>{protocols})(?:/.*)?|/socket\.io\.js|/?)"
    return (URLPattern(outer, resource), transports)
