"""One Socket.IO session, whatever transport carries it and however many requests it spans.

A :class:`Connection` owns everything that outlives a single HTTP request:
the user's handler object, the outbound queue, the inbound queue, the
heartbeat and close timers, and the one close path.  Transports (websocket,
polling, streaming) only move payloads between the wire and a connection:
they :meth:`~Connection.attach` when a request can carry data to the client,
:meth:`~Connection.feed` what the client sent, and report
:meth:`~Connection.detach` or :meth:`~Connection.transport_lost`.

Life cycle::

    OPENING --on_open accepts--> OPEN --any close--> CLOSED
       \\--on_open refuses or raises-------------------^

While OPENING, the session id is the first frame of the outbound queue and
whatever ``on_open`` sends queues behind it; nothing is written to the client
until ``on_open`` (possibly a coroutine) has finished, so a refused client
never receives an id.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import tornado.httputil
import tornado.ioloop
import tornado.web

from tornad_io import codec
from tornad_io.beaker_session import discard_session
from tornad_io.registry import Registry, new_session_id

if TYPE_CHECKING:
    import beaker.session

__all__ = ["Connection", "Handler", "HandlerFactory", "State", "Transport", "TransportKind"]

log = logging.getLogger(__name__)


class State(enum.Enum):
    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"


class Outcome(enum.Enum):
    """How a user hook ended."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    ERROR = "error"


class TransportKind(enum.Enum):
    """How a transport carries server-to-client data, which decides its liveness rules."""

    #: websocket, flashsocket: one socket both ways; heartbeats; gone means closed.
    SOCKET = "socket"
    #: htmlfile, xhr-multipart: one long response; heartbeats; gone means closed.
    STREAM = "stream"
    #: xhr-polling, jsonp-polling: one response per payload; a session survives between polls.
    POLL = "poll"


class Handler(Protocol):
    """What a connection calls on the application's object (``SocketIOHandler`` is one)."""

    def on_open(self, *args: Any, **kwargs: Any) -> Any: ...

    def on_message(self, message: Any) -> Any: ...

    def on_close(self) -> Any: ...


#: Makes the application's object for a new connection: ``SocketIOHandler`` subclasses are these.
HandlerFactory = Callable[["Connection"], Handler]


class Transport(Protocol):
    """What a connection needs from the request currently carrying it to the client."""

    @property
    def protocol(self) -> str:
        """The transport's protocol name, e.g. ``"xhr-polling"``."""

    @property
    def kind(self) -> TransportKind:
        """Which liveness rules apply."""

    def push_payload(self, payload: str) -> None:
        """Write one payload to the client (finishing the response, for a poll).

        Must not raise; a transport that finds its wire dead reports
        :meth:`Connection.transport_lost` instead.
        """

    def terminate(self, reason: str) -> None:
        """End the wire because the connection closed, so the client notices."""


