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
tornad_io's v5 contestants (``tornad_io-v5-ws``, ``tornad_io-v5-poll``) get
those very packets on the same server as its 0.6 contestants; only the
fan-out differs, on the main namespace of its ``fanout`` resource instead of
python-socketio's ``/fanout`` namespace (tornad_io serves no other namespace).

The original node server, socket.io 0.6.18 (``bench/servers/node06.js``,
run by node, not Python), gets the same 0.6 frames as tornad_io: over its
draft-76 websocket (the only websocket it speaks) and over xhr-polling.

The ``*-uvloop`` contestants are the tornad_io and bare Tornado servers
started with ``--uvloop`` (the script installs uvloop's event loop policy;
tornad_io never does), in the echo scenarios only.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, cast

from bench.wire import HTTPClient, WebSocketClient, WireError, http_request

__all__ = [
    "CONTESTANTS",
    "NODE06_VERSION",
    "Contestant",
    "PollAdapter",
    "PollSession",
    "WSAdapter",
    "frame06",
    "message_text",
    "node06_missing",
    "node06_versions",
]

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
    #: The websocket protocol the server speaks (``bench.wire.DRAFTS``).
    draft: ClassVar[str]
    #: Whether the server may put several messages in one websocket message, one after the other, as
    #: Socket.IO 0.6 allows (``~m~32~m~…~m~32~m~…``; the 0.6 client reads every frame of it).
    concatenates: ClassVar[bool]

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
    draft: ClassVar[str] = "rfc6455"
    concatenates: ClassVar[bool] = True

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

    concatenates: ClassVar[bool] = False  # one write_message, one websocket message

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


# -- python-socketio and tornad_io's v5 endpoint (Engine.IO v4, Socket.IO v5) ----------------


def _sio_event(text: str, namespace: str, ascii_only: bool) -> str:
    # The JavaScript client's JSON.stringify leaves non-ASCII as is; python-socketio's json.dumps escapes it.
    return "42" + namespace + json.dumps(["message", text], separators=(",", ":"), ensure_ascii=ascii_only)


class SocketIOWebSocket:
    """python-socketio over its websocket: echo on the main namespace, the fan-out on ``/fanout``."""

    transport: ClassVar[str] = "ws"
    draft: ClassVar[str] = "rfc6455"
    concatenates: ClassVar[bool] = False  # Engine.IO: one packet per websocket message
    #: Whether the server writes non-ASCII as ``\uXXXX`` escapes (python-socketio's ``json.dumps`` does).
    escapes_non_ascii: ClassVar[bool] = True

    def namespace(self, channel: str) -> str:
        """The namespace part of a packet (``""`` for the main namespace ``/``)."""
        return "" if channel == "echo" else "/fanout,"

    def path(self, channel: str) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    async def start(self, ws: WebSocketClient, channel: str) -> None:
        namespace = self.namespace(channel)
        opened = await ws.recv()
        _expect(opened.startswith(b"0{"), f"expected an Engine.IO open packet, got {opened[:80]!r}")
        ws.write(ws.frame(f"40{namespace}".encode()))
        connected = await ws.recv()
        _expect(connected.startswith(f"40{namespace}{{".encode()), f"namespace connect: {connected[:80]!r}")

    def outgoing(self, text: str, channel: str) -> bytes:
        return _sio_event(text, self.namespace(channel), ascii_only=False).encode("utf-8")

    def incoming(self, text: str, channel: str) -> bytes:
        return _sio_event(text, self.namespace(channel), self.escapes_non_ascii).encode("utf-8")


class TornadIOV5WebSocket(SocketIOWebSocket):
    """tornad_io's Engine.IO v4 websocket, driven with python-socketio's client bytes.

    tornad_io serves only the main namespace (it refuses ``/fanout`` as
    node's server does), so the fan-out is the ``fanout`` resource's
    endpoint, ``/fanout/?EIO=4&…``, on the main namespace: the same packets
    without the ``/fanout,`` prefix.  Its JSON leaves non-ASCII as is, as
    the JavaScript client's does.
    """

    escapes_non_ascii: ClassVar[bool] = False

    def namespace(self, channel: str) -> str:
        return ""

    def path(self, channel: str) -> str:
        return "/socket.io/?EIO=4&transport=websocket" if channel == "echo" else "/fanout/?EIO=4&transport=websocket"


