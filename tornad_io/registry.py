"""Where live connections are found by their session id.

Each Tornado application gets one :class:`Registry`, created on first use, so
two applications in one process (as in a test suite) never see each other's
sessions.  Transports look connections up here; a connection removes itself
on its one close path.
"""

from __future__ import annotations

import secrets
import weakref
from typing import TYPE_CHECKING

import tornado.web

from tornad_io.settings import Settings

if TYPE_CHECKING:
    from tornad_io.connection import Connection

__all__ = ["Registry", "new_session_id", "registry_for"]


def new_session_id() -> str:
    """An unguessable session id made only of ``[0-9a-f]`` (128 bits).

    The 0.6 client puts the id raw into URL paths, so it must need no escaping.
    """
    return secrets.token_hex(16)


class Registry:
    """The open connections of one application, by session id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connections: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._connections[connection.session_id] = connection

    def get(self, session_id: str) -> Connection | None:
        return self._connections.get(session_id)

    def remove(self, connection: Connection) -> None:
        if self._connections.get(connection.session_id) is connection:
            del self._connections[connection.session_id]

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
    return registry
