"""The Socket.IO v5 packet codec (the default parser's format), no I/O.

Socket.IO v5 runs on Engine.IO v4 (:mod:`tornad_io.engineio`): every Socket.IO
packet travels as Engine.IO MESSAGEs, one text message for the packet itself
and then one binary message per attachment.  This module turns a
:class:`SioPacket` into those messages (:func:`encode`) and reassembles them
(:class:`Decoder`), in the sans-IO spirit of :mod:`tornad_io.codec`.

The text of a packet is, with nothing between the parts::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]

* ``<type>`` is one digit, ``0`` (CONNECT) to ``6`` (BINARY_ACK);
* ``<attachments>-`` appears only in BINARY_EVENT and BINARY_ACK;
* the namespace appears only if it is not ``/``; it is recognised by its
  leading ``/`` and runs to the first ``,`` or, when there is none, to the
  end of the text (the official client and server accept ``40/custom``);
* the ack id is the decimal digits that follow;
* the rest is JSON: an array for EVENT and ACK, an optional object for
  CONNECT, an object for CONNECT_ERROR, nothing for DISCONNECT.

Binary data (``bytes`` anywhere inside an EVENT's or ACK's data) is taken out
of the JSON: each occurrence becomes ``{"_placeholder":true,"num":<n>}``,
numbered in document order, the bytes follow as attachments, and the packet
becomes a BINARY_EVENT or BINARY_ACK.  The :class:`Decoder` puts them back.

JSON is read and written with simplejson as in :mod:`tornad_io.codec`: a
number with a fraction or exponent decodes to :class:`decimal.Decimal`, and a
``Decimal`` encodes as a JSON number.

The decoder checks what the spec and the official parser require (a known
type, a well-formed attachment count, an array whose first element is an
event name for EVENT, no reserved event name, placeholders that point at a
declared attachment, attachments only when announced) and, where the spec
says a payload is mandatory, a bit more than that parser: an EVENT or ACK
without data, an ACK without an id and an id on a packet type that has none
are refused, as no real client sends them.  Every violation raises
:class:`SocketIOPacketError`; the receiver is then expected to close the
connection, as the spec says.
"""

from __future__ import annotations

import decimal
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import simplejson

# isinstance against a tuple: ``bytes | bytearray | memoryview`` builds a union object at every call.
_BINARY: Final = (bytes, bytearray, memoryview)
_CONTAINER: Final = (list, tuple, dict)
_DICT_OR_STR: Final = (dict, str)
_LIST_OR_TUPLE: Final = (list, tuple)
_NUMBER: Final = (int, float, decimal.Decimal)

__all__ = [
    "DEFAULT_MAX_ATTACHMENTS",
    "MAX_ACK_ID",
    "PROTOCOL",
    "RESERVED_EVENTS",
    "Decoder",
    "SioPacket",
    "SioPacketType",
    "SocketIOPacketError",
    "encode",
    "event_text",
]

#: The Socket.IO protocol revision implemented here.
PROTOCOL: Final = 5
#: How many attachments a :class:`Decoder` accepts per packet unless told otherwise (the official default).
DEFAULT_MAX_ATTACHMENTS: Final = 10
#: The largest ack id a JavaScript peer can hold exactly (``Number.MAX_SAFE_INTEGER``).
MAX_ACK_ID: Final = 2**53 - 1
#: Event names the official server refuses both to receive and to emit.
RESERVED_EVENTS: Final = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

PLACEHOLDER: Final = "_placeholder"
_MAX_ACK_ID_DIGITS: Final = len(str(MAX_ACK_ID))
#: Longer attachment counts are refused before int() is asked to read them.
_MAX_COUNT_DIGITS: Final = 18
_DIGITS: Final = re.compile(r"[0-9]*")
_DIGIT_CHARS: Final = tuple("0123456789")
#: One encoder and one decoder for every packet: ``simplejson.dumps`` and ``loads`` given these options
#: build a new one on every call, which costs as much as the JSON of a short message.
_ENCODER: Final = simplejson.JSONEncoder(separators=(",", ":"), ensure_ascii=False, use_decimal=True)
_DECODER: Final = simplejson.JSONDecoder(parse_float=decimal.Decimal)


