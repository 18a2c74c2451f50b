"""What a connection's traffic looks like on the wire: Socket.IO 0.6, or Socket.IO v5 on Engine.IO v4.

A :class:`~tornad_io.connection.Connection` speaks in messages, events,
acks and heartbeats; a dialect turns those into *frames* (what the
connection queues and hands to its transport) and back.  Nothing here does
I/O or keeps time: the connection decides when, the dialect only says how.

* **0.6** frames are ``~m~`` texts; a transport writes a batch of them as one
  payload (their concatenation).
* **v5** frames are Engine.IO packets, already encoded: a ``str`` is a text
  packet (``"2"`` a ping, ``"42[...]"`` an event), ``bytes`` a binary
  MESSAGE (an attachment).  A polling transport joins a batch with ``\\x1e``
  (``b`` plus base64 for the binary ones), a websocket writes one message
  each.

A broadcast is encoded once per dialect, not once per receiver: see
:class:`Outgoing`.
"""

from __future__ import annotations

import abc
import base64
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tornad_io import codec, engineio, socketio5
from tornad_io.socketio5 import SioPacket, SioPacketType

# isinstance against a tuple: ``bytes | bytearray | memoryview`` builds a union object at every call.
_BINARY: Final = (bytes, bytearray, memoryview)
_LIST_OR_TUPLE: Final = (list, tuple)

__all__ = [
    "SOCKET_IO_06",
    "V5_REFUSED",
    "Ack",
    "Connect",
    "Dialect",
    "Disconnect",
    "Event",
    "Frame",
    "Outgoing",
    "SocketIO06",
    "SocketIO5",
]

log = logging.getLogger(__name__)

#: One queued unit of outbound traffic: a 0.6 frame, or an encoded Engine.IO packet.
Frame = str | bytes

#: Heartbeat tokens: unpredictable to a client that does not read them, cheap to draw.
_tokens = random.Random()

#: The CONNECT_ERROR message a refused v5 client's ``connect_error`` event carries.
V5_REFUSED: Final = "Connection refused by the server"

_MESSAGE_EVENT: Final = "message"


class Dialect(abc.ABC):
    """The framing rules of one protocol generation (see the module docstring)."""

    #: ``SocketIOHandler.protocol_version``: ``"0.6"`` or ``"5"``.
    version: str = ""

    @abc.abstractmethod
    def message(self, value: Any) -> list[Frame]:
        """The frames of ``SocketIOHandler.send(value)``."""

    @abc.abstractmethod
    def event(self, name: str, args: Sequence[Any], ack_id: int | None) -> list[Frame]:
        """The frames of ``emit(name, *args)``; ``TypeError`` where the protocol has no events."""

    @abc.abstractmethod
    def ack(self, ack_id: int, args: Sequence[Any]) -> list[Frame]:
        """The frames that answer the client's ack request ``ack_id`` with ``args``."""

    @abc.abstractmethod
    def heartbeat(self) -> tuple[Frame, str]:
        """A heartbeat frame and the echo that answers it (what :meth:`Connection._heartbeat_echoed` is given)."""


class SocketIO06(Dialect):
    """Socket.IO 0.6: ``~m~`` frames; no events, no acks, no binary."""

    version = "0.6"

    def message(self, value: Any) -> list[Frame]:
        if isinstance(value, _BINARY):
            raise TypeError("bytes cannot be sent to a Socket.IO 0.6 client (it has no binary messages)")
        return [codec.encode_message(value)]

    def event(self, name: str, args: Sequence[Any], ack_id: int | None) -> list[Frame]:
        raise TypeError("Socket.IO 0.6 clients have no events: use send() (see self.protocol_version)")

    def ack(self, ack_id: int, args: Sequence[Any]) -> list[Frame]:
        raise TypeError("Socket.IO 0.6 clients have no acks")

    def heartbeat(self) -> tuple[Frame, str]:
        # The 0.6 client sends the very frame back (whatever follows ~h~ is echoed); a random
        # token means only a client that read this heartbeat can answer it.  Liveness is not a
        # secret, so Python's fast generator will do (no system call per beat, as os.urandom makes).
        frame = codec.encode_heartbeat(f"{_tokens.getrandbits(32):08x}")
        return frame, frame


#: The one 0.6 dialect: it holds no state.
SOCKET_IO_06: Final = SocketIO06()