class SocketIOPolling:
    """python-socketio over Engine.IO v4 polling: a held GET out, text POSTs in (echo only)."""

    transport: ClassVar[str] = "poll"
    escapes_non_ascii: ClassVar[bool] = True

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
        return _sio_event(text, "", ascii_only=False)

    def incoming(self, text: str) -> bytes:
        return _sio_event(text, "", self.escapes_non_ascii).encode("utf-8")


class TornadIOV5Polling(SocketIOPolling):
    """tornad_io's Engine.IO v4 polling: the same requests as python-socketio's (non-ASCII answered as is)."""

    escapes_non_ascii: ClassVar[bool] = False


# -- node: socket.io 0.6.18 itself ----------------------------------------------------------

#: Where ``make bench-setup`` installs the package (``npm install --prefix bench/node06``).
NODE06_DIR = Path(__file__).resolve().parent / "node06"
NODE06_VERSION = "0.6.18"
#: 0.6's session ids: ``Math.random().toString().substr(2)``, digits of varying length, and for a
#: random number under 1e-6 JavaScript's exponent form (``813285777085838e-7``, seen once in 10,000).
NODE06_SESSION_ID_FRAME = re.compile(rb"~m~(\d{1,2})~m~(\d[\d.e+-]*)")


def _node06_session_id(frame: bytes) -> str | None:
    match = NODE06_SESSION_ID_FRAME.fullmatch(frame)
    if match is None or int(match[1]) != len(match[2]):
        return None
    return match[2].decode("ascii")