class SioPacketType(enum.IntEnum):
    """The Socket.IO v5 packet types; the value is the digit on the wire."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_TYPE_BY_DIGIT: Final = {str(int(kind)): kind for kind in SioPacketType}
_DIGIT_BY_TYPE: Final = {kind: str(int(kind)) for kind in SioPacketType}
_BINARY_TYPES: Final = (SioPacketType.BINARY_EVENT, SioPacketType.BINARY_ACK)
_EVENT_TYPES: Final = (SioPacketType.EVENT, SioPacketType.BINARY_EVENT)
_ACK_TYPES: Final = (SioPacketType.ACK, SioPacketType.BINARY_ACK)


class SocketIOPacketError(ValueError):
    """A packet (or a sequence of messages) that is not valid Socket.IO v5; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SioPacket:
    """One Socket.IO packet.

    ``data`` is the decoded JSON value with any binary attachments in place
    as ``bytes``; ``id`` is the ack id.  ``attachments`` is the count a
    decoded BINARY_EVENT or BINARY_ACK announced; :func:`encode` ignores it
    and counts the ``bytes`` in ``data`` instead.
    """

    type: SioPacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None
    attachments: int = 0


# -- validation shared by both directions -----------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _check_event_data(data: Any) -> None:
    if not isinstance(data, _LIST_OR_TUPLE):
        raise SocketIOPacketError(f"EVENT data must be an array, not {_json_kind(data)}")
    if not data:
        raise SocketIOPacketError("EVENT data must not be empty: it starts with the event name")
    name = data[0]
    if isinstance(name, str):
        if name in RESERVED_EVENTS:
            raise SocketIOPacketError(f"{name!r} is a reserved event name")
    elif not _is_number(name):
        # The official parser also takes a number as an event name; nothing else.
        raise SocketIOPacketError(f"an event name must be a string or a number, not {_json_kind(name)}")


def _check_data(kind: SioPacketType, data: Any, *, encoding: bool) -> None:
    if kind in _EVENT_TYPES:
        _check_event_data(data)
    elif kind in _ACK_TYPES:
        if not isinstance(data, _LIST_OR_TUPLE):
            raise SocketIOPacketError(f"ACK data must be an array, not {_json_kind(data)}")
    elif kind == SioPacketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            raise SocketIOPacketError(f"CONNECT data must be an object, not {_json_kind(data)}")
    elif kind == SioPacketType.DISCONNECT:
        if data is not None:
            raise SocketIOPacketError(f"DISCONNECT carries no data, got {_json_kind(data)}")
    elif encoding:
        if not isinstance(data, dict) or "message" not in data:
            raise SocketIOPacketError('CONNECT_ERROR data must be an object with a "message"')
    elif not isinstance(data, _DICT_OR_STR):
        # A string is what a v4 server sent; the official parser still accepts it.
        raise SocketIOPacketError(f"CONNECT_ERROR data must be an object, not {_json_kind(data)}")


def _check_id(kind: SioPacketType, id: int | None) -> None:
    if id is None:
        if kind in _ACK_TYPES:
            raise SocketIOPacketError("an ACK needs the id of the event it answers")
        return
    if kind not in _EVENT_TYPES and kind not in _ACK_TYPES:
        raise SocketIOPacketError(f"a {kind.name} packet has no ack id")
    if isinstance(id, bool) or not isinstance(id, int) or not 0 <= id <= MAX_ACK_ID:
        raise SocketIOPacketError(f"an ack id must be an int from 0 to {MAX_ACK_ID}, not {id!r}")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if _is_number(value):
        return "a number"
    if isinstance(value, _LIST_OR_TUPLE):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, _BINARY):
        return "binary data"
    return type(value).__name__


# -- encoding ---------------------------------------------------------------------------------------------------


def _has_binary(value: Any) -> bool:
    # Iterative, like every walk here: data as deep as the JSON parser allows must not hit the recursion limit.
    # Each container is looked at once, so a shared one costs nothing twice and a cycle ends (simplejson
    # then refuses it).
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, _BINARY):
            return True
        if isinstance(item, _CONTAINER):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False


def _deconstruct(value: Any, buffers: list[bytes]) -> Any:
    """A copy of ``value`` with each bytes-like replaced by a placeholder; the bytes go to ``buffers`` in order."""
    top: list[Any] = []
    # Depth first, in document order: each frame holds the rest of a container's items, the copy being
    # filled and the id of the original, which stays in ``path`` while the frame is open.
    stack: list[tuple[Iterator[tuple[Any, Any]], list[Any] | dict[Any, Any], int]] = [(iter([(0, value)]), top, 0)]
    path: set[int] = set()
    while stack:
        items, target, original = stack[-1]
        for key, item in items:
            new: Any = item
            child: Iterator[tuple[Any, Any]] | None = None
            if isinstance(item, _BINARY):
                buffers.append(bytes(item))
                new = {PLACEHOLDER: True, "num": len(buffers) - 1}
            elif isinstance(item, _LIST_OR_TUPLE):
                new, child = [], enumerate(item)
            elif isinstance(item, dict):
                new, child = {}, iter(item.items())
            if isinstance(target, list):
                target.append(new)
            else:
                target[key] = new
            if child is not None:
                if id(item) in path:
                    raise SocketIOPacketError("data cannot be sent as JSON: circular reference")
                path.add(id(item))
                stack.append((child, new, id(item)))
                break  # fill the new copy before going on with this container
        else:
            stack.pop()
            path.discard(original)
    return top[0]


