"""The load generator's clients: WebSocket (RFC 6455, and draft-76 for node's socket.io 0.6) and HTTP/1.1.

A general-purpose client library would spend more per message than some of
the servers it measures, and differently per transport.  These two spend
next to nothing: everything they write was built before the clock started
(:func:`ws_frame`, :func:`http_request`), and what they read is cut into
frames or responses and handed to a callback as ``bytes``, which the
scenario compares with the bytes it expects.  They understand only what the
servers under test send: no extensions; chunked bodies only as node sends
them (a short answer in one piece).

socket.io 0.6's node server speaks only the websocket of 2010, draft-76
("hixie-76"): a handshake with two numeric keys and eight bytes after the
request head, a 16-byte md5 answer after the ``101`` head, then frames
``0x00 <UTF-8 text> 0xFF`` in both directions, unmasked.
:class:`Hixie76Client` speaks it; :func:`open_websocket` picks the client by
``draft``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import struct
from collections import deque
from collections.abc import Callable

__all__ = [
    "DRAFTS",
    "HTTPClient",
    "Hixie76Client",
    "WebSocketClient",
    "WireError",
    "hixie_frame",
    "http_request",
    "open_http",
    "open_websocket",
    "ws_frame",
]

HOST = "127.0.0.1"
#: Upper bound on a response head or a single frame the servers may send us.
MAX_HEAD = 64 * 1024
#: ``HTTPClient._body_length`` of a response with a chunked body.
CHUNKED = -2


class WireError(Exception):
    """The server broke the protocol, refused us or went away."""


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    size = len(payload)
    keystream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keystream, "little")).to_bytes(size, "little")


def ws_frame(payload: bytes, opcode: int = 0x1, mask_key: bytes | None = None) -> bytes:
    """One complete client frame (FIN set), masked as RFC 6455 requires of clients."""
    key = os.urandom(4) if mask_key is None else mask_key
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", size)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", size)
    return header + key + _mask(payload, key)


def hixie_frame(payload: bytes) -> bytes:
    """One draft-76 text frame: ``0x00``, the UTF-8 text, ``0xFF`` (never masked)."""
    return b"\x00" + payload + b"\xff"


def http_request(method: str, path: str, port: int, body: bytes = b"", content_type: str | None = None) -> bytes:
    """A complete HTTP/1.1 keep-alive request, as bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: */*"]
    if method == "POST":
        lines.append(f"Content-Type: {content_type or 'text/plain;charset=UTF-8'}")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class _Base(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closing = False
        #: Called once with a WireError when anything goes wrong after the connection opened.
        self.on_failure: Callable[[WireError], None] = self._store_failure
        self.failure: WireError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.fail(WireError(f"the server closed the connection ({exc or 'EOF'})"))

    def fail(self, error: WireError) -> None:
        if self.failure is None:
            self.failure = error
            self.on_failure(error)
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _store_failure(self, error: WireError) -> None:
        pass  # kept in self.failure; waiters see it

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class WebSocketClient(_Base):
    """A client WebSocket.  Messages go to ``on_message(payload_bytes)``; by default they queue for :meth:`recv`."""

    def __init__(self, upgrade: bytes) -> None:
        super().__init__()
        self._upgrade = upgrade
        self._head = b""
        self._open = False
        self._buf = b""
        self._fragments: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.on_message: Callable[[bytes], None] = self._queue
        self._inbox: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(self._upgrade)  # type: ignore[union-attr]

    def fail(self, error: WireError) -> None:
        super().fail(error)
        if not self.opened.done():
            self.opened.set_exception(error)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def write(self, frame: bytes) -> None:
        """Write a frame built by :meth:`frame`."""
        self.transport.write(frame)  # type: ignore[union-attr]

    def frame(self, payload: bytes) -> bytes:
        """A text frame of this client's protocol, ready for :meth:`write` (build them before measuring)."""
        return ws_frame(payload)

    def _queue(self, payload: bytes) -> None:
        self._inbox.append(payload)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def listen(self, on_message: Callable[[bytes], None]) -> None:
        """Send every message to ``on_message`` from now on, starting with those queued for :meth:`recv`."""
        self.on_message = on_message
        while self._inbox:
            on_message(self._inbox.popleft())

    async def recv(self) -> bytes:
        """The next message (only while ``on_message`` is left at its default)."""
        while not self._inbox:
            if self.failure is not None:
                raise self.failure
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._inbox.popleft()

    def close(self) -> None:
        if self.transport is not None and not self.closing and self._open:
            self.transport.write(ws_frame(struct.pack("!H", 1000), opcode=0x8))
        super().close()

    def _read_upgrade(self, data: bytes, trailer: int = 0) -> tuple[bytes, bytes] | None:
        """Collect the 101 response (and ``trailer`` bytes after its head).

        ``(trailer bytes, what follows)`` once it is complete; ``None`` while
        it is not, or after failing the client on a refusal.
        """
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0 or len(head) < end + 4 + trailer:
            if len(head) > MAX_HEAD:
                self.fail(WireError("no end to the upgrade response"))
            self._head = head
            return None
        status = head[: head.find(b"\r\n")]
        if not status.startswith(b"HTTP/1.1 101"):
            self.fail(WireError(f"upgrade refused: {status.decode('latin-1')}"))
            return None
        self._head = b""
        return head[end + 4 : end + 4 + trailer], head[end + 4 + trailer :]

    def data_received(self, data: bytes) -> None:
        if not self._open:
            upgraded = self._read_upgrade(data)
            if upgraded is None:
                return
            self._open = True
            if not self.opened.done():  # cancelled when the opening was given up
                self.opened.set_result(None)
            data = upgraded[1]
            if not data:
                return
        buf = self._buf + data if self._buf else data
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            first = buf[pos]
            length = buf[pos + 1]
            if length & 0x80:
                self.fail(WireError("the server masked a frame"))
                return
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            payload = buf[start:end]
            pos = end
            opcode = first & 0x0F
            if opcode >= 0x8:
                self._control(opcode, payload)
                if self.closing:
                    return
            elif not first & 0x80:  # a fragment: keep until the final one
                self._fragments.append(payload)
            elif opcode == 0 and self._fragments:
                self._fragments.append(payload)
                whole = b"".join(self._fragments)
                self._fragments.clear()
                self.on_message(whole)
            else:
                self.on_message(payload)
        self._buf = buf[pos:] if pos < size else b""

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:  # ping
            self.write(ws_frame(payload, opcode=0xA))
        elif opcode == 0x8:  # close
            if not self.closing:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.fail(WireError(f"the server closed the websocket (code {code}: {payload[2:].decode()!r})"))


#: Printable ASCII that is neither a digit nor a space: draft-76 scatters such characters in its keys.
_KEY_NOISE = "".join(chr(c) for c in range(0x21, 0x7F) if not chr(c).isdigit())


def hixie_key(rng: random.Random) -> tuple[str, int]:
    """A draft-76 ``Sec-WebSocket-Key1/2`` value and the number it stands for.

    The key is ``number × spaces`` in decimal, with 1 to 12 spaces and some
    non-digits put in at random places (a space never first or last); the
    server takes the digits, divides by the count of spaces and hashes the
    quotient as 4 big-endian bytes.
    """
    spaces = rng.randint(1, 12)
    number = rng.randint(0, 0xFFFFFFFF // spaces)
    chars = list(str(number * spaces))
    for _ in range(rng.randint(1, 12)):
        chars.insert(rng.randint(0, len(chars)), rng.choice(_KEY_NOISE))
    for _ in range(spaces):
        chars.insert(rng.randint(1, len(chars) - 1), " ")
    return "".join(chars), number


def hixie_upgrade(port: int, path: str, origin: str, rng: random.Random | None = None) -> tuple[bytes, bytes]:
    """The draft-76 upgrade request (head and the 8-byte key3, one write) and the 16-byte answer expected."""
    rng = rng or random.Random()
    key1, number1 = hixie_key(rng)
    key2, number2 = hixie_key(rng)
    key3 = rng.randbytes(8)
    lines = [
        f"GET {path} HTTP/1.1",
        "Upgrade: WebSocket",  # this capitalisation: 0.6 compares the header with "WebSocket" exactly
        "Connection: Upgrade",
        f"Host: {HOST}:{port}",
        f"Origin: {origin}",
        f"Sec-WebSocket-Key1: {key1}",
        f"Sec-WebSocket-Key2: {key2}",
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + key3
    return request, hashlib.md5(struct.pack("!II", number1, number2) + key3).digest()


class Hixie76Client(WebSocketClient):
    """A draft-76 WebSocket client: the ``101`` head, then the 16-byte md5 answer, then ``0x00 … 0xFF`` frames.

    It checks the answer (a server that hashed the keys wrongly fails the
    connection) and reads a frame only when its ``0xFF`` has arrived: node's
    socket.io 0.6 writes each frame as three separate writes.
    """

    def __init__(self, upgrade: bytes, answer: bytes) -> None:
        super().__init__(upgrade)
        self._answer = answer

    def frame(self, payload: bytes) -> bytes:
        return hixie_frame(payload)

    def close(self) -> None:
        if self.transport is not None and not self.closing and self._open:
            self.transport.write(b"\xff\x00")  # draft-76's closing handshake
        _Base.close(self)

    def data_received(self, data: bytes) -> None:
        if not self._open:
            upgraded = self._read_upgrade(data, trailer=16)  # the 16-byte answer follows the head
            if upgraded is None:
                return
            answer, data = upgraded
            if answer != self._answer:
                self.fail(WireError(f"wrong draft-76 handshake answer {answer!r}, expected {self._answer!r}"))
                return
            self._open = True
            if not self.opened.done():  # cancelled when the opening was given up
                self.opened.set_result(None)
            if not data:
                return
        buf = self._buf + data if self._buf else data
        size = len(buf)
        pos = 0
        while pos < size:
            kind = buf[pos]
            if kind == 0x00:
                stop = buf.find(b"\xff", pos + 1)
                if stop < 0:
                    if size - pos > MAX_HEAD:
                        self.fail(WireError("a draft-76 frame with no end"))
                        return
                    break
                self.on_message(buf[pos + 1 : stop])
                pos = stop + 1
            elif kind == 0xFF:
                if size - pos < 2:
                    break
                if not self.closing:
                    self.fail(WireError("the server closed the websocket (draft-76 closing frame)"))
                return
            else:
                self.fail(WireError(f"a draft-76 frame of type {kind:#04x} (only 0x00 text frames expected)"))
                return
        self._buf = buf[pos:] if pos < size else b""


class HTTPClient(_Base):
    """One keep-alive HTTP/1.1 connection: one request at a time, answer to a callback."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = b""
        self._status = 0
        self._body_length = -1
        self._callback: Callable[[int, bytes], None] | None = None

    def request(self, data: bytes, callback: Callable[[int, bytes], None]) -> None:
        """Write a request built by :func:`http_request`; ``callback(status, body)`` gets the answer."""
        if self._callback is not None:
            raise RuntimeError("one request at a time on an HTTPClient")
        self._callback = callback
        self.transport.write(data)  # type: ignore[union-attr]

    async def fetch(self, data: bytes) -> tuple[int, bytes]:
        """:meth:`request`, awaited."""
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

        def answered(status: int, body: bytes) -> None:
            if not future.done():
                future.set_result((status, body))

        def failed(error: WireError) -> None:
            if not future.done():
                future.set_exception(error)

        previous, self.on_failure = self.on_failure, failed
        try:
            self.request(data, answered)
            return await future
        finally:
            self.on_failure = previous

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if self._body_length < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self.fail(WireError("no end to a response head"))
                self._buf = buf
                return
            head = buf[:end].lower()
            try:
                self._status = int(head[9:12])
            except ValueError:
                self.fail(WireError(f"not an HTTP response: {head[:40]!r}"))
                return
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 17)
                self._body_length = int(head[at + 17 : stop if stop > 0 else None])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self._body_length = CHUNKED  # node answers a 0.6 POST this way
            else:
                self.fail(WireError("a response with neither Content-Length nor chunked transfer encoding"))
                return
            buf = buf[end + 4 :]
        if self._body_length == CHUNKED:
            try:
                whole = _dechunk(buf)
            except ValueError as exc:
                self.fail(WireError(f"a bad chunked body: {exc}"))
                return
            if whole is None:
                if len(buf) > MAX_HEAD:
                    self.fail(WireError("no end to a chunked body"))
                self._buf = buf
                return
            body, used = whole
            if used != len(buf):
                self.fail(WireError("bytes after the response body (nothing was pipelined)"))
                return
            self._deliver(body)
            return
        if len(buf) < self._body_length:
            self._buf = buf
            return
        if len(buf) > self._body_length:
            self.fail(WireError("bytes after the response body (nothing was pipelined)"))
            return
        self._deliver(buf)

    def _deliver(self, body: bytes) -> None:
        callback, self._callback = self._callback, None
        status, self._buf, self._body_length = self._status, b"", -1
        if callback is None:
            self.fail(WireError("a response nobody asked for"))
            return
        callback(status, body)


def _dechunk(buf: bytes) -> tuple[bytes, int] | None:
    """A complete chunked body (no trailers) at the start of ``buf``, and its length; ``None`` if incomplete."""
    parts: list[bytes] = []
    pos = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(buf[pos:eol].split(b";", 1)[0], 16)
        start = eol + 2
        if size == 0:
            if len(buf) < start + 2:
                return None
            if buf[start : start + 2] != b"\r\n":
                raise ValueError("trailers after the last chunk")
            return b"".join(parts), start + 2
        if len(buf) < start + size + 2:
            return None
        if buf[start + size : start + size + 2] != b"\r\n":
            raise ValueError("a chunk longer than its size")
        parts.append(buf[start : start + size])
        pos = start + size + 2


#: The websocket protocols :func:`open_websocket` speaks.
DRAFTS = ("rfc6455", "hixie-76")


async def open_websocket(port: int, path: str, origin: str | None = None, draft: str = "rfc6455") -> WebSocketClient:
    """Connect and upgrade; returns once the server answered ``101`` (and, for draft-76, its md5 answer)."""
    if draft == "hixie-76":
        request, answer = hixie_upgrade(port, path, origin or f"http://{HOST}:{port}")
        _, hixie = await asyncio.get_running_loop().create_connection(
            lambda: Hixie76Client(request, answer), HOST, port
        )
        await hixie.opened
        return hixie
    if draft != "rfc6455":
        raise ValueError(f"unknown websocket draft {draft!r} (known: {', '.join(DRAFTS)})")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    upgrade = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WebSocketClient(upgrade), HOST, port)
    await client.opened
    return client


async def open_http(port: int) -> HTTPClient:
    """A keep-alive connection to the server."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(HTTPClient, HOST, port)
    return client
