"""Where live connections are found by their session id.

Each Tornado application gets one :class:`Registry`, created on first use, so
two applications in one process (as in a test suite) never see each other's
sessions.  Transports look connections up here; a connection removes itself
on its one close path.
"""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tornado.ioloop
import tornado.web

from tornad_io.fanout import RedisFanOut, audience_of
from tornad_io.settings import Settings

if TYPE_CHECKING:
    from tornad_io.connection import Connection

__all__ = ["Registry", "Stats", "new_session_id", "registry_for", "stats"]


def new_session_id(worker_tag: str = "") -> str:
    """An unguessable session id: ``worker_tag`` then 128 random bits in hexadecimal.

    The 0.6 client puts the id raw into URL paths, so it is alphanumeric.  A
    proxy in front of several processes routes a session's requests to the
    process whose tag starts the id (see ``socket_io_worker_tag``).
    """
    return worker_tag + secrets.token_hex(16)


@dataclass(frozen=True)
class Stats:
    """What :func:`tornad_io.stats` reports about one application."""

    #: Open (or opening) Socket.IO connections.
    connections: int
    #: The same, by transport name.
    by_transport: dict[str, int]
    #: Frames queued for clients that no request carries right now (polling between polls).
    queued_messages: int
    #: Bytes waiting to be written to clients: queued frames plus unfinished writes.
    buffered_bytes: int = 0


class Registry:
    """The open connections of one application, by session id, and their sweeper.

    The sweeper is a ``PeriodicCallback`` that runs while any connection is
    registered: it answers polls held too long and ends polling sessions
    whose client stopped polling (``Connection.sweep``), so nothing depends
    on a browser saying goodbye (the 0.6 client never does).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connections: dict[str, Connection] = {}
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None

    @property
    def sweep_interval(self) -> float:
        """Seconds between sweeps: a fraction of the shortest polling timer, within [0.02, 0.5]."""
        shortest = min(self.settings.poll_timeout, self.settings.close_timeout)
        return min(0.5, max(0.02, shortest / 8))

    def add(self, connection: Connection) -> None:
        self._connections[connection.session_id] = connection
        audience_of(type(connection.handler))[connection.session_id] = connection
        if self._sweeper is None:
            self._sweeper = tornado.ioloop.PeriodicCallback(self.sweep, self.sweep_interval * 1000)
            self._sweeper.start()

    def get(self, session_id: str) -> Connection | None:
        return self._connections.get(session_id)

    def remove(self, connection: Connection) -> None:
        if self._connections.get(connection.session_id) is connection:
            del self._connections[connection.session_id]
        audience = audience_of(type(connection.handler))
        if audience.get(connection.session_id) is connection:
            del audience[connection.session_id]
        if not self._connections and self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    def sweep(self) -> None:
        now = tornado.ioloop.IOLoop.current().time()
        for connection in list(self._connections.values()):
            connection.sweep(now)

    def stats(self) -> Stats:
        """Live counts, for a status page or a metrics exporter."""
        by_transport: dict[str, int] = {}
        queued = buffered = 0
        for connection in self._connections.values():
            by_transport[connection.protocol] = by_transport.get(connection.protocol, 0) + 1
            queued += connection.queued
            buffered += connection.buffered_bytes
        return Stats(len(self._connections), by_transport, queued, buffered)

    def close_all(self, reason: str = "shutdown") -> None:
        """End every connection (server shutdown): each runs its ``on_close``."""
        for connection in list(self._connections.values()):
            connection.close(reason)

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._connections

    def connections(self) -> list[Connection]:
        """A snapshot, safe to iterate while connections close."""
        return list(self._connections.values())


_registries: weakref.WeakKeyDictionary[tornado.web.Application, Registry] = weakref.WeakKeyDictionary()


def registry_for(application: tornado.web.Application) -> Registry:
    """The registry of ``application``, created on first use."""
    registry = _registries.get(application)
    if registry is None:
        registry = _registries[application] = Registry(Settings.from_application(application.settings))
        if registry.settings.redis_url is not None:
            RedisFanOut.for_url(registry.settings.redis_url)
    return registry


def stats(application: tornado.web.Application) -> Stats:
    """Live counts of ``application``'s connections: per transport, and messages waiting in queues."""
    return registry_for(application).stats()
