"""One application's world: its live connections, who is in which room, and whom a broadcast reaches.

Each Tornado application gets one :class:`Registry`, created on first use, so
two applications in one process (two ports, or two ``AppServer``\\ s in a test
suite) never see each other's sessions, rooms or broadcasts.  Transports look
connections up here; a connection removes itself on its one close path.  When
the application sets ``socket_io_redis_url``, the registry's relay carries its
broadcasts to the same application in other processes.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import logging
import operator
import secrets
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import tornado.ioloop
import tornado.routing
import tornado.web

from tornad_io import unrouted
from tornad_io.dialects import Dialect, Frame, Outgoing
from tornad_io.relay import RedisRelay, RelayedBroadcast
from tornad_io.settings import Settings
from tornad_io.timers import FifoTimer

if TYPE_CHECKING:
    from tornad_io.connection import Connection

__all__ = [
    "BROADCAST_SLICE",
    "ApplicationRoute",
    "Registry",
    "Stats",
    "bind_routes",
    "class_key",
    "current_registry",
    "new_session_id",
    "registries_serving",
    "registry_for",
    "stats",
]

log = logging.getLogger(__name__)

#: Recipients a broadcast writes to per IOLoop iteration (the rest follow on the next ones).
BROADCAST_SLICE = 256


def new_session_id(worker_tag: str = "") -> str:
    """An unguessable session id: ``worker_tag`` then 128 random bits in hexadecimal.

    The 0.6 client puts the id raw into URL paths, so it is alphanumeric.  A
    proxy in front of several processes routes a session's requests to the
    process whose tag starts the id (see ``socket_io_worker_tag``).
    """
    return worker_tag + secrets.token_hex(16)


def class_key(handler_class: type) -> str:
    """How a handler class is named across processes (its dotted name)."""
    return f"{handler_class.__module__}.{handler_class.__qualname__}"


#: The registry whose user hook is running: a class-level ``Handler.broadcast`` inside a
#: hook (or a task the hook started) reaches that hook's application.
current_registry: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "tornad_io_current_registry", default=None
)


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
    #: Rooms with at least one member.
    rooms: int = 0
    #: Broadcasts the Redis relay could not pass on (Redis down, or its queue full).
    relay_dropped: int = 0


class Registry:
    """The open connections of one application, by session id, their rooms and their sweeper.

    The sweeper is a ``PeriodicCallback`` that runs while any polling
    connection is registered, and visits only those: it answers polls held
    too long and ends polling sessions whose client stopped polling
    (``Connection.sweep``), so nothing depends on a browser saying goodbye
    (the 0.6 client never does).  Sockets and streams have heartbeats instead,
    all on two :class:`~tornad_io.timers.FifoTimer`\\ s (``beats``, ``echo_deadlines``).
    """

    def __init__(self, settings: Settings, handler_classes: Iterable[type] = ()) -> None:
        self.settings = settings
        #: The handler classes this application mounts (found in its rules).
        self.handler_classes: dict[str, type] = {class_key(cls): cls for cls in handler_classes}
        self._connections: dict[str, Connection] = {}
        #: The polling connections: the only ones with timers for the sweeper to apply.
        self._pollers: dict[str, Connection] = {}
        self._audiences: dict[type, dict[str, Connection]] = {}
        self._rooms: dict[str, dict[str, Connection]] = {}
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None
        #: The IOLoop that serves this application, known from its first connection or server.
        self.loop: tornado.ioloop.IOLoop | None = None
        self.relay: RedisRelay | None = None
        #: When each socket or stream connection sends its next heartbeat, and until when its echo may take:
        #: one timer each for the whole application (every connection waits the same delays).
        self.beats: FifoTimer[Connection] = FifoTimer(settings.heartbeat_interval, operator.methodcaller("beat"))
        self.echo_deadlines: FifoTimer[Connection] = FifoTimer(
            settings.heartbeat_timeout, operator.methodcaller("echo_overdue")
        )
        #: The same two for v5 connections: Engine.IO pings and their pongs.
        self.pings: FifoTimer[Connection] = FifoTimer(settings.ping_interval, operator.methodcaller("beat"))
        self.pong_deadlines: FifoTimer[Connection] = FifoTimer(
            settings.ping_timeout, operator.methodcaller("echo_overdue")
        )
        #: What v5 polling sessions closed between two polls still owe their client (its queue, a DISCONNECT),
        #: by session id, kept ``socket_io_close_timeout`` for the next poll to carry.
        self._farewells: dict[str, list[Frame]] = {}
        self._farewell_expiries: FifoTimer[str] = FifoTimer(
            settings.close_timeout, lambda session_id: self._farewells.pop(session_id, None)
        )
        #: The 408 deadline of every HTTP transport request whose body is still arriving: its
        #: ``body_timed_out()`` runs ``socket_io_body_timeout`` after its head unless cancelled first.
        self.body_deadlines: FifoTimer[Any] = FifoTimer(settings.body_timeout, operator.methodcaller("body_timed_out"))

    @property
    def sweep_interval(self) -> float:
        """Seconds between sweeps: a fraction of the shortest polling timer, within [0.02, 0.5]."""
        shortest = min(self.settings.poll_timeout, self.settings.close_timeout)
        return min(0.5, max(0.02, shortest / 8))

    # -- serving ------------------------------------------------------------------------------

    def bind(self) -> None:
        """Note the running IOLoop as this application's, and start its relay there if it has one."""
        if self.loop is None:
            self.loop = tornado.ioloop.IOLoop.current()
        if self.settings.redis_url is not None and self.relay is None:
            self.relay = RedisRelay(self.settings.redis_url, self.settings.redis_channel, self._relayed)
            self.relay.start()

    async def stop_relay(self) -> None:
        """Stop relaying broadcasts (``SocketIOServer.stop`` and ``AppServer`` call this)."""
        relay, self.relay = self.relay, None
        if relay is not None:
            await relay.stop()

    # -- connections --------------------------------------------------------------------------

    def add(self, connection: Connection, polling: bool = False) -> None:
        """Register ``connection``; ``polling`` ones are also swept (see the class docstring)."""
        if self.loop is None or (self.relay is None and self.settings.redis_url is not None):
            self.bind()
        handler_class = type(connection.handler)
        self._connections[connection.session_id] = connection
        audience = self._audiences.get(handler_class)
        if audience is None:
            audience = self._audiences[handler_class] = {}
            self.handler_classes.setdefault(class_key(handler_class), handler_class)
        audience[connection.session_id] = connection
        if polling:
            self._pollers[connection.session_id] = connection
            if self._sweeper is None:
                self._sweeper = tornado.ioloop.PeriodicCallback(self.sweep, self.sweep_interval * 1000)
                self._sweeper.start()

    def stop_sweeping(self, connection: Connection) -> None:
        """``connection`` left polling (a v5 upgrade): it has nothing left for the sweeper."""
        if self._pollers.pop(connection.session_id, None) is not None and not self._pollers:
            if self._sweeper is not None:
                self._sweeper.stop()
                self._sweeper = None

    def keep_farewell(self, session_id: str, frames: list[Frame]) -> None:
        """Keep the last frames of a closed session whose client is between two polls."""
        self._farewells[session_id] = frames
        self._farewell_expiries.add(session_id)

    def take_farewell(self, session_id: str) -> list[Frame] | None:
        """The frames a poll for the closed session ``session_id`` should carry, once."""
        return self._farewells.pop(session_id, None)

    def get(self, session_id: str) -> Connection | None:
        return self._connections.get(session_id)

    def remove(self, connection: Connection) -> None:
        """Forget ``connection`` everywhere: its session id, its class's audience, its rooms."""
        session_id = connection.session_id
        if self._connections.get(session_id) is connection:
            del self._connections[session_id]
        audience = self._audiences.get(type(connection.handler))
        if audience is not None and audience.get(session_id) is connection:
            del audience[session_id]
            if not audience:
                del self._audiences[type(connection.handler)]
        for room in connection.rooms:  # kept on the connection: on_close may want to know
            members = self._rooms.get(room)
            if members is not None and members.pop(session_id, None) is not None and not members:
                del self._rooms[room]
        if self._pollers.get(session_id) is connection:
            del self._pollers[session_id]
        if not self._pollers and self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    # -- rooms --------------------------------------------------------------------------------

    def join(self, connection: Connection, room: str) -> None:
        if not isinstance(room, str):
            raise TypeError(f"a room is a str, not {type(room).__name__}")
        if self._connections.get(connection.session_id) is not connection:
            return  # closed (or closing): membership ended with it
        self._rooms.setdefault(room, {})[connection.session_id] = connection
        connection.rooms.add(room)

    def leave(self, connection: Connection, room: str) -> None:
        connection.rooms.discard(room)
        members = self._rooms.get(room)
        if members is not None and members.pop(connection.session_id, None) is not None and not members:
            del self._rooms[room]

    # -- broadcast ----------------------------------------------------------------------------

    def recipients(
        self, handler_class: type, rooms: frozenset[str] | None, excluded: frozenset[str]
    ) -> list[Connection]:
        """The open connections of exactly ``handler_class`` (in any of ``rooms``, if given)."""
        audience = self._audiences.get(handler_class)
        if not audience:
            return []
        if rooms is None:
            candidates: Iterable[Connection] = list(audience.values())
        else:
            chosen: dict[str, Connection] = {}
            for room in rooms:
                for session_id, connection in self._rooms.get(room, {}).items():
                    if type(connection.handler) is handler_class:
                        chosen[session_id] = connection
            candidates = chosen.values()
        if not excluded:
            return list(candidates)
        return [connection for connection in candidates if connection.session_id not in excluded]

    def deliver(
        self, handler_class: type, outgoing: Outgoing, rooms: frozenset[str] | None, excluded: frozenset[str]
    ) -> int:
        """Queue ``outgoing`` for this process's recipients and write it out; how many got it.

        It is encoded once per dialect (0.6, v5), not once per recipient; 0.6
        recipients of a broadcast they cannot receive (an event, ``bytes``)
        are skipped, with one log line.  Every recipient has the frames in
        its queue when this returns, so
        whatever is sent to them afterwards arrives after it.  The writes
        (a system call each) go ``BROADCAST_SLICE`` recipients per IOLoop
        iteration, so a broadcast to thousands never holds the loop for long.
        """
        recipients = self.recipients(handler_class, rooms, excluded)
        due: list[Connection] = []
        encoded: dict[Dialect, list[Frame] | None] = {}
        skipped = 0
        for connection in recipients:
            dialect = connection.dialect
            if dialect in encoded:
                frames = encoded[dialect]
            else:
                frames = encoded[dialect] = outgoing.frames_for(dialect)
            if frames is None:
                skipped += 1
            elif connection.enqueue_frames(frames):
                due.append(connection)
        if skipped:
            log.warning(
                "a broadcast of %s skipped %d Socket.IO 0.6 client(s): they cannot receive events or bytes",
                "bytes" if outgoing.event == "message" else f"event {outgoing.event!r}",
                skipped,
            )
        self._write_out(due, 0)
        return len(recipients) - skipped

    def _write_out(self, due: list[Connection], start: int) -> None:
        end = start + BROADCAST_SLICE
        for connection in due[start:end]:
            connection.flush()
        if end < len(due):
            tornado.ioloop.IOLoop.current().add_callback(self._write_out, due, end)

    def broadcast(
        self, handler_class: type, outgoing: Outgoing, rooms: frozenset[str] | None, excluded: frozenset[str]
    ) -> None:
        """Deliver here, and relay to the other processes; from any thread."""
        loop = self.loop
        if loop is not None and tornado.ioloop.IOLoop.current(instance=False) is not loop:
            loop.add_callback(self.broadcast, handler_class, outgoing, rooms, excluded)
            return
        self.deliver(handler_class, outgoing, rooms, excluded)
        if self.relay is not None:
            self.relay.publish(RelayedBroadcast(class_key(handler_class), outgoing, rooms, excluded))

    def _relayed(self, broadcast: RelayedBroadcast) -> None:
        handler_class = self.handler_classes.get(broadcast.handler_class)
        if handler_class is not None:
            self.deliver(handler_class, broadcast.outgoing, broadcast.rooms, broadcast.excluded)

    # -- timers and shutdown ------------------------------------------------------------------

    def sweep(self) -> None:
        now = tornado.ioloop.IOLoop.current().time()
        for connection in list(self._pollers.values()):
            connection.sweep(now)

    def stats(self) -> Stats:
        """Live counts, for a status page or a metrics exporter."""
        by_transport: dict[str, int] = {}
        queued = buffered = 0
        for connection in self._connections.values():
            by_transport[connection.protocol] = by_transport.get(connection.protocol, 0) + 1
            queued += connection.queued
            buffered += connection.buffered_bytes
        dropped = self.relay.dropped if self.relay is not None else 0
        return Stats(len(self._connections), by_transport, queued, buffered, len(self._rooms), dropped)

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


