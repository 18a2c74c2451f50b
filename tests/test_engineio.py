"""The Engine.IO v4 codec, checked against the strings of the spec and of its test suites.

Sources of the vectors, quoted verbatim below:

* the spec, https://github.com/socketio/engine.io-protocol README.md (4th version), cited by section;
* its compliance suite, ``test-suite/test-suite.js`` in the same repository;
* the "Sample session" of https://github.com/socketio/socket.io-protocol (Readme.md), whose
  Engine.IO layer is this protocol;
* the reference parser's own tests (socketio/engine.io-parser, ``test/index.ts``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import engineio
from tornad_io.engineio import (
    PING_PROBE,
    PONG_PROBE,
    EngineIOError,
    Packet,
    PacketType,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    open_packet,
)

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = PacketType
#: A bound generous enough not to matter, for tests about something else.
MANY = 1000


# -- the spec ---------------------------------------------------------------------------------------------------


def test_packet_type_ids() -> None:
    # Spec, "Protocol": open 0, close 1, ping 2, pong 3, message 4, upgrade 5, noop 6.
    assert [(kind.name, int(kind)) for kind in PacketType] == [
        ("OPEN", 0),
        ("CLOSE", 1),
        ("PING", 2),
        ("PONG", 3),
        ("MESSAGE", 4),
        ("UPGRADE", 5),
        ("NOOP", 6),
    ]
    assert engineio.PROTOCOL == 4


@pytest.mark.parametrize(
    ("frame", "packet"),
    [
        # Spec, "Packet encoding / WebSocket": "4hello".
        ("4hello", Packet(MESSAGE, "hello")),
        # Spec, "Heartbeat": the server's ping "2" and the client's pong "3".
        ("2", Packet(PING)),
        ("3", Packet(PONG)),
        # Spec, "Upgrade": "2probe", "3probe", then the client's "5"; the server's "6" ends the pending poll.
        ("2probe", Packet(PING, "probe")),
        ("3probe", Packet(PONG, "probe")),
        ("5", Packet(UPGRADE)),
        ("6", Packet(NOOP)),
        # Test suite, "close": the client sends "1".
        ("1", Packet(CLOSE)),
        # Spec, "From v3 to v4": "€" used to need a character count; now it is just the message.
        ("4€", Packet(MESSAGE, "€")),
        # engine.io-parser tests: "4test", and "1€" as a message.
        ("4test", Packet(MESSAGE, "test")),
        ("41€", Packet(MESSAGE, "1€")),
        # socket.io-protocol "Sample session": Socket.IO packets ride in MESSAGEs.
        ("40", Packet(MESSAGE, "0")),
        ('40{"sid":"wZX3oN0bSVIhsaknAAAI"}', Packet(MESSAGE, '0{"sid":"wZX3oN0bSVIhsaknAAAI"}')),
        ('42["hey","Jude"]', Packet(MESSAGE, '2["hey","Jude"]')),
        ('42/admin,1["tellme"]', Packet(MESSAGE, '2/admin,1["tellme"]')),
        ('461-/admin,1[{"_placeholder":true,"num":0}]', Packet(MESSAGE, '61-/admin,1[{"_placeholder":true,"num":0}]')),
        # An empty message is a MESSAGE with empty data.
        ("4", Packet(MESSAGE, "")),
    ],
)
def test_websocket_text_frames(frame: str, packet: Packet) -> None:
    assert decode_packet(frame) == packet
    assert encode_packet(packet) == frame


def test_websocket_binary_frame_is_a_raw_binary_message() -> None:
    # Spec, "Packet encoding / WebSocket": "Binary payloads are sent as is, without modification."
    # Test suite, "sends and receives a binary packet": Uint8Array.from([1, 2, 3, 4]).
    frame = bytes([1, 2, 3, 4])
    assert decode_packet(frame) == Packet(MESSAGE, frame)
    assert encode_packet(Packet(MESSAGE, frame)) == frame
    assert decode_packet(b"") == Packet(MESSAGE, b"")
    assert decode_packet(bytearray(b"\x00\xff")) == Packet(MESSAGE, b"\x00\xff")
    assert decode_packet(memoryview(b"\x00\xff")) == Packet(MESSAGE, b"\x00\xff")


def test_force_base64_client_on_a_websocket() -> None:
    # A client with forceBase64 (b64=1) sends and expects binary as "b" + base64 in text frames.
    packet = Packet(MESSAGE, bytes([1, 2, 3, 4]))
    assert encode_packet(packet, supports_binary=False) == "bAQIDBA=="
    assert decode_packet("bAQIDBA==") == packet
    assert encode_packet(Packet(MESSAGE, "hello"), supports_binary=False) == "4hello"


@pytest.mark.parametrize(
    ("payload", "packets"),
    [
        # Spec, "Packet encoding / HTTP long-polling", first example.
        ("4hello\x1e2\x1e4world", [Packet(MESSAGE, "hello"), Packet(PING), Packet(MESSAGE, "world")]),
        # Same section, binary example: "AQIDBA==  => buffer <01 02 03 04> encoded as base64".
        ("4hello\x1ebAQIDBA==", [Packet(MESSAGE, "hello"), Packet(MESSAGE, bytes([1, 2, 3, 4]))]),
        # Test suite, "message / HTTP long-polling": one, several, and text plus binary.
        ("4hello", [Packet(MESSAGE, "hello")]),
        ("4test1\x1e4test2\x1e4test3", [Packet(MESSAGE, "test1"), Packet(MESSAGE, "test2"), Packet(MESSAGE, "test3")]),
        # Test suite, "heartbeat" (pong) and "close" (close, then the noop that ends the poll).
        ("3", [Packet(PONG)]),
        ("1", [Packet(CLOSE)]),
        ("6", [Packet(NOOP)]),
        # socket.io-protocol "Sample session", request n°5: two emits in one POST.
        ('42["hello"]\x1e42["world"]', [Packet(MESSAGE, '2["hello"]'), Packet(MESSAGE, '2["world"]')]),
        # engine.io-parser tests, "should encode/decode all packet types".
        (
            "0\x1e1\x1e2probe\x1e3probe\x1e4test",
            [Packet(OPEN), Packet(CLOSE), PING_PROBE, PONG_PROBE, Packet(MESSAGE, "test")],
        ),
    ],
)
def test_polling_payloads(payload: str, packets: list[Packet]) -> None:
    assert decode_payload(payload, MANY) == packets
    assert encode_payload(packets) == payload


@pytest.mark.parametrize(
    ("payload", "packets"),
    [
        ("4héllo 😀\x1e4中文\x1e4", [Packet(MESSAGE, "héllo 😀"), Packet(MESSAGE, "中文"), Packet(MESSAGE, "")]),
        ("4\x1e4", [Packet(MESSAGE, ""), Packet(MESSAGE, "")]),
        ("4\x1e4\x1e4", [Packet(MESSAGE, "")] * 3),
        ("b\x1e4€", [Packet(MESSAGE, b""), Packet(MESSAGE, "€")]),  # an empty binary message is "b"
        ("4\u2028\x1f\x1d\x00", [Packet(MESSAGE, "\u2028\x1f\x1d\x00")]),  # other control characters are data
    ],
)
def test_separator_with_unicode_and_empty_messages(payload: str, packets: list[Packet]) -> None:
    assert decode_payload(payload, MANY) == packets
    assert encode_payload(packets) == payload


def test_binary_is_always_base64_on_polling() -> None:
    # Spec, "From v3 to v4": "always use base64 when encoding a payload with binary data".
    everything = bytes(range(256))
    payload = encode_payload([Packet(MESSAGE, everything), Packet(MESSAGE, bytearray(b"\xff"))])  # type: ignore[arg-type]
    assert payload.startswith("bAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7")
    assert payload.endswith("\x1eb/w==")
    assert payload.isascii()
    assert decode_payload(payload, MANY) == [Packet(MESSAGE, everything), Packet(MESSAGE, b"\xff")]


# -- the handshake ----------------------------------------------------------------------------------------------


def test_open_packet_matches_the_sample_session_byte_for_byte() -> None:
    # socket.io-protocol, "Sample session", request n°1.
    assert (
        open_packet("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 5000, 1000000)
        == '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
        '"pingTimeout":5000,"maxPayload":1000000}'
    )


def test_open_packet_matches_the_spec_example() -> None:
    # Spec, "Handshake": the example object, keys in this order.
    text = open_packet("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 20000, 1000000)
    assert text[0] == "0"
    assert json.loads(text[1:]) == {
        "sid": "lv_VI97HAXpY6yYWAAAC",
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000000,
    }
    assert list(json.loads(text[1:])) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert decode_packet(text) == Packet(OPEN, text[1:])


@pytest.mark.parametrize(("upgrades", "listed"), [(["websocket"], '["websocket"]'), ([], "[]")])
def test_open_packet_as_the_test_suite_expects(upgrades: list[str], listed: str) -> None:
    # Test suite, "handshake": polling offers ["websocket"], a WebSocket session []; the suite's server
    # runs with pingInterval 300, pingTimeout 200, maxPayload 1e6.
    assert open_packet("abc", upgrades, 300, 200, 1000000) == (
        f'0{{"sid":"abc","upgrades":{listed},"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}'
    )


def test_open_packet_is_a_payload_of_one_record() -> None:
    text = open_packet("x", ["websocket"], 1, 2, 3)
    assert decode_payload(text, 1) == [decode_packet(text)]
    assert encode_payload([decode_packet(text)]) == text


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("s", "websocket", 1, 1, 1), TypeError),
        (("s", [], -1, 1, 1), ValueError),
        (("s", [], 1, 1.5, 1), ValueError),
        (("s", [], True, 1, 1), ValueError),
        (("s", [], 1, 1, 0), ValueError),
    ],
)
def test_open_packet_refuses_nonsense(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        open_packet(*args)  # type: ignore[arg-type]


# -- the upgrade probe ------------------------------------------------------------------------------------------


def test_probe_packets() -> None:
    # Spec, "Upgrade" and test suite, "upgrade": the client sends "2probe", the server answers "3probe".
    assert decode_packet("2probe") == PING_PROBE
    assert decode_packet("2probe").is_probe
    assert encode_packet(PONG_PROBE) == "3probe"
    assert PONG_PROBE.is_probe
    assert engineio.PROBE == "probe"


@pytest.mark.parametrize("frame", ["2", "3", "4probe", "2probe ", "2Probe", "5probe"])
def test_not_a_probe(frame: str) -> None:
    assert not decode_packet(frame).is_probe


# -- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        # Test suite, "closes the session upon invalid packet format": body / frame "abc".
        ("abc", "unknown packet type 'a'"),
        # engine.io-parser tests, "should fail to decode a malformed packet".
        ("", "empty packet"),
        ("a123", "unknown packet type 'a'"),
        ("7", "unknown packet type '7'"),
        ("9x", "unknown packet type '9'"),
        ("٤hello", "unknown packet type '٤'"),  # a non-ASCII digit is not a type
        (" 4hello", "unknown packet type ' '"),
        ("B", "unknown packet type 'B'"),
        # Base64 as a browser or Node.js client writes it: standard alphabet, padded.
        ("bAQIDBA", "invalid base64"),
        ("bAQIDBA=", "invalid base64"),
        ("bAQID BA==", "invalid base64"),
        ("bAQ-_", "invalid base64"),
        ("bAQ==AQ==", "invalid base64"),
        ("b====", "invalid base64"),
        ("bAQIDBA==\n", "invalid base64"),
        ("bé", "invalid base64: non-ASCII character"),
    ],
)
def test_invalid_frames(frame: str, reason: str) -> None:
    with pytest.raises(EngineIOError) as caught:
        decode_packet(frame)
    assert caught.value.reason.startswith(reason)
    assert caught.value.record is None
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("payload", "reason", "record"),
    [
        # An empty body: the reference parser yields its error packet, and the server closes the session.
        ("", "empty payload", None),
        # engine.io-parser tests, "should fail to decode a malformed payload".
        ("{", "unknown packet type '{'", 0),
        ("{}", "unknown packet type '{'", 0),
        ('["a123", "a456"]', "unknown packet type '['", 0),
        ("abc", "unknown packet type 'a'", 0),
        # Empty records: every packet has at least its type.
        ("\x1e", "empty packet", 0),
        ("4a\x1e", "empty packet", 1),
        ("\x1e4a", "empty packet", 0),
        ("4a\x1e\x1e4b", "empty packet", 1),
        ("4a\x1e2\x1ebAQ", "invalid base64", 2),
        ("4a\x1e2\x1ex", "unknown packet type 'x'", 2),
    ],
)
def test_invalid_payloads(payload: str, reason: str, record: int | None) -> None:
    with pytest.raises(EngineIOError) as caught:
        decode_payload(payload, MANY)
    assert caught.value.reason.startswith(reason)
    assert caught.value.record == record


def test_too_many_packets_is_refused_before_decoding() -> None:
    assert len(decode_payload("\x1e".join(["3"] * 16), 16)) == 16
    with pytest.raises(EngineIOError, match="17 packets in one payload, more than the limit of 16"):
        decode_payload("\x1e".join(["3"] * 17), 16)
    # The count is checked first: the invalid record is never looked at.
    with pytest.raises(EngineIOError, match="more than the limit of 1"):
        decode_payload("4a\x1ezzz", 1)
    with pytest.raises(ValueError, match="max_packets"):
        decode_payload("4a", 0)


@pytest.mark.parametrize(
    ("packets", "reason"),
    [
        ([], "a payload needs at least one packet"),
        ([Packet(MESSAGE, "a\x1eb")], r"text data containing the record separator \x1e"),
        ([Packet(PING, b"x")], "binary data in a PING packet"),
        ([Packet(MESSAGE, 5)], "packet data must be str or bytes, not int"),  # type: ignore[arg-type]
        ([Packet(9, "x")], "unknown packet type 9"),  # type: ignore[arg-type]
    ],
)
def test_payloads_that_cannot_be_encoded(packets: list[Packet], reason: str) -> None:
    with pytest.raises(EngineIOError) as caught:
        encode_payload(packets)
    assert caught.value.reason.startswith(reason)


def test_frames_that_cannot_be_encoded() -> None:
    with pytest.raises(EngineIOError, match="binary data in a CLOSE packet"):
        encode_packet(Packet(CLOSE, b"x"))
    with pytest.raises(EngineIOError, match="unknown packet type"):
        encode_packet(Packet(-1, "x"))  # type: ignore[arg-type]
    with pytest.raises(EngineIOError, match="frame data must be str or bytes"):
        decode_packet(None)  # type: ignore[arg-type]
    # On a WebSocket the separator is just a character.
    assert decode_packet(encode_packet(Packet(MESSAGE, "a\x1eb"))) == Packet(MESSAGE, "a\x1eb")


def test_error_message_names_the_record() -> None:
    with pytest.raises(EngineIOError) as caught:
        decode_payload("4a\x1e", MANY)
    assert str(caught.value) == "empty packet (record 1)"


# -- round trips ------------------------------------------------------------------------------------------------

_text = st.text().filter(lambda text: "\x1e" not in text)
_packets = st.one_of(
    st.builds(Packet, st.sampled_from(PacketType), _text),
    st.builds(Packet, st.just(MESSAGE), st.binary()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_packets, min_size=1, max_size=8))
def test_payload_round_trip(packets: list[Packet]) -> None:
    payload = encode_payload(packets)
    assert decode_payload(payload, len(packets)) == packets
    assert encode_payload(decode_payload(payload, len(packets))) == payload


@settings(max_examples=200, deadline=None)
@given(_packets, st.booleans())
def test_frame_round_trip(packet: Packet, supports_binary: bool) -> None:
    frame = encode_packet(packet, supports_binary=supports_binary)
    assert isinstance(frame, bytes) == (isinstance(packet.data, bytes) and supports_binary)
    assert decode_packet(frame) == packet


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_decode_payload_never_fails_otherwise(text: str) -> None:
    try:
        packets = decode_payload(text, MANY)
    except EngineIOError:
        return
    assert decode_payload(encode_payload(packets), MANY) == packets
    if "b" not in text:  # base64 may be re-encoded canonically, the rest comes back as it was
        assert encode_payload(packets) == text


def test_base64_with_stray_low_bits_is_read_as_node_reads_it() -> None:
    # Buffer.from("AR==", "base64") is <01>, like "AQ==": the unused bits are ignored.
    assert decode_packet("bAR==") == decode_packet("bAQ==") == Packet(MESSAGE, b"\x01")
