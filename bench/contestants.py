"""The contestants: which server script each runs and how the load client speaks to it.

Each contestant pairs a server script (``bench/servers``) with an adapter
that knows its wire protocol: the URL to open, the handshake after
connecting, the bytes the client sends for a message and the bytes the
server must send back.  The client keeps identical work for everyone: each
message is encoded into those bytes before the measurement starts, and each
answer is checked by a byte comparison.

The bare Tornado servers get the very frames the tornad_io client sends
(``~m~<len>~m~<text>``) and echo them unchanged, so their client traffic is
byte for byte that of tornad_io; python-socketio gets Engine.IO v4 /
Socket.IO v5 packets (``42["message",<text>]``) as its own client sends them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import ClassVar, Protocol, cast

from bench.wire import HTTPClient, WebSocketClient, WireError, http_request, ws_frame

__all__ = ["CONTESTANTS", "Contestant", "PollAdapter", "PollSession", "WSAdapter", "frame06", "message_text"]

#: 19 ASCII characters that pad a message to 32 bytes.
ASCII_FILL = "0123456789abcdefghi"
#: Chinese, a full-width comma and three astral emoji (each two UTF-16 units in the 0.6 length).
CJK_TAIL = "你好世界，回声测试🚀🌏😀"


def message_text(charset: str, connection: int, sequence: int) -> str:
    """The text of message ``sequence`` on ``connection``: ``"0007.0000042."`` then the filler.

    ASCII: exactly 32 bytes.  CJK: 13 ASCII characters, 9 CJK characters
    and 3 emoji (52 UTF-8 bytes, 28 UTF-16 units).
    """
    head = f"{connection:04d}.{sequence:07d}."
    return head + (ASCII_FILL if charset == "ascii" else CJK_TAIL)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def frame06(text: str) -> str:
    """One Socket.IO 0.6 frame (the length counts UTF-16 code units)."""
    return f"~m~{utf16_units(text)}~m~{text}"


def form_body(payload: str) -> bytes:
    """``data=<payload>`` as the 0.6 client's form POST encodes it (encodeURIComponent)."""
    return ("data=" + urllib.parse.quote(payload, safe="~!*()'")).encode("ascii")


FORM = "application/x-www-form-urlencoded; charset=utf-8"


class WSAdapter(Protocol):
    transport: ClassVar[str]

    def path(self, channel: str) -> str: ...

    async def start(self, ws: WebSocketClient, channel: str) -> None: ...

    def outgoing(self, text: str, channel: str) -> bytes: ...

    def incoming(self, text: str, channel: str) -> bytes: ...


@dataclass(frozen=True)
class PollSession:
    """What a polling client repeats: its poll request, and how to make a send request."""

    poll: bytes
    send_path: str
    send_type: str
    port: int
    form: bool

    def send(self, payload: str) -> bytes:
        body = form_body(payload) if self.form else payload.encode("utf-8")
        return http_request("POST", self.send_path, self.port, body, self.send_type)


class PollAdapter(Protocol):
    transport: ClassVar[str]

    async def open(self, port: int, poll: HTTPClient, send: HTTPClient) -> PollSession: ...

    def outgoing(self, text: str) -> str: ...

    def incoming(self, text: str) -> bytes: ...


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise WireError(what)


# -- tornad_io and its bare-Tornado ceilings ------------------------------------------------

SESSION_ID_FRAME = re.compile(rb"~m~32~m~[0-9a-f]{32}")


class TornadIOWebSocket:
    transport: ClassVar[str] = "ws"

    def path(self, channel: str) -> str:
        return "/socket.io/websocket" if channel == "echo" else "/fanout/websocket"

    async def start(self, ws: WebSocketClient, channel: str) -> None:
        first = await ws.recv()
        _expect(SESSION_ID_FRAME.fullmatch(first) is not None, f"expected a session id frame, got {first[:80]!r}")

    def outgoing(self, text: str, channel: str) -> bytes:
        return frame06(text).encode("utf-8")

    incoming = outgoing


class BareWebSocket(TornadIOWebSocket):
    """Tornado's WebSocketHandler echoing the 0.6 frames it gets, untouched."""

    def path(self, channel: str) -> str:
        return "/echo" if channel == "echo" else "/fanout"

    async def start(self, ws: WebSocketClient, channel: str) -> None:
        pass  # open once upgraded


class TornadIOXHRPolling:
    transport: ClassVar[str] = "poll"

    async def open(self, port: int, poll: HTTPClient, send: HTTPClient) -> PollSession:
        stamp = int(time.time() * 1000)
        status, body = await poll.fetch(http_request("GET", f"/socket.io/xhr-polling//{stamp}", port))
        _expect(status == 200 and SESSION_ID_FRAME.fullmatch(body) is not None, f"handshake: {status} {body[:80]!r}")
        session_id = body[-32:].decode("ascii")
        return PollSession(
            poll=http_request("GET", f"/socket.io/xhr-polling/{session_id}/{stamp}", port),
            send_path=f"/socket.io/xhr-polling/{session_id}/send",
            send_type=FORM,
            port=port,
            form=True,
        )

    def outgoing(self, text: str) -> str:
        return frame06(text)

    def incoming(self, text: str) -> bytes:
        return frame06(text).encode("utf-8")


