"""The RFC 6455 frame codec, checked by what a client would notice: the events it causes, or the close code."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import rfc6455
from tornad_io.rfc6455 import (
    Binary,
    Close,
    Event,
    FrameReader,
    Ping,
    Pong,
    WebSocketError,
    accept_key,
    binary_frame,
    close_frame,
    ping_frame,
    pong_frame,
    text_frame,
)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"
#: The limit of the readers below unless a case says otherwise.
MAX = 1 << 16


def masked(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XORed with ``mask``, the slow obvious way (independent of the codec's trick)."""
    return bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def client_frame(
    payload: bytes = b"",
    opcode: int = TEXT,
    *,
    fin: bool = True,
    mask: bytes = MASK,
    rsv: int = 0,
    length_size: int | None = None,
    length: int | None = None,
    unmasked: bool = False,
) -> bytes:
    """A client-to-server frame as a browser sends it, or broken as asked.

    ``rsv`` is the 3 reserved bits (4 = RSV1, 2 = RSV2, 1 = RSV3); ``length_size`` forces the
    7-bit (1), 16-bit (2) or 64-bit (8) length encoding; ``length`` declares a length other than
    the payload's, to send a header alone.
    """
    declared = len(payload) if length is None else length
    if length_size is None:
        length_size = 1 if declared < 126 else 2 if declared < 1 << 16 else 8
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0 if unmasked else 0x80
    if length_size == 1:
        head = bytes((first, mask_bit | declared))
    elif length_size == 2:
        head = bytes((first, mask_bit | 126)) + declared.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | 127)) + declared.to_bytes(8, "big")
    if unmasked:
        return head + payload
    return head + mask + masked(payload, mask)


def feed_all(data: bytes, max_size: int = MAX, chunk: int | None = None) -> list[Event]:
    """The events of ``data`` fed whole, or ``chunk`` bytes at a time."""
    reader = FrameReader(max_size)
    if chunk is None:
        return reader.feed(data)
    events: list[Event] = []
    for start in range(0, len(data), chunk):
        events += reader.feed(data[start : start + chunk])
    return events


def close_code(data: bytes, max_size: int = MAX, chunk: int | None = None) -> int:
    """The close code the reader answers ``data`` with."""
    with pytest.raises(WebSocketError) as caught:
        feed_all(data, max_size, chunk)
    error = caught.value
    assert error.reason.isascii() and len(error.reason) <= 123
    return error.code


BUFFER_KINDS: list[Callable[[bytes], bytes | bytearray | memoryview]] = [bytes, bytearray, memoryview]
CJK_EMOJI = "中文 テキスト 한국어 😀🎉 é"