def _mounted_handler_classes(router: Any) -> Iterable[type]:
    """The ``handler_class`` of every tornad_io transport rule under ``router``."""
    for rule in getattr(router, "rules", ()):
        handler_class = (rule.target_kwargs or {}).get("handler_class")
        if isinstance(handler_class, type):
            yield handler_class
        if isinstance(rule.target, tornado.routing.Router):
            yield from _mounted_handler_classes(rule.target)


class ApplicationRoute(tornado.routing.Router, abc.ABC):
    """A rule target that can only serve once it knows its application (a Tornado router is not told).

    :func:`bind_routes` replaces it, in each application's own ``Rule``
    objects, with what :meth:`bound_to` returns for that application.
    """

    #: Whether :func:`bind_routes` may copy the bound rule ahead of the ``routes()`` rule that nests it:
    #: true when no earlier rule in there takes a URL this rule's matcher matches (then the copy routes
    #: exactly the requests the nested rule did, with one router and one regular expression less).
    hoistable: ClassVar[bool] = False

    @abc.abstractmethod
    def bound_to(
        self, application: tornado.web.Application, registry: Registry, target_kwargs: dict[str, Any] | None
    ) -> tornado.routing.Router | None:
        """This route bound to ``application``; ``None`` if it is bound already."""


def bind_routes(application: tornado.web.Application, registry: Registry) -> None:
    """Bind every :class:`ApplicationRoute` in ``application``'s rules (host rules included) to it.

    A bound hoistable route inside a ``routes()`` rule (the one whose matcher
    names its ``resource``) also gets a rule of its own just before that
    rule: polls and sends are most requests, and each nested router costs
    every one of them a ``find_handler`` and the outer regular expression.
    """

    def walk(router: Any) -> None:
        rules = getattr(router, "rules", None)
        if not rules:
            return
        index = 0
        while index < len(rules):
            rule = rules[index]
            target = rule.target
            if isinstance(target, ApplicationRoute):
                bound = target.bound_to(application, registry, rule.target_kwargs)
                if bound is not None:
                    rule.target = bound
            elif isinstance(target, tornado.routing.Router) and not isinstance(target, tornado.web.Application):
                walk(target)
                if isinstance(getattr(rule.matcher, "resource", None), str):
                    index += _hoist(application, rules, index, target)
            index += 1

    walk(application.default_router)


