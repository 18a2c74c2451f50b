"""The Socket.IO 0.6 wire codec: text in, frames out.

No I/O and no Tornado here, in the sans-IO spirit of h11: every transport
hands payloads to :func:`decode_payload` and writes what :func:`encode_frame`
and friends return.

A payload is one or more frames, each ``~m~<length>~m~<message>`` with nothing
between them.  The length counts UTF-16 code units, because both ends of the
original protocol were JavaScript: an astral character such as ``😀`` counts
2.  A message is one of

* ``~h~<n>``: a heartbeat (:class:`Heartbeat`), never shown to the application;
* ``~j~<json>``: a JSON value (:class:`Json`), decoded with simplejson so that
  floats arrive as :class:`decimal.Decimal` (as in the 2010 release);
* anything else: a plain ``str``.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import simplejson

__all__ = [
    "DEFAULT_MAX_FRAME",
    "Heartbeat",
    "Json",
    "Message",
    "ProtocolError",
    "TooManyFrames",
    "decode_form_payload",
    "decode_payload",
    "encode_frame",
    "encode_heartbeat",
    "encode_message",
    "utf16_len",
]

FRAME: Final = "~m~"
HEARTBEAT: Final = "~h~"
JSON: Final = "~j~"

#: The longest message :func:`decode_payload` accepts unless told otherwise, in UTF-16 units.
DEFAULT_MAX_FRAME: Final = 1 << 20


class ProtocolError(ValueError):
    """A payload that is not a sequence of well-formed frames.

    ``position`` is the index in the payload where decoding stopped.
    """

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} (at character {position})")
        self.reason = reason
        self.position = position


class TooManyFrames(ProtocolError):
    """A payload carrying more frames than the caller allows (``max_frames``)."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A ``~h~<n>`` message; ``number`` is the text after the marker."""

    number: str


@dataclass(frozen=True, slots=True)
class Json:
    """A ``~j~`` message whose JSON text decoded to ``value``."""

    value: Any


#: What :func:`decode_payload` yields for one frame.
Message = str | Heartbeat | Json


def utf16_len(text: str) -> int:
    """Length of ``text`` as JavaScript counts it (UTF-16 code units)."""
    if text.isascii():
        return len(text)
    # Raises UnicodeEncodeError on a lone surrogate, which the client cannot receive anyway.
    return len(text.encode("utf-16-le")) // 2


def encode_frame(message: str) -> str:
    """Frame one message text: ``~m~<utf16 length>~m~<message>``."""
    return f"{FRAME}{utf16_len(message)}{FRAME}{message}"


def _json_dumps(value: Any) -> str:
    text: str = simplejson.dumps(value, separators=(",", ":"), ensure_ascii=False, use_decimal=True)
    return text


def encode_message(message: Any) -> str:
    """Frame what ``SocketIOHandler.send`` was given.

    A ``str`` reaches the client's ``message`` event exactly as given: one that
    starts with ``~j~`` or ``~h~`` (which the client would otherwise take for
    JSON or a heartbeat) is sent as ``~j~`` plus a JSON string literal, which
    the client decodes back to the same string.  Anything else is sent as
    ``~j~`` JSON (``decimal.Decimal`` included).
    """
    if isinstance(message, str):
        if message.startswith((JSON, HEARTBEAT)):
            return encode_frame(JSON + _json_dumps(message))
        return encode_frame(message)
    return encode_frame(JSON + _json_dumps(message))


def encode_heartbeat(number: int | str) -> str:
    """The frame of heartbeat ``number``."""
    return encode_frame(f"{HEARTBEAT}{number}")


def _parse_message(text: str, position: int) -> Message:
    marker = text[:3]
    if marker == HEARTBEAT:
        return Heartbeat(text[3:])
    if marker == JSON:
        try:
            return Json(simplejson.loads(text[3:], use_decimal=True))
        except (simplejson.JSONDecodeError, decimal.InvalidOperation, RecursionError) as exc:
            raise ProtocolError(f"invalid JSON in a ~j~ message: {exc}", position) from None
    return text


def _frame_header(payload: str, position: int, max_frame: int) -> tuple[int, int]:
    """Parse ``~m~<digits>~m~`` at ``position``: (index where the message starts, its length)."""
    if not payload.startswith(FRAME, position):
        raise ProtocolError("expected '~m~'", position)
    digits_start = position + 3
    digits_end = payload.find(FRAME, digits_start)
    if digits_end < 0:
        raise ProtocolError("unterminated frame length", digits_start)
    digits = payload[digits_start:digits_end]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise ProtocolError(f"frame length {digits[:20]!r} is not a decimal number", digits_start)
    length = int(digits)
    if length > max_frame:
        raise ProtocolError(f"frame of {length} units is over the limit of {max_frame}", digits_start)
    return digits_end + 3, length