def _dumps(value: Any) -> str:
    try:
        text: str = _ENCODER.encode(value)
    except ValueError as exc:  # NaN or an infinity, which JSON cannot carry
        raise SocketIOPacketError(f"data cannot be sent as JSON: {exc}") from None
    return text


def encode(packet: SioPacket) -> list[str | bytes]:
    """The Engine.IO MESSAGE contents for ``packet``: its text, then its attachments in order.

    An EVENT or ACK whose data holds ``bytes`` (``bytearray`` and
    ``memoryview`` too, at any depth of lists, tuples and dicts) goes out as a
    BINARY_EVENT or BINARY_ACK with one attachment per occurrence; a
    BINARY_EVENT or BINARY_ACK without any goes out as a plain EVENT or ACK.
    Raises :class:`SocketIOPacketError` for a packet the other side would
    refuse: an unknown type, a namespace that does not start with ``/`` or
    holds a ``,``, data of the wrong shape, a reserved event name, a bad or
    misplaced ack id, binary data outside an EVENT or ACK, NaN or an
    infinity.  An object simplejson cannot encode raises ``TypeError``.
    """
    kind = packet.type
    digit = _DIGIT_BY_TYPE.get(kind)
    if digit is None:
        raise SocketIOPacketError(f"unknown packet type {kind!r}")
    namespace = packet.namespace
    if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
        raise SocketIOPacketError(f"a namespace must start with '/' and hold no ',', not {namespace!r}")
    data = packet.data
    _check_data(kind, data, encoding=True)
    _check_id(kind, packet.id)
    buffers: list[bytes] = []
    if _has_binary(data):
        if kind in _EVENT_TYPES:
            kind = SioPacketType.BINARY_EVENT
        elif kind in _ACK_TYPES:
            kind = SioPacketType.BINARY_ACK
        else:
            raise SocketIOPacketError(f"binary data in a {kind.name} packet (only EVENT and ACK carry it)")
        data = _deconstruct(data, buffers)
    elif kind == SioPacketType.BINARY_EVENT:
        kind = SioPacketType.EVENT
    elif kind == SioPacketType.BINARY_ACK:
        kind = SioPacketType.ACK
    parts = [_DIGIT_BY_TYPE[kind]]
    if buffers:
        parts.append(f"{len(buffers)}-")
    if namespace != "/":
        parts.append(namespace + ",")
    if packet.id is not None:
        parts.append(str(packet.id))
    if data is not None:
        parts.append(_dumps(data))
    messages: list[str | bytes] = ["".join(parts)]
    messages.extend(buffers)
    return messages


def event_text(name: str, arg: str) -> str:
    """``encode(SioPacket(SioPacketType.EVENT, data=[name, arg]))[0]`` for one ``str`` argument, made directly.

    The packet of nearly every message: a ``str`` holds no binary data and an
    array of a name and one value is valid EVENT data, so only the name is
    checked, and the general encoder's walks and checks are skipped.
    """
    _check_event_data((name, arg))  # only the name can be wrong
    text: str = "2[" + _ENCODER.encode(name) + "," + _ENCODER.encode(arg) + "]"
    return text


# -- decoding ---------------------------------------------------------------------------------------------------


