"""The Engine.IO v4 wire codec: packets and polling payloads, no I/O.

Engine.IO v4 is the transport layer under Socket.IO v3 and later (``EIO=4`` in
the query string).  This module only turns packets into what goes on the wire
and back; sessions, timers and transports live elsewhere, in the same sans-IO
spirit as :mod:`tornad_io.codec` and :mod:`tornad_io.rfc6455`.

A packet is a one-digit type followed by its data, if any: ``4hello`` is the
MESSAGE ``hello``, ``2probe`` the PING that starts an upgrade.  Binary data
only ever travels in a MESSAGE, and then without any type digit:

* on a WebSocket each packet is one frame: a text frame holds the type digit
  and the text, a binary frame holds the raw bytes of a binary MESSAGE
  (:func:`encode_packet`, :func:`decode_packet`);
* an HTTP long-polling body (a *payload*) holds one or more packets as text
  records joined by the record separator ``\\x1e``; a binary MESSAGE is the
  record ``b`` followed by the bytes in standard, padded base64
  (:func:`encode_payload`, :func:`decode_payload`).

A client created with ``forceBase64`` asks for ``b64=1`` and then also sends
and expects ``b``-records in WebSocket *text* frames: :func:`decode_packet`
accepts them and :func:`encode_packet` writes them when told the peer does not
support binary.

Decoding is stricter than the reference parser in the places where no real
client goes: a record must be a type digit ``0``-``6`` and its data, or
``b`` and padded, standard base64.  An empty record (hence also an empty body, which
the reference server treats as a parse error) is refused, and a payload
that fails is refused whole, never half-delivered.  What the packets mean (a
v4 client never sends a plain PING, only ``2probe``; it never sends OPEN) is
the session's business, not this module's.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import simplejson

# isinstance against a tuple: ``bytes | bytearray | memoryview`` builds a union object at every call.
_BINARY: Final = (bytes, bytearray, memoryview)

__all__ = [
    "PING_PROBE",
    "PONG_PROBE",
    "PROBE",
    "PROTOCOL",
    "SEPARATOR",
    "EngineIOError",
    "Packet",
    "PacketType",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    "open_packet",
]

#: The ``EIO`` query parameter of this protocol revision.
PROTOCOL: Final = 4
#: Separates the records of a polling payload (ASCII "record separator").
SEPARATOR: Final = "\x1e"
#: Prefix of a base64 record holding a binary MESSAGE.
BINARY_PREFIX: Final = "b"
#: The data of the PING the client sends on a new WebSocket before upgrading, and of the server's PONG.
PROBE: Final = "probe"


class PacketType(enum.IntEnum):
    """The Engine.IO v4 packet types; the value is the digit on the wire."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class EngineIOError(ValueError):
    """Text or a packet that is not valid Engine.IO v4.

    ``reason`` says what is wrong; ``record`` is the index of the offending
    record when the error comes from a polling payload, else ``None``.
    """

    def __init__(self, reason: str, record: int | None = None) -> None:
        super().__init__(reason if record is None else f"{reason} (record {record})")
        self.reason = reason
        self.record = record


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet; ``data`` is ``bytes`` only for a binary MESSAGE."""

    type: PacketType
    data: str | bytes = ""

    @property
    def is_probe(self) -> bool:
        """Whether this is the upgrade probe: ``2probe`` from the client or ``3probe`` from the server."""
        return self.data == PROBE and self.type in (PacketType.PING, PacketType.PONG)


#: The client's upgrade probe, ``2probe``, as :func:`decode_packet` returns it.
PING_PROBE: Final = Packet(PacketType.PING, PROBE)
#: The server's answer to :data:`PING_PROBE`, which :func:`encode_packet` writes as ``3probe``.
PONG_PROBE: Final = Packet(PacketType.PONG, PROBE)

_TYPE_BY_DIGIT: Final = {str(int(kind)): kind for kind in PacketType}
_DIGIT_BY_TYPE: Final = {kind: str(int(kind)) for kind in PacketType}


def _type_digit(packet: Packet) -> str:
    digit = _DIGIT_BY_TYPE.get(packet.type)
    if digit is None:
        raise EngineIOError(f"unknown packet type {packet.type!r}")
    return digit


def _binary_data(packet: Packet) -> bytes:
    """The bytes of a packet whose data is not text; refuses binary outside a MESSAGE."""
    data = packet.data
    if not isinstance(data, _BINARY):
        raise EngineIOError(f"packet data must be str or bytes, not {type(data).__name__}")
    if packet.type != PacketType.MESSAGE:
        raise EngineIOError(f"binary data in a {_name(packet.type)} packet (only MESSAGE carries binary)")
    return bytes(data)


def _name(kind: object) -> str:
    return kind.name if isinstance(kind, PacketType) else repr(kind)


def encode_packet(packet: Packet, *, supports_binary: bool = True) -> str | bytes:
    """One WebSocket frame's content: ``str`` for a text frame, ``bytes`` for a binary frame.

    A binary MESSAGE is its raw bytes, unless ``supports_binary`` is false (a
    client that asked for ``b64=1``): then it is the text ``b`` + base64.
    Raises :class:`EngineIOError` for binary data in another packet type.
    """
    digit = _type_digit(packet)
    if isinstance(packet.data, str):
        return digit + packet.data
    binary = _binary_data(packet)
    if supports_binary:
        return binary
    return BINARY_PREFIX + base64.b64encode(binary).decode("ascii")


def encode_payload(packets: Iterable[Packet]) -> str:
    """A polling response body: the packets as text records joined by ``\\x1e``.

    Binary MESSAGEs become ``b`` + base64 (always, in v4).  Raises
    :class:`EngineIOError` for no packets at all (the client takes an empty
    body for a parse error), for binary data outside a MESSAGE, and for text
    data containing ``\\x1e``, which the client would split into two records.
    """
    records: list[str] = []
    for packet in packets:
        digit = _type_digit(packet)
        data = packet.data
        if not isinstance(data, str):
            records.append(BINARY_PREFIX + base64.b64encode(_binary_data(packet)).decode("ascii"))
        elif SEPARATOR in data:
            raise EngineIOError(r"text data containing the record separator \x1e", len(records))
        else:
            records.append(digit + data)
    if not records:
        raise EngineIOError("a payload needs at least one packet")
    return SEPARATOR.join(records)


def _decode_text(text: str, record: int | None) -> Packet:
    if not text:
        raise EngineIOError("empty packet", record)
    head = text[0]
    kind = _TYPE_BY_DIGIT.get(head)
    if kind is not None:
        return Packet(kind, text[1:])
    if head == BINARY_PREFIX:
        return Packet(PacketType.MESSAGE, _b64decode(text[1:], record))
    raise EngineIOError(f"unknown packet type {head!r}", record)


def _b64decode(text: str, record: int | None) -> bytes:
    if not text.isascii():
        raise EngineIOError("invalid base64: non-ASCII character", record)
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except binascii.Error as exc:
        raise EngineIOError(f"invalid base64: {exc}", record) from None


def decode_packet(data: str | bytes | bytearray | memoryview) -> Packet:
    """The packet in one WebSocket frame: ``str`` for a text frame, ``bytes`` for a binary one.

    A binary frame is always a binary MESSAGE (possibly empty).  A text frame
    is a type digit and its data, or ``b`` + base64 (a ``forceBase64``
    client).  Raises :class:`EngineIOError` for an empty text frame, an
    unknown type or invalid base64.
    """
    if isinstance(data, str):
        return _decode_text(data, None)
    if isinstance(data, _BINARY):
        return Packet(PacketType.MESSAGE, bytes(data))
    raise EngineIOError(f"frame data must be str or bytes, not {type(data).__name__}")


def decode_payload(text: str, max_packets: int) -> list[Packet]:
    """The packets of a polling request body, in order.

    Raises :class:`EngineIOError` for an empty body or an empty record, an
    unknown type, invalid base64 (standard alphabet, padded, as every client
    sends it) and, before decoding anything, for more than ``max_packets``
    records.  The real client packs as many packets as fit in ``maxPayload``
    bytes into one body, so a bound meant to stop abuse rather than normal
    bursts should be generous (the smallest record, ``3``, plus its separator
    is 2 bytes).  Nothing is returned for a body that fails.
    """
    if max_packets < 1:
        raise ValueError("max_packets must be at least 1")
    if not text:
        raise EngineIOError("empty payload")
    count = text.count(SEPARATOR) + 1
    if count > max_packets:
        raise EngineIOError(f"{count} packets in one payload, more than the limit of {max_packets}")
    if count == 1:
        return [_decode_text(text, 0)]
    return [_decode_text(record, index) for index, record in enumerate(text.split(SEPARATOR))]


def open_packet(
    sid: str, upgrades: Sequence[str], ping_interval_ms: int, ping_timeout_ms: int, max_payload: int
) -> str:
    """The encoded OPEN packet of the handshake: ``0`` and its JSON, keys in the spec's order.

    The same text serves as a WebSocket text frame and as a polling body of
    one record.  ``upgrades`` lists the transports the client may upgrade to
    (``["websocket"]`` for a polling session, ``[]`` for a WebSocket one);
    ``max_payload`` is the most bytes the server accepts in one polling body.
    """
    if isinstance(upgrades, str):
        raise TypeError("upgrades must be a sequence of transport names, not a str")
    for name, value in (("ping_interval_ms", ping_interval_ms), ("ping_timeout_ms", ping_timeout_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, not {value!r}")
    if isinstance(max_payload, bool) or not isinstance(max_payload, int) or max_payload < 1:
        raise ValueError(f"max_payload must be a positive int, not {max_payload!r}")
    handshake = {
        "sid": sid,
        "upgrades": list(upgrades),
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    }
    text: str = simplejson.dumps(handshake, separators=(",", ":"), ensure_ascii=False)
    return _DIGIT_BY_TYPE[PacketType.OPEN] + text