def decode_payload(payload: str, max_frame: int = DEFAULT_MAX_FRAME, max_frames: int | None = None) -> list[Message]:
    """Split a payload into messages, in order.

    Raises :class:`ProtocolError` if the payload is not frames back to back,
    if a declared length is over ``max_frame`` UTF-16 units or runs past the
    end or into the middle of a surrogate pair, or if a ``~j~`` message is not
    valid JSON; :class:`TooManyFrames` as soon as it holds more than
    ``max_frames`` frames, before decoding the rest.  Nothing is returned for
    a payload that fails: the caller rejects it whole rather than acting on
    part of it.
    """
    return _decode(payload, max_frame, max_frames, _take)


def decode_form_payload(
    payload: str, max_frame: int = DEFAULT_MAX_FRAME, max_frames: int | None = None
) -> list[Message]:
    """:func:`decode_payload` for a body an HTML form posted (jsonp-polling).

    A form turns every line break into CRLF *after* the client counted the
    message, so ``a\nb`` (3 units) arrives as ``a\r\nb``.  Each frame is
    first read with every CRLF counted as one unit; if the frame then ends
    exactly at the next frame or the end of the body, that reading wins and
    its CRLFs become ``\n``.  Otherwise the CRLFs are taken literally.
    """
    if "\r\n" not in payload:
        return _decode(payload, max_frame, max_frames, _take)
    return _decode(payload, max_frame, max_frames, _take_folding_crlf)


#: A well-formed frame header (what :func:`_frame_header` accepts), read in one C call; anything else
#: goes to :func:`_frame_header`, which says what is wrong with it.
_HEADER: Final = re.compile(r"~m~([0-9]{1,12})~m~")


def _decode(
    payload: str, max_frame: int, max_frames: int | None, take: Callable[[str, int, int], tuple[str, int]]
) -> list[Message]:
    """Frames back to back; ``take`` reads one message text and says where the next frame starts.

    Most payloads are one short frame, so the common case is read inline: a
    header ``_HEADER`` matches, an ASCII message (as many characters as
    units), a text that does not start with ``~`` (no heartbeat, no JSON).
    """
    messages: list[Message] = []
    position = 0
    end = len(payload)
    header = _HEADER.match
    while position < end:
        if max_frames is not None and len(messages) >= max_frames:
            raise TooManyFrames(f"more than {max_frames} frames in one payload", position)
        found = header(payload, position)
        if found is None:
            start, length = _frame_header(payload, position, max_frame)  # raises
        else:
            start = found.end()
            length = int(found[1])
            if length > max_frame:
                raise ProtocolError(f"frame of {length} units is over the limit of {max_frame}", position + 3)
        position = start + length
        text = payload[start:position]
        if take is not _take or len(text) != length or not text.isascii():
            text, position = take(payload, start, length)
        messages.append(text if text[:1] != "~" else _parse_message(text, start))
    return messages


def _take(payload: str, start: int, units: int) -> tuple[str, int]:
    stop = _advance(payload, start, units)
    return payload[start:stop], stop


def _take_folding_crlf(payload: str, start: int, units: int) -> tuple[str, int]:
    folded = _advance_folding_crlf(payload, start, units)
    if folded is not None and (folded == len(payload) or payload.startswith(FRAME, folded)):
        return payload[start:folded].replace("\r\n", "\n"), folded
    return _take(payload, start, units)


def _advance_folding_crlf(payload: str, start: int, units: int) -> int | None:
    """Like :func:`_advance` with each CRLF counted as one unit; ``None`` if that does not fit."""
    position = start
    counted = 0
    end = len(payload)
    while counted < units:
        if position >= end:
            return None
        if payload.startswith("\r\n", position):
            position += 2
            counted += 1
        else:
            counted += 2 if payload[position] > "\uffff" else 1
            position += 1
    return position if counted == units else None


def _advance(payload: str, start: int, units: int) -> int:
    """Index just past ``units`` UTF-16 code units of ``payload`` from ``start``."""
    chunk = payload[start : start + units]
    if chunk.isascii():
        if len(chunk) < units:
            raise ProtocolError(f"frame declares {units} units but the payload ends first", start)
        return start + units
    # An astral character is two units but one Python character: the chunk
    # may hold more units than declared; walk back over the surplus.
    stop = start + len(chunk)
    counted = len(chunk.encode("utf-16-le", "surrogatepass")) // 2
    trimmed = False
    while counted > units:
        stop -= 1
        counted -= 2 if payload[stop] > "\uffff" else 1
        trimmed = True
    if counted < units:
        if trimmed:
            raise ProtocolError("frame length ends inside a surrogate pair", stop)
        raise ProtocolError(f"frame declares {units} units but the payload ends first", start)
    return stop