# -- v5 ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """The client's CONNECT to the main namespace; ``auth`` is its payload, if it sent one."""

    auth: Any = None
    has_auth: bool = False


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The client left the main namespace (``socket.disconnect()``)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A client event; ``ack_id`` is set when the client waits for an answer."""

    name: str
    args: list[Any]
    ack_id: int | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """The client's answer to one of the server's emits."""

    ack_id: int
    args: list[Any]


#: What :meth:`SocketIO5.receive` makes of the client's packets.
Incoming = Connect | Disconnect | Event | Ack | str


class SocketIO5(Dialect):
    """Socket.IO v5 on Engine.IO v4, for one connection (it reassembles binary packets).

    :meth:`receive` takes the Engine.IO MESSAGE contents in arrival order and
    returns what they mean; an invalid packet raises
    :class:`~tornad_io.socketio5.SocketIOPacketError`.
    """

    version = "5"

    def __init__(self, max_attachments: int = socketio5.DEFAULT_MAX_ATTACHMENTS) -> None:
        self._decoder = socketio5.Decoder(max_attachments)

    # -- server to client ----------------------------------------------------------------------------------------

    @staticmethod
    def packet(packet: SioPacket) -> list[Frame]:
        """The Engine.IO frames of one Socket.IO packet: a MESSAGE, then one per attachment."""
        parts = socketio5.encode(packet)
        first = parts[0]
        assert isinstance(first, str)
        frames: list[Frame] = ["4" + first]
        frames.extend(parts[1:])
        return frames

    @staticmethod
    def opening(
        session_id: str, upgrades: Sequence[str], ping_interval: float, ping_timeout: float, max_payload: int
    ) -> Frame:
        """The Engine.IO OPEN packet of the handshake."""
        return engineio.open_packet(
            session_id, upgrades, round(ping_interval * 1000), round(ping_timeout * 1000), max_payload
        )

    @staticmethod
    def connected(session_id: str) -> list[Frame]:
        """The CONNECT answer that fires the client's ``connect`` event."""
        return SocketIO5.packet(SioPacket(SioPacketType.CONNECT, data={"sid": session_id}))

    @staticmethod
    def refused(message: str, namespace: str = "/") -> list[Frame]:
        """A CONNECT_ERROR: the client's ``connect_error`` event gets ``message``."""
        return SocketIO5.packet(SioPacket(SioPacketType.CONNECT_ERROR, namespace, {"message": message}))

    @staticmethod
    def disconnected() -> list[Frame]:
        """DISCONNECT: the server ended the session; the client does not reconnect."""
        return SocketIO5.packet(SioPacket(SioPacketType.DISCONNECT))

    def message(self, value: Any) -> list[Frame]:
        return _event_frames(_MESSAGE_EVENT, [value])

    def event(self, name: str, args: Sequence[Any], ack_id: int | None) -> list[Frame]:
        if not isinstance(name, str):
            raise TypeError(f"an event name is a str, not {type(name).__name__}")
        return self.packet(SioPacket(SioPacketType.EVENT, data=[name, *args], id=ack_id))

    def ack(self, ack_id: int, args: Sequence[Any]) -> list[Frame]:
        return self.packet(SioPacket(SioPacketType.ACK, data=list(args), id=ack_id))

    def heartbeat(self) -> tuple[Frame, str]:
        return "2", ""  # an Engine.IO PING; any PONG (data "") answers it

    # -- client to server ----------------------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> Incoming | None:
        """What one Engine.IO MESSAGE means, once its packet is complete (``None`` until then).

        A CONNECT to another namespace comes back as the frames of its refusal
        (``str``, to be sent as it is), as node's server answers it.
        """
        packet = self._decoder.feed(data)
        if packet is None:
            return None
        kind = packet.type
        if packet.namespace != "/":
            if kind is SioPacketType.CONNECT:
                refusal = self.refused("Invalid namespace", packet.namespace)[0]
                assert isinstance(refusal, str)
                return refusal
            log.debug("ignoring a %s packet for namespace %s", kind.name, packet.namespace)
            return None
        if kind is SioPacketType.EVENT or kind is SioPacketType.BINARY_EVENT:
            data_list: list[Any] = packet.data
            return Event(data_list[0], data_list[1:], packet.id)
        if kind is SioPacketType.ACK or kind is SioPacketType.BINARY_ACK:
            assert packet.id is not None
            return Ack(packet.id, packet.data)
        if kind is SioPacketType.CONNECT:
            return Connect(packet.data, packet.data is not None)
        if kind is SioPacketType.DISCONNECT:
            return Disconnect()
        raise socketio5.SocketIOPacketError(f"a client does not send {kind.name}")