def _hoist(
    application: tornado.web.Application, rules: list[tornado.routing.Rule], index: int, nested: Any
) -> int:
    """Put a copy of ``nested``'s hoistable rules bound to ``application`` before ``rules[index]``, once.

    Returns how many were put there.
    """
    present = {id(rule.target) for rule in rules[:index]}
    copies = [
        tornado.routing.Rule(rule.matcher, rule.target)  # (its target_kwargs are in the bound route already)
        for rule in getattr(nested, "rules", ())
        if isinstance(rule.target, ApplicationRoute)
        and rule.target.hoistable
        and getattr(rule.target, "application", None) is application
        and id(rule.target) not in present
    ]
    rules[index:index] = copies
    return len(copies)


def registry_for(application: tornado.web.Application) -> Registry:
    """The registry of ``application``, created on first use (its settings are checked then).

    Creating it also makes :class:`~tornad_io.unrouted.UnroutedHandler` the
    application's ``default_handler_class`` if it has none, and binds the
    application's polling routes to it (:func:`bind_routes`).
    """
    registry = _registries.get(application)
    if registry is None:
        mounted = list(_mounted_handler_classes(application.wildcard_router))
        registry = _registries[application] = Registry(Settings.from_application(application.settings), mounted)
        unrouted.install(application)  # a 404 that says so when a page's resource matches no mount
        bind_routes(application, registry)
    return registry


def registries_serving(handler_class: type) -> list[Registry]:
    """The registries of the applications in this process that mount ``handler_class``."""
    key = class_key(handler_class)
    return [registry for registry in list(_registries.values()) if registry.handler_classes.get(key) is handler_class]


def stats(application: tornado.web.Application) -> Stats:
    """Live counts of ``application``'s connections: per transport, queues, rooms and the relay."""
    return registry_for(application).stats()


def running_loop_registries(candidates: list[Registry]) -> list[Registry]:
    """Those of ``candidates`` served by the IOLoop running in this thread (or not yet bound)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return candidates
    here = tornado.ioloop.IOLoop.current()
    return [registry for registry in candidates if registry.loop is None or registry.loop is here]
