"""The RFC 6455 WebSocket framing, server side: bytes in, events out.

No I/O and no Tornado here, in the sans-IO spirit of h11 and wsproto: the
transport reads the socket itself and hands every chunk to
:meth:`FrameReader.feed`, which returns the events the chunk completed, and it
writes what :func:`text_frame` and friends return.  Only what the server needs
is here: no extensions (so no compression) and no handshake beyond
:func:`accept_key`.

The reader enforces the client's side of the RFC: masked frames, no reserved
bits or opcodes, short unfragmented control frames, fragments in order,
UTF-8 text and well-formed close frames.  The first violation raises
:class:`WebSocketError` carrying the close code to answer with.

The hot path is one chunk holding exactly one small complete text frame: the
reader recognises it from two header bytes and unmasks the whole frame as one
integer, allocating nothing but the ``str`` and the list around it.
Everything else (split, coalesced or fragmented frames) goes through a general
loop that keeps partial data in a ``bytearray``.  Memory stays bounded by
about ``max_message_size`` plus a header: a length is checked against the
limit as soon as its header is complete, before any of the payload is kept.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_PAYLOAD",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_UNSUPPORTED_DATA",
    "Binary",
    "Close",
    "Event",
    "FrameReader",
    "Ping",
    "Pong",
    "WebSocketError",
    "accept_key",
    "binary_frame",
    "close_frame",
    "close_reason",
    "ping_frame",
    "pong_frame",
    "text_frame",
]

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_POLICY: Final = 1008
CLOSE_MESSAGE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011

#: Opcodes (RFC 6455 section 5.2); 0x3-0x7 and 0xB-0xF are reserved.
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

FIN: Final = 0x80
RSV: Final = 0x70
MASKED: Final = 0x80

#: The longest payload a control frame may carry (section 5.5).
MAX_CONTROL_PAYLOAD: Final = 125
#: The most UTF-8 bytes a close reason can hold: a control payload minus the 2-byte code.
MAX_CLOSE_REASON: Final = 123

#: Appended to the client's key before hashing (section 1.3).
_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Close codes a peer may put on the wire (section 7.4, IANA registry): 1004 is reserved,
#: 1005, 1006 and 1015 only ever describe a close locally, 1016-2999 are unassigned.
_WIRE_CLOSE_CODES: Final = frozenset((*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)))

_HEADER_16: Final = struct.Struct("!BBH")
_HEADER_64: Final = struct.Struct("!BBQ")

#: Payloads at most this long are unmasked as one integer; longer ones in slices of it,
#: which measures about twice as fast on megabyte payloads (the integers stay in cache).
_UNMASK_CHUNK: Final = 16384

# The fast path handles frames of up to 125 payload bytes (a 6-byte header).  For a payload
# of n = 4k + r bytes the mask, repeated over the payload, is ``mask * _REPEAT[n] >> _SHIFT[n]``:
# k + 1 copies of the 32-bit key, less the 4 - r bytes that overhang the end.
_REPEAT: Final = tuple(sum(1 << (32 * j) for j in range(n // 4 + 1)) for n in range(MAX_CONTROL_PAYLOAD + 1))
_SHIFT: Final = tuple(8 * (4 - n % 4) for n in range(MAX_CONTROL_PAYLOAD + 1))
_LOW: Final = tuple((1 << (8 * n)) - 1 for n in range(MAX_CONTROL_PAYLOAD + 1))


class WebSocketError(Exception):
    """The client broke RFC 6455; ``code`` is the close code to answer with, ``reason`` a short text.

    ``reason`` is ASCII and at most 123 bytes, so it fits a close frame as is.  ``events``
    holds what the failing :meth:`FrameReader.feed` call completed before the violation,
    for a caller that wants to deliver them before closing.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} (close code {code})")
        self.code = code
        self.reason = reason
        self.events: list[Event] = []


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping; the server answers with a :func:`pong_frame` of the same payload."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong, solicited or not (section 5.5.3 allows unsolicited ones)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """A close frame; ``code`` is None when its body was empty (what a local API reports as 1005)."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Binary:
    """A complete binary message."""

    data: bytes


#: What :meth:`FrameReader.feed` returns; a complete text message is a plain ``str``.
Event = str | Binary | Ping | Pong | Close