VALID_CASES = [
    pytest.param(client_frame(b"hello"), ["hello"], id="text"),
    pytest.param(client_frame(b"\x00\xffbin", BINARY), [Binary(b"\x00\xffbin")], id="binary"),
    pytest.param(client_frame(b""), [""], id="empty-text"),
    pytest.param(client_frame(b"", BINARY), [Binary(b"")], id="empty-binary"),
    pytest.param(client_frame(b"a" * 125), ["a" * 125], id="len-125-7bit"),
    pytest.param(client_frame(b"b" * 126), ["b" * 126], id="len-126-16bit"),
    pytest.param(client_frame(b"c" * 65535), ["c" * 65535], id="len-65535-16bit"),
    pytest.param(client_frame(b"d" * 65536, BINARY), [Binary(b"d" * 65536)], id="len-65536-64bit"),
    pytest.param(client_frame(b"e" * MAX), ["e" * MAX], id="exactly-max"),
    pytest.param(client_frame(CJK_EMOJI.encode()), [CJK_EMOJI], id="cjk-emoji"),
    pytest.param(client_frame(b"zero mask", mask=b"\0\0\0\0"), ["zero mask"], id="zero-mask"),
    pytest.param(client_frame(b"short", length_size=2), ["short"], id="non-minimal-16bit"),
    pytest.param(client_frame(b"short", BINARY, length_size=8), [Binary(b"short")], id="non-minimal-64bit"),
    pytest.param(client_frame(b"p", PING, length_size=2), [Ping(b"p")], id="non-minimal-ping"),
    pytest.param(client_frame(b"are you there", PING), [Ping(b"are you there")], id="ping"),
    pytest.param(client_frame(b"", PING), [Ping(b"")], id="empty-ping"),
    pytest.param(client_frame(b"x" * 125, PING), [Ping(b"x" * 125)], id="ping-125"),
    pytest.param(client_frame(b"yes", PONG), [Pong(b"yes")], id="pong"),
    pytest.param(client_frame(b"", CLOSE), [Close(None, "")], id="close-empty"),
    pytest.param(client_frame(b"\x03\xe8", CLOSE), [Close(1000, "")], id="close-code"),
    pytest.param(client_frame(b"\x03\xe9bye \xc3\xa9", CLOSE), [Close(1001, "bye é")], id="close-reason"),
    pytest.param(
        client_frame(b"ab", fin=False) + client_frame(b"cd", CONT, fin=False) + client_frame(b"ef", CONT),
        ["abcdef"],
        id="fragmented-text",
    ),
    pytest.param(
        client_frame(b"\x01", BINARY, fin=False) + client_frame(b"\x02", CONT),
        [Binary(b"\x01\x02")],
        id="fragmented-binary",
    ),
    pytest.param(
        client_frame(b"", fin=False) + client_frame(b"", CONT, fin=False) * 50 + client_frame(b"", CONT),
        [""],
        id="empty-fragments",
    ),
    pytest.param(
        client_frame(b"ab", fin=False)
        + client_frame(b"", CONT, fin=False) * 20
        + client_frame(b"c", CONT, fin=False)
        + client_frame(b"", CONT),
        ["abc"],
        id="zero-length-continuations",
    ),
    pytest.param(
        client_frame(b"frag", fin=False)
        + client_frame(b"ping", PING)
        + client_frame(b"ment", CONT, fin=False)
        + client_frame(b"pong", PONG)
        + client_frame(b"ed", CONT),
        [Ping(b"ping"), Pong(b"pong"), "fragmented"],
        id="fragments-with-ping-and-pong",
    ),
    pytest.param(
        client_frame(b"\xe2", fin=False) + client_frame(b"\x82", CONT, fin=False) + client_frame(b"\xac", CONT),
        ["€"],
        id="multibyte-split-across-fragments",
    ),
    pytest.param(
        client_frame(b"one") + client_frame(b"two", BINARY) + client_frame(b"three"),
        ["one", Binary(b"two"), "three"],
        id="coalesced",
    ),
    pytest.param(
        client_frame(b"\x03\xe8", CLOSE) + client_frame(b"late"),
        [Close(1000, ""), "late"],
        id="events-after-close-are-returned",
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID_CASES)
def test_valid_frames(data: bytes, expected: list[Event]) -> None:
    assert feed_all(data) == expected


@pytest.mark.parametrize(("data", "expected"), VALID_CASES)
def test_valid_frames_fed_in_small_chunks(data: bytes, expected: list[Event]) -> None:
    assert feed_all(data, chunk=3) == expected


@pytest.mark.parametrize("kind", BUFFER_KINDS, ids=["bytes", "bytearray", "memoryview"])
def test_one_small_text_frame_per_chunk(kind: Callable[[bytes], bytes | bytearray | memoryview]) -> None:
    """The hot path: every chunk is exactly one frame, of every 7-bit length and mask phase."""
    reader = FrameReader(MAX)
    for size in range(126):
        text = ("aé😀" * 50).encode()[:size].decode(errors="ignore")
        for mask in (MASK, b"\0\0\0\0", b"\xff\xfe\xfd\xfc"):
            assert reader.feed(kind(client_frame(text.encode(), mask=mask))) == [text]
        # The general path in between must hand the reader back to the hot path intact.
        assert reader.feed(kind(client_frame(b"a", fin=False) + client_frame(b"b", CONT))) == ["ab"]
    assert reader.buffered == 0


@pytest.mark.parametrize(
    "code", [*range(1000, 1004), *range(1007, 1015), 3000, 3999, 4000, 4999], ids=lambda code: str(code)
)
def test_close_codes_allowed_on_the_wire(code: int) -> None:
    assert feed_all(client_frame(code.to_bytes(2, "big") + b"why", CLOSE)) == [Close(code, "why")]


def fragments(*frames: bytes) -> bytes:
    return b"".join(frames)


VIOLATIONS = [
    pytest.param(client_frame(b"hi", unmasked=True), 1002, id="unmasked"),
    pytest.param(client_frame(b"", PING, unmasked=True), 1002, id="unmasked-ping"),
    pytest.param(client_frame(b"hi", rsv=4), 1002, id="rsv1"),
    pytest.param(client_frame(b"hi", rsv=2), 1002, id="rsv2"),
    pytest.param(client_frame(b"hi", rsv=1), 1002, id="rsv3"),
    *(
        pytest.param(client_frame(b"x", opcode), 1002, id=f"reserved-opcode-{opcode:#x}")
        for opcode in (*range(0x3, 0x8), *range(0xB, 0x10))
    ),
    pytest.param(client_frame(b"", CLOSE, fin=False), 1002, id="close-without-fin"),
    pytest.param(client_frame(b"p", PING, fin=False), 1002, id="ping-without-fin"),
    pytest.param(client_frame(b"p", PONG, fin=False), 1002, id="pong-without-fin"),
    pytest.param(client_frame(b"x" * 126, PING), 1002, id="ping-126"),
    pytest.param(client_frame(b"x" * 126, PONG), 1002, id="pong-126"),
    pytest.param(client_frame(b"\x03\xe8" + b"x" * 124, CLOSE), 1002, id="close-126"),
    pytest.param(client_frame(b"", PING, length=1 << 40), 1002, id="ping-declaring-2**40"),
    pytest.param(client_frame(b"orphan", CONT), 1002, id="continuation-without-message"),
    pytest.param(client_frame(b"orphan", CONT, fin=False), 1002, id="unfinished-continuation-without-message"),
    pytest.param(
        fragments(client_frame(b"ab", fin=False), client_frame(b"cd")), 1002, id="text-during-fragmented-text"
    ),
    pytest.param(
        fragments(client_frame(b"ab", BINARY, fin=False), client_frame(b"cd", BINARY)),
        1002,
        id="binary-during-fragmented-binary",
    ),
    pytest.param(
        fragments(client_frame(b"ab", fin=False), client_frame(b"cd", BINARY, fin=False)),
        1002,
        id="unfinished-binary-during-fragmented-text",
    ),
    pytest.param(
        fragments(client_frame(b"ab"), client_frame(b"cd", CONT)), 1002, id="continuation-after-complete-message"
    ),
    pytest.param(client_frame(b"", BINARY, length=1 << 63), 1002, id="64bit-length-top-bit"),
    pytest.param(client_frame(b"", TEXT, length=(1 << 64) - 1), 1002, id="64bit-length-all-ones"),
    pytest.param(client_frame(b"", TEXT, length=MAX + 1), 1009, id="header-over-max"),
    pytest.param(client_frame(b"", BINARY, length=1 << 40), 1009, id="header-2**40"),
    pytest.param(client_frame(b"x" * (MAX + 1)), 1009, id="text-over-max"),
    pytest.param(
        fragments(client_frame(b"x" * (MAX - 10), fin=False), client_frame(b"", CONT, length=11)),
        1009,
        id="fragments-sum-over-max",
    ),
    pytest.param(
        fragments(
            client_frame(b"x" * (MAX // 2), BINARY, fin=False),
            client_frame(b"x" * (MAX // 2), CONT, fin=False),
            client_frame(b"x", CONT),
        ),
        1009,
        id="third-fragment-over-max",
    ),
    pytest.param(client_frame(b"\xff"), 1007, id="invalid-utf8"),
    pytest.param(client_frame(b"caf\xc3"), 1007, id="truncated-utf8"),
    pytest.param(client_frame(b"\xed\xa0\x80"), 1007, id="encoded-surrogate"),
    pytest.param(client_frame(b"\xc0\xaf"), 1007, id="overlong-utf8"),
    pytest.param(client_frame(b"x" * 200 + b"\xff"), 1007, id="invalid-utf8-16bit-length"),
    pytest.param(
        fragments(client_frame(b"ok\xe2", fin=False), client_frame(b"\x28", CONT)),
        1007,
        id="invalid-utf8-across-fragments",
    ),
    pytest.param(
        fragments(client_frame(b"ok\xe2\x82", fin=False), client_frame(b"", CONT)),
        1007,
        id="message-ending-inside-a-character",
    ),
    pytest.param(client_frame(b"\x03", CLOSE), 1002, id="close-body-1-byte"),
    *(
        pytest.param(client_frame(code.to_bytes(2, "big"), CLOSE), 1002, id=f"close-code-{code}")
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)
    ),
    pytest.param(client_frame(b"\x03\xe8\xff", CLOSE), 1007, id="close-reason-invalid-utf8"),
]


@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "bytewise"])
@pytest.mark.parametrize(("data", "code"), VIOLATIONS)
def test_violations(data: bytes, code: int, chunk: int | None) -> None:
    assert close_code(data, chunk=chunk) == code


@pytest.mark.parametrize(
    ("max_size", "data", "expected"),
    [
        pytest.param(4, client_frame(b"abcd"), ["abcd"], id="at-limit"),
        pytest.param(3, client_frame(b"abcd"), 1009, id="over-limit"),
        pytest.param(0, client_frame(b""), [""], id="empty-at-zero-limit"),
        pytest.param(0, client_frame(b"", PING) + client_frame(b"x", BINARY), 1009, id="ping-then-over-zero"),
        pytest.param(3, client_frame(b"abcd", PING), [Ping(b"abcd")], id="control-frames-not-counted"),
    ],
)
def test_small_limits(max_size: int, data: bytes, expected: list[Event] | int) -> None:
    if isinstance(expected, int):
        assert close_code(data, max_size) == expected
    else:
        assert feed_all(data, max_size) == expected


def test_the_close_code_comes_with_what_the_chunk_completed_before() -> None:
    reader = FrameReader(MAX)
    with pytest.raises(WebSocketError) as caught:
        reader.feed(client_frame(b"first") + client_frame(b"", PING) + client_frame(b"x", unmasked=True))
    assert caught.value.code == 1002
    assert caught.value.events == ["first", Ping(b"")]


@pytest.mark.parametrize(
    "bad",
    [client_frame(b"\xff"), client_frame(b"x", unmasked=True), client_frame(b"", length=MAX + 1)],
    ids=["fast-path-utf8", "unmasked", "too-big"],
)
def test_a_failed_reader_keeps_failing(bad: bytes) -> None:
    reader = FrameReader(MAX)
    with pytest.raises(WebSocketError) as first:
        reader.feed(bad)
    for good in (client_frame(b"fine"), client_frame(b"", PING), b""):
        with pytest.raises(WebSocketError) as again:
            reader.feed(good)
        assert again.value is first.value
        assert again.value.events == []
    assert reader.buffered == 0


STREAM = fragments(
    client_frame("héllo".encode()),
    client_frame(bytes(range(200)), BINARY),
    client_frame(b"frag", fin=False, mask=b"\x01\x02\x03\x04"),
    client_frame(b"are you there", PING),
    client_frame(b"men", CONT, fin=False),
    client_frame(b"t\xe2\x82", CONT, fin=False),
    client_frame(b"\xac", CONT),
    client_frame(b""),
    client_frame(b"p", PONG),
    client_frame(b"x" * 130, length_size=8),
    client_frame(b"\x03\xe8bye", CLOSE),
)
STREAM_EVENTS: list[Event] = [
    "héllo",
    Binary(bytes(range(200))),
    Ping(b"are you there"),
    "fragment€",
    "",
    Pong(b"p"),
    "x" * 130,
    Close(1000, "bye"),
]


@pytest.mark.parametrize("kind", BUFFER_KINDS, ids=["bytes", "bytearray", "memoryview"])
def test_split_at_every_byte_boundary(kind: Callable[[bytes], bytes | bytearray | memoryview]) -> None:
    assert feed_all(STREAM) == STREAM_EVENTS
    for cut in range(len(STREAM) + 1):
        reader = FrameReader(MAX)
        events = reader.feed(kind(STREAM[:cut])) + reader.feed(kind(STREAM[cut:]))
        assert events == STREAM_EVENTS, cut
        assert reader.buffered == 0


@pytest.mark.parametrize("kind", BUFFER_KINDS, ids=["bytes", "bytearray", "memoryview"])
def test_fed_one_byte_at_a_time(kind: Callable[[bytes], bytes | bytearray | memoryview]) -> None:
    reader = FrameReader(MAX)
    events: list[Event] = []
    for index in range(len(STREAM)):
        events += reader.feed(kind(STREAM[index : index + 1]))
    assert events == STREAM_EVENTS
    assert reader.buffered == 0


@pytest.mark.parametrize("read_size", [1, 3, 7, 64, 1024])
def test_the_callers_buffer_may_be_reused(read_size: int) -> None:
    """As with asyncio.BufferedProtocol: one scratch buffer, overwritten after every feed."""
    scratch = bytearray(read_size)
    reader = FrameReader(MAX)
    events: list[Event] = []
    for start in range(0, len(STREAM), read_size):
        chunk = STREAM[start : start + read_size]
        scratch[: len(chunk)] = chunk
        with memoryview(scratch) as view:
            events += reader.feed(view[: len(chunk)])
        scratch[:] = b"\xee" * read_size
    assert events == STREAM_EVENTS


def test_a_huge_declared_frame_is_refused_right_after_its_header() -> None:
    reader = FrameReader(1 << 20)
    header = client_frame(b"", BINARY, length=1 << 40)
    assert len(header) == 14
    assert reader.feed(header[:13]) == []
    with pytest.raises(WebSocketError) as caught:
        reader.feed(header[13:] + b"\0" * 4096)
    assert caught.value.code == 1009
    assert reader.buffered == 0


@pytest.mark.parametrize("read_size", [1000, 4096, 65536])
def test_buffered_stays_bounded_by_the_limit(read_size: int) -> None:
    limit = 1 << 18
    data = fragments(
        client_frame(b"a" * (limit // 3), BINARY, fin=False),
        client_frame(b"", PING),
        client_frame(b"b" * (limit // 3), CONT, fin=False),
        client_frame(b"c" * (limit - 2 * (limit // 3)), CONT),
    )
    reader = FrameReader(limit)
    events: list[Event] = []
    for start in range(0, len(data), read_size):
        events += reader.feed(data[start : start + read_size])
        assert reader.buffered <= limit + 14
    assert len(events) == 2 and isinstance(events[1], Binary) and len(events[1].data) == limit
    assert reader.buffered == 0


def test_a_64k_frame_fed_byte_by_byte_is_linear() -> None:
    data = client_frame(bytes(range(256)) * 256, BINARY)
    reader = FrameReader(1 << 20)
    events: list[Event] = []
    started = time.perf_counter()
    for index in range(len(data)):
        events += reader.feed(data[index : index + 1])
    assert time.perf_counter() - started < 1.0
    assert events == [Binary(bytes(range(256)) * 256)]


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1024, 16383, 16384, 16385, 65536, 100_003])
def test_unmasking_every_length_and_phase(size: int) -> None:
    payload = bytes((i * 7) & 0xFF for i in range(size))
    assert feed_all(client_frame(payload, BINARY), max_size=1 << 20) == [Binary(payload)]
    text = ("é" * size)[: size // 2 + 1]
    assert feed_all(client_frame(text.encode()), max_size=1 << 20) == [text]


# The writers: unmasked server frames.


def header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


@pytest.mark.parametrize(
    ("length", "prefix"),
    [
        (0, b"\x00"),
        (125, b"\x7d"),
        (126, b"\x7e\x00\x7e"),
        (65535, b"\x7e\xff\xff"),
        (65536, b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_text_and_binary_frames(length: int, prefix: bytes) -> None:
    assert header(0x81, length)[1:] == prefix
    assert text_frame("t" * length) == b"\x81" + prefix + b"t" * length
    assert binary_frame(b"\x00" * length) == b"\x82" + prefix + b"\x00" * length


def test_text_frame_encodes_utf8() -> None:
    encoded = CJK_EMOJI.encode()
    assert text_frame(CJK_EMOJI) == header(0x81, len(encoded)) + encoded


def test_text_frame_is_built_once_per_payload_object() -> None:
    payload = "".join(["broad", "cast"])  # a fresh object, not an interned constant
    frame = text_frame(payload)
    assert text_frame(payload) is frame
    twin = "".join(["broad", "cast"])
    assert twin is not payload
    assert text_frame(twin) == frame
    assert text_frame("other") == b"\x81\x05other"
    assert text_frame(payload) == frame


@pytest.mark.parametrize(
    ("writer", "first"), [(rfc6455.ping_frame, 0x89), (rfc6455.pong_frame, 0x8A)], ids=["ping", "pong"]
)
def test_control_frames(writer: Callable[[bytes], bytes], first: int) -> None:
    assert writer(b"") == bytes((first, 0))
    assert writer(b"hi") == bytes((first, 2)) + b"hi"
    assert writer(b"x" * 125) == bytes((first, 125)) + b"x" * 125
    with pytest.raises(ValueError):
        writer(b"x" * 126)


def test_ping_frame_defaults_to_empty() -> None:
    assert ping_frame() == b"\x89\x00"
    assert pong_frame(b"") == b"\x8a\x00"


@pytest.mark.parametrize(
    ("code", "reason", "body"),
    [
        (None, "", b""),
        (1000, "", b"\x03\xe8"),
        (1001, "bye", b"\x03\xe9bye"),
        (4000, "é", b"\x0f\xa0\xc3\xa9"),
        (1000, "a" * 123, b"\x03\xe8" + b"a" * 123),
        (1000, "a" * 200, b"\x03\xe8" + b"a" * 123),
        (1000, "€" * 41, b"\x03\xe8" + "€".encode() * 41),  # exactly 123 bytes
        (1000, "€" * 42, b"\x03\xe8" + "€".encode() * 41),  # the 42nd would straddle byte 123
        (1000, "a" * 122 + "€", b"\x03\xe8" + b"a" * 122),
        (1000, "a" * 121 + "😀", b"\x03\xe8" + b"a" * 121),
    ],
)
def test_close_frame(code: int | None, reason: str, body: bytes) -> None:
    frame = close_frame(code, reason)
    assert frame == bytes((0x88, len(body))) + body
    assert len(body) <= 125
    # A client reading it back (masked, as a client would echo it) sees the same close.
    assert feed_all(client_frame(body, CLOSE)) == [
        Close(code, reason.encode()[: len(body) - 2].decode() if body else "")
    ]


def test_close_frame_defaults_to_an_empty_body() -> None:
    assert close_frame() == b"\x88\x00"


@pytest.mark.parametrize(("code", "reason"), [(None, "why"), (1005, ""), (1006, ""), (999, ""), (5000, "")])
def test_close_frame_refuses_what_the_client_would_refuse(code: int | None, reason: str) -> None:
    with pytest.raises(ValueError):
        close_frame(code, reason)


def test_accept_key_rfc_example() -> None:
    # RFC 6455 section 1.3 (and what Tornado's compute_accept_value answers).
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_error_carries_code_and_reason() -> None:
    error = WebSocketError(rfc6455.CLOSE_PROTOCOL_ERROR, "bad")
    assert (error.code, error.reason) == (1002, "bad")
    assert (rfc6455.CLOSE_NORMAL, rfc6455.CLOSE_GOING_AWAY, rfc6455.CLOSE_UNSUPPORTED_DATA) == (1000, 1001, 1003)
    assert (rfc6455.CLOSE_INVALID_PAYLOAD, rfc6455.CLOSE_POLICY) == (1007, 1008)
    assert (rfc6455.CLOSE_MESSAGE_TOO_BIG, rfc6455.CLOSE_INTERNAL_ERROR) == (1009, 1011)


def test_max_message_size_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        FrameReader(-1)


# A random conversation: messages cut into random fragments with pings between them, the whole
# byte stream then cut at random points.


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_round_trip(data: st.DataObject) -> None:
    messages = data.draw(st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), max_size=6))
    wire = bytearray()
    expected: list[Event] = []
    masks = st.binary(min_size=4, max_size=4)
    for message in messages:
        payload = message.encode() if isinstance(message, str) else message
        cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[start:stop] for start, stop in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for index, piece in enumerate(pieces):
            if data.draw(st.booleans()):
                ping = data.draw(st.binary(max_size=125))
                wire += client_frame(ping, PING, mask=data.draw(masks))
                expected.append(Ping(ping))
            opcode = CONT if index else TEXT if isinstance(message, str) else BINARY
            wire += client_frame(piece, opcode, fin=index == len(pieces) - 1, mask=data.draw(masks))
        expected.append(message if isinstance(message, str) else Binary(message))
    splits = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    reader = FrameReader(MAX)
    events: list[Event] = []
    for start, stop in zip([0, *splits], [*splits, len(wire)], strict=True):
        events += reader.feed(bytes(wire[start:stop]))
    assert events == expected
    assert reader.buffered == 0