class Connection:
    """The server side of one Socket.IO session."""

    def __init__(
        self,
        handler_class: HandlerFactory,
        registry: Registry,
        application: tornado.web.Application,
        request: tornado.httputil.HTTPServerRequest,
        protocol: str,
    ) -> None:
        self.session_id = new_session_id(registry.settings.worker_tag)
        self.registry = registry
        self.settings = registry.settings
        self.application = application
        self.request = request
        self.protocol = protocol
        self.state = State.OPENING
        self.close_reason: str | None = None
        self.beaker_session: beaker.session.Session | None = None
        self._outbox: list[str] = [codec.encode_frame(self.session_id)]
        self._inbox: deque[Any] = deque()
        self._busy = True  # on_open runs first; messages wait behind it
        self._transport: Transport | None = None
        self._loop = tornado.ioloop.IOLoop.current()
        #: Loop time since when no request carries the session (polling between polls).
        self.idle_since: float | None = None
        self._attached_at = self._loop.time()
        self._beat_timer: object | None = None
        self._beats = 0
        self._awaited_echo: str | None = None
        self.handler: Handler = handler_class(self)

    def __repr__(self) -> str:
        return f"<Connection {self.short_id} {self.protocol} {self.state.value}>"

    @property
    def short_id(self) -> str:
        """The first 8 characters of the session id, for log lines."""
        return self.session_id[:8]

    # -- opening ------------------------------------------------------------------------

    def start(self, transport: Transport, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Register, attach the handshake's transport and run ``on_open``."""
        self.registry.add(self)
        self._transport = transport
        self._attached_at = self._loop.time()
        self._call_hook("on_open", self.handler.on_open, args, kwargs, self._opened)

    def _opened(self, outcome: Outcome) -> None:
        if self.state is not State.OPENING:
            return  # closed while on_open was running (client went away)
        if outcome is not Outcome.ACCEPTED:
            self.close(outcome.value)
            return
        self.state = State.OPEN
        self._busy = False
        log.info("open %s %s from %s", self.protocol, self.short_id, self.request.remote_ip)
        self._start_heartbeats()
        if self._transport is not None:
            self._flush()
        self._drain()

    # -- client to server ---------------------------------------------------------------

    def feed(self, payload: str) -> None:
        """Decode a payload the client sent and :meth:`receive` its messages.

        Raises :class:`~tornad_io.codec.ProtocolError` (and delivers nothing)
        when the payload is malformed.
        """
        self.receive(codec.decode_payload(payload, max_frame=self.settings.max_message_size))

    def receive(self, messages: list[codec.Message]) -> None:
        """Take decoded client messages: heartbeat echoes are consumed, the rest delivered in order."""
        if self.state is State.CLOSED:
            log.debug("dropping a payload for closed connection %s", self.short_id)
            return
        inbox = self._inbox
        for message in messages:
            if isinstance(message, codec.Heartbeat):
                self._heartbeat_echoed(message.number)
            elif isinstance(message, codec.Json):
                inbox.append(message.value)
            else:
                inbox.append(message)
        if not self._busy:
            self._drain()

    def _drain(self) -> None:
        """Hand queued messages to ``on_message`` one at a time, awaiting coroutines between them."""
        inbox = self._inbox
        on_message = self.handler.on_message
        while inbox and self.state is State.OPEN:
            message = inbox.popleft()
            try:
                result = on_message(message)
            except Exception:
                log.exception("on_message of %s raised; the connection goes on", self.short_id)
                continue
            if inspect.isawaitable(result):
                self._busy = True
                asyncio.ensure_future(result).add_done_callback(self._message_done)
                return

    def _message_done(self, future: asyncio.Future[Any]) -> None:
        self._busy = False
        if not future.cancelled() and future.exception() is not None:
            log.error(
                "on_message of %s raised; the connection goes on",
                self.short_id,
                exc_info=future.exception(),
            )
        self._drain()

    # -- server to client ---------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Queue one message and write it at once if a transport can carry it."""
        self.send_frame(codec.encode_message(message))

    def send_frame(self, frame: str) -> None:
        """:meth:`send` for a message already framed (a broadcast encodes once for everyone)."""
        transport = self._transport
        if transport is not None and self.state is State.OPEN and not self._outbox:
            transport.push_payload(frame)  # the common case: straight through, nothing queued
            return
        if self.state is State.CLOSED:
            log.debug("send on closed connection %s ignored", self.short_id)
            return
        self._outbox.append(frame)
        if transport is not None and self.state is State.OPEN:
            self._flush()

    def _flush(self) -> None:
        if not self._outbox or self._transport is None:
            return
        payload = "".join(self._outbox)
        self._outbox.clear()
        self._transport.push_payload(payload)

    @property
    def queued(self) -> int:
        """Frames waiting for a transport."""
        return len(self._outbox)

    # -- transports come and go ---------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        """A new request can carry data to the client: flush the queue into it.

        A poll arriving while another is held answers the older one (empty)
        first, so no request is left hanging and nothing is sent twice.
        """
        if self.state is State.CLOSED:
            transport.terminate("closed")
            return
        previous = self._transport
        if previous is not None and previous is not transport:
            self._transport = None
            previous.push_payload("")
        self.idle_since = None
        self._transport = transport
        self._attached_at = self._loop.time()
        if self.state is State.OPEN:
            self._start_heartbeats()
            self._flush()

    def detach(self, transport: Transport) -> None:
        """``transport`` finished its response (a poll was answered); wait for the next one."""
        if self._transport is not transport:
            return
        self._transport = None
        if self.state is not State.CLOSED and transport.kind is TransportKind.POLL:
            self.idle_since = self._loop.time()

    def transport_lost(self, transport: Transport) -> None:
        """The client's end of ``transport`` went away."""
        if self._transport is not transport:
            return
        if transport.kind is TransportKind.POLL:
            self.detach(transport)  # a poll may come back within the close timeout
        else:
            self._transport = None
            self.close("client gone")

    def sweep(self, now: float) -> None:
        """Apply the polling timers; the registry's sweeper calls this for every connection.

        A poll held for ``socket_io_poll_timeout`` is answered empty (the
        client gives up on one after 25 s); a polling session that no request
        has carried for ``socket_io_close_timeout`` ends.  One periodic sweep
        instead of two timers per poll keeps the poll path cheap.
        """
        transport = self._transport
        if transport is None:
            if self.idle_since is not None and now - self.idle_since >= self.settings.close_timeout:
                self.close("poll timeout")
        elif (
            transport.kind is TransportKind.POLL
            and self.state is State.OPEN
            and now - self._attached_at >= self.settings.poll_timeout
        ):
            transport.push_payload("")

    # -- heartbeats (socket and stream transports) ---------------------------------------

    def _start_heartbeats(self) -> None:
        transport = self._transport
        if transport is None or transport.kind is TransportKind.POLL or self._beat_timer is not None:
            return
        self._beat_timer = self._loop.call_later(self.settings.heartbeat_interval, self._beat)

    def _beat(self) -> None:
        self._beats += 1
        self._awaited_echo = str(self._beats)
        self._beat_timer = self._loop.call_later(
            self.settings.heartbeat_timeout, self.close, "heartbeat missed"
        )
        self._outbox.append(codec.encode_heartbeat(self._beats))
        self._flush()

    def _heartbeat_echoed(self, number: str) -> None:
        if self._awaited_echo is None or number != self._awaited_echo:
            return  # stale, early or invented: only the latest beat counts
        self._awaited_echo = None
        self._stop_heartbeats()
        self._beat_timer = self._loop.call_later(self.settings.heartbeat_interval, self._beat)

    def _stop_heartbeats(self) -> None:
        if self._beat_timer is not None:
            self._loop.remove_timeout(self._beat_timer)
            self._beat_timer = None

    # -- the one close path -------------------------------------------------------------

    def close(self, reason: str = "server close") -> None:
        """End the session: timers, queues, registry, transport; then ``on_close`` once.

        Safe to call any number of times from anywhere; ``on_close`` runs on a
        later IOLoop iteration, never inside the caller (a ``send`` loop over
        a set that ``on_close`` edits stays safe).
        """
        if self.state is State.CLOSED:
            return
        was_open = self.state is State.OPEN
        self.state = State.CLOSED
        self.close_reason = reason
        self.idle_since = None
        self._stop_heartbeats()
        self._outbox.clear()
        self._inbox.clear()
        self.registry.remove(self)
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.terminate(reason)
        if was_open:
            log.info("close %s %s from %s (%s)", self.protocol, self.short_id, self.request.remote_ip, reason)
            self._loop.add_callback(self._call_hook, "on_close", self.handler.on_close, (), {}, self._closed)
        else:
            log.info("not opened %s %s from %s (%s)", self.protocol, self.short_id, self.request.remote_ip, reason)
            self._closed(Outcome.ACCEPTED)

    def _closed(self, _: Outcome) -> None:
        session, self.beaker_session = self.beaker_session, None
        if session is not None and not self.settings.keep_sessions:
            try:
                discard_session(session)
            except Exception:
                log.exception("could not remove the Beaker session of %s", self.short_id)

    # -- running user hooks -------------------------------------------------------------

    def _call_hook(
        self,
        name: str,
        hook: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        then: Callable[[Outcome], None],
    ) -> None:
        """Run a hook, plain or coroutine, then pass ``then`` how it ended.

        Returning ``False`` is ``on_open``'s way to refuse a connection; an
        exception is logged with its traceback and affects only this connection.
        """
        try:
            result = hook(*args, **kwargs)
        except Exception:
            log.exception("%s of %s raised", name, self.short_id)
            then(Outcome.ERROR)
            return
        if not inspect.isawaitable(result):
            then(Outcome.REFUSED if result is False else Outcome.ACCEPTED)
            return

        def finished(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                then(Outcome.ERROR)
            elif future.exception() is not None:
                log.error("%s of %s raised", name, self.short_id, exc_info=future.exception())
                then(Outcome.ERROR)
            else:
                then(Outcome.REFUSED if future.result() is False else Outcome.ACCEPTED)

        asyncio.ensure_future(result).add_done_callback(finished)