def _unmask(mask: bytes, payload: bytes | bytearray | memoryview) -> bytes:
    """``payload`` XORed with the 4-byte ``mask`` repeated: one big-integer XOR per slice."""
    length = len(payload)
    if length <= _UNMASK_CHUNK:
        key = int.from_bytes((mask * ((length >> 2) + 1))[:length])
        return (int.from_bytes(payload) ^ key).to_bytes(length)
    chunk_key = int.from_bytes(mask * (_UNMASK_CHUNK >> 2))
    whole = length - length % _UNMASK_CHUNK
    with memoryview(payload) as view:
        # Every slice starts at a multiple of 4, so each one sees the key in the same phase.
        parts = [
            (int.from_bytes(view[start : start + _UNMASK_CHUNK]) ^ chunk_key).to_bytes(_UNMASK_CHUNK)
            for start in range(0, whole, _UNMASK_CHUNK)
        ]
        if whole < length:
            parts.append(_unmask(mask, view[whole:]))
    return b"".join(parts)


def _close_event(body: bytes) -> Close:
    """Parse a close frame's body (section 5.5.1): nothing, or a code and a UTF-8 reason."""
    if not body:
        return Close(None, "")
    if len(body) == 1:
        raise WebSocketError(CLOSE_PROTOCOL_ERROR, "close frame body of 1 byte")
    code = (body[0] << 8) | body[1]
    if code not in _WIRE_CLOSE_CODES:
        raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"close code {code} is not allowed on the wire")
    try:
        reason = body[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(CLOSE_INVALID_PAYLOAD, "close reason is not valid UTF-8") from None
    return Close(code, reason)


def _text(data: bytes | bytearray) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8") from None


class FrameReader:
    """Cuts client-to-server bytes into events.

    One reader per connection.  Events after a :class:`Close` are still returned:
    the caller is expected to stop reading once it has one.
    """

    __slots__ = ("_buffer", "_error", "_fast_limit", "_idle_fast_limit", "_max", "_message", "_opcode")

    def __init__(self, max_message_size: int) -> None:
        if max_message_size < 0:
            raise ValueError(f"max_message_size must be >= 0, not {max_message_size}")
        self._max = max_message_size
        #: Bytes of a frame whose end has not arrived yet (header included).
        self._buffer = bytearray()
        #: Unmasked payload of the fragments of the message in progress.
        self._message = bytearray()
        #: Opcode of the fragmented message in progress, 0 if none.
        self._opcode = 0
        self._error: WebSocketError | None = None
        # The longest chunk the fast path may take: a 6-byte header and at most 125 payload
        # bytes within the limit.  0 while anything is buffered or after an error, so the
        # fast path needs one comparison to know the reader is idle.
        self._idle_fast_limit = min(6 + MAX_CONTROL_PAYLOAD, 6 + max_message_size)
        self._fast_limit = self._idle_fast_limit

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame or message."""
        return len(self._buffer) + len(self._message)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """All events completed by ``data`` (may be []), in order.

        Copies what it keeps: ``data`` may be a view of a buffer the caller reuses
        right after (a memoryview must be of unsigned bytes, format ``B``).  Raises
        :class:`WebSocketError` on the first violation; after that the reader is
        unusable (further calls raise the same error again).
        """
        length = len(data)
        # One masked FIN text frame with a 7-bit length that is exactly the whole chunk: the
        # second byte is 0x80 | (length - 6), which is length + 122 for lengths of 6 to 131.
        if 6 <= length <= self._fast_limit and data[0] == 0x81 and data[1] == length + 122:
            length -= 6
            frame = int.from_bytes(data)
            key = ((frame >> (length << 3)) & 0xFFFFFFFF) * _REPEAT[length] >> _SHIFT[length]
            try:
                return [((frame ^ key) & _LOW[length]).to_bytes(length).decode("utf-8")]
            except UnicodeDecodeError:
                pass  # the general path raises the proper error and records it
        return self._feed(data)

    def _feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """The general path: record the first error, and re-enable the fast path when idle."""
        if self._error is not None:
            self._error.events = []  # the first raise carried them
            raise self._error.with_traceback(None)
        events: list[Event] = []
        try:
            self._parse(data, events)
        except WebSocketError as exc:
            exc.events = events
            self._error = exc
            self._fast_limit = 0
            self._buffer = bytearray()  # let the memory go: the reader is done
            self._message = bytearray()
            raise
        self._fast_limit = 0 if self._buffer or self._opcode else self._idle_fast_limit
        return events

    def _parse(self, data: bytes | bytearray | memoryview, events: list[Event]) -> None:
        """Append to ``events`` every frame ``data`` completes; keep the remainder."""
        buffer = self._buffer
        view: bytes | bytearray | memoryview
        if buffer:
            buffer += data
            view = buffer
        else:
            view = data  # parse the caller's bytes in place; copy only an incomplete tail
        end = len(view)
        position = 0
        while end - position >= 2:
            first = view[position]
            second = view[position + 1]
            fin = first & FIN
            opcode = first & 0x0F
            length = second & 0x7F
            if first & RSV:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension")
            if not second & MASKED:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "client frame is not masked")
            if opcode >= OP_CLOSE:
                if opcode > OP_PONG:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
                if not fin:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            elif opcode == OP_CONTINUATION:
                if not self._opcode:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "continuation frame with no message in progress")
            elif opcode > OP_BINARY:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
            elif self._opcode:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "new message while a fragmented one is in progress")
            if length < 126:
                header = 6
            elif length == 126:
                header = 8
                if end - position < header:
                    break
                length = (view[position + 2] << 8) | view[position + 3]
            else:
                header = 14
                if end - position < header:
                    break
                length = int.from_bytes(view[position + 2 : position + 10])
                if length >> 63:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "64-bit length with the top bit set")
            # Non-minimal length encodings are accepted: harmless, and no browser sends them.
            if opcode >= OP_CLOSE:
                if length > MAX_CONTROL_PAYLOAD:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes")
            elif length > self._max - len(self._message):
                raise WebSocketError(CLOSE_MESSAGE_TOO_BIG, f"message over {self._max} bytes")
            start = position + header
            stop = start + length
            if stop > end:
                break
            payload = _unmask(bytes(view[start - 4 : start]), view[start:stop])
            position = stop
            if opcode >= OP_CLOSE:
                if opcode == OP_PING:
                    events.append(Ping(payload))
                elif opcode == OP_PONG:
                    events.append(Pong(payload))
                else:
                    events.append(_close_event(payload))
            elif fin and opcode:
                events.append(_text(payload) if opcode == OP_TEXT else Binary(payload))
            else:
                if opcode:
                    self._opcode = opcode
                self._message += payload
                if fin:
                    message = self._message
                    events.append(_text(message) if self._opcode == OP_TEXT else Binary(bytes(message)))
                    self._message = bytearray()
                    self._opcode = 0
        if view is buffer:
            del buffer[:position]  # CPython drops a bytearray's head without moving the rest
        elif position < end:
            with memoryview(data) as rest:
                buffer += rest[position:]


#: The last text payload framed and its frame: a broadcast frames one str object for every receiver.
_last_text: tuple[str, bytes] = ("", b"\x81\x00")


def _frame(first: int, data: bytes) -> bytes:
    """An unmasked frame: the server never masks (section 5.1)."""
    length = len(data)
    if length < 126:
        return bytes((first, length)) + data
    if length < 1 << 16:
        return _HEADER_16.pack(first, 126, length) + data
    return _HEADER_64.pack(first, 127, length) + data


def text_frame(payload: str) -> bytes:
    """An unmasked FIN text frame, server to client; built once per payload object."""
    global _last_text
    last = _last_text
    if last[0] is payload:
        return last[1]
    frame = _frame(FIN | OP_TEXT, payload.encode("utf-8"))
    _last_text = (payload, frame)
    return frame


def binary_frame(data: bytes) -> bytes:
    """An unmasked FIN binary frame."""
    return _frame(FIN | OP_BINARY, bytes(data))


def _control_payload(payload: bytes) -> bytes:
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError(f"control frame payload of {len(payload)} bytes (at most {MAX_CONTROL_PAYLOAD})")
    return bytes(payload)


def ping_frame(payload: bytes = b"") -> bytes:
    """A ping; ``payload`` at most 125 bytes, else ValueError."""
    return _frame(FIN | OP_PING, _control_payload(payload))


def pong_frame(payload: bytes) -> bytes:
    """A pong, usually echoing a ping's payload; at most 125 bytes, else ValueError."""
    return _frame(FIN | OP_PONG, _control_payload(payload))


def close_frame(code: int | None = None, reason: str = "") -> bytes:
    """A close frame; ``code`` None sends an empty body (and then ``reason`` must be empty).

    ``reason`` is cut to 123 UTF-8 bytes, never inside a character.  A code that may not
    appear on the wire (1005, 1006, 1015, ...) is a ValueError rather than a frame the
    client would answer with a protocol error.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return bytes((FIN | OP_CLOSE, 0))
    if code not in _WIRE_CLOSE_CODES:
        raise ValueError(f"close code {code} is not allowed on the wire")
    return _frame(FIN | OP_CLOSE, code.to_bytes(2) + close_reason(reason).encode("utf-8"))


def close_reason(reason: str) -> str:
    """``reason`` cut to what a close frame can carry (123 UTF-8 bytes), never inside a character."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    # The cut leaves at most one incomplete character at the end, which "ignore" drops.
    return encoded[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (section 4.2.2)."""
    digest = hashlib.sha1((key + _GUID).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")
