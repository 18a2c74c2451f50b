"""The Socket.IO v5 codec, checked against the strings of the spec and of its test suites.

Sources of the vectors, quoted verbatim below (without the Engine.IO ``4`` that prefixes each
packet on the wire, as the spec explains in "Packet encoding"):

* the spec, https://github.com/socketio/socket.io-protocol Readme.md (5th version), cited by section;
* its compliance suite, ``test-suite/test-suite.js`` in the same repository;
* the reference parser's own tests (socketio/socket.io-parser, ``test/parser.js`` and ``test/buffer.js``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import engineio, socketio5
from tornad_io.socketio5 import (
    RESERVED_EVENTS,
    Decoder,
    SioPacket,
    SioPacketType,
    SocketIOPacketError,
    encode,
)

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = SioPacketType


def placeholder(num: int) -> dict[str, Any]:
    return {"_placeholder": True, "num": num}


def decode(*messages: str | bytes, max_attachments: int = socketio5.DEFAULT_MAX_ATTACHMENTS) -> SioPacket:
    """Feed ``messages`` to a fresh decoder; the packet must complete with the last one, not before."""
    decoder = Decoder(max_attachments)
    for message in messages[:-1]:
        assert decoder.feed(message) is None
    packet = decoder.feed(messages[-1])
    assert packet is not None
    assert decoder.awaiting == 0
    return packet


def test_packet_type_ids() -> None:
    # Spec, "Exchange protocol": the packet type table.
    assert [(kind.name, int(kind)) for kind in SioPacketType] == [
        ("CONNECT", 0),
        ("DISCONNECT", 1),
        ("EVENT", 2),
        ("ACK", 3),
        ("CONNECT_ERROR", 4),
        ("BINARY_EVENT", 5),
        ("BINARY_ACK", 6),
    ]
    assert socketio5.PROTOCOL == 5


# -- the spec and the test suite: text packets that encode and decode to each other exactly ----------------------

CANONICAL = [
    # Spec, "Packet encoding / Examples / Connection to a namespace".
    ("0", SioPacket(CONNECT)),
    ('0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', SioPacket(CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"})),
    ('4{"message":"Not authorized"}', SioPacket(CONNECT_ERROR, data={"message": "Not authorized"})),
    # Spec, "Examples / Sending and receiving data".
    ('2["foo"]', SioPacket(EVENT, data=["foo"])),
    ('2/admin,["bar"]', SioPacket(EVENT, "/admin", ["bar"])),
    # Spec, "Examples / Acknowledgement" (the README shows a stray backtick after 3/admin,13["bar"]).
    ('212["foo"]', SioPacket(EVENT, data=["foo"], id=12)),
    ('3/admin,13["bar"]', SioPacket(ACK, "/admin", ["bar"], 13)),
    # Spec, "Exchange protocol / Acknowledgement": Server > { type: ACK, namespace: "/", data: [], id: 12 }.
    ("312[]", SioPacket(ACK, data=[], id=12)),
    # Spec, "Examples / Disconnection from a namespace".
    ("1", SioPacket(DISCONNECT)),
    ("1/admin,", SioPacket(DISCONNECT, "/admin")),
    # Spec, "Sample session" (each one after the Engine.IO "4").
    ('0{"sid":"wZX3oN0bSVIhsaknAAAI"}', SioPacket(CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"})),
    ('2["hey","Jude"]', SioPacket(EVENT, data=["hey", "Jude"])),
    ('2["hello"]', SioPacket(EVENT, data=["hello"])),
    ('2["world"]', SioPacket(EVENT, data=["world"])),
    ("0/admin,", SioPacket(CONNECT, "/admin")),
    ('0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}', SioPacket(CONNECT, "/admin", {"sid": "-G5j-67EZFp-q59rADQM"})),
    ('2/admin,1["tellme"]', SioPacket(EVENT, "/admin", ["tellme"], 1)),
    # Test suite, "connect": what the client sends and what the server answers.
    ('0{"token":"123"}', SioPacket(CONNECT, data={"token": "123"})),
    ("0/custom,", SioPacket(CONNECT, "/custom")),
    ('0/custom,{"token":"abc"}', SioPacket(CONNECT, "/custom", {"token": "abc"})),
    ('2["auth",{}]', SioPacket(EVENT, data=["auth", {}])),
    ('2["auth",{"token":"123"}]', SioPacket(EVENT, data=["auth", {"token": "123"}])),
    ('2/custom,["auth",{}]', SioPacket(EVENT, "/custom", ["auth", {}])),
    ('2/custom,["auth",{"token":"abc"}]', SioPacket(EVENT, "/custom", ["auth", {"token": "abc"}])),
    ('4/random,{"message":"Invalid namespace"}', SioPacket(CONNECT_ERROR, "/random", {"message": "Invalid namespace"})),
    # Test suite, "disconnect" and "message".
    ('2["message","message to main namespace"]', SioPacket(EVENT, data=["message", "message to main namespace"])),
    (
        '2["message-back","message to main namespace"]',
        SioPacket(EVENT, data=["message-back", "message to main namespace"]),
    ),
    ('2["message",1,"2",{"3":[true]}]', SioPacket(EVENT, data=["message", 1, "2", {"3": [True]}])),
    ('2["message-back",1,"2",{"3":[true]}]', SioPacket(EVENT, data=["message-back", 1, "2", {"3": [True]}])),
    (
        '2456["message-with-ack",1,"2",{"3":[false]}]',
        SioPacket(EVENT, data=["message-with-ack", 1, "2", {"3": [False]}], id=456),
    ),
    ('3456[1,"2",{"3":[false]}]', SioPacket(ACK, data=[1, "2", {"3": [False]}], id=456)),
    # socket.io-parser tests: an integer as event name, and an event with an ack in a namespace.
    ('2[1,"a",{}]', SioPacket(EVENT, data=[1, "a", {}])),
    ('2/test,1["a",1,{}]', SioPacket(EVENT, "/test", ["a", 1, {}], 1)),
    ('3123["a",1,{}]', SioPacket(ACK, data=["a", 1, {}], id=123)),
    ('0/woot,{"token":"123"}', SioPacket(CONNECT, "/woot", {"token": "123"})),
    ("1/woot,", SioPacket(DISCONNECT, "/woot")),
]


@pytest.mark.parametrize(("text", "packet"), CANONICAL)
def test_text_packets(text: str, packet: SioPacket) -> None:
    assert encode(packet) == [text]
    assert decode(text) == packet
    # and on the wire, inside an Engine.IO MESSAGE
    assert engineio.encode_packet(engineio.Packet(engineio.PacketType.MESSAGE, text)) == "4" + text


@pytest.mark.parametrize(
    ("text", "packet"),
    [
        # Test suite, "connect" and "disconnect": the namespace may end the packet without a ",".
        ("0/random", SioPacket(CONNECT, "/random")),
        ("0/custom", SioPacket(CONNECT, "/custom")),
        ("1/custom", SioPacket(DISCONNECT, "/custom")),
        # Leading zeros in an ack id are read as JavaScript's Number() reads them.
        ('2007["a"]', SioPacket(EVENT, data=["a"], id=7)),
        # Whitespace around the JSON is JSON.
        ('2 ["a"] ', SioPacket(EVENT, data=["a"])),
        # socket.io-parser tests: a CONNECT_ERROR with a plain string (what a v4 server sent) still decodes.
        ('4"Unauthorized"', SioPacket(CONNECT_ERROR, data="Unauthorized")),
        # "/," is the main namespace spelled out.
        ('2/,["a"]', SioPacket(EVENT, data=["a"])),
    ],
)
def test_text_packets_that_decode_to_a_different_spelling(text: str, packet: SioPacket) -> None:
    assert decode(text) == packet


def test_connect_error_data_is_an_object_when_encoded() -> None:
    # Spec, "Difference between v5 and v4": the CONNECT_ERROR payload is now an object.
    with pytest.raises(SocketIOPacketError, match='object with a "message"'):
        encode(SioPacket(CONNECT_ERROR, data="Unauthorized"))
    with pytest.raises(SocketIOPacketError, match='object with a "message"'):
        encode(SioPacket(CONNECT_ERROR, data={"reason": "x"}))
    assert encode(SioPacket(CONNECT_ERROR, "/x", {"message": "no", "data": {"why": 1}})) == [
        '4/x,{"message":"no","data":{"why":1}}'
    ]


# -- binary packets ---------------------------------------------------------------------------------------------

BINARY = [
    # Spec, "Examples / Sending and receiving data", "with binary data".
    (
        ['51-["baz",{"_placeholder":true,"num":0}]', bytes([1, 2, 3, 4])],
        SioPacket(EVENT, data=["baz", bytes([1, 2, 3, 4])]),
        SioPacket(BINARY_EVENT, data=["baz", bytes([1, 2, 3, 4])], attachments=1),
    ),
    # Same section, "with multiple attachments".
    (
        [
            '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            bytes([1, 2]),
            bytes([3, 4]),
        ],
        SioPacket(EVENT, "/admin", ["baz", bytes([1, 2]), bytes([3, 4])]),
        SioPacket(BINARY_EVENT, "/admin", ["baz", bytes([1, 2]), bytes([3, 4])], attachments=2),
    ),
    # Spec, "Examples / Acknowledgement", "with binary data".
    (
        ['61-15["bar",{"_placeholder":true,"num":0}]', bytes([1, 2, 3, 4])],
        SioPacket(ACK, data=["bar", bytes([1, 2, 3, 4])], id=15),
        SioPacket(BINARY_ACK, data=["bar", bytes([1, 2, 3, 4])], id=15, attachments=1),
    ),
    # Spec, "Sample session": the BINARY_ACK with a placeholder, then "<binary>".
    (
        ['61-/admin,1[{"_placeholder":true,"num":0}]', b"<binary>"],
        SioPacket(ACK, "/admin", [b"<binary>"], 1),
        SioPacket(BINARY_ACK, "/admin", [b"<binary>"], 1, 1),
    ),
    # Test suite, "message": "should send a packet with binary attachments (and an ack)".
    (
        [
            '52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            bytes([1, 2, 3]),
            bytes([4, 5, 6]),
        ],
        SioPacket(EVENT, data=["message", bytes([1, 2, 3]), bytes([4, 5, 6])]),
        SioPacket(BINARY_EVENT, data=["message", bytes([1, 2, 3]), bytes([4, 5, 6])], attachments=2),
    ),
    (
        [
            '52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            bytes([1, 2, 3]),
            bytes([4, 5, 6]),
        ],
        SioPacket(EVENT, data=["message-back", bytes([1, 2, 3]), bytes([4, 5, 6])]),
        SioPacket(BINARY_EVENT, data=["message-back", bytes([1, 2, 3]), bytes([4, 5, 6])], attachments=2),
    ),
    (
        [
            '52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            bytes([1, 2, 3]),
            bytes([4, 5, 6]),
        ],
        SioPacket(EVENT, data=["message-with-ack", bytes([1, 2, 3]), bytes([4, 5, 6])], id=789),
        SioPacket(BINARY_EVENT, data=["message-with-ack", bytes([1, 2, 3]), bytes([4, 5, 6])], id=789, attachments=2),
    ),
    (
        ['62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', bytes([1, 2, 3]), bytes([4, 5, 6])],
        SioPacket(ACK, data=[bytes([1, 2, 3]), bytes([4, 5, 6])], id=789),
        SioPacket(BINARY_ACK, data=[bytes([1, 2, 3]), bytes([4, 5, 6])], id=789, attachments=2),
    ),
    # socket.io-parser tests (buffer.js): a nested Buffer, and a binary ack.
    (
        ['51-/cool,23["a",{"b":["c",{"_placeholder":true,"num":0}]}]', b"abc"],
        SioPacket(EVENT, "/cool", ["a", {"b": ["c", b"abc"]}], 23),
        SioPacket(BINARY_EVENT, "/cool", ["a", {"b": ["c", b"abc"]}], 23, 1),
    ),
    (
        ['61-/back,127["a",{"_placeholder":true,"num":0},{}]', b"xxx"],
        SioPacket(ACK, "/back", ["a", b"xxx", {}], 127),
        SioPacket(BINARY_ACK, "/back", ["a", b"xxx", {}], 127, 1),
    ),
]


@pytest.mark.parametrize(("messages", "packet", "decoded"), BINARY)
def test_binary_packets(messages: list[str | bytes], packet: SioPacket, decoded: SioPacket) -> None:
    assert encode(packet) == messages
    assert decode(*messages) == decoded
    # What the decoder returns encodes back to the same messages.
    assert encode(decoded) == messages


def test_placeholders_nested_in_objects_and_arrays_are_numbered_in_document_order() -> None:
    data = ["deep", {"a": [b"0", {"b": b"1"}], "c": (b"2", [[bytearray(b"3")]])}, memoryview(b"4")]
    messages = encode(SioPacket(EVENT, data=data))
    assert messages == [
        '55-["deep",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}],'
        '"c":[{"_placeholder":true,"num":2},[[{"_placeholder":true,"num":3}]]]},{"_placeholder":true,"num":4}]',
        b"0",
        b"1",
        b"2",
        b"3",
        b"4",
    ]
    assert all(type(message) is bytes for message in messages[1:])
    assert decode(*messages).data == ["deep", {"a": [b"0", {"b": b"1"}], "c": [b"2", [[b"3"]]]}, b"4"]


def test_placeholders_may_come_in_any_order_and_repeat() -> None:
    text = '53-["e",{"_placeholder":true,"num":2},[{"_placeholder":true,"num":0}],{"_placeholder":true,"num":2}]'
    assert decode(text, b"a", b"b", b"c").data == ["e", b"c", [b"a"], b"c"]


def test_binary_packet_with_no_attachments_completes_at_once() -> None:
    assert decode('50-["a"]') == SioPacket(BINARY_EVENT, data=["a"], attachments=0)
    assert decode('60-3["a"]') == SioPacket(BINARY_ACK, data=["a"], id=3, attachments=0)


def test_binary_types_without_bytes_encode_as_plain_ones() -> None:
    assert encode(SioPacket(BINARY_EVENT, data=["a"], attachments=3)) == ['2["a"]']
    assert encode(SioPacket(BINARY_ACK, data=[], id=1)) == ["31[]"]
    assert encode(SioPacket(EVENT, data=["a", b""])) == ['51-["a",{"_placeholder":true,"num":0}]', b""]


def test_placeholder_objects_in_a_plain_event_stay_objects() -> None:
    # As in the official parser: only a BINARY_EVENT or BINARY_ACK has its placeholders replaced.
    assert decode('2["a",{"_placeholder":true,"num":0}]').data == ["a", placeholder(0)]


def test_an_object_is_a_placeholder_only_when_placeholder_is_true() -> None:
    text = '51-["a",{"_placeholder":1,"num":0},{"_placeholder":"true","num":0},{"_placeholder":true,"num":0}]'
    assert decode(text, b"x").data == ["a", {"_placeholder": 1, "num": 0}, {"_placeholder": "true", "num": 0}, b"x"]


def test_the_same_bytes_twice_are_two_attachments() -> None:
    # As in the official encoder: every occurrence gets its own placeholder.
    shared = [b"z"]
    assert encode(SioPacket(EVENT, data=["x", shared, {"a": shared}])) == [
        '52-["x",[{"_placeholder":true,"num":0}],{"a":[{"_placeholder":true,"num":1}]}]',
        b"z",
        b"z",
    ]


def test_deep_data_does_not_hit_the_recursion_limit() -> None:
    # Data as deep as simplejson parses is walked without recursion, both ways.
    deep: Any = b"q"
    for _ in range(900):
        deep = [deep]
    messages = encode(SioPacket(EVENT, data=["a", deep]))
    assert messages[1:] == [b"q"]
    assert messages[0] == '51-["a",' + "[" * 900 + '{"_placeholder":true,"num":0}' + "]" * 900 + "]"
    assert decode(*messages) == SioPacket(BINARY_EVENT, data=["a", deep], attachments=1)


@pytest.mark.parametrize("binary", [False, True])
def test_circular_data_is_refused(binary: bool) -> None:
    # socket.io-parser tests, "throws an error when encoding circular objects".
    loop: list[Any] = ["x"]
    loop.append(loop)
    with pytest.raises(SocketIOPacketError, match="(?i)circular reference"):
        encode(SioPacket(EVENT, data=["a", b"1" if binary else 1, {"b": loop}]))


# -- the attachment bound and the decoder's state ---------------------------------------------------------------


def test_attachment_count_bound() -> None:
    # socket.io-parser tests, "throws an error when receiving too many attachments", with maxAttachments 2.
    text = '53-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]'
    with pytest.raises(SocketIOPacketError, match="3 attachments, more than the limit of 2"):
        Decoder(max_attachments=2).feed(text)
    assert decode(text, b"0", b"1", b"2", max_attachments=3).data == ["hello", b"0", b"1", b"2"]
    # The default is the official one, 10.
    assert socketio5.DEFAULT_MAX_ATTACHMENTS == 10
    assert decode('510-["a"]', *[b""] * 10).attachments == 10
    with pytest.raises(SocketIOPacketError, match="11 attachments, more than the limit of 10"):
        Decoder().feed('511-["a"]')
    with pytest.raises(SocketIOPacketError, match="an attachment count of 19 digits"):
        Decoder().feed("5" + "9" * 19 + '-["a"]')
    with pytest.raises(SocketIOPacketError, match="more than the limit of 0"):
        Decoder(0).feed('51-["a"]')
    assert decode('50-["a"]', max_attachments=0).attachments == 0
    with pytest.raises(ValueError, match="max_attachments"):
        Decoder(-1)


def test_more_attachments_than_declared_are_refused() -> None:
    decoder = Decoder()
    assert decoder.feed('51-["a",{"_placeholder":true,"num":0}]') is None
    assert decoder.awaiting == 1
    assert decoder.feed(b"x") == SioPacket(BINARY_EVENT, data=["a", b"x"], attachments=1)
    with pytest.raises(SocketIOPacketError, match="binary data with no packet awaiting attachments"):
        decoder.feed(b"y")


def test_binary_data_without_a_header_is_refused() -> None:
    # socket.io-parser tests (buffer.js), "throws an error when adding an attachment without header".
    with pytest.raises(SocketIOPacketError, match="binary data with no packet awaiting attachments"):
        Decoder().feed(b"world")


def test_a_text_packet_while_attachments_are_awaited_is_refused_and_resets() -> None:
    # socket.io-parser tests (buffer.js), "throws an error when decoding a binary event without attachments".
    decoder = Decoder()
    assert decoder.feed('52-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    assert decoder.feed(b"1") is None
    assert decoder.awaiting == 1
    with pytest.raises(SocketIOPacketError, match=r"a text packet while 1 attachment\(s\) are awaited"):
        decoder.feed('2["hello"]')
    assert decoder.awaiting == 0
    # The decoder is usable again (the caller should have closed the connection, though).
    assert decoder.feed('2["hello"]') == SioPacket(EVENT, data=["hello"])


def test_reset_drops_a_partial_packet() -> None:
    # socket.io-parser tests, "should resume decoding after calling destroy()".
    decoder = Decoder()
    assert decoder.feed('51-["hello"]') is None
    decoder.reset()
    assert decoder.awaiting == 0
    assert decoder.feed('2["hello"]') == SioPacket(EVENT, data=["hello"])


def test_attachments_may_be_any_bytes_like() -> None:
    decoder = Decoder()
    assert decoder.feed('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    assert decoder.feed(bytearray(b"x")) is None
    packet = decoder.feed(memoryview(b"y"))
    assert packet is not None
    assert packet.data == ["a", b"x", b"y"]
    assert [type(item) for item in packet.data] == [str, bytes, bytes]
    with pytest.raises(SocketIOPacketError, match="must be str or bytes, not int"):
        decoder.feed(5)  # type: ignore[arg-type]


# -- invalid packets --------------------------------------------------------------------------------------------

INVALID = [
    # Test suite, "should disallow connection with an invalid handshake" / "unknown packet type": "4abc".
    ("abc", "unknown packet type 'a'"),
    # Test suite, "invalid payload format": "42{}".
    ("2{}", "EVENT data must be an array, not an object"),
    # Test suite, "invalid ack id": '42abc["message-with-ack",1,"2",{"3":[false]}]'.
    ('2abc["message-with-ack",1,"2",{"3":[false]}]', "invalid JSON data"),
    # socket.io-parser tests, "throw an error upon parsing error" (isInvalidPayload).
    ('442["some","data"', "a CONNECT_ERROR packet has no ack id"),
    ('0/admin,"invalid"', "CONNECT data must be an object, not a string"),
    ("0[]", "CONNECT data must be an object, not an array"),
    ("1/admin,{}", "DISCONNECT carries no data, got an object"),
    ('2/admin,"invalid', "invalid JSON data"),
    ("2/admin,{}", "EVENT data must be an array, not an object"),
    ('2[{"toString":"foo"}]', "an event name must be a string or a number, not an object"),
    ('2[true,"foo"]', "an event name must be a string or a number, not a boolean"),
    ('2[null,"bar"]', "an event name must be a string or a number, not null"),
    ('2["connect"]', "'connect' is a reserved event name"),
    ('2["disconnect","123"]', "'disconnect' is a reserved event name"),
    # socket.io-parser tests, isInvalidAttachmentCount.
    ("5", "a binary packet must start with its attachment count and '-'"),
    ("51", "a binary packet must start with its attachment count and '-'"),
    ("5a-", "a binary packet must start with its attachment count and '-'"),
    ("51.23-", "a binary packet must start with its attachment count and '-'"),
    ('5-["a"]', "a binary packet must start with its attachment count and '-'"),
    ('5٣-["a"]', "a binary packet must start with its attachment count and '-'"),
    # socket.io-parser tests: "unknown packet type 9".
    ("999", "unknown packet type '9'"),
    ("7", "unknown packet type '7'"),
    ("", "empty packet"),
    # socket.io-parser tests (buffer.js): placeholders with an invalid "num".
    ('51-["hello",{"_placeholder":true,"num":"splice"}]', "placeholder 'splice' does not name one of 1 attachments"),
    ('51-["hello",{"_placeholder":true,"num":1}]', "placeholder 1 does not name one of 1 attachments"),
    ('51-["hello",{"_placeholder":true,"num":-1}]', "placeholder -1 does not name one of 1 attachments"),
    ('51-["hello",{"_placeholder":true,"num":0.0}]', "placeholder Decimal('0.0') does not name one of 1 attachments"),
    ('51-["hello",{"_placeholder":true,"num":true}]', "placeholder True does not name one of 1 attachments"),
    ('51-["hello",{"_placeholder":true}]', "placeholder None does not name one of 1 attachments"),
    ('50-["hello",{"_placeholder":true,"num":0}]', "placeholder 0 does not name one of 0 attachments"),
    # Spec, "Sending and receiving data": "The payload is mandatory and MUST be a non-empty array."
    ("2", "EVENT data must be an array, not null"),
    ("2/admin,", "EVENT data must be an array, not null"),
    ('2/admin["a"]', "EVENT data must be an array, not null"),  # no ",": all of it is the namespace
    ("2[]", "EVENT data must not be empty"),
    ('2"a"', "EVENT data must be an array, not a string"),
    # Spec, "Acknowledgement": an ACK answers an id and its payload "MUST be an array (possibly empty)".
    ("3[]", "an ACK needs the id of the event it answers"),
    ("31", "ACK data must be an array, not null"),
    ('31{"a":1}', "ACK data must be an array, not an object"),
    # An id belongs to an EVENT or an ACK only.
    ('01{"a":1}', "a CONNECT packet has no ack id"),
    ("1/admin,5", "a DISCONNECT packet has no ack id"),
    # Ack ids are JavaScript numbers: beyond Number.MAX_SAFE_INTEGER they cannot be echoed exactly.
    ('29007199254740992["a"]', "an ack id must be an int from 0 to 9007199254740991"),
    ("2" + "1" * 17 + '["a"]', "an ack id of 17 digits"),
    # JSON as JSON.parse reads it: no NaN or Infinity, no trailing text, no raw control characters.
    ('2["a",NaN]', "invalid JSON data"),
    ('2["a",Infinity]', "invalid JSON data"),
    ('2["a"]x', "invalid JSON data"),
    ('2["a\x01"]', "invalid JSON data"),
    ("2[" * 100_000, "invalid JSON data"),
    ('2["a",' + "9" * 5000 + "]", "invalid JSON data"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_packets(text: str, reason: str) -> None:
    decoder = Decoder()
    with pytest.raises(SocketIOPacketError) as caught:
        decoder.feed(text)
    assert caught.value.reason.startswith(reason)
    assert isinstance(caught.value, ValueError)
    assert decoder.awaiting == 0


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_event_names_are_refused_both_ways(name: str) -> None:
    # socket.io-parser RESERVED_EVENTS; the official server's emit() throws on them too.
    assert name in {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
    with pytest.raises(SocketIOPacketError, match="reserved event name"):
        Decoder().feed(f'2["{name}"]')
    with pytest.raises(SocketIOPacketError, match="reserved event name"):
        Decoder().feed(f'51-["{name}",{{"_placeholder":true,"num":0}}]')
    with pytest.raises(SocketIOPacketError, match="reserved event name"):
        encode(SioPacket(EVENT, data=[name, 1]))
    # The names are fine as data, and in an ACK.
    assert decode(f'2["x","{name}"]').data == ["x", name]
    assert decode(f'31["{name}"]').data == [name]
    assert len(RESERVED_EVENTS) == 6


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (SioPacket(9, data=["a"]), "unknown packet type 9"),  # type: ignore[arg-type]
        (SioPacket(EVENT, "admin", ["a"]), "a namespace must start with '/'"),
        (SioPacket(EVENT, "", ["a"]), "a namespace must start with '/'"),
        (SioPacket(EVENT, "/a,b", ["a"]), "a namespace must start with '/' and hold no ','"),
        (SioPacket(EVENT, data=None), "EVENT data must be an array, not null"),
        (SioPacket(EVENT, data=[]), "EVENT data must not be empty"),
        (SioPacket(EVENT, data=[b"name"]), "an event name must be a string or a number, not binary data"),
        (SioPacket(EVENT, data=[True]), "an event name must be a string or a number, not a boolean"),
        (SioPacket(EVENT, data=["a"], id=-1), "an ack id must be an int"),
        (SioPacket(EVENT, data=["a"], id=True), "an ack id must be an int"),
        (SioPacket(EVENT, data=["a"], id=2**53), "an ack id must be an int"),
        (SioPacket(ACK, data=["a"]), "an ACK needs the id"),
        (SioPacket(ACK, data={"a": 1}, id=1), "ACK data must be an array"),
        (SioPacket(CONNECT, data=["a"]), "CONNECT data must be an object"),
        (SioPacket(CONNECT, data={"a": b"x"}), "binary data in a CONNECT packet"),
        (SioPacket(CONNECT, data={"a": 1}, id=1), "a CONNECT packet has no ack id"),
        (SioPacket(DISCONNECT, data={}), "DISCONNECT carries no data"),
        (SioPacket(CONNECT_ERROR, data={"message": b"x"}), "binary data in a CONNECT_ERROR packet"),
        (SioPacket(EVENT, data=["a", float("nan")]), "data cannot be sent as JSON"),
        (SioPacket(EVENT, data=["a", Decimal("Infinity")]), "data cannot be sent as JSON"),
    ],
)
def test_packets_that_cannot_be_encoded(packet: SioPacket, reason: str) -> None:
    with pytest.raises(SocketIOPacketError) as caught:
        encode(packet)
    assert caught.value.reason.startswith(reason)


def test_unencodable_objects_raise_type_error() -> None:
    with pytest.raises(TypeError):
        encode(SioPacket(EVENT, data=["a", object()]))


# -- JSON details -----------------------------------------------------------------------------------------------


def test_floats_decode_as_decimal() -> None:
    packet = decode('2["n",1.5,1e400,-0.0,10,0.1,-2E-3]')
    assert packet.data == [
        "n",
        Decimal("1.5"),
        Decimal("1E+400"),
        Decimal("-0.0"),
        10,
        Decimal("0.1"),
        Decimal("-0.002"),
    ]
    assert [type(value) for value in packet.data[1:]] == [Decimal, Decimal, Decimal, int, Decimal, Decimal]
    # A float event name is a number too, as the official parser sees it.
    assert decode("2[1.5]").data == [Decimal("1.5")]


def test_decimals_encode_as_json_numbers() -> None:
    data = ["n", Decimal("0.1"), Decimal("1E+400"), Decimal("-3.14159265358979323846264338327950288"), 2.5, 7]
    assert encode(SioPacket(EVENT, data=data)) == ['2["n",0.1,1E+400,-3.14159265358979323846264338327950288,2.5,7]']
    assert decode(*encode(SioPacket(EVENT, data=data))).data == [
        "n",
        Decimal("0.1"),
        Decimal("1E+400"),
        Decimal("-3.14159265358979323846264338327950288"),
        Decimal("2.5"),
        7,
    ]


def test_text_is_json_escaped_as_json_stringify_does() -> None:
    # Control characters (the Engine.IO record separator among them) are escaped, the rest stays UTF-8.
    assert encode(SioPacket(EVENT, data=["é😀", "a\x1eb", 'q"\\'])) == ['2["é😀","a\\u001eb","q\\"\\\\"]']
    assert decode('2["é😀","a\\u001eb","\\ud83d\\ude00"]').data == ["é😀", "a\x1eb", "😀"]


def test_tuples_encode_as_arrays() -> None:
    assert encode(SioPacket(EVENT, data=("a", (1, 2)))) == ['2["a",[1,2]]']
    assert encode(SioPacket(ACK, data=(), id=4)) == ["34[]"]


def test_numeric_event_names_encode() -> None:
    assert encode(SioPacket(EVENT, data=[1, "a", {}])) == ['2[1,"a",{}]']
    assert encode(SioPacket(EVENT, data=[Decimal("2.5")])) == ["2[2.5]"]


# -- round trips ------------------------------------------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_keys = st.text(max_size=6).filter(lambda key: key != "_placeholder")


def _values(binary: bool) -> st.SearchStrategy[Any]:
    leaves = st.one_of(_json_scalars, st.binary(max_size=8)) if binary else _json_scalars
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
        max_leaves=6,
    )


# A namespace is free text up to its ","; only a "\x1e" would not survive a polling payload (it is not JSON-escaped).
_namespaces = st.one_of(
    st.just("/"), st.text(max_size=8).filter(lambda text: "," not in text and "\x1e" not in text).map("/{}".__add__)
)
_ids = st.integers(min_value=0, max_value=socketio5.MAX_ACK_ID)
_event_names = st.one_of(
    st.text(max_size=8).filter(lambda name: name not in RESERVED_EVENTS),
    st.integers(min_value=0, max_value=1000),
)
_packets = st.one_of(
    st.builds(SioPacket, st.just(CONNECT), _namespaces, st.none() | st.dictionaries(_keys, _values(False), max_size=4)),
    st.builds(SioPacket, st.just(DISCONNECT), _namespaces),
    st.builds(
        SioPacket,
        st.just(EVENT),
        _namespaces,
        st.tuples(_event_names, st.lists(_values(True), max_size=4)).map(lambda pair: [pair[0], *pair[1]]),
        st.none() | _ids,
    ),
    st.builds(SioPacket, st.just(ACK), _namespaces, st.lists(_values(True), max_size=5), _ids),
    st.builds(
        SioPacket,
        st.just(CONNECT_ERROR),
        _namespaces,
        st.fixed_dictionaries({"message": st.text(max_size=8)}, optional={"data": _values(False)}),
    ),
)


def _count_bytes(value: Any) -> int:
    if isinstance(value, bytes):
        return 1
    if isinstance(value, list):
        return sum(_count_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_bytes(item) for item in value.values())
    return 0


@settings(max_examples=200, deadline=None)
@given(_packets)
def test_round_trip(packet: SioPacket) -> None:
    messages = encode(packet)
    attachments = _count_bytes(packet.data)
    assert len(messages) == 1 + attachments
    assert isinstance(messages[0], str)
    decoded = decode(*messages, max_attachments=max(attachments, 1))
    if attachments:
        binary_type = BINARY_EVENT if packet.type == EVENT else BINARY_ACK
        assert decoded == SioPacket(binary_type, packet.namespace, packet.data, packet.id, attachments)
    else:
        assert decoded == packet
    assert encode(decoded) == messages
    # Each message also survives an Engine.IO polling payload.
    wire = [engineio.Packet(engineio.PacketType.MESSAGE, message) for message in messages]
    assert engineio.decode_payload(engineio.encode_payload(wire), len(wire)) == wire


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='0123456789-/,[]{}":abn ', max_size=20))
def test_decoding_arbitrary_text_raises_only_packet_errors(text: str) -> None:
    try:
        packet = Decoder().feed(text)
    except SocketIOPacketError:
        return
    legacy_error = packet is not None and packet.type == CONNECT_ERROR and not isinstance(packet.data, dict)
    if packet is not None and packet.type not in (BINARY_EVENT, BINARY_ACK) and not legacy_error:
        # Whatever decodes re-encodes to something that decodes to the same packet.  (Not a v4
        # server's CONNECT_ERROR text, such as 4"": decoded for compatibility, never encoded.)
        assert decode(*encode(packet)) == packet
