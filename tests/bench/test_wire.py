"""The load client's draft-76 websocket and chunked HTTP bodies, which only the node contestants need.

The draft-76 handshake is checked against the answer socket.io 0.6.18's node
server gave in the reference captures (docs/node06-captures/websocket-hixie.txt),
and against the server itself when it is installed: it accepts the draft-76
client, and leaves an RFC 6455 request unanswered (no response, the
connection held open).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import struct

import pytest

from bench.contestants import CONTESTANTS, frame06
from bench.serverproc import ServerProcess
from bench.wire import Hixie76Client, WireError, _dechunk, hixie_key, hixie_upgrade, open_websocket


def key_number(key: str) -> int:
    """What a draft-76 server makes of a key: its digits divided by its count of spaces."""
    digits = int("".join(c for c in key if c.isdigit()))
    spaces = key.count(" ")
    assert spaces and digits % spaces == 0
    return digits // spaces


def test_the_captured_handshake_answer() -> None:
    # The request and the 16 bytes node's socket.io 0.6.18 answered, from the reference capture.
    key1, key2 = "g 2 f9e$8e 45  1548h 8d", "b  2#4   d3f88!0#  h  11c2 $b 3"
    key3 = b"\xd0\xe3\xdf]\x05\xf3\xc1f"
    answer = hashlib.md5(struct.pack("!II", key_number(key1), key_number(key2)) + key3).digest()
    assert answer == b"%U\xf3Y\xca\x1f\x89\xb5\x816w\xc1\xf0y\x04\x1f"


def test_generated_keys_stand_for_their_numbers() -> None:
    rng = random.Random(76)
    for _ in range(2000):
        key, number = hixie_key(rng)
        assert key_number(key) == number <= 0xFFFFFFFF
        assert key[0] != " " and key[-1] != " "
        assert any(not c.isdigit() and c != " " for c in key)


def test_the_upgrade_request_carries_key3_and_the_expected_answer() -> None:
    request, answer = hixie_upgrade(8066, "/socket.io/websocket", "http://127.0.0.1:8066", random.Random(1))
    head, _, key3 = request.partition(b"\r\n\r\n")
    assert len(key3) == 8
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert headers["Upgrade"] == "WebSocket"
    numbers = struct.pack("!II", key_number(headers["Sec-WebSocket-Key1"]), key_number(headers["Sec-WebSocket-Key2"]))
    assert answer == hashlib.md5(numbers + key3).digest()


def test_draft76_frames_cut_anywhere() -> None:
    """Frames split over reads (node writes 0x00, the text and 0xFF separately) come out whole."""

    async def scenario() -> list[bytes]:
        client = Hixie76Client(b"", b"A" * 16)
        got: list[bytes] = []
        client.on_message = got.append
        stream = b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n\r\n" + b"A" * 16
        stream += b"\x00~m~2~m~hi\xff" + b"\x00" + frame06("é😀").encode() + b"\xff" + b"\x00\xff"
        for byte in range(len(stream)):
            client.data_received(stream[byte : byte + 1])
        assert client.failure is None
        return got

    assert asyncio.run(scenario()) == [b"~m~2~m~hi", "~m~3~m~é😀".encode(), b""]


def test_a_wrong_handshake_answer_fails() -> None:
    async def scenario() -> WireError | None:
        client = Hixie76Client(b"", b"A" * 16)
        client.data_received(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n\r\n" + b"B" * 16)
        return client.failure

    failure = asyncio.run(scenario())
    assert failure is not None and "answer" in str(failure)


def test_chunked_bodies() -> None:
    assert _dechunk(b"2\r\nok\r\n0\r\n\r\n") == (b"ok", 12)
    assert _dechunk(b"2\r\nok\r\n") is None
    assert _dechunk(b"2\r\nok\r\n0\r\n") is None
    assert _dechunk(b"1;x=y\r\no\r\n1\r\nk\r\n0\r\n\r\n") == (b"ok", 21)
    with pytest.raises(ValueError):
        _dechunk(b"1\r\nok\r\n0\r\n\r\n")


def test_node06_speaks_draft76_only() -> None:
    contestant = CONTESTANTS["node06-ws"]
    reason = contestant.unavailable()
    if reason is not None:
        pytest.skip(f"node06-ws: {reason}")

    async def scenario(port: int) -> None:
        rfc6455 = asyncio.ensure_future(open_websocket(port, "/socket.io/websocket"))
        done, _ = await asyncio.wait([rfc6455], timeout=1.0)
        assert not done, "an RFC 6455 request got an answer"
        rfc6455.cancel()
        ws = await asyncio.wait_for(open_websocket(port, "/socket.io/websocket", draft="hixie-76"), 10)
        await contestant.ws.start(ws, "echo")
        text = "0000.0000000.你好🚀"
        ws.write(ws.frame(frame06(text).encode()))
        assert await asyncio.wait_for(ws.recv(), 10) == frame06(text).encode()
        ws.close()

    with ServerProcess(contestant) as server:
        asyncio.run(scenario(server.port))
        assert server.alive(), server.log_tail()
