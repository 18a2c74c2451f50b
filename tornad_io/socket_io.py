"""``SocketIOHandler``: what an application subclasses.

One handler object lives for one Socket.IO session, whatever transport
carries it and however many HTTP requests that takes, so state set on
``self`` in ``on_open`` is there in every ``on_message``::

    class EchoHandler(SocketIOHandler):
        def on_open(self, *args, **kwargs):
            self.greeting = "[echo] "

        def on_message(self, message):
            self.send(self.greeting + str(message))

    application = tornado.web.Application([EchoHandler.routes("socket.io")])

The hooks may be plain methods or coroutines.  Messages of one connection
reach ``on_message`` one at a time and in order, even while an earlier call
awaits.
"""

from __future__ import annotations

import http.cookies
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import tornado.httputil
import tornado.web

from tornad_io.beaker_session import open_session
from tornad_io.dialects import Outgoing
from tornad_io.registry import Registry, current_registry, registries_serving, registry_for, running_loop_registries
from tornad_io.routing import Rule, build_rule

if TYPE_CHECKING:
    import beaker.session

    from tornad_io.connection import Connection

__all__ = ["SocketIOHandler"]


class SocketIOHandler:
    """Base class of a Socket.IO application handler.

    Not a Tornado ``RequestHandler``: an instance is created by tornad_io when
    a client connects and stays until the session ends.  ``request`` is the
    handshake request; ``application``, ``settings`` and the cookie getters
    behave as on a ``RequestHandler``.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- hooks to override ------------------------------------------------------------------

    def on_open(self, *args: Any, **kwargs: Any) -> Any:
        """A client connected.

        ``kwargs`` holds ``extra`` (the URL part matched by ``extraRE``) and the
        named groups of ``extraRE``; ``args`` its unnamed groups.  Return
        ``False`` (or raise) to refuse the connection: the client then never
        receives a session id.  Messages sent here reach the client right
        after the session id.
        """

    def on_message(self, message: Any) -> Any:
        """The client sent ``message``: a ``str``, or the decoded value of a JSON message.

        JSON is decoded with simplejson and floats arrive as ``decimal.Decimal``.
        """

    def on_close(self) -> Any:
        """The session ended (the client left, timed out, or ``close()`` was called).

        Runs exactly once per connection that was opened.
        """

    def on_event(self, event: str, *args: Any) -> Any:
        """v5: the client emitted ``event`` (any name but ``message``, which goes to ``on_message``).

        When the client passed an ack callback, the return value (awaited, if
        a coroutine) is its answer: ``None`` an ack with no arguments, a tuple
        that many arguments, anything else one.  ``bytes`` arrive for the
        client's ``ArrayBuffer``/``Blob`` data.
        """

    # -- talking to the client --------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Send ``message`` to the client.

        A ``str`` arrives exactly as given; a ``dict`` (or anything else
        simplejson can encode, ``Decimal`` included) arrives as parsed JSON.
        Sending after the connection closed does nothing.
        """
        self._connection.send(message)

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """v5: emit ``event`` to the client (its ``socket.on(event, ...)``), ``bytes`` as binary.

        ``callback``, if given, is called with the client's ack arguments.
        Raises ``TypeError`` on a 0.6 connection, whose client has no events
        (``self.protocol_version`` says which one this is).
        """
        self._connection.emit(event, args, callback)

    def close(self) -> None:
        """End this connection; ``on_close`` follows on a later IOLoop iteration."""
        self._connection.close("server close")

    @classmethod
    def broadcast(
        cls,
        message: Any,
        room: str | Iterable[str] | None = None,
        exclude: SocketIOHandler | Iterable[SocketIOHandler] | None = None,
        *,
        application: tornado.web.Application | None = None,
    ) -> None:
        """Send ``message`` to the open connections of this handler class, except ``exclude``.

        ``room`` (one name or several) limits it to the members of those rooms;
        ``None`` reaches every connection of the class.  ``exclude`` is one
        handler (typically ``self``, the sender) or several.  The frame is
        encoded once for everyone; polling clients get it with their next
        poll.  With ``socket_io_redis_url`` set, the other server processes
        deliver it to their clients (and room members) too.

        A broadcast stays inside one application.  Called from a hook (or a
        task a hook started) it reaches that hook's application; elsewhere,
        the one application in this process (on this IOLoop) that mounts the
        class, or ``application`` when given.
        """
        if isinstance(room, SocketIOHandler) or _is_handlers(room):
            # The 2010-era call broadcast(message, handler) meant exclude.
            room, exclude = None, room
        cls._broadcast(Outgoing.message(message), room, exclude, application)

    @classmethod
    def broadcast_event(
        cls,
        event: str,
        *args: Any,
        room: str | Iterable[str] | None = None,
        exclude: SocketIOHandler | Iterable[SocketIOHandler] | None = None,
        application: tornado.web.Application | None = None,
    ) -> None:
        """:meth:`emit` to every v5 connection that :meth:`broadcast` would reach.

        Socket.IO 0.6 clients have no events: they are skipped.  No acks: a
        broadcast has no single answer to wait for.
        """
        cls._broadcast(Outgoing.named_event(event, args), room, exclude, application)

    @classmethod
    def _broadcast(
        cls,
        outgoing: Outgoing,
        room: str | Iterable[str] | None,
        exclude: SocketIOHandler | Iterable[SocketIOHandler] | None,
        application: tornado.web.Application | None,
    ) -> None:
        rooms = _room_names(room)
        if exclude is None:
            excluded: frozenset[str] = frozenset()
        elif isinstance(exclude, SocketIOHandler):
            excluded = frozenset((exclude.session_id,))
        else:
            excluded = frozenset(handler.session_id for handler in exclude)
        for registry in _target_registries(cls, application):
            registry.broadcast(cls, outgoing, rooms, excluded)

    # -- rooms ------------------------------------------------------------------------------

    def join(self, room: str) -> None:
        """Enter ``room`` (any str), so that ``broadcast(..., room=room)`` reaches this connection.

        Rooms belong to the application; membership ends when the connection
        closes, before ``on_close`` runs.  Joining after the close does nothing.
        """
        connection = self._connection
        connection.registry.join(connection, room)

    def leave(self, room: str) -> None:
        """Leave ``room``; leaving a room this connection is not in does nothing."""
        connection = self._connection
        connection.registry.leave(connection, room)

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this connection is in (in ``on_close``: the rooms it was in, already left)."""
        return frozenset(self._connection.rooms)

    def write(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available: Socket.IO messages need the wire encoding that ``send`` applies."""
        raise RuntimeError(
            "SocketIOHandler.write() cannot be used: the Socket.IO client only understands "
            "framed messages. Use self.send(message) instead."
        )

    # -- what the connection knows ----------------------------------------------------------

    @property
    def protocol(self) -> str:
        """The transport's name, e.g. ``"websocket"`` or ``"xhr-polling"``."""
        return self._connection.protocol

    @property
    def protocol_version(self) -> str:
        """``"0.6"`` for the 2010 client, ``"5"`` for socket.io-client 3.x/4.x."""
        return self._connection.dialect.version

    @property
    def session_id(self) -> str:
        """The Socket.IO session id (also ``self.session.id``)."""
        return self._connection.session_id

    @property
    def session(self) -> beaker.session.Session:
        """A Beaker session for this connection, created on first use.

        Call ``self.session.save()`` after changing it.  It is removed when
        the connection ends.
        """
        connection = self._connection
        if connection.beaker_session is None:
            connection.beaker_session = open_session(connection.session_id, connection.settings.session_opts)
        return connection.beaker_session

    @property
    def request(self) -> tornado.httputil.HTTPServerRequest:
        """The handshake request."""
        return self._connection.request

    @property
    def application(self) -> tornado.web.Application:
        return self._connection.application

    @property
    def settings(self) -> dict[str, Any]:
        """``self.application.settings``."""
        return self._connection.application.settings

    @property
    def cookies(self) -> dict[str, http.cookies.Morsel[str]]:
        """The cookies of the handshake request."""
        return self._connection.request.cookies

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """A cookie of the handshake request, as ``RequestHandler.get_cookie``."""
        morsel = self.cookies.get(name)
        return morsel.value if morsel is not None else default

    def get_signed_cookie(
        self, name: str, value: str | None = None, max_age_days: float = 31, min_version: int | None = None
    ) -> bytes | None:
        """A signed cookie of the handshake request, as ``RequestHandler.get_signed_cookie``."""
        secret = self.settings.get("cookie_secret")
        if secret is None:
            raise RuntimeError("get_signed_cookie needs the application setting 'cookie_secret'")
        if value is None:
            value = self.get_cookie(name)
        return tornado.web.decode_signed_value(
            secret, name, value, max_age_days=max_age_days, min_version=min_version
        )

    get_secure_cookie = get_signed_cookie

    # -- mounting ---------------------------------------------------------------------------

    @classmethod
    def routes(cls, resource: str, extraRE: str | None = None, extraSep: str | None = None) -> Rule:  # noqa: N803
        """The rule that mounts this handler in ``tornado.web.Application([...])``.

        ``resource`` is a regular expression for the first path segment(s)
        (``"socket.io"`` for the client's default).  ``extraRE``, also a
        regular expression, matches extra URL text after it (separated by
        ``extraSep``, if given); that text arrives in ``on_open`` as
        ``kwargs["extra"]``, with the named groups of ``extraRE`` as keyword
        arguments and its unnamed groups as positional ones.
        """
        return build_rule(cls, resource, extraRE, extraSep)


def _is_handlers(value: object) -> bool:
    if value is None or isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        return False
    return bool(value) and all(isinstance(item, SocketIOHandler) for item in value)


def _room_names(room: str | Iterable[str] | None) -> frozenset[str] | None:
    if room is None:
        return None
    if isinstance(room, str):
        return frozenset((room,))
    names = frozenset(room)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"a room is a str, not {type(name).__name__}")
    return names


def _target_registries(
    handler_class: type[SocketIOHandler], application: tornado.web.Application | None
) -> list[Registry]:
    """The one application a class-level broadcast is meant for (see ``broadcast``)."""
    if application is not None:
        return [registry_for(application)]
    serving = registries_serving(handler_class)
    hook_registry = current_registry.get()
    if hook_registry is not None and (hook_registry in serving or not serving):
        return [hook_registry]
    candidates = running_loop_registries(serving)
    if len(candidates) > 1:
        raise RuntimeError(
            f"{handler_class.__name__} is mounted in {len(candidates)} applications in this process; "
            "call broadcast from one of its hooks, or pass application=..."
        )
    return candidates