def _event_frames(name: str, args: Sequence[Any]) -> list[Frame]:
    """The frames of an EVENT without an ack id: a message, or a broadcast event.

    One ``str`` argument (nearly every message) takes the short way
    (:func:`~tornad_io.socketio5.event_text`, the same text).
    """
    if len(args) == 1 and type(args[0]) is str:
        return ["4" + socketio5.event_text(name, args[0])]
    return SocketIO5.packet(SioPacket(SioPacketType.EVENT, data=[name, *args]))


# -- broadcasts ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outgoing:
    """One broadcast, encoded at most once per dialect however many receive it.

    A message broadcast (``Handler.broadcast``) reaches both generations: its
    0.6 frame is made at once (and is what the Redis relay carries); a v5
    receiver gets the same value as its ``message`` event.  An event
    (``broadcast_event``) or a message holding ``bytes`` has no 0.6 form:
    0.6 receivers are skipped.
    """

    #: The 0.6 frame, or ``None`` when 0.6 clients cannot receive this broadcast.
    frame06: str | None
    #: The v5 event name and arguments (``"message"`` and ``[value]`` for a message).
    event: str
    args: list[Any]
    _frames5: list[Frame] | None = field(default=None, repr=False)

    @classmethod
    def message(cls, value: Any) -> Outgoing:
        if _has_bytes(value):
            return cls(None, _MESSAGE_EVENT, [value])
        return cls(codec.encode_message(value), _MESSAGE_EVENT, [value])

    @classmethod
    def named_event(cls, name: str, args: Sequence[Any]) -> Outgoing:
        if not isinstance(name, str):
            raise TypeError(f"an event name is a str, not {type(name).__name__}")
        if name in socketio5.RESERVED_EVENTS:
            raise ValueError(f"{name!r} is a reserved event name")
        return cls(None, name, list(args))

    def frames_for(self, dialect: Dialect) -> list[Frame] | None:
        """The frames for a receiver speaking ``dialect``; ``None`` if it cannot receive this."""
        if dialect is SOCKET_IO_06:
            return None if self.frame06 is None else [self.frame06]
        frames = self._frames5
        if frames is None:
            frames = self._frames5 = _event_frames(self.event, self.args)
        return frames

    # -- between processes (the Redis relay) ----------------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready fields for the relay; ``bytes`` travel as base64 (see :func:`from_wire`)."""
        if self.frame06 is not None:
            return {"frame": self.frame06}
        return {"event": self.event, "args": _bytes_out(self.args)}

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> Outgoing:
        """The broadcast :meth:`to_wire` described; ``ValueError`` for anything malformed."""
        if "frame" in fields:
            frame = str(fields["frame"])
            messages = codec.decode_payload(frame)
            if len(messages) != 1 or isinstance(messages[0], codec.Heartbeat):
                raise ValueError("a relayed frame must hold one message")
            value = messages[0].value if isinstance(messages[0], codec.Json) else messages[0]
            return cls(frame, _MESSAGE_EVENT, [value])
        name = fields["event"]
        args = fields["args"]
        if not isinstance(name, str) or not isinstance(args, list):
            raise ValueError("a relayed event needs a name and a list of arguments")
        return cls(None, name, _bytes_in(args))


def _has_bytes(value: Any) -> bool:
    if isinstance(value, _BINARY):
        return True
    if isinstance(value, _LIST_OR_TUPLE):
        return any(_has_bytes(item) for item in value)
    if isinstance(value, dict):
        return any(_has_bytes(item) for item in value.values())
    return False


_BYTES_KEY: Final = "__tornad_io_bytes__"


def _bytes_out(value: Any) -> Any:
    if isinstance(value, _BINARY):
        return {_BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, _LIST_OR_TUPLE):
        return [_bytes_out(item) for item in value]
    if isinstance(value, dict):
        return {key: _bytes_out(item) for key, item in value.items()}
    return value


def _bytes_in(value: Any) -> Any:
    if isinstance(value, list):
        return [_bytes_in(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and _BYTES_KEY in value:
            return base64.b64decode(str(value[_BYTES_KEY]), validate=True)
        return {key: _bytes_in(item) for key, item in value.items()}
    return value