def node06_versions() -> tuple[str | None, str | None]:
    """node's version (``v20.…``) and the installed socket.io's, where they are found."""
    package = None
    try:
        package = json.loads((NODE06_DIR / "node_modules" / "socket.io" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    node = shutil.which("node")
    version = None
    if node is not None:
        try:
            version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return version or None, package


def node06_missing() -> str | None:
    """Why the node contestants cannot run here, or ``None``."""
    if shutil.which("node") is None:
        return "node is not installed (Debian: apt-get install nodejs npm; then make bench-setup)"
    _, package = node06_versions()
    if package is None:
        return f"socket.io {NODE06_VERSION} is not installed in bench/node06 (make bench-setup installs it with npm)"
    if package != NODE06_VERSION:
        return f"bench/node06 holds socket.io {package}, not {NODE06_VERSION} (make bench-setup)"
    return None


class Node06WebSocket:
    """socket.io 0.6.18's own server over its websocket: draft-76 framing, 0.6 frames inside."""

    transport: ClassVar[str] = "ws"
    draft: ClassVar[str] = "hixie-76"
    concatenates: ClassVar[bool] = True

    def path(self, channel: str) -> str:
        return "/socket.io/websocket" if channel == "echo" else "/fanout/websocket"

    async def start(self, ws: WebSocketClient, channel: str) -> None:
        first = await ws.recv()
        _expect(_node06_session_id(first) is not None, f"expected a session id frame, got {first[:80]!r}")

    def outgoing(self, text: str, channel: str) -> bytes:
        return frame06(text).encode("utf-8")

    incoming = outgoing


class Node06XHRPolling(TornadIOXHRPolling):
    """socket.io 0.6.18's own server over xhr-polling: the same requests as tornad_io's client makes."""

    async def open(self, port: int, poll: HTTPClient, send: HTTPClient) -> PollSession:
        stamp = int(time.time() * 1000)
        status, body = await poll.fetch(http_request("GET", f"/socket.io/xhr-polling//{stamp}", port))
        session_id = _node06_session_id(body)
        _expect(status == 200 and session_id is not None, f"handshake: {status} {body[:80]!r}")
        return PollSession(
            poll=http_request("GET", f"/socket.io/xhr-polling/{session_id}/{stamp}", port),
            send_path=f"/socket.io/xhr-polling/{session_id}/send",
            send_type=FORM,
            port=port,
            form=True,
        )


# -- the roster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contestant:
    name: str
    label: str
    #: The server script, run as ``python -m <module>`` (unless ``command`` is given: then only its name).
    module: str
    adapter: WSAdapter | PollAdapter
    #: A module the server needs beyond the test suite's setup, if any, and the package that has it.
    requires: str | None = None
    package: str | None = None
    #: The server's command line when it is not a Python module (the program is looked up on PATH,
    #: relative paths are from the repository's root).
    command: tuple[str, ...] = ()
    #: Why the server cannot run here (``None`` when it can), for servers that need more than a module.
    missing: Callable[[], str | None] | None = None
    #: Extra command-line options of the server (``--uvloop``).
    args: tuple[str, ...] = ()
    #: The kinds of scenario it enters (``None``: every kind its transport allows).
    kinds: tuple[str, ...] | None = None
    #: Whether the server answers ``GET /bench-stats`` (the fan-out call times).
    stats: bool = False

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
        if self.missing is not None:
            return self.missing()
        return None


CONTESTANTS: dict[str, Contestant] = {
    contestant.name: contestant
    for contestant in (
        Contestant("tornad_io-ws", "tornad_io websocket", "bench.servers.tornadio", TornadIOWebSocket(), stats=True),
        Contestant("tornado-ws", "bare Tornado websocket", "bench.servers.tornado_ws", BareWebSocket(), stats=True),
        Contestant(
            "sio-ws",
            "python-socketio websocket",
            "bench.servers.python_socketio",
            SocketIOWebSocket(),
            "socketio",
            "python-socketio",
        ),
        Contestant("tornad_io-xhr", "tornad_io xhr-polling", "bench.servers.tornadio", TornadIOXHRPolling()),
        # tornad_io's Engine.IO v4 endpoint (Socket.IO v5), on the same server script and handlers as the 0.6
        # contestants, against python-socketio on its client bytes: echo and the fan-out only.
        Contestant(
            "tornad_io-v5-ws",
            "tornad_io v5 websocket",
            "bench.servers.tornadio",
            TornadIOV5WebSocket(),
            kinds=("echo", "broadcast"),
            stats=True,
        ),
        Contestant("tornad_io-v5-poll", "tornad_io v5 polling", "bench.servers.tornadio", TornadIOV5Polling()),
        Contestant("tornado-longpoll", "bare Tornado long-poll", "bench.servers.tornado_longpoll", BareLongPoll()),
        Contestant(
            "sio-poll",
            "python-socketio polling",
            "bench.servers.python_socketio",
            SocketIOPolling(),
            "socketio",
            "python-socketio",
        ),
        Contestant(
            "node06-ws",
            "node socket.io 0.6.18 websocket (draft-76)",
            "bench/servers/node06.js",
            Node06WebSocket(),
            command=("node", "bench/servers/node06.js"),
            missing=node06_missing,
        ),
        Contestant(
            "node06-xhr",
            "node socket.io 0.6.18 xhr-polling",
            "bench/servers/node06.js",
            Node06XHRPolling(),
            command=("node", "bench/servers/node06.js"),
            missing=node06_missing,
        ),
        # The same servers on uvloop's event loop (the script installs its policy; tornad_io never does),
        # in the echo scenarios only.
        *(
            Contestant(
                f"{name}-uvloop",
                f"{label} on uvloop",
                module,
                adapter,
                "uvloop",
                "uvloop",
                args=("--uvloop",),
                kinds=("echo",),
            )
            for name, label, module, adapter in (
                ("tornad_io-ws", "tornad_io websocket", "bench.servers.tornadio", TornadIOWebSocket()),
                ("tornado-ws", "bare Tornado websocket", "bench.servers.tornado_ws", BareWebSocket()),
                ("tornad_io-xhr", "tornad_io xhr-polling", "bench.servers.tornadio", TornadIOXHRPolling()),
                ("tornado-longpoll", "bare Tornado long-poll", "bench.servers.tornado_longpoll", BareLongPoll()),
            )
        ),
    )
}
