"""The wire codec, checked against what the real 0.6 client counts and tolerates."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import codec
from tornad_io.codec import Heartbeat, Json, ProtocolError, decode_payload, encode_frame, encode_message


@pytest.mark.parametrize(
    ("text", "units"),
    [("hello", 5), ("é", 1), ("中", 1), ("😀", 2), ("hi é中😀 end", 11), ("", 0)],
)
def test_lengths_are_utf16_code_units(text: str, units: int) -> None:
    assert codec.utf16_len(text) == units
    assert encode_frame(text) == f"~m~{units}~m~{text}"


def test_a_batch_of_cjk_and_emoji_decodes_back_in_order() -> None:
    messages = ["hi é中😀 end", "😀😀", "中文", "", "plain"]
    payload = "".join(encode_frame(m) for m in messages)
    assert decode_payload(payload) == messages


def test_messages_containing_frame_markers_survive() -> None:
    tricky = ["~m~5~m~hello", "a~m~b", "x~h~1", "~m~", "~m~0~m~"]
    payload = "".join(encode_frame(m) for m in tricky)
    assert decode_payload(payload) == tricky


def test_message_kinds() -> None:
    payload = encode_frame("~h~7") + encode_frame('~j~{"a":[1,2.5]}') + encode_frame("text")
    assert decode_payload(payload) == [Heartbeat("7"), Json({"a": [1, Decimal("2.5")]}), "text"]


def test_empty_payload_is_no_messages() -> None:
    assert decode_payload("") == []


def test_leading_zeros_in_a_length_are_accepted_as_the_client_does() -> None:
    assert decode_payload("~m~05~m~hello") == ["hello"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("garbage", "expected '~m~'"),
        ("~m~5~m~hello\n", "expected '~m~'"),  # nothing may stand between frames
        ("~m~5~m~ab", "payload ends first"),
        ("~m~x~m~a", "not a decimal number"),
        ("~m~1.0~m~x", "not a decimal number"),
        ("~m~-1~m~x", "not a decimal number"),
        ("~m~5", "unterminated frame length"),
        ("~m~1~m~😀", "inside a surrogate pair"),
        ('~m~5~m~~j~{x', "invalid JSON"),
    ],
)
def test_malformed_payloads_raise_with_a_reason(payload: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason) as info:
        decode_payload(payload)
    assert info.value.position >= 0


def test_nothing_is_delivered_from_a_payload_that_breaks_midway() -> None:
    with pytest.raises(ProtocolError):
        decode_payload(encode_frame("first") + "~m~9~m~short")


def test_frame_size_is_bounded() -> None:
    with pytest.raises(ProtocolError, match="over the limit"):
        decode_payload(encode_frame("x" * 11), max_frame=10)
    assert decode_payload(encode_frame("x" * 10), max_frame=10) == ["x" * 10]


def test_encode_message_str_dict_and_decimal() -> None:
    assert encode_message("hi") == "~m~2~m~hi"
    assert encode_message({"a": [1, {"b": "c"}]}) == '~m~22~m~~j~{"a":[1,{"b":"c"}]}'
    assert encode_message({"price": Decimal("1.10")}) == '~m~17~m~~j~{"price":1.10}'
    assert encode_message([1, 2]) == "~m~8~m~~j~[1,2]"


@pytest.mark.parametrize("text", ["~j~not json", "~h~1", '~j~{"a":1}'])
def test_strings_that_look_like_markers_arrive_as_strings(text: str) -> None:
    (message,) = decode_payload(encode_message(text))
    assert message == Json(text)  # the client's JSON.parse yields the very string


def test_encode_heartbeat() -> None:
    assert codec.encode_heartbeat(3) == "~m~4~m~~h~3"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
# Text the browser can carry: no lone surrogates.
wire_text = st.text(st.characters(exclude_categories=("Cs",)))


@settings(max_examples=300, deadline=None)
@given(st.lists(wire_text | json_values, max_size=8))
def test_round_trip(messages: list[object]) -> None:
    payload = "".join(encode_message(m) for m in messages)
    decoded = [m.value if isinstance(m, Json) else m for m in decode_payload(payload)]
    assert decoded == messages


# Text that looks like frames most of the time: markers, digits and the odd astral character.
pieces = st.sampled_from(["~m~", "~j~", "~h~", "0", "1", "5", "12", "\r\n", "{", "}", '"', "x", "😀", "é"])
frame_like = st.lists(pieces | st.text(max_size=3), max_size=30).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.text() | frame_like)
def test_arbitrary_text_decodes_or_raises_protocol_error(payload: str) -> None:
    for decode in (decode_payload, codec.decode_form_payload):
        try:
            decode(payload, max_frame=64)
        except ProtocolError:
            pass


class TestFormPayloads:
    """Bodies posted by the jsonp transport's HTML form, whose line breaks the browser made CRLF."""

    def test_a_newline_the_client_counted_as_one_unit_survives(self) -> None:
        # the client framed "a\nb" as 3 units; the form posted "a\r\nb"
        assert codec.decode_form_payload("~m~3~m~a\r\nb~m~1~m~c") == ["a\nb", "c"]

    def test_a_crlf_the_client_counted_as_two_units_is_kept(self) -> None:
        assert codec.decode_form_payload("~m~4~m~a\r\nb~m~1~m~c") == ["a\r\nb", "c"]

    def test_json_and_astral_text_with_line_breaks(self) -> None:
        body = "~m~5~m~😀\r\n\r\nx" + encode_frame('~j~{"s":"x\\ny"}')
        assert codec.decode_form_payload(body) == ["😀\n\nx", Json({"s": "x\ny"})]

    def test_bodies_without_crlf_decode_as_usual(self) -> None:
        assert codec.decode_form_payload(encode_frame("plain")) == ["plain"]

    def test_a_frame_that_fits_neither_reading_is_an_error(self) -> None:
        with pytest.raises(ProtocolError):
            codec.decode_form_payload("~m~9~m~a\r\nb")
