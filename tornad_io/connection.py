"""One Socket.IO session, whatever transport carries it and however many requests it spans.

A :class:`Connection` owns everything that outlives a single HTTP request:
the user's handler object, the outbound queue, the inbound queue, its
heartbeat (a wait in the registry's shared timer), and the one close path.
Transports (websocket, polling, streaming) only move payloads between the
wire and a connection: they :meth:`~Connection.attach` when a request can
carry data to the client, :meth:`~Connection.feed` what the client sent,
and report :meth:`~Connection.detach` or :meth:`~Connection.transport_lost`.

Life cycle (``TRANSITIONS`` is the whole list)::

    OPENING --on_open accepts-----------> OPEN --close()--> CLOSED (on_close runs)
       |  \\--on_open refuses or raises----------------------> CLOSED (no on_close)
       \\--close() while on_open runs--> ABANDONED --on_open returns--> CLOSED
                                                     (on_close runs if it accepted)

While OPENING, the session id is the first frame of the outbound queue and
whatever ``on_open`` sends queues behind it; nothing is written to the client
until ``on_open`` (possibly a coroutine) has finished, so a refused client
never receives an id.

A v5 connection (Socket.IO v5 on Engine.IO v4, see :mod:`tornad_io.dialects`)
starts one step earlier, in CONNECTING: the Engine.IO session is open (its
handshake written, pings flowing) but the client has not yet sent its
CONNECT, so ``on_open`` has not run.  The CONNECT moves it to OPENING, with
the CONNECT answer first in the queue; a refusal answers CONNECT_ERROR and
goes back to CONNECTING, as node's server does (the client then closes, or
connects again).  CONNECTING ends in CLOSED without ``on_close``.

Every queue is bounded, because a client can be slow or hostile:

* outbound: frames wait in the outbox only while no transport can take them
  (between polls) or while the transport is still writing the previous
  payload, and are then written as one payload.  More than
  ``socket_io_max_buffer_size`` bytes waiting closes the connection as a
  ``slow client``; what it held is dropped at once, never write by write.
* inbound: messages wait in the inbox while ``on_message`` is busy.  Over
  ``socket_io_max_pending_messages`` messages (or ``socket_io_max_message_size``
  bytes), :meth:`Connection.until_readable` gives transports a future to wait
  on before reading more, which pushes back on the client through TCP.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol

import tornado.httputil
import tornado.ioloop
import tornado.web

from tornad_io import codec, dialects, engineio, socketio5
from tornad_io.beaker_session import discard_session
from tornad_io.dialects import SOCKET_IO_06, Dialect, Frame
from tornad_io.registry import Registry, current_registry, new_session_id
from tornad_io.timers import FifoTimer, Wait

if TYPE_CHECKING:
    import beaker.session

__all__ = [
    "DELIVERY_BATCH",
    "SLOW_CLIENT",
    "TRANSITIONS",
    "Connection",
    "Handler",
    "HandlerFactory",
    "State",
    "Transport",
    "TransportKind",
]

log = logging.getLogger(__name__)

#: Messages handed to ``on_message`` before yielding to the IOLoop, so that one
#: large payload cannot keep other connections waiting.
DELIVERY_BATCH: Final = 64

#: The close reason of a connection whose client does not read what it is sent.
SLOW_CLIENT: Final = "slow client"


class State(enum.Enum):
    #: v5 only: the Engine.IO session is open; the client's CONNECT has not arrived.
    CONNECTING = "connecting"
    #: ``on_open`` is running; nothing is written to the client yet.
    OPENING = "opening"
    #: The client left (or ``close()`` was called) while ``on_open`` was still running.
    ABANDONED = "abandoned"
    OPEN = "open"
    CLOSED = "closed"


#: Every state change a connection can make; anything else is a bug.
TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.CONNECTING: frozenset({State.OPENING, State.CLOSED}),
    State.OPENING: frozenset({State.OPEN, State.ABANDONED, State.CLOSED, State.CONNECTING}),
    State.ABANDONED: frozenset({State.CLOSED}),
    State.OPEN: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


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


# The members the message path tests, as module names: on Python 3.11 ``State.OPEN`` goes through
# ``EnumType.__getattr__``'s slow lookup (about 150 ns, ten times a global's), a dozen times per message.
_CONNECTING: Final = State.CONNECTING
_OPENING: Final = State.OPENING
_ABANDONED: Final = State.ABANDONED
_OPEN: Final = State.OPEN
_CLOSED: Final = State.CLOSED
_POLL: Final = TransportKind.POLL


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

    def push_frames(self, frames: list[Frame]) -> asyncio.Future[None] | None:
        """Write ``frames`` to the client, as one payload (finishing the response, for a poll).

        The transport writes them before returning (or drops them with its
        wire).  An empty list means "answer now with nothing" (a poll that
        must end).  Returns the write's future when the bytes may still be
        waiting in a buffer (the connection then sends nothing more until it resolves),
        or ``None``.  Must not raise; a transport that finds its wire dead
        reports :meth:`Connection.transport_lost` instead.
        """

    def terminate(self, reason: str) -> None:
        """End the wire because the connection closed, so the client notices."""

    def abort(self) -> None:
        """Drop the wire at once, with whatever is still unwritten (a slow client)."""


class Connection:
    """The server side of one Socket.IO session."""

    # v5 only, so class-level defaults (set per instance on first use): an idle 0.6 websocket's
    # memory is mostly its instance dict.
    #: Where the CONNECT answer starts in the outbox (a refusal drops from there).
    _connect_mark = 0
    #: ``on_open``'s arguments from the handshake URL, kept for the CONNECT.
    _open_args: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
    #: The callbacks of emits that wait for the client's ack, by ack id (a dict once one is waited for).
    _acks: dict[int, Callable[..., Any]] | None = None
    _next_ack_id = 0
    #: The websocket that joined this polling session to upgrade it, until its UPGRADE (or its end).
    _probe: Transport | None = None
    #: Its probe succeeded (``3probe`` sent): polls are answered at once until the UPGRADE.
    _upgrading = False

    def __init__(
        self,
        handler_class: HandlerFactory,
        registry: Registry,
        application: tornado.web.Application,
        request: tornado.httputil.HTTPServerRequest,
        protocol: str,
        dialect: Dialect = SOCKET_IO_06,
    ) -> None:
        self.session_id = new_session_id(registry.settings.worker_tag)
        #: How messages, events and heartbeats are framed: 0.6, or v5 (which starts in CONNECTING).
        self.dialect = dialect
        self.registry = registry
        self.settings = registry.settings
        self.application = application
        self.request = request
        self.protocol = protocol
        self.state = _OPENING if dialect is SOCKET_IO_06 else _CONNECTING
        self.close_reason: str | None = None
        self.beaker_session: beaker.session.Session | None = None
        #: The rooms this connection is in (the registry keeps the other direction).
        self.rooms: set[str] = set()
        #: The POST currently sending to this session: HTTP transports take one at a time.
        self.upload: object | None = None
        self._loop = tornado.ioloop.IOLoop.current()
        self._transport: Transport | None = None
        #: Loop time since when no request carries the session (polling between polls).
        self.idle_since: float | None = None
        self._attached_at = self._loop.time()
        # Outbound: frames not yet handed to a transport, and bytes handed over but unwritten.
        # A 0.6 session id goes first; a v5 session's handshake is queued by start_engine.
        first_frame = codec.encode_frame(self.session_id) if dialect is SOCKET_IO_06 else ""
        self._outbox: list[Frame] = [first_frame] if first_frame else []
        self._outbox_size = len(first_frame)
        self._unwritten = 0
        self._writes = 0  # payloads handed over whose write has not completed
        self._writing = False  # the current transport is still writing: queue behind it
        self._lingering: set[Transport] = set()  # answered polls whose bytes are still unwritten
        # Inbound: (message, bytes it accounts for), and the future of a paused reader.
        self._inbox: deque[tuple[Any, int]] = deque()
        self._inbox_size = 0
        self._busy = True  # on_open runs first; messages wait behind it
        self._readable: asyncio.Future[None] | None = None
        # Heartbeats: this connection's wait in one of the registry's timers, and the echo awaited
        # (0.6: the heartbeat's own frame, which the client sends back; v5: a PONG's data).
        self._beat_wait: Wait | None = None
        self._awaited_echo: str | None = None
        self.handler: Handler = handler_class(self)

    def __repr__(self) -> str:
        return f"<Connection {self.short_id} {self.protocol} {self.state.value}>"

    @property
    def short_id(self) -> str:
        """The first 8 characters of the session id, for log lines."""
        return self.session_id[:8]

    def _enter(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"{self!r} cannot go from {self.state.value} to {state.value}")
        self.state = state

    # -- opening ------------------------------------------------------------------------

    def start(self, transport: Transport, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Register, attach the handshake's transport and run ``on_open``."""
        self.registry.add(self, polling=transport.kind is _POLL)
        self._transport = transport
        self._attached_at = self._loop.time()
        self._call_hook("on_open", self.handler.on_open, args, kwargs, self._opened)

    def start_engine(
        self, transport: Transport, handshake: Frame, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """v5: register, attach the handshake's transport and write the Engine.IO handshake.

        ``on_open`` runs when the client's CONNECT arrives, with ``args`` and
        ``kwargs`` (plus ``auth``, when the client sent one).
        """
        self._open_args = (args, kwargs)
        self.registry.add(self, polling=transport.kind is _POLL)
        self._transport = transport
        self._attached_at = self._loop.time()
        self._start_heartbeats()
        self._queue_engine([handshake])

    def _connect(self, connect: dialects.Connect) -> None:
        """v5: the client's CONNECT: run ``on_open``, the CONNECT answer queued ahead of what it sends."""
        if self.state is not _CONNECTING:
            log.debug("%s sent CONNECT twice; ignored", self.short_id)
            return
        self._enter(_OPENING)
        self._busy = True
        self._connect_mark = len(self._outbox)
        self.enqueue_frames(dialects.SocketIO5.connected(self.session_id))
        args, kwargs = self._open_args
        if connect.has_auth:
            kwargs = {**kwargs, "auth": connect.auth}
        self._call_hook("on_open", self.handler.on_open, args, kwargs, self._opened)

    def _refused(self, outcome: Outcome) -> None:
        """v5: answer CONNECT_ERROR in place of the CONNECT answer and whatever ``on_open`` sent."""
        self._enter(_CONNECTING)
        log.info(
            "refused %s %s from %s (on_open %s)", self.protocol, self.short_id, self.request.remote_ip, outcome.value
        )
        del self._outbox[self._connect_mark :]
        self._outbox_size = sum(map(len, self._outbox))
        self._inbox.clear()
        self._inbox_size = 0
        self._resume_reading()
        self._queue_engine(dialects.SocketIO5.refused(dialects.V5_REFUSED))

    def _opened(self, outcome: Outcome) -> None:
        if self.state is _ABANDONED:
            # The client left while on_open ran; finish the close it asked for.
            self._enter(_CLOSED)
            accepted = outcome is Outcome.ACCEPTED
            log.info(
                "%s %s %s from %s (%s while on_open ran)",
                "close" if accepted else "not opened",
                self.protocol,
                self.short_id,
                self.request.remote_ip,
                self.close_reason,
            )
            self._finish_close(run_on_close=accepted)
            return
        if outcome is not Outcome.ACCEPTED:
            if self.dialect is SOCKET_IO_06:
                self._close(outcome.value, run_on_close=False)
            else:
                self._refused(outcome)
            return
        self._enter(_OPEN)
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
        when the payload is malformed or holds more than ``socket_io_max_frames``
        frames.
        """
        if payload == self._awaited_echo and self.state is _OPEN:
            self._heartbeat_echoed(payload)  # the client's echo, alone in its payload: nothing to decode
            return
        settings = self.settings
        messages = codec.decode_payload(payload, settings.max_message_size, settings.max_frames)
        self.receive(messages, len(payload))

    def receive(self, messages: list[codec.Message], size: int = 0) -> None:
        """Take decoded client messages: heartbeat echoes are consumed, the rest delivered in order.

        ``size`` is the payload's length, counted against the inbound bound
        until its last message has been delivered.
        """
        if self.state is not _OPEN and self.state is not _OPENING:
            log.debug("dropping a payload for closed connection %s", self.short_id)
            return
        entries: list[tuple[Any, int]] = []
        for message in messages:
            if type(message) is str:  # (most messages: no isinstance tests)
                entries.append((message, 0))
            elif isinstance(message, codec.Heartbeat):
                self._heartbeat_echoed(codec.encode_heartbeat(message.number))
            elif isinstance(message, codec.Json):
                entries.append((message.value, 0))
            else:
                entries.append((message, 0))
        self._take(entries, size)

    def _take(self, entries: list[tuple[Any, int]], size: int) -> None:
        if entries and size:
            # The payload's bytes count until its last message is delivered.
            entries[-1] = (entries[-1][0], size)
            self._inbox_size += size
        self._inbox.extend(entries)
        if not self._busy:
            self._drain()

    def feed_engine(self, packets: list[engineio.Packet], size: int = 0) -> None:
        """v5: the client's Engine.IO packets, in order (pongs, Socket.IO packets, a close).

        Raises :class:`~tornad_io.codec.ProtocolError` for a packet that is not
        valid Socket.IO; what came before it in ``packets`` is dropped too, as
        the transport then ends the session.
        """
        if self.state is _CLOSED or self.state is _ABANDONED:
            log.debug("dropping packets for closed connection %s", self.short_id)
            return
        dialect = self.dialect
        assert isinstance(dialect, dialects.SocketIO5)
        entries: list[tuple[Any, int]] = []
        for packet in packets:
            kind = packet.type
            if kind is engineio.PacketType.MESSAGE:
                try:
                    incoming = dialect.receive(packet.data)
                except socketio5.SocketIOPacketError as exc:
                    raise codec.ProtocolError(exc.reason, 0) from None
                if incoming is None:
                    continue
                if isinstance(incoming, str):
                    self._queue_engine([incoming])  # a CONNECT to another namespace, refused
                elif isinstance(incoming, dialects.Connect):
                    self._connect(incoming)
                elif isinstance(incoming, dialects.Disconnect):
                    self.close("client disconnect")
                    return
                elif self.state is _CONNECTING:
                    log.debug("%s sent a packet before CONNECT; ignored", self.short_id)
                else:
                    entries.append((incoming, 0))
            elif kind is engineio.PacketType.PONG:
                self._heartbeat_echoed(packet.data if isinstance(packet.data, str) else "")
            elif kind is engineio.PacketType.CLOSE:
                self.close("client close")
                return
            elif kind is engineio.PacketType.OPEN:
                raise codec.ProtocolError("a client does not send OPEN", 0)
            # PING, NOOP and UPGRADE mean nothing outside the transports' upgrade.
        self._take(entries, size)

    def until_readable(self) -> asyncio.Future[None] | None:
        """``None`` if the client may send more now; else a future that resolves when it may.

        Transports wait on it before reading the next payload (a websocket
        message, the answer to a POST), so a client faster than its
        ``on_message`` is slowed down instead of filling the server's memory.
        """
        if not self._over_inbound_bound():
            return None
        if self._readable is None:
            log.debug(
                "pausing reads from %s: %d messages wait for on_message (socket_io_max_pending_messages is %d)",
                self.short_id,
                len(self._inbox),
                self.settings.max_pending_messages,
            )
            self._readable = asyncio.get_running_loop().create_future()
        return self._readable

    def _over_inbound_bound(self) -> bool:
        settings = self.settings
        return len(self._inbox) > settings.max_pending_messages or self._inbox_size > settings.max_message_size

    def _resume_reading(self) -> None:
        readable, self._readable = self._readable, None
        if readable is not None and not readable.done():
            readable.set_result(None)

    def _drain(self) -> None:
        """Hand queued messages to ``on_message`` in order, a batch at a time.

        A coroutine is awaited before the next message; after
        ``DELIVERY_BATCH`` messages the rest wait for a later IOLoop
        iteration, so one payload of many frames cannot stall other clients.
        """
        inbox = self._inbox
        if inbox:
            hook_context = current_registry.set(self.registry)
            try:
                self._deliver_batch(inbox, self.handler.on_message, DELIVERY_BATCH)
            finally:
                current_registry.reset(hook_context)
        if self._readable is not None and not self._over_inbound_bound():
            self._resume_reading()

    def _deliver_batch(self, inbox: deque[tuple[Any, int]], on_message: Callable[[Any], Any], budget: int) -> None:
        while inbox and self.state is _OPEN:
            if not budget:
                self._busy = True
                self._loop.add_callback(self._continue_drain)
                break
            budget -= 1
            message, size = inbox.popleft()
            if size:
                self._inbox_size -= size
            try:
                if type(message) is dialects.Event or type(message) is dialects.Ack:
                    result = self._dispatch(message)
                else:
                    result = on_message(message)
            except Exception:
                log.exception("%s of %s raised; the connection goes on", _hook_name(message), self.short_id)
                continue
            if result is not None and inspect.isawaitable(result):  # (most hooks return None: no ABC check)
                self._busy = True
                asyncio.ensure_future(result).add_done_callback(functools.partial(self._message_done, message))
                break

    def _dispatch(self, item: dialects.Event | dialects.Ack) -> Any:
        """v5: hand an event to its hook (``message`` to ``on_message``) or an ack to its callback.

        When the client waits for an ack, the hook's result (awaited first,
        when it is a coroutine) is the answer.
        """
        if isinstance(item, dialects.Ack):
            callback = self._acks.pop(item.ack_id, None) if self._acks is not None else None
            if callback is None:
                log.debug("%s acked %d, which nothing awaits", self.short_id, item.ack_id)
                return None
            return callback(*item.args)
        args = item.args
        if item.name == "message":
            result = self.handler.on_message(args[0] if len(args) == 1 else (list(args) if args else None))
        else:
            on_event = getattr(self.handler, "on_event", None)
            if on_event is None:
                log.debug("%s: no on_event for %r", self.short_id, item.name)
                result = None
            else:
                result = on_event(item.name, *args)
        if item.ack_id is None:
            return result
        if inspect.isawaitable(result):
            return self._ack_when_done(result, item.ack_id)
        self._send_ack(item.ack_id, result)
        return None

    async def _ack_when_done(self, result: Any, ack_id: int) -> None:
        self._send_ack(ack_id, await result)

    def _send_ack(self, ack_id: int, value: Any) -> None:
        """The ack of a hook that returned ``value``: ``None`` no arguments, a tuple several, else one."""
        args = [] if value is None else list(value) if isinstance(value, tuple) else [value]
        try:
            frames = self.dialect.ack(ack_id, args)
        except (TypeError, ValueError):
            log.exception("the ack of %s cannot be sent (its arguments are not JSON)", self.short_id)
            return
        self.send_frames(frames)

    def _continue_drain(self) -> None:
        self._busy = False
        self._drain()

    def _message_done(self, message: Any, future: asyncio.Future[Any]) -> None:
        self._busy = False
        if not future.cancelled() and future.exception() is not None:
            log.error(
                "%s of %s raised; the connection goes on",
                _hook_name(message),
                self.short_id,
                exc_info=future.exception(),
            )
        self._drain()

    # -- server to client ---------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Queue one message and write it at once if a transport can carry it."""
        self.send_frames(self.dialect.message(message))

    def emit(self, event: str, args: tuple[Any, ...], callback: Callable[..., Any] | None = None) -> None:
        """v5: send an event; ``callback`` gets the client's ack arguments.  ``TypeError`` on 0.6."""
        ack_id = None
        if callback is not None and (self.state is _CLOSED or self.state is _ABANDONED):
            self.dialect.event(event, args, None)  # the same TypeError on 0.6 as before the close
            log.debug("emit on closed connection %s ignored", self.short_id)
            return
        if callback is not None:
            ack_id = self._next_ack_id
            frames = self.dialect.event(event, args, ack_id)
            self._next_ack_id += 1
            acks = self._acks
            if acks is None:
                acks = self._acks = {}
            acks[ack_id] = callback
            if len(acks) > self.settings.max_pending_acks:
                oldest = next(iter(acks))
                del acks[oldest]
                log.warning(
                    "%s: the client has not acked %d emits; the oldest callback (ack %d) is dropped "
                    "(socket_io_max_pending_acks is %d)",
                    self.short_id,
                    len(acks) + 1,
                    oldest,
                    self.settings.max_pending_acks,
                )
        else:
            frames = self.dialect.event(event, args, None)
        self.send_frames(frames)

    def send_frames(self, frames: list[Frame]) -> None:
        """:meth:`send` for a message already framed (a broadcast encodes once for everyone)."""
        if self.state is _OPEN and self._transport is not None and not self._writing and not self._outbox:
            self._push(frames)  # the common case: straight through, nothing queued
        elif self.enqueue_frames(frames):
            self._flush()

    def enqueue_frames(self, frames: list[Frame]) -> bool:
        """Queue ``frames`` without writing them (a broadcast); ``True`` if :meth:`flush` should follow."""
        state = self.state
        if state is not _OPEN and state is not _OPENING:
            log.debug("send on %s connection %s ignored", state.value, self.short_id)
            return False
        return self._queue(frames)

    def _queue_engine(self, frames: list[Frame]) -> None:
        """v5: queue Engine.IO traffic (handshake, pings, refusals), written even before CONNECT."""
        if self.state is _CLOSED or self.state is _ABANDONED:
            return
        if self._queue(frames) and self.state is not _OPENING:
            self._flush()

    def _queue(self, frames: list[Frame]) -> bool:
        self._outbox.extend(frames)
        for frame in frames:
            self._outbox_size += len(frame)
        if self._outbox_size + self._unwritten > self.settings.max_buffer_size:
            self._overflow()
            return False
        return self._transport is not None and not self._writing and self.state is not _OPENING

    def flush(self) -> None:
        """Write what is queued, if a transport can take it now."""
        if self.state is _OPEN or self.state is _CONNECTING:
            self._flush()

    def _flush(self) -> None:
        if not self._outbox or self._transport is None or self._writing:
            return
        frames, self._outbox = self._outbox, []
        self._outbox_size = 0
        self._push(frames)

    def _push(self, frames: list[Frame]) -> None:
        """Hand ``frames`` to the transport; follow its write if it could not finish at once."""
        transport = self._transport
        assert transport is not None
        pending = transport.push_frames(frames)
        if pending is None or pending.done():
            return
        size = len(frames[0]) if len(frames) == 1 else sum(map(len, frames))
        self._unwritten += size
        self._writes += 1
        if transport.kind is _POLL:
            self._lingering.add(transport)
        elif transport is self._transport:
            self._writing = True
        pending.add_done_callback(functools.partial(self._written, transport, size))
        if self._writes > 1 and self._unwritten > self.settings.max_buffer_size:
            self._overflow()  # answered polls pile up unread (a client that never reads them)

    def _written(self, transport: Transport, size: int, _: asyncio.Future[None]) -> None:
        self._unwritten -= size
        self._writes -= 1
        self._lingering.discard(transport)
        if transport is self._transport and self._writing:
            self._writing = False
            if self.state is _OPEN or self.state is _CONNECTING:
                self._flush()

    def _overflow(self) -> None:
        log.warning(
            "closing %s %s from %s: %d bytes wait to be written to a client that does not read them; "
            "socket_io_max_buffer_size is %d",
            self.protocol,
            self.short_id,
            self.request.remote_ip,
            self._outbox_size + self._unwritten,
            self.settings.max_buffer_size,
        )
        self.close(SLOW_CLIENT)

    @property
    def queued(self) -> int:
        """Frames waiting for a transport."""
        return len(self._outbox)

    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting to be written to the client: queued frames plus unfinished writes."""
        return self._outbox_size + self._unwritten

    # -- transports come and go ---------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        """A new request can carry data to the client: flush the queue into it.

        A poll arriving while another is held answers the older one (empty)
        first, so no request is left hanging and nothing is sent twice.
        """
        state = self.state
        if state is _CLOSED or state is _ABANDONED:
            transport.terminate(self.close_reason or "closed")
            return
        previous = self._transport
        if previous is not None and previous is not transport:
            self._transport = None
            self._writing = False
            previous.push_frames([])
        self.idle_since = None
        self._transport = transport
        self._attached_at = self._loop.time()
        if state is _OPEN or state is _CONNECTING:
            self._start_heartbeats()
            self._flush()
            if self._upgrading and self._transport is transport and transport.kind is _POLL:
                transport.push_frames([])  # upgrading: the client must not wait on this poll (see release_poll)

    def join_probe(self, probe: Transport) -> None:
        """v5: the websocket ``probe`` joined this polling session to upgrade it.

        One probe at a time: a newer one replaces (and closes) the older, so a
        client cannot hold any number of websockets on one session; the
        session's end closes it too.
        """
        previous, self._probe = self._probe, probe
        self._upgrading = False
        if previous is not None and previous is not probe:
            log.info("%s: a new upgrade probe replaces the one still open", self.short_id)
            previous.terminate("replaced by a newer upgrade probe")

    def release_poll(self, probe: Transport) -> None:
        """v5, ``probe`` answered ``3probe``: answer the held poll now, so the client can switch.

        Until the UPGRADE (or the probe's end), every poll is answered at once
        too: a poll the client sent before it read ``3probe`` would otherwise be
        held for ``socket_io_poll_timeout``, the client's switch waiting on it.
        """
        if probe is not self._probe:
            return  # replaced by a newer probe
        self._upgrading = True
        transport = self._transport
        if transport is not None and transport.kind is _POLL:
            transport.push_frames([])

    def upgrade(self, transport: Transport) -> None:
        """v5: the client moved this session from polling to ``transport`` (a websocket)."""
        if transport is not self._probe:
            log.debug("%s: UPGRADE from a websocket that is not its probe; ignored", self.short_id)
            return
        self._probe = None
        self._upgrading = False
        self.protocol = transport.protocol
        self.registry.stop_sweeping(self)
        self.attach(transport)

    def detach(self, transport: Transport) -> None:
        """``transport`` finished its response (a poll was answered); wait for the next one."""
        if self._transport is not transport:
            return
        self._transport = None
        self._writing = False
        if transport.kind is _POLL and self.state is not _CLOSED:
            self.idle_since = self._loop.time()

    def transport_lost(self, transport: Transport) -> None:
        """The client's end of ``transport`` went away."""
        self._lingering.discard(transport)
        if transport is self._probe:
            self._probe = None  # the upgrade failed: polls are held again
            self._upgrading = False
        if self._transport is not transport:
            return
        if transport.kind is _POLL and (self.state is _OPEN or self.dialect is not SOCKET_IO_06):
            self.detach(transport)  # a poll may come back within the close timeout
        else:
            # A socket or stream is the session; and a handshake poll that leaves while
            # on_open runs took the only copy of the session id with it.
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
                self.close("close timeout")
        elif (
            transport.kind is _POLL
            and (self.state is _OPEN or self.state is _CONNECTING)
            and now - self._attached_at >= self.settings.poll_timeout
        ):
            transport.push_frames([])

    # -- heartbeats (0.6: socket and stream transports; v5: every transport) ------------------

    def _timers(self) -> tuple[FifoTimer[Connection], FifoTimer[Connection]]:
        """The registry's timers for this dialect: when to beat, and how long the echo may take."""
        registry = self.registry
        if self.dialect is SOCKET_IO_06:
            return registry.beats, registry.echo_deadlines
        return registry.pings, registry.pong_deadlines

    def _start_heartbeats(self) -> None:
        if self._beat_wait is not None:
            return
        if self.dialect is SOCKET_IO_06:
            transport = self._transport
            if transport is None or transport.kind is _POLL:
                return
        self._beat_wait = self._timers()[0].add(self)

    def beat(self) -> None:
        """Send a heartbeat (the registry's timer calls this ``socket_io_heartbeat_interval`` after the last echo;
        ``socket_io_ping_interval`` for v5)."""
        beats, deadlines = self._timers()
        state = self.state
        if state is _OPENING:
            self._beat_wait = beats.add(self)  # v5: the queue waits for on_open; ping after it
            return
        frame, self._awaited_echo = self.dialect.heartbeat()
        self._beat_wait = deadlines.add(self)
        if state is _OPEN:
            self.send_frames([frame])
        else:
            self._queue_engine([frame])  # v5, before CONNECT

    def echo_overdue(self) -> None:
        """No echo within ``socket_io_heartbeat_timeout`` (the registry's deadline timer calls this)."""
        self._beat_wait = None
        self.close("heartbeat timeout")

    def _heartbeat_echoed(self, echo: str) -> None:
        if self._awaited_echo is None or echo != self._awaited_echo:
            return  # stale, early or invented: only the latest beat counts
        self._stop_heartbeats()
        self._beat_wait = self._timers()[0].add(self)

    def _stop_heartbeats(self) -> None:
        wait = self._beat_wait
        if wait is not None:
            beats, deadlines = self._timers()
            (beats if self._awaited_echo is None else deadlines).cancel(wait)  # awaiting an echo: a deadline
            self._beat_wait = None
        self._awaited_echo = None

    # -- the one close path -------------------------------------------------------------

    def close(self, reason: str = "server close") -> None:
        """End the session: timers, queues, registry, transport; then ``on_close`` once.

        Safe to call any number of times from anywhere; ``on_close`` runs on a
        later IOLoop iteration, never inside the caller (a ``send`` loop over
        a set that ``on_close`` edits stays safe).  Called while ``on_open``
        is still running, it releases everything now and lets ``on_open``
        finish; ``on_close`` then follows if ``on_open`` accepted.
        """
        self._close(reason, run_on_close=True)

    def _close(self, reason: str, run_on_close: bool) -> None:
        state = self.state
        if state is _CLOSED or state is _ABANDONED:
            return
        self._enter(_ABANDONED if state is _OPENING and run_on_close else _CLOSED)
        self.close_reason = reason
        # A v5 client told that the server ended its session does not reconnect.  What it was sent
        # but not yet given (between two polls, or while on_open ran) goes first, as node's server does.
        farewell = reason == "server close" and state is not _CONNECTING and self.dialect is not SOCKET_IO_06
        self._release(reason, [*self._outbox, *dialects.SocketIO5.disconnected()] if farewell else [])
        if state is _OPEN:
            log.info("close %s %s from %s (%s)", self.protocol, self.short_id, self.request.remote_ip, reason)
            self._finish_close(run_on_close=True)
        elif self.state is _CLOSED:
            log.info("not opened %s %s from %s (%s)", self.protocol, self.short_id, self.request.remote_ip, reason)
            self._finish_close(run_on_close=False)

    def _release(self, reason: str, farewell: list[Frame]) -> None:
        """Let go of everything the connection holds; every step runs even if another raised."""
        transport, self._transport = self._transport, None
        lingering, self._lingering = self._lingering, set()
        slow = reason == SLOW_CLIENT
        mid_write = self._writing

        def end_wire() -> None:
            if transport is not None:
                if slow or mid_write:
                    transport.abort()
                else:
                    if farewell:
                        transport.push_frames(farewell)
                    transport.terminate(reason)
            elif farewell:
                self.registry.keep_farewell(self.session_id, farewell)  # for the client's next poll

        self._run_steps(
            (
                self._stop_heartbeats,
                self._drop_queues,
                functools.partial(self.registry.remove, self),
                end_wire,
                functools.partial(_abort_all, lingering if slow else ()),
                functools.partial(self._end_probe, reason),
                self._resume_reading,
            )
        )

    def _drop_queues(self) -> None:
        self.idle_since = None
        self._outbox = []
        self._outbox_size = 0
        self._writing = False
        self._inbox = deque()
        self._inbox_size = 0
        self._acks = None

    def _end_probe(self, reason: str) -> None:
        probe, self._probe = self._probe, None
        self._upgrading = False
        if probe is not None:
            probe.terminate(reason)

    def _run_steps(self, steps: Iterable[Callable[[], object]]) -> None:
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("while closing %s (the close goes on)", self.short_id)

    def _finish_close(self, run_on_close: bool) -> None:
        if run_on_close:
            self._loop.add_callback(self._call_hook, "on_close", self.handler.on_close, (), {}, self._closed)
        else:
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
        hook_context = current_registry.set(self.registry)
        try:
            result = hook(*args, **kwargs)
            # A task made here keeps the hook's context (and so its application) to the end.
            task = asyncio.ensure_future(result) if inspect.isawaitable(result) else None
        except Exception:
            current_registry.reset(hook_context)
            log.exception("%s of %s raised", name, self.short_id)
            then(Outcome.ERROR)
            return
        current_registry.reset(hook_context)
        if task is None:
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

        task.add_done_callback(finished)


def _hook_name(message: Any) -> str:
    """The user code a client message went to, for the line that logs its exception (v5 has three)."""
    if type(message) is dialects.Ack:
        return "the ack callback"
    if type(message) is dialects.Event and message.name != "message":
        return "on_event"
    return "on_message"


def _abort_all(transports: Iterable[Transport]) -> None:
    for transport in transports:
        transport.abort()