class BareLongPoll(TornadIOXHRPolling):
    """Tornado long-poll: the same form POSTs; the poll answers the posted text as is."""

    async def open(self, port: int, poll: HTTPClient, send: HTTPClient) -> PollSession:
        status, body = await poll.fetch(http_request("GET", "/hello", port))
        _expect(status == 200 and body.isdigit(), f"hello: {status} {body[:80]!r}")
        client_id = body.decode("ascii")
        return PollSession(
            poll=http_request("GET", f"/poll/{client_id}", port),
            send_path=f"/send/{client_id}",
            send_type=FORM,
            port=port,
            form=True,
        )


# -- python-socketio (Engine.IO v4, Socket.IO v5) -------------------------------------------


def _namespace(channel: str) -> str:
    return "" if channel == "echo" else "/fanout,"


def _sio_event(text: str, channel: str, ascii_only: bool) -> str:
    # The JavaScript client's JSON.stringify leaves non-ASCII as is; python-socketio's json.dumps escapes it.
    return "42" + _namespace(channel) + json.dumps(["message", text], separators=(",", ":"), ensure_ascii=ascii_only)


class SocketIOWebSocket:
    transport: ClassVar[str] = "ws"

    def path(self, channel: str) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    async def start(self, ws: WebSocketClient, channel: str) -> None:
        opened = await ws.recv()
        _expect(opened.startswith(b"0{"), f"expected an Engine.IO open packet, got {opened[:80]!r}")
        ws.write(_ws_text(f"40{_namespace(channel)}"))
        connected = await ws.recv()
        _expect(connected.startswith(f"40{_namespace(channel)}{{".encode()), f"namespace connect: {connected[:80]!r}")

    def outgoing(self, text: str, channel: str) -> bytes:
        return _sio_event(text, channel, ascii_only=False).encode("utf-8")

    def incoming(self, text: str, channel: str) -> bytes:
        return _sio_event(text, channel, ascii_only=True).encode("utf-8")


def _ws_text(text: str) -> bytes:
    return ws_frame(text.encode("utf-8"))


class SocketIOPolling:
    transport: ClassVar[str] = "poll"

    async def open(self, port: int, poll: HTTPClient, send: HTTPClient) -> PollSession:
        base = "/socket.io/?EIO=4&transport=polling"
        status, body = await poll.fetch(http_request("GET", f"{base}&t=bench", port))
        _expect(status == 200 and body.startswith(b"0{"), f"Engine.IO handshake: {status} {body[:80]!r}")
        session_id = json.loads(body[1:])["sid"]
        url = f"{base}&sid={session_id}"
        status, body = await send.fetch(http_request("POST", url, port, b"40"))
        _expect(status == 200, f"namespace connect POST: {status} {body[:80]!r}")
        status, body = await poll.fetch(http_request("GET", f"{url}&t=bench", port))
        _expect(status == 200 and body.startswith(b"40{"), f"namespace connect: {status} {body[:80]!r}")
        return PollSession(
            poll=http_request("GET", f"{url}&t=bench", port),
            send_path=url,
            send_type="text/plain;charset=UTF-8",
            port=port,
            form=False,
        )

    def outgoing(self, text: str) -> str:
        return _sio_event(text, "echo", ascii_only=False)

    def incoming(self, text: str) -> bytes:
        return _sio_event(text, "echo", ascii_only=True).encode("utf-8")


# -- the roster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contestant:
    name: str
    label: str
    #: The server script, run as ``python -m <module>``.
    module: str
    adapter: WSAdapter | PollAdapter
    #: A module the server needs beyond the test suite's setup, if any, and the package that has it.
    requires: str | None = None
    package: str | None = None

    @property
    def transport(self) -> str:
        return self.adapter.transport

    @property
    def ws(self) -> WSAdapter:
        """The adapter of a websocket contestant."""
        if self.transport != "ws":
            raise TypeError(f"{self.name} is not a websocket contestant")
        return cast(WSAdapter, self.adapter)

    @property
    def poll(self) -> PollAdapter:
        """The adapter of a polling contestant."""
        if self.transport != "poll":
            raise TypeError(f"{self.name} is not a polling contestant")
        return cast(PollAdapter, self.adapter)

    def unavailable(self) -> str | None:
        """Why this contestant cannot run here, or ``None``."""
        if self.requires is not None and importlib.util.find_spec(self.requires) is None:
            return f"{self.package or self.requires} is not installed (the bench setup installs it: make bench-setup)"
        return None


CONTESTANTS: dict[str, Contestant] = {
    contestant.name: contestant
    for contestant in (
        Contestant("tornad_io-ws", "tornad_io websocket", "bench.servers.tornadio", TornadIOWebSocket()),
        Contestant("tornado-ws", "bare Tornado websocket", "bench.servers.tornado_ws", BareWebSocket()),
        Contestant(
            "sio-ws",
            "python-socketio websocket",
            "bench.servers.python_socketio",
            SocketIOWebSocket(),
            "socketio",
            "python-socketio",
        ),
        Contestant("tornad_io-xhr", "tornad_io xhr-polling", "bench.servers.tornadio", TornadIOXHRPolling()),
        Contestant("tornado-longpoll", "bare Tornado long-poll", "bench.servers.tornado_longpoll", BareLongPoll()),
        Contestant(
            "sio-poll",
            "python-socketio polling",
            "bench.servers.python_socketio",
            SocketIOPolling(),
            "socketio",
            "python-socketio",
        ),
    )
}