def _loads(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except (ValueError, decimal.InvalidOperation, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long for int().
        raise SocketIOPacketError(f"invalid JSON data: {exc}") from None


def _digits_end(text: str, position: int) -> int:
    """Index just past the ASCII digits starting at ``position``."""
    if not text.startswith(_DIGIT_CHARS, position):
        return position  # the usual case (an event without an ack id): no regular expression to run
    match = _DIGITS.match(text, position)
    return position if match is None else match.end()


def _parse(text: str, max_attachments: int) -> SioPacket:
    """The packet in one text message, its placeholders checked but not yet replaced."""
    if not text:
        raise SocketIOPacketError("empty packet")
    kind = _TYPE_BY_DIGIT.get(text[0])
    if kind is None:
        raise SocketIOPacketError(f"unknown packet type {text[0]!r}")
    position = 1
    attachments = 0
    if kind in _BINARY_TYPES:
        end = _digits_end(text, 1)
        if end == 1 or not text.startswith("-", end):
            raise SocketIOPacketError("a binary packet must start with its attachment count and '-'")
        if end - 1 > _MAX_COUNT_DIGITS:
            raise SocketIOPacketError(f"an attachment count of {end - 1} digits")
        attachments = int(text[1:end])
        if attachments > max_attachments:
            raise SocketIOPacketError(f"{attachments} attachments, more than the limit of {max_attachments}")
        position = end + 1
    namespace = "/"
    if text.startswith("/", position):
        comma = text.find(",", position)
        if comma < 0:
            namespace, position = text[position:], len(text)
        else:
            namespace, position = text[position:comma], comma + 1
    id: int | None = None
    end = _digits_end(text, position)
    if end > position:
        if end - position > _MAX_ACK_ID_DIGITS:
            raise SocketIOPacketError(f"an ack id of {end - position} digits")
        id = int(text[position:end])
        position = end
    _check_id(kind, id)
    data = _loads(text[position:]) if position < len(text) else None
    _check_data(kind, data, encoding=False)
    if kind in _BINARY_TYPES:
        _check_placeholders(data, attachments)
    return SioPacket(kind, namespace, data, id, attachments)


def _check_placeholders(value: Any, attachments: int) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get(PLACEHOLDER) is not True:
                stack.extend(item.values())
                continue
            num = item.get("num")
            if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num < attachments:
                raise SocketIOPacketError(f"placeholder {num!r} does not name one of {attachments} attachments")


def _reconstruct(value: list[Any], buffers: list[bytes]) -> None:
    """Replace placeholders with their attachments, in place (the data is fresh from the JSON parser)."""
    stack: list[list[Any] | dict[Any, Any]] = [value]
    while stack:
        container = stack.pop()
        pairs = enumerate(container) if isinstance(container, list) else container.items()
        for key, item in pairs:
            if isinstance(item, dict):
                if item.get(PLACEHOLDER) is True:
                    container[key] = buffers[item["num"]]  # replacing a value while iterating is allowed
                else:
                    stack.append(item)
            elif isinstance(item, list):
                stack.append(item)


class Decoder:
    """Reassembles packets from Engine.IO MESSAGE contents, fed in arrival order.

    Feed each text message and each binary message to :meth:`feed`; it
    returns the packet once complete.  A BINARY_EVENT or BINARY_ACK is
    complete after as many binary messages as its count announced (at once if
    that is 0), and comes back with its type and ``attachments`` as sent and
    the ``bytes`` in place of the placeholders.  One decoder serves one
    connection.  After an error the decoder is reset and the connection
    should be closed.
    """

    __slots__ = ("_buffers", "_pending", "max_attachments")

    def __init__(self, max_attachments: int = DEFAULT_MAX_ATTACHMENTS) -> None:
        if isinstance(max_attachments, bool) or not isinstance(max_attachments, int) or max_attachments < 0:
            raise ValueError(f"max_attachments must be a non-negative int, not {max_attachments!r}")
        self.max_attachments = max_attachments
        self._pending: SioPacket | None = None
        self._buffers: list[bytes] = []

    @property
    def awaiting(self) -> int:
        """How many attachments the packet being reassembled still needs (0 when idle)."""
        if self._pending is None:
            return 0
        return self._pending.attachments - len(self._buffers)

    def reset(self) -> None:
        """Drop a packet being reassembled, if any."""
        self._pending = None
        self._buffers = []

    def feed(self, item: str | bytes | bytearray | memoryview) -> SioPacket | None:
        """Take the next message: ``str`` for a text message, ``bytes`` for a binary one.

        Returns the completed packet, or ``None`` while attachments are still
        awaited.  Raises :class:`SocketIOPacketError` for an invalid packet, a
        text message while attachments are awaited, or a binary message when
        none is.
        """
        if isinstance(item, str):
            if self._pending is not None:
                awaited = self.awaiting
                self.reset()
                raise SocketIOPacketError(f"a text packet while {awaited} attachment(s) are awaited")
            packet = _parse(item, self.max_attachments)
            if packet.type in _BINARY_TYPES and packet.attachments:
                self._pending = packet
                return None
            return packet
        if not isinstance(item, _BINARY):
            self.reset()
            raise SocketIOPacketError(f"a message must be str or bytes, not {type(item).__name__}")
        pending = self._pending
        if pending is None:
            raise SocketIOPacketError("binary data with no packet awaiting attachments")
        self._buffers.append(bytes(item))
        if len(self._buffers) < pending.attachments:
            return None
        buffers = self._buffers
        self.reset()
        _reconstruct(pending.data, buffers)
        return pending
