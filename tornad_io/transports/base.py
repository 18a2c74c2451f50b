"""What every transport shares: finding or opening a connection from a request.

A transport is a Tornado request handler (or, for the polling transports, an
``HTTPMessageDelegate``) that moves payloads between the wire and a
:class:`~tornad_io.connection.Connection`.  The route built by
``SocketIOHandler.routes`` passes each transport the user's handler class and
the ``extraRE`` it was built with (``initialize`` keyword arguments, or the
bound route's, for a delegate).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import tornado.escape
import tornado.httputil
import tornado.web

from tornad_io.connection import Connection, HandlerFactory, Transport
from tornad_io.dialects import SOCKET_IO_06, Dialect, Frame, SocketIO5
from tornad_io.origins import Origin
from tornad_io.registry import Registry

__all__ = [
    "TransportHandler",
    "joined",
    "open_arguments",
    "open_connection",
    "open_engine_connection",
    "server_origin",
    "transport_enabled",
    "url_kwargs",
]

class TransportHandler(Transport, Protocol):
    """A transport as a Tornado request handler sees it, configured by the route."""

    handler_class: HandlerFactory
    extra_re: str | None
    registry: Registry
    application: tornado.web.Application
    connection: Connection | None

    @property
    def request(self) -> tornado.httputil.HTTPServerRequest: ...


def joined(frames: list[Frame]) -> str:
    """The 0.6 payload of ``frames``: their concatenation (0.6 frames are all ``str``)."""
    return "".join(frames)  # type: ignore[arg-type]  # (no typing.cast: a function call per message)


def open_arguments(
    extra_re: str | None, path_kwargs: dict[str, Any]
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The ``*args`` and ``**kwargs`` for ``on_open``, from the handshake URL.

    ``kwargs`` holds the whole ``extra`` part and the named groups of
    ``extraRE``; ``args`` holds its unnamed groups.  Tornado passes only named
    groups when a pattern has any, so ``extraRE`` is matched again here.
    """
    extra = path_kwargs.get("extra")
    if extra_re is None or extra is None:
        return (), {}
    match = re.fullmatch(extra_re, extra)
    if match is None:  # the URL matched before unquoting but not after: keep what we know
        return (), {"extra": extra}
    named = set(match.re.groupindex.values())
    args = tuple(group for index, group in enumerate(match.groups(), 1) if index not in named)
    return args, {"extra": extra, **match.groupdict()}


def url_kwargs(found: re.Match[str]) -> dict[str, bytes | None]:
    """The named groups of a URL match, percent-decoded to bytes as Tornado hands them to handlers."""
    kwargs: dict[str, bytes | None] = {}
    for name, value in found.groupdict().items():
        if value is None or "%" not in value:  # most values have nothing to decode
            kwargs[name] = None if value is None else value.encode("latin-1")
        else:
            kwargs[name] = tornado.escape.url_unescape(value, encoding=None, plus=False)
    return kwargs


def transport_enabled(registry: Registry, protocol: str) -> bool:
    return protocol in registry.settings.enabled_protocols


def server_origin(request: tornado.httputil.HTTPServerRequest) -> Origin | None:
    """The origin this request reached: its scheme (``X-Forwarded-Proto`` with xheaders) and Host."""
    return Origin.of_server(request.protocol, request.host)


def _new_connection(transport: TransportHandler, dialect: Dialect) -> Connection:
    """A connection for ``transport``'s handshake request, which the transport then knows as its own."""
    connection = Connection(
        transport.handler_class,
        transport.registry,
        transport.application,
        transport.request,
        transport.protocol,
        dialect,
    )
    transport.connection = connection
    return connection


def open_engine_connection(
    transport: TransportHandler, path_kwargs: dict[str, Any], upgrades: list[str]
) -> Connection:
    """A new v5 session (an Engine.IO handshake) carried first by ``transport``.

    The handshake is written at once; ``on_open`` waits for the client's CONNECT.
    """
    settings = transport.registry.settings
    connection = _new_connection(transport, SocketIO5())
    handshake = SocketIO5.opening(
        connection.session_id, upgrades, settings.ping_interval, settings.ping_timeout, settings.max_message_size
    )
    args, kwargs = open_arguments(transport.extra_re, path_kwargs)
    connection.start_engine(transport, handshake, args, kwargs)
    return connection


def open_connection(transport: TransportHandler, path_kwargs: dict[str, Any]) -> Connection:
    """A new session for a handshake request, carried first by ``transport``.

    ``transport.connection`` is set before ``on_open`` runs, so a transport
    already knows its connection when the first payload is pushed to it.
    """
    connection = _new_connection(transport, SOCKET_IO_06)
    args, kwargs = open_arguments(transport.extra_re, path_kwargs)
    connection.start(transport, args, kwargs)
    return connection
