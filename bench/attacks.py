"""Hostile and slow clients against tornad_io, measured: ``python -m bench.attacks [--quick]``.

Each attack gets a fresh target server (``bench/servers/attack_target.py``,
pinned to its own core) and a healthy websocket client in its own process
(the *probe*: a message every 20 ms, its echo's round trip timed).  The
attack runs, bounded in count and time; the server's RSS (``VmRSS``, with
the peak from ``VmHWM`` reset at the start), its open file descriptors and
a census of its live objects (``GET /debug``) are read before the attack,
right after it and after a short settle.  A one-word verdict follows from
the rules in :data:`RULES`.  Results go to ``bench/results/attacks.json``;
``--update-readme`` rewrites the "Attacks" section of ``bench/README.md``.

The library under test may still be vulnerable: every read, write and wait
here has a time-out, the server is killed if its RSS grows past
``RSS_CAP_MIB``, and an attack that succeeds is simply reported NOT bounded.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import secrets
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.contestants import FORM, Contestant, TornadIOWebSocket, form_body, frame06
from bench.procstat import loadavg
from bench.serverproc import REPO, ServerError, ServerProcess
from bench.wire import HOST, WebSocketClient, WireError, http_request, ws_frame

__all__ = ["ATTACKS", "main", "render", "update_readme"]

RESULTS = REPO / "bench" / "results" / "attacks.json"
README = REPO / "bench" / "README.md"
README_START = "<!-- attacks:start (written by python -m bench.attacks --update-readme) -->"
README_END = "<!-- attacks:end -->"
SETTINGS_ENV = "ATTACK_TARGET_SETTINGS"
SERVER_OPTIONS_ENV = "ATTACK_TARGET_SERVER_OPTIONS"
TARGET = Contestant("attack-target", "tornad_io attack target", "bench.servers.attack_target", TornadIOWebSocket())

MIB = 1 << 20

# -- the verdict rules (documented in the README section this script writes) -----------------

#: Peak RSS growth during the attack above this: NOT bounded.
PEAK_LIMIT_MIB = 64
#: RSS growth still there after the settle above this: NOT bounded.  Not 0: the allocator keeps some of
#: what was freed (about 15-27 MiB after 1 GB of aborted uploads, with nothing left alive).
SETTLED_LIMIT_MIB = 48
#: Open descriptors after the settle may exceed those before by this much.
FD_SLACK = 2
#: Live Tornado objects (handlers, requests, streams) after the settle may exceed those before by this much.
OBJECT_SLACK = 2
#: The probe's longest echo round trip during the attack above this: NOT bounded.
STALL_LIMIT_MS = 1000
#: 3: more messages of the one payload handled than this (the default ``socket_io_max_frames``): NOT bounded.
FRAMES_HANDLED_LIMIT = 1000
#: The server is killed (and the attack NOT bounded) when its RSS grows by this much.
RSS_CAP_MIB = 2048
#: An attack shorter than this is watched by the probe for this long all the same (seconds).
MIN_WINDOW = 1.0

RULES = [
    "the server is alive and answers `/debug` after the settle;",
    f"peak RSS growth ≤ {PEAK_LIMIT_MIB} MiB and RSS growth after the settle ≤ {SETTLED_LIMIT_MIB} MiB "
    f"(the server is killed at +{RSS_CAP_MIB} MiB);",
    f"after the settle, open descriptors ≤ before + {FD_SLACK}; tornad_io connections (`stats`) and queued "
    "messages, tornad_io `Connection` objects and `SocketIOHandler` objects ≤ before; Tornado request "
    f"handlers, HTTP requests and IOStreams ≤ before + {OBJECT_SLACK};",
    f"the healthy client's longest echo round trip during the attack ≤ {STALL_LIMIT_MS} ms, and it is never cut off;",
    "attacks that hold connections open (2, 4, 5, 6) must have every attacker cut off by the server before "
    "the attack's time is up;",
    f"3: at most {FRAMES_HANDLED_LIMIT:,} (the default `socket_io_max_frames`) messages of the 131,056-frame "
    "payload reach the handler (echoes; deliveries per listener; frames in the next poll);",
    "8a: `on_open` and `on_close` counts match after the settle; 8b: the poll naming a websocket session is "
    "answered 4xx and the websocket still echoes.",
]

#: Library settings the attacks exercise, printed with the values in force.
WATCHED_SETTINGS = (
    "socket_io_max_message_size",
    "socket_io_body_timeout",
    "socket_io_max_frames",
    "socket_io_max_pending_messages",
    "socket_io_max_buffer_size",
    "socket_io_heartbeat_interval",
    "socket_io_heartbeat_timeout",
    "socket_io_poll_timeout",
    "socket_io_close_timeout",
)

# -- sizes ------------------------------------------------------------------------------------

UPLOAD_LENGTH = 1_000_000
#: ``~m~1~m~a`` frames in a payload of at most 1 MiB.
FRAMES = 131_056
MANY_FRAMES = ("~m~1~m~a" * FRAMES).encode("ascii")
ECHO_A = b"~m~1~m~a"
SMALL_RCVBUF = 4096
LINGER_RST = struct.pack("ii", 1, 0)
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass(frozen=True)
class Params:
    """Counts and durations; the quick run uses smaller ones."""

    uploads: int = 1000
    upload_concurrency: int = 20
    fin_wait: float = 1.0
    slow_clients: int = 300
    slow_seconds: float = 30.0
    slow_interval: float = 2.0
    frames_wait: float = 20.0
    room_listeners: int = 20
    flood_seconds: float = 12.0
    heartbeat_seconds: float = 30.0
    poll_seconds: float = 12.0
    poll_every: float = 0.1
    max_polls: int = 150
    inbound_messages: int = 2000
    inbound_seconds: float = 5.0
    lifecycle_clients: int = 100
    #: ``idle_connection_timeout`` passed to ``SocketIOServer`` for 2b (``None``: SocketIOServer's default).
    head_timeout: float | None = None
    warmup: float = 0.5
    settle: float = 3.0


FULL = Params()
QUICK = Params(
    uploads=200,
    fin_wait=0.5,
    slow_clients=100,
    slow_seconds=6.5,
    head_timeout=5.0,
    frames_wait=8.0,
    flood_seconds=4.0,
    heartbeat_seconds=7.0,
    poll_seconds=4.0,
    max_polls=60,
    inbound_seconds=2.5,
    warmup=0.3,
    settle=1.0,
)

# -- small wire helpers -----------------------------------------------------------------------


def frames06(text: str) -> list[str]:
    """The messages of a 0.6 payload (ASCII traffic only: lengths are taken as characters)."""
    messages = []
    pos = 0
    while text.startswith("~m~", pos):
        sep = text.find("~m~", pos + 3)
        if sep < 0:
            break
        try:
            length = int(text[pos + 3 : sep])
        except ValueError:
            break
        start = sep + 3
        messages.append(text[start : start + length])
        pos = start + length
    return messages


def upgrade_request(port: int, path: str) -> bytes:
    key = secrets.token_bytes(16).hex()[:22] + "=="
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode("ascii")


def rst_socket(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    sock.close()


def rst_transport(transport: asyncio.BaseTransport | None) -> None:
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    transport.abort()  # type: ignore[attr-defined]


async def raw_connect(port: int, rcvbuf: int | None = None, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (HOST, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def peek(sock: socket.socket) -> bytes | None:
    """What the server already sent (``b""``: it closed), without waiting; ``None``: nothing yet."""
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return None
    except OSError:
        return b""


async def read_response(sock: socket.socket, timeout: float) -> tuple[int, bytes]:
    """One HTTP response with a Content-Length (or ended by EOF); ``TimeoutError`` when none comes in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].lower()
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if match is not None and len(data) - end - 4 >= int(match.group(1)):
                return int(data[9:12]), data[end + 4 : end + 4 + int(match.group(1))]
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("no complete response")
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), remaining)
        if not chunk:
            if end >= 0:
                return int(data[9:12]), data[end + 4 :]
            raise ConnectionError(f"closed without a response ({data[:60]!r})")
        data += chunk


async def http_once(port: int, request: bytes, timeout: float) -> tuple[int, bytes]:
    """Send ``request`` on a new connection and read its response."""
    loop = asyncio.get_running_loop()
    sock = await raw_connect(port, timeout=timeout)
    try:
        await asyncio.wait_for(loop.sock_sendall(sock, request), timeout)
        return await read_response(sock, timeout)
    finally:
        sock.close()


async def debug_fetch(port: int, census: bool, timeout: float, since: float | None = None) -> dict[str, Any] | None:
    """The target's ``/debug`` report, or ``None`` when it does not answer in time."""
    query = f"gc={1 if census else 0}" + (f"&closes=1&since={since}" if since is not None else "")
    request = f"GET /debug?{query} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    try:
        status, body = await http_once(port, request, timeout)
    except (OSError, TimeoutError, ConnectionError, ValueError):
        return None
    if status != 200:
        return None
    try:
        report: dict[str, Any] = json.loads(body)
    except ValueError:
        return None
    return report


def quick_ack(transport: asyncio.BaseTransport | None) -> None:
    """Turn on TCP_QUICKACK (Linux clears it again by itself, so this is repeated after every read).

    The target, like any Tornado websocket, writes without TCP_NODELAY.  After
    any stall, an echo then waits (Nagle) for the ACK of the previous one,
    which the client delays until its next message 20 ms later; the two lock
    into a steady 20 ms lag that has nothing to do with the IOLoop.  The probe
    acknowledges at once so that it measures stalls, not that.
    """
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Peer:
    """A Socket.IO 0.6 websocket client on bench.wire's ``WebSocketClient``: answers heartbeats, counts messages."""

    def __init__(self, keep_texts: int = 64, quickack: bool = False) -> None:
        #: Acknowledge every segment at once (the probe): see ``quick_ack``.
        self.quickack = quickack
        self.ws: WebSocketClient | None = None
        self.sid: str | None = None
        self.count = 0
        self.bytes = 0
        self.heartbeats = 0
        self.texts: deque[str] = deque(maxlen=keep_texts)
        self.on_text: Callable[[str], None] | None = None
        self.lost_at: float | None = None
        self.failure: str | None = None
        #: ``close <code>``, ``reset`` or ``closed``: how the server ended it, in short.
        self.how = ""
        self.sid_future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.sid_future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def on_message(self, payload: bytes) -> None:
        if self.quickack:
            quick_ack(self.transport)
        self.bytes += len(payload)
        if payload == ECHO_A:
            self.count += 1
            return
        for message in frames06(payload.decode("utf-8", "replace")):
            if message.startswith("~h~"):
                self.heartbeats += 1
                self.send_text(message)
            elif self.sid is None:
                self.sid = message
                if not self.sid_future.done():
                    self.sid_future.set_result(message)
            else:
                self.count += 1
                self.texts.append(message)
                if self.on_text is not None:
                    self.on_text(message)

    def on_failure(self, error: WireError) -> None:
        if self.lost_at is None:
            self.lost_at = time.monotonic()
            self.failure = str(error)
            code = re.search(r"\(code (\d+|None)", self.failure)
            self.how = f"close {code.group(1)}" if code else "reset" if "reset" in self.failure.lower() else "closed"
        if not self.sid_future.done():
            self.sid_future.set_exception(error)

    def send_text(self, text: str) -> None:
        self.write(ws_frame(frame06(text).encode("utf-8")))

    def write(self, frame: bytes) -> None:
        ws = self.ws
        if ws is not None and ws.transport is not None and not ws.closing:
            ws.write(frame)

    @property
    def transport(self) -> asyncio.Transport | None:
        return None if self.ws is None else self.ws.transport

    def reset(self) -> None:
        """Go away with a TCP reset."""
        if self.ws is not None:
            self.ws.closing = True
            rst_transport(self.ws.transport)


async def connect_peer(port: int, path: str, peer: Peer, rcvbuf: int | None = None, timeout: float = 5.0) -> Peer:
    """Upgrade, then wait for the session id frame."""
    sock = await raw_connect(port, rcvbuf, timeout)
    upgrade = upgrade_request(port, path)

    def factory() -> WebSocketClient:
        ws = WebSocketClient(upgrade)
        ws.on_message = peer.on_message
        ws.on_failure = peer.on_failure
        peer.ws = ws
        return ws

    try:
        await asyncio.get_running_loop().create_connection(factory, sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        await asyncio.wait_for(asyncio.shield(peer.sid_future), timeout)
    except BaseException:
        peer.reset()
        raise
    return peer


# -- the probe: a healthy client in its own process --------------------------------------------


async def probe_main(port: int, limit: float) -> None:
    """Send ``p<n>`` every 20 ms, time each echo, print every sample as JSON on SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sent: dict[int, float] = {}
    samples: list[tuple[float, float]] = []
    first = loop.create_future()

    def on_text(text: str) -> None:
        if text.startswith("p") and text[1:].isdigit():
            started = sent.pop(int(text[1:]), None)
            if started is not None:
                samples.append((started, time.monotonic() - started))
                if not first.done():
                    first.set_result(None)

    peer = Peer(keep_texts=0, quickack=True)
    peer.on_text = on_text
    await connect_peer(port, "/socket.io/websocket", peer, timeout=10.0)
    sequence = 0
    begin = time.monotonic()
    ready = False
    while not stop.is_set() and peer.lost_at is None and time.monotonic() - begin < limit:
        if len(sent) < 10_000:
            sequence += 1
            sent[sequence] = time.monotonic()
            peer.send_text(f"p{sequence}")
        if not ready and first.done():
            print("READY", flush=True)
            ready = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.02)
    report = {
        "samples": samples,
        "unanswered": sorted(sent.values()),
        "stopped_at": time.monotonic(),
        "lost_at": peer.lost_at,
        "failure": peer.failure,
        "heartbeats": peer.heartbeats,
    }
    if peer.ws is not None:
        peer.ws.close()
    print(json.dumps(report), flush=True)


class Probe:
    """The probe process, pinned with the load client."""

    def __init__(self, port: int, cpu: int | None) -> None:
        self.port = port
        self.cpu = cpu
        self.proc: subprocess.Popen[bytes] | None = None
        self._err = tempfile.TemporaryFile()

    def start(self, timeout: float = 15.0) -> None:
        cpu = self.cpu

        def pin() -> None:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.attacks", "--probe", str(self.port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            preexec_fn=pin,  # noqa: PLW1509 (no threads yet)
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.stop()
                raise ServerError(f"the probe did not start: {self.error_tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    continue
                line += chunk
        if line.strip() != b"READY":
            self.stop()
            raise ServerError(f"the probe said {line!r}")

    def error_tail(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")[-600:]

    def stop(self) -> dict[str, Any] | None:
        proc = self.proc
        if proc is None:
            return None
        self.proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        self._err.close()
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            if line.startswith("{"):
                try:
                    report: dict[str, Any] = json.loads(line)
                except ValueError:
                    return None
                return report
        return None


# -- /proc ------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in bytes (empty when the process is gone)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith((b"VmRSS:", b"VmHWM:")):
                    name, amount = line.split(b":", 1)
                    values[name.decode()] = int(amount.split()[0]) * 1024
    except OSError:
        return {}
    return values


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def reset_peak(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0: ``echo 5 > /proc/<pid>/clear_refs``)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


class Sampler(threading.Thread):
    """Samples the server's RSS every 20 ms and its descriptors every 200 ms; flags the RSS cap."""

    def __init__(self, pid: int, cap: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.cap = cap
        self.peak_rss = 0
        self.peak_fds = 0
        self.tripped: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self._halt.wait(0.02):
            rss = proc_status(self.pid).get("VmRSS")
            if rss is None:
                self.tripped = self.tripped or "the server died"
                return
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self.cap and self.tripped is None:
                self.tripped = f"RSS cap: the server's RSS passed +{RSS_CAP_MIB} MiB and it was stopped"
            tick += 1
            if tick % 10 == 0:
                self.peak_fds = max(self.peak_fds, fd_count(self.pid) or 0)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


# -- what an attack reports ---------------------------------------------------------------------


@dataclass
class Outcome:
    #: Connections (or sessions) the attack drives.
    attackers: int = 0
    #: (seconds from that attacker's start, how) for each attacker the server cut off.
    cut: list[tuple[float, str]] = field(default_factory=list)
    #: How each attacker ended, counted.
    ended: Counter[str] = field(default_factory=Counter)
    #: The attack's own figures.
    figures: dict[str, Any] = field(default_factory=dict)
    #: Attack-specific reasons for NOT bounded.
    problems: list[str] = field(default_factory=list)
    #: A one-line summary.
    note: str = ""

    def cut_off(self, seconds: float, how: str) -> None:
        self.cut.append((round(seconds, 3), how))


@dataclass(frozen=True)
class Session:
    """A polling session: the resource its handler is mounted at, and its id."""

    resource: str
    sid: str


class Ctx:
    """What an attack gets: the target's port, the sizes, its outcome to fill, and clean-up of its sockets."""

    def __init__(self, port: int, params: Params, started: float) -> None:
        self.port = port
        self.p = params
        self.started = started
        self.out = Outcome()
        self._sockets: list[socket.socket] = []
        self._peers: list[Peer] = []
        self._tasks: list[asyncio.Future[Any]] = []

    async def connect(self, rcvbuf: int | None = None) -> socket.socket:
        sock = await raw_connect(self.port, rcvbuf)
        self._sockets.append(sock)
        return sock

    async def peer(self, path: str, rcvbuf: int | None = None, paused: bool = False) -> Peer:
        peer = Peer()
        self._peers.append(peer)
        await connect_peer(self.port, path, peer, rcvbuf)
        if paused and peer.transport is not None:
            peer.transport.pause_reading()
        return peer

    def spawn(self, coroutine: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coroutine)
        task.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._tasks.append(task)
        return task

    async def handshake(self, resource: str = "socket.io") -> Session:
        """A new xhr-polling session of the handler mounted at ``resource``."""
        stamp = int(time.time() * 1000)
        request = http_request("GET", f"/{resource}/xhr-polling//{stamp}", self.port)
        status, body = await http_once(self.port, request, 5)
        messages = frames06(body.decode("utf-8", "replace"))
        if status != 200 or not messages:
            raise WireError(f"polling handshake answered {status} {body[:60]!r}")
        return Session(resource, messages[0])

    def poll_request(self, session: Session) -> bytes:
        path = f"/{session.resource}/xhr-polling/{session.sid}/{int(time.time() * 1000)}"
        return http_request("GET", path, self.port)

    def send_request(self, session: Session, payload: str) -> bytes:
        """A POST of ``payload`` (already 0.6 frames) as the ``data`` form field."""
        path = f"/{session.resource}/xhr-polling/{session.sid}/send"
        return http_request("POST", path, self.port, form_body(payload), FORM)

    async def keep_polling(self, session: Session) -> None:
        """Hold a poll for ``session`` and renew it after every answer (reading them), until cancelled."""
        while True:
            sock = await self.connect()
            try:
                await asyncio.get_running_loop().sock_sendall(sock, self.poll_request(session))
                status, _ = await read_response(sock, 60)
            finally:
                rst_socket(sock)
            if status != 200:
                return

    async def closes(self, sids: list[str], until: float, every: float = 0.25) -> dict[str, tuple[float, str | None]]:
        """When (and why) the server closed each of ``sids``, polling ``/debug`` until all are or ``until``."""
        wanted = set(sids)
        found: dict[str, tuple[float, str | None]] = {}
        while True:
            report = await debug_fetch(self.port, census=False, timeout=2.0, since=self.started)
            for sid, _kind, _opened, closed_at, reason in (report or {}).get("closes", []):
                if sid in wanted:
                    found[sid] = (closed_at, reason)
            if len(found) == len(wanted) or time.monotonic() >= until:
                return found
            await asyncio.sleep(min(every, max(0.0, until - time.monotonic())))

    async def hooks(self) -> dict[str, dict[str, int]]:
        report = await debug_fetch(self.port, census=False, timeout=2.0)
        return (report or {}).get("hooks", {})

    def cleanup(self) -> None:
        for task in self._tasks:
            task.cancel()
        for peer in self._peers:
            peer.reset()
        for sock in self._sockets:
            if sock.fileno() >= 0:
                rst_socket(sock)
        self._tasks.clear()
        self._peers.clear()
        self._sockets.clear()


async def until(condition: Callable[[], bool], deadline: float, every: float = 0.02) -> bool:
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True


def _status(data: bytes | None) -> str:
    if data is None:
        return "nothing"
    if not data:
        return "closed"
    match = STATUS.match(data)
    return match.group(1).decode() if match else "bytes"


# -- 1: aborted uploads -------------------------------------------------------------------------


async def aborted_uploads(ctx: Ctx, ending: str) -> None:
    out, loop, port = ctx.out, asyncio.get_running_loop(), ctx.port
    body = b"x" * (UPLOAD_LENGTH - 1)
    out.attackers = ctx.p.uploads
    gate = asyncio.Semaphore(ctx.p.upload_concurrency)
    after_fin: list[float] = []

    async def upload() -> None:
        async with gate:
            try:
                sock = await ctx.connect()
            except (OSError, TimeoutError):
                out.ended["connect failed"] += 1
                return
            head = (
                f"POST /socket.io/xhr-polling/{secrets.token_hex(16)}/send HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Content-Type: {FORM}\r\nContent-Length: {UPLOAD_LENGTH}\r\n\r\n"
            ).encode("ascii")
            begun = time.monotonic()
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, head), 5)
                await asyncio.wait_for(loop.sock_sendall(sock, body), 10)
            except TimeoutError:
                out.ended["stalled: the server stopped reading"] += 1
                rst_socket(sock)
                return
            except OSError:
                out.cut_off(time.monotonic() - begun, "reset")
                out.ended["reset by the server mid-body"] += 1
                rst_socket(sock)
                return
            early = peek(sock)
            if early is not None:
                out.cut_off(time.monotonic() - begun, _status(early))
                out.ended[f"answered {_status(early)} before the last byte"] += 1
            else:
                out.ended["999,999 bytes sent, no answer"] += 1
            if ending == "rst":
                rst_socket(sock)
                return
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:  # the server has already reset it
                out.ended["then found reset by the server at the FIN"] += 1
                rst_socket(sock)
                return
            fin_at = time.monotonic()
            try:
                while True:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), ctx.p.fin_wait)
                    if not chunk:
                        after_fin.append(time.monotonic() - fin_at)
                        break
            except TimeoutError:
                out.ended[f"still open {ctx.p.fin_wait:g} s after the FIN"] += 1
            except OSError:
                after_fin.append(time.monotonic() - fin_at)
            rst_socket(sock)

    await asyncio.gather(*(upload() for _ in range(ctx.p.uploads)))
    out.figures["bytes_sent"] = ctx.p.uploads * (UPLOAD_LENGTH - 1)
    summary = ", ".join(f"{count} {how}" for how, count in out.ended.most_common())
    if ending == "fin":
        out.figures["closed_after_fin"] = len(after_fin)
        out.figures["close_after_fin_max_s"] = round(max(after_fin), 3) if after_fin else None
        summary += f"; the server closed {len(after_fin)}/{ctx.p.uploads} within {ctx.p.fin_wait:g} s of the FIN"
    out.note = summary


# -- 2: slowloris -------------------------------------------------------------------------------


async def slowloris(ctx: Ctx, part: str) -> None:
    out, port, p = ctx.out, ctx.port, ctx.p
    out.attackers = p.slow_clients
    gate = asyncio.Semaphore(50)
    held_bytes = Counter[str]()

    async def client() -> None:
        async with gate:
            try:
                if part == "body":  # each client its own live session, kept alive by a held poll
                    session = await ctx.handshake()
                    ctx.spawn(ctx.keep_polling(session))
                    start = (
                        f"POST /socket.io/xhr-polling/{session.sid}/send HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                        f"Content-Type: {FORM}\r\nContent-Length: 1000\r\n\r\ndata="
                    ).encode("ascii")
                else:
                    start = (
                        f"GET /socket.io/xhr-polling//{int(time.time() * 1000)} HTTP/1.1\r\n"
                        f"Host: {HOST}:{port}\r\nX-Slow: "
                    ).encode("ascii")
                sock = await ctx.connect()
                await asyncio.get_running_loop().sock_sendall(sock, start)
            except (OSError, TimeoutError, WireError):
                out.ended["connect failed"] += 1
                return
        begun = time.monotonic()
        end = begun + p.slow_seconds  # each client drips for the whole time, however late it connected
        loop = asyncio.get_running_loop()
        reply = asyncio.ensure_future(loop.sock_recv(sock, 4096))
        try:
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    out.ended["still open at the end"] += 1
                    return
                await asyncio.wait({reply}, timeout=min(p.slow_interval, remaining))
                if reply.done():
                    try:
                        data = reply.result()
                    except OSError:
                        data = b""
                    how = _status(data)
                    out.cut_off(time.monotonic() - begun, how)
                    out.ended[how if how != "closed" else "closed by the server"] += 1
                    return
                try:
                    sock.send(b"a")
                    held_bytes["sent"] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    out.cut_off(time.monotonic() - begun, "reset")
                    out.ended["reset by the server"] += 1
                    return
        finally:
            reply.cancel()
            rst_socket(sock)

    await asyncio.gather(*(client() for _ in range(p.slow_clients)))
    out.figures["drip_bytes"] = held_bytes["sent"]
    out.note = ", ".join(f"{count} {how}" for how, count in out.ended.most_common())


# -- 3: many frames in one payload ----------------------------------------------------------------


async def many_frames_ws(ctx: Ctx) -> None:
    out = ctx.out
    out.attackers = 1
    peer = await ctx.peer("/socket.io/websocket")
    begun = time.monotonic()
    peer.write(ws_frame(MANY_FRAMES))
    await until(lambda: peer.count >= FRAMES or peer.lost_at is not None, begun + ctx.p.frames_wait)
    out.figures["echoes"] = peer.count
    if peer.count > FRAMES_HANDLED_LIMIT:
        out.problems.append(f"{peer.count:,} messages of one payload handled")
    if peer.lost_at is not None:
        out.cut_off(peer.lost_at - begun, peer.how)
        out.note = f"closed after {peer.lost_at - begun:.2f} s: {peer.failure}; {peer.count:,} echoes"
    else:
        out.note = f"{peer.count:,}/{FRAMES:,} echoes in {time.monotonic() - begun:.2f} s"


async def many_frames_room(ctx: Ctx) -> None:
    out = ctx.out
    out.attackers = 1
    listeners = [await ctx.peer("/room/websocket") for _ in range(ctx.p.room_listeners)]
    sender = await ctx.peer("/room/websocket")
    begun = time.monotonic()
    sender.write(ws_frame(MANY_FRAMES))
    expected = FRAMES * len(listeners)

    def done() -> bool:
        return sender.lost_at is not None or sum(peer.count for peer in listeners) >= expected

    await until(done, begun + ctx.p.frames_wait, every=0.05)
    delivered = sum(peer.count for peer in listeners)
    out.figures.update(deliveries=delivered, expected=expected, seconds=round(time.monotonic() - begun, 2))
    if delivered > FRAMES_HANDLED_LIMIT * len(listeners):
        out.problems.append(f"{delivered:,} deliveries of one payload's messages")
    if sender.lost_at is not None:
        out.cut_off(sender.lost_at - begun, sender.how)
        out.note = f"sender closed after {sender.lost_at - begun:.2f} s ({sender.failure}); "
    out.note += (
        f"{delivered:,}/{expected:,} deliveries to {len(listeners)} listeners in {time.monotonic() - begun:.1f} s"
    )


async def many_frames_poll(ctx: Ctx) -> None:
    out = ctx.out
    out.attackers = 1
    session = await ctx.handshake()
    begun = time.monotonic()
    request = ctx.send_request(session, MANY_FRAMES.decode("ascii"))
    try:
        status, body = await http_once(ctx.port, request, ctx.p.frames_wait)
        answer = (
            f"POST answered {status} {body[:40].decode('utf-8', 'replace')!r} after {time.monotonic() - begun:.2f} s"
        )
        if status != 200:
            out.cut_off(time.monotonic() - begun, str(status))
    except (TimeoutError, OSError, ConnectionError) as exc:
        answer = f"POST not answered ({type(exc).__name__})"
    out.figures["post_bytes"] = len(request)
    try:
        status, body = await http_once(ctx.port, ctx.poll_request(session), 2)
        messages = frames06(body.decode("utf-8", "replace"))
        poll = f"next poll {status}: {len(body):,} bytes, {len(messages):,} frames"
        out.figures["poll_frames"] = len(messages)
        if len(messages) > FRAMES_HANDLED_LIMIT:
            out.problems.append(f"{len(messages):,} messages of one payload handled")
    except TimeoutError:
        poll = "next poll held (nothing queued for it)"
    except (OSError, ConnectionError) as exc:
        poll = f"next poll: no answer ({type(exc).__name__})"
    out.note = f"{answer}; {poll}"


# -- 4, 5: clients that never read ------------------------------------------------------------------


async def _closed_sids(ctx: Ctx, peers: list[Peer], begun: float, seconds: float) -> None:
    out = ctx.out
    sids = [peer.sid for peer in peers if peer.sid is not None]
    closes = await ctx.closes(sids, begun + seconds)
    reasons = Counter[str]()
    for closed_at, reason in closes.values():
        out.cut_off(closed_at - begun, reason or "closed")
        reasons[reason or "closed"] += 1
    out.ended.update(reasons)
    out.ended["still open at the end"] += len(sids) - len(closes)
    if closes:
        times = sorted(closed_at - begun for closed_at, _ in closes.values())
        first, last = f"{times[0]:.2f}", f"{times[-1]:.2f}"
        span = f"{first} s" if first == last else f"{first}–{last} s"
        out.note = f"{len(closes)}/{len(sids)} closed by the server after {span} ({', '.join(reasons)})"
    else:
        out.note = f"none of {len(sids)} closed by the server in {seconds:g} s"


async def non_reader(ctx: Ctx, heartbeats: bool) -> None:
    out = ctx.out
    out.attackers = 1
    seconds = ctx.p.heartbeat_seconds if heartbeats else ctx.p.flood_seconds
    peer = await ctx.peer("/socket.io/websocket", rcvbuf=SMALL_RCVBUF, paused=True)
    begun = time.monotonic()
    peer.send_text(f"flood:{seconds + 2:g}")
    if heartbeats:

        async def echo_blindly() -> None:
            number = 0
            while True:
                await asyncio.sleep(1.0)
                number += 1
                peer.send_text(f"~h~{number}")
                out.figures["heartbeats_sent"] = number

        ctx.spawn(echo_blindly())
    await _closed_sids(ctx, [peer], begun, seconds)
    hooks = await ctx.hooks()
    out.figures["flood_messages"] = (await debug_fetch(ctx.port, False, 2.0) or {}).get("floods", {}).get("messages")
    out.figures["hooks"] = hooks
    if peer.lost_at is not None:
        out.note += f"; the client saw its socket fail after {peer.lost_at - begun:.2f} s"


async def non_readers_room(ctx: Ctx) -> None:
    out = ctx.out
    listeners = [
        await ctx.peer("/room/websocket", rcvbuf=SMALL_RCVBUF, paused=True) for _ in range(ctx.p.room_listeners)
    ]
    out.attackers = len(listeners)
    sender = await ctx.peer("/room/websocket")
    frame = ws_frame(frame06("r" * 1024).encode("ascii"))
    sent = 0
    begun = time.monotonic()

    async def broadcast() -> None:
        nonlocal sent
        while sender.lost_at is None and sender.transport is not None:
            if sender.transport.get_write_buffer_size() < 256 * 1024:
                for _ in range(50):
                    sender.write(frame)
                sent += 50
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.002)

    task = ctx.spawn(broadcast())
    await _closed_sids(ctx, listeners, begun, ctx.p.flood_seconds)
    task.cancel()
    out.figures["broadcast_messages_written"] = sent
    out.figures["room_messages_handled"] = (await ctx.hooks()).get("Room", {}).get("messages")
    out.note += f"; the sender wrote {sent:,} 1 KiB messages"


# -- 6: polling client that never reads its answers ----------------------------------------------


async def non_reading_poller(ctx: Ctx) -> None:
    out = ctx.out
    out.attackers = 1
    loop = asyncio.get_running_loop()
    session = await ctx.handshake()
    sid = session.sid
    flood = frame06(f"flood:{ctx.p.poll_seconds + 2:g}")
    status, _ = await http_once(ctx.port, ctx.send_request(session, flood), 5)
    begun = time.monotonic()
    end = begun + ctx.p.poll_seconds
    polls = 0
    closed: dict[str, tuple[float, str | None]] = {}
    checked = begun
    while time.monotonic() < end and polls < ctx.p.max_polls:
        try:
            sock = await ctx.connect(rcvbuf=SMALL_RCVBUF)
            await asyncio.wait_for(loop.sock_sendall(sock, ctx.poll_request(session)), 2)
            polls += 1
        except (OSError, TimeoutError):
            out.ended["poll connect failed"] += 1
        if time.monotonic() - checked >= 0.5:
            checked = time.monotonic()
            closed = await ctx.closes([sid], checked)
            if closed:
                break
        await asyncio.sleep(ctx.p.poll_every)
    if not closed:
        closed = await ctx.closes([sid], time.monotonic())
    out.figures.update(polls=polls, flood_post_status=status)
    if closed:
        closed_at, reason = closed[sid]
        out.cut_off(closed_at - begun, reason or "closed")
        out.ended[reason or "closed"] += 1
        out.note = f"session closed after {closed_at - begun:.2f} s ({reason}); {polls} polls left unread"
    else:
        out.ended["still open at the end"] += 1
        out.note = f"session still open after {ctx.p.poll_seconds:g} s; {polls} polls left unread"


# -- 7: inbound flood into a slow on_message ---------------------------------------------------------

INBOUND = frame06("b" * 65536)
#: The settle after 7: a reset client is noticed once the messages already taken are handled (up to
#: ``socket_io_max_pending_messages`` of them, 50 ms each), so give that 100 × 0.05 s and a second.
INBOUND_SETTLE = 6.0


async def inbound_ws(ctx: Ctx) -> None:
    out = ctx.out
    out.attackers = 1
    peer = await ctx.peer("/slow/websocket")
    frame = ws_frame(INBOUND.encode("ascii"))
    begun = time.monotonic()
    deadline = begun + ctx.p.inbound_seconds
    written = 0
    while written < ctx.p.inbound_messages and time.monotonic() < deadline and peer.lost_at is None:
        transport = peer.transport
        if transport is None:
            break
        if transport.get_write_buffer_size() < MIB:
            peer.write(frame)
            written += 1
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(0.005)
    if written >= ctx.p.inbound_messages:  # all handed over: give the kernel until the deadline to take them
        await until(lambda: peer.transport is None or peer.transport.get_write_buffer_size() == 0, deadline)
    buffered = peer.transport.get_write_buffer_size() if peer.transport is not None else 0
    taken = written - -(-buffered // len(frame))
    handled = (await ctx.hooks()).get("Slow", {})
    out.figures.update(
        written=written, taken_by_server=taken, seconds=round(time.monotonic() - begun, 2), handled=handled
    )
    if peer.lost_at is not None:
        out.cut_off(peer.lost_at - begun, peer.how)
        out.ended["closed by the server"] += 1
    else:
        out.ended["open at the end"] += 1
    out.note = (
        f"the server took {taken:,}/{ctx.p.inbound_messages:,} × 64 KiB in {time.monotonic() - begun:.1f} s"
        + (f"; closed after {peer.lost_at - begun:.2f} s ({peer.failure})" if peer.lost_at is not None else "")
        + f"; on_message called {handled.get('messages', 0)}×"
    )


async def inbound_poll(ctx: Ctx) -> None:
    out = ctx.out
    out.attackers = 1
    loop = asyncio.get_running_loop()
    session = await ctx.handshake("slow")
    ctx.spawn(ctx.keep_polling(session))
    request = ctx.send_request(session, INBOUND)
    sock = await ctx.connect()
    answers = bytearray()
    lost: list[float] = []
    begun = time.monotonic()
    deadline = begun + ctx.p.inbound_seconds

    async def read_answers() -> None:
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                lost.append(time.monotonic() - begun)
                return
            answers.extend(chunk)

    reader = ctx.spawn(read_answers())
    posted = 0
    for _ in range(ctx.p.inbound_messages):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or lost:
            break
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, request), remaining)
        except TimeoutError:
            break
        except OSError:
            lost.append(time.monotonic() - begun)
            break
        posted += 1
    await until(lambda: bool(lost) or len(STATUS.findall(answers)) >= posted, deadline)
    reader.cancel()
    statuses = Counter(match.decode() for match in STATUS.findall(answers))
    handled = (await ctx.hooks()).get("Slow", {})
    out.figures.update(posted=posted, answers=dict(statuses), handled=handled)
    if lost:
        out.cut_off(lost[0], "closed")
        out.ended["closed by the server"] += 1
    refused = sum(count for status, count in statuses.items() if status != "200")
    if refused and not lost:
        out.cut_off(time.monotonic() - begun, "refused")
    out.ended.update({f"answered {status}": count for status, count in statuses.items()})
    out.note = (
        f"{posted:,}/{ctx.p.inbound_messages:,} POSTs of 64 KiB written in {ctx.p.inbound_seconds:g} s, answers "
        + (", ".join(f"{count}× {status}" for status, count in statuses.most_common()) or "none")
        + (f"; connection closed after {lost[0]:.2f} s" if lost else "")
        + f"; on_message called {handled.get('messages', 0)}×"
    )


# -- 8: lifecycle ---------------------------------------------------------------------------------


async def lifecycle_early_close(ctx: Ctx) -> None:
    out = ctx.out
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(50)

    async def client() -> None:
        async with gate:
            try:
                sock = await ctx.connect()
                await loop.sock_sendall(sock, upgrade_request(ctx.port, "/lifecycle/websocket"))
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
                    if not chunk:
                        break
                    data += chunk
                out.ended[f"upgrade {_status(data)}, then closed"] += 1
            except (OSError, TimeoutError):
                out.ended["failed"] += 1
                return
            sock.close()  # a plain FIN, right after the 101

    await asyncio.gather(*(client() for _ in range(ctx.p.lifecycle_clients)))
    await asyncio.sleep(0.5)  # on_open awaits 0.2 s
    out.note = ", ".join(f"{count} {how}" for how, count in out.ended.most_common())


async def poll_on_websocket_session(ctx: Ctx) -> None:
    out = ctx.out
    peer = await ctx.peer("/socket.io/websocket")
    assert peer.sid is not None
    try:
        status, body = await http_once(ctx.port, ctx.poll_request(Session("socket.io", peer.sid)), 3)
        got = f"{status} {body[:40].decode('utf-8', 'replace')!r}"
    except (TimeoutError, OSError, ConnectionError) as exc:
        status, got = 0, "held (no answer in 3 s)" if isinstance(exc, TimeoutError) else type(exc).__name__
    peer.send_text("still there?")
    echoed = await until(lambda: "still there?" in peer.texts or peer.lost_at is not None, time.monotonic() + 2)
    echoed = echoed and "still there?" in peer.texts
    out.figures.update(get_status=status, get=got, websocket_echoes=echoed, websocket_failure=peer.failure)
    if not 400 <= status < 500:
        out.problems.append(f"the poll naming a websocket session got {got}")
    if not echoed:
        out.problems.append("the websocket stopped being served" + (f" ({peer.failure})" if peer.failure else ""))
    out.note = f"GET → {got}; websocket {'still echoes' if echoed else 'no longer echoes'}"


def _lifecycle_problems(record: dict[str, Any]) -> list[str]:
    hooks = ((record.get("settled") or {}).get("debug") or {}).get("hooks", {}).get("Lifecycle", {})
    opened, closed = hooks.get("on_open", 0), hooks.get("on_close", 0)
    record["outcome"]["figures"].update(on_open=opened, on_open_done=hooks.get("on_open_done", 0), on_close=closed)
    record["outcome"]["note"] += (
        f"; on_open {opened}, on_open finished {hooks.get('on_open_done', 0)}, on_close {closed}"
    )
    return [] if opened == closed else [f"on_open ran {opened}× but on_close {closed}×"]


# -- the roster ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    id: str
    name: str
    title: str
    explanation: str
    run: Callable[[Ctx], Awaitable[None]]
    #: Application settings other than the library's defaults.
    settings: dict[str, Any] = field(default_factory=dict)
    #: Keyword arguments for ``SocketIOServer`` (Tornado ``HTTPServer`` options), from the sizes in use.
    server_options: Callable[[Params], dict[str, Any]] = lambda p: {}
    #: The attack holds connections: every attacker must be cut off before it ends.
    must_cut: bool = False
    #: Seconds the attack should take at most (its hard limit adds 20 s).
    budget: Callable[[Params], float] = lambda p: 20.0
    #: The settle may last up to this long (seconds) while the server has not returned to its baseline.
    settle_max: float = 0.0
    extra_rules: Callable[[dict[str, Any]], list[str]] | None = None


ATTACKS: dict[str, Attack] = {
    attack.id: attack
    for attack in (
        Attack(
            "1a",
            "aborted-uploads-rst",
            "aborted uploads, RST",
            "POSTs to `/socket.io/xhr-polling/<random id>/send` with `Content-Length: 1000000`, 20 at a time; "
            "each sends 999,999 bytes then resets the connection (SO_LINGER 0).",
            lambda ctx: aborted_uploads(ctx, "rst"),
            budget=lambda p: p.uploads * 0.05,
        ),
        Attack(
            "1b",
            "aborted-uploads-fin",
            "aborted uploads, FIN",
            "The same, ending with a plain FIN (`shutdown(SHUT_WR)`); the client then waits up to 1 s "
            "(quick: 0.5 s) for the server to close.",
            lambda ctx: aborted_uploads(ctx, "fin"),
            budget=lambda p: p.uploads * (0.05 + p.fin_wait / p.upload_concurrency),
        ),
        Attack(
            "2a",
            "slowloris-body",
            "slowloris, POST body",
            "Clients (50 connecting at a time) each open a polling session (and keep a poll held for it), POST "
            "to its send URL with "
            "`Content-Length: 1000` and send the body one byte every 2 s (close time-out lowered to 2 s so that "
            "these sessions have ended by the settle).",
            lambda ctx: slowloris(ctx, "body"),
            settings={"socket_io_close_timeout": 2.0},
            must_cut=True,
            budget=lambda p: p.slow_seconds + 10,
        ),
        Attack(
            "2b",
            "slowloris-head",
            "slowloris, half a head",
            "Clients send half a request head (`GET … HTTP/1.1`, `Host`, `X-Slow: `) and then one byte of it "
            "every 2 s, never ending it (quick: `SocketIOServer(..., idle_connection_timeout=5)`, the head "
            "time-out, so that a cut can be seen within the shorter attack). Each slowloris client keeps at it for "
            "the whole time from its own start.",
            lambda ctx: slowloris(ctx, "head"),
            server_options=lambda p: {} if p.head_timeout is None else {"idle_connection_timeout": p.head_timeout},
            must_cut=True,
            budget=lambda p: p.slow_seconds + 10,
        ),
        Attack(
            "3a",
            "many-frames-ws-echo",
            "131,056 frames, ws echo",
            "One 1 MiB WebSocket message made of 131,056 `~m~1~m~a` frames, sent to the echo handler.",
            many_frames_ws,
            budget=lambda p: p.frames_wait,
        ),
        Attack(
            "3b",
            "many-frames-ws-room",
            "131,056 frames, ws room ×20",
            "The same message sent to a room handler that broadcasts each message to 20 listening websocket "
            "clients (2.6 million deliveries if accepted).",
            many_frames_room,
            budget=lambda p: p.frames_wait,
        ),
        Attack(
            "3c",
            "many-frames-poll",
            "131,056 frames, xhr-polling",
            "The same payload as an xhr-polling POST (`data=` form field) to a session opened by a polling "
            "handshake, then one poll for the echoes (close time-out lowered to 2 s).",
            many_frames_poll,
            settings={"socket_io_close_timeout": 2.0},
            budget=lambda p: p.frames_wait + 5,
        ),
        Attack(
            "4a",
            "non-reader-ws",
            "non-reading ws, flooded",
            "A websocket client with a 4 KiB SO_RCVBUF that never reads, after asking the echo handler to send "
            "it 1 KiB messages as fast as it can (`flood`).",
            lambda ctx: non_reader(ctx, heartbeats=False),
            must_cut=True,
            budget=lambda p: p.flood_seconds,
        ),
        Attack(
            "4b",
            "non-readers-room",
            "20 non-reading ws in a room",
            "20 such clients in a broadcast room while another client sends 1 KiB messages to the room as fast "
            "as it can.",
            non_readers_room,
            must_cut=True,
            budget=lambda p: p.flood_seconds,
        ),
        Attack(
            "5",
            "non-reader-heartbeats",
            "non-reader echoing heartbeats",
            "As 4a, but the client blindly sends `~m~4~m~~h~1`, `~h~2`, … once a second (heartbeat interval "
            "and time-out lowered to 2 s).",
            lambda ctx: non_reader(ctx, heartbeats=True),
            settings={"socket_io_heartbeat_interval": 2.0, "socket_io_heartbeat_timeout": 2.0},
            must_cut=True,
            budget=lambda p: p.heartbeat_seconds,
        ),
        Attack(
            "6",
            "non-reading-poller",
            "non-reading poller, flooded",
            "An xhr-polling session asks for a `flood`, then opens a new poll every 100 ms on a new connection "
            "(4 KiB SO_RCVBUF) and never reads any answer (close time-out lowered to 2 s).",
            non_reading_poller,
            settings={"socket_io_close_timeout": 2.0},
            must_cut=True,
            budget=lambda p: p.poll_seconds + 2,
        ),
        Attack(
            "7a",
            "inbound-flood-ws",
            "inbound flood, ws",
            "2,000 × 64 KiB websocket messages pushed as fast as the socket takes them (giving up after "
            f"{FULL.inbound_seconds:g} s; quick: {QUICK.inbound_seconds:g} s) to a handler whose "
            "`async def on_message` awaits `asyncio.sleep(0.05)`.",
            inbound_ws,
            budget=lambda p: p.inbound_seconds + 2,
            settle_max=INBOUND_SETTLE,
        ),
        Attack(
            "7b",
            "inbound-flood-poll",
            "inbound flood, xhr-polling",
            "The same 2,000 messages as pipelined xhr-polling POSTs on one keep-alive connection (close "
            "time-out lowered to 2 s).",
            inbound_poll,
            settings={"socket_io_close_timeout": 2.0},
            budget=lambda p: p.inbound_seconds + 2,
            settle_max=INBOUND_SETTLE,
        ),
        Attack(
            "8a",
            "lifecycle-early-close",
            "100 ws closed during on_open",
            "100 websocket clients close right after the upgrade while the handler's `async def on_open` awaits 0.2 s.",
            lifecycle_early_close,
            budget=lambda p: 5.0,
            extra_rules=_lifecycle_problems,
        ),
        Attack(
            "8b",
            "poll-on-websocket-session",
            "xhr poll naming a ws session",
            "An xhr-polling GET naming a live websocket session's id; then the websocket is asked for an echo.",
            poll_on_websocket_session,
            budget=lambda p: 5.0,
        ),
    )
}


# -- running one attack ------------------------------------------------------------------------------


@dataclass
class Options:
    params: Params
    quick: bool
    client_cpu: int | None
    server_cpu: int | None
    #: Another copy of tornad_io to attack (the directory holding its ``tornad_io`` package).
    library: Path | None = None


LIBRARY_ENV = "ATTACK_TARGET_LIBRARY"

#: Prints the defaults of ``tornad_io.settings.Settings`` as JSON, in the library the target imports.
_DEFAULTS_SCRIPT = """
import dataclasses, json, os, sys
if os.environ.get("ATTACK_TARGET_LIBRARY"):
    sys.path.insert(0, os.environ["ATTACK_TARGET_LIBRARY"])
import tornad_io
from tornad_io.settings import Settings
values = {f"socket_io_{f.name}": f.default for f in dataclasses.fields(Settings)}
print(json.dumps({"path": os.path.dirname(tornad_io.__file__),
                  "defaults": {k: v for k, v in values.items() if type(v) in (int, float)}}))
"""


def library_defaults() -> tuple[str | None, dict[str, Any]]:
    """Where the target's tornad_io is, and its defaults of the watched settings (those it has)."""
    try:
        found = subprocess.run(
            [sys.executable, "-c", _DEFAULTS_SCRIPT], capture_output=True, text=True, timeout=30, cwd=REPO
        )
        report = json.loads(found.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, {}
    defaults = report["defaults"]
    return report["path"], {name: defaults[name] for name in WATCHED_SETTINGS if name in defaults}


def setting_text(name: str, value: Any) -> str:
    """``socket_io_max_buffer_size`` 1 MiB, ``socket_io_body_timeout`` 5 s, ``socket_io_max_frames`` 1,000."""
    if not isinstance(value, int | float):
        return f"`{name}` {value}"
    if name.endswith("_size"):
        shown = f"{value / MIB:g} MiB" if value >= MIB else f"{value / 1024:g} KiB" if value >= 1024 else f"{value} B"
    elif name.endswith(("_timeout", "_interval")):
        shown = f"{value:g} s"
    else:
        shown = f"{value:,}"
    return f"`{name}` {shown}"


async def snapshot(server: ServerProcess, timeout: float) -> dict[str, Any]:
    pid = server.pid
    status = proc_status(pid)
    fds = fd_count(pid)
    alive = server.alive()
    debug = await debug_fetch(server.port, census=True, timeout=timeout) if alive else None
    return {"t": time.monotonic(), "alive": alive, "rss": status.get("VmRSS"), "fds": fds, "debug": debug}


async def run_bounded(attack: Attack, ctx: Ctx, sampler: Sampler, limit: float) -> str | None:
    """Run the attack; stop it at the RSS cap, when the server dies or at ``limit`` seconds."""
    task = asyncio.ensure_future(attack.run(ctx))
    deadline = time.monotonic() + limit
    stopped: str | None = None
    while not task.done():
        if sampler.tripped is not None:
            stopped = sampler.tripped
        elif time.monotonic() > deadline:
            stopped = f"hard time limit ({limit:.0f} s)"
        if stopped is not None:
            task.cancel()
            break
        await asyncio.wait({task}, timeout=0.05)
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await task
        except Exception as exc:
            ctx.out.problems.append(f"the attack client failed: {type(exc).__name__}: {exc}")
            ctx.out.note = ctx.out.note or f"client error: {exc}"
    return stopped


def stall(
    probe: dict[str, Any] | None, start: float, end: float, baseline_start: float, baseline_end: float
) -> dict[str, Any]:
    """The probe's round trips for messages sent during the attack, and in the warm-up before (baseline)."""
    if probe is None:
        return {"error": "no report from the probe"}
    window_end = max(end - 0.05, start + 0.05)  # the after-attack census (gc) must not count as a stall
    during = [rtt for sent, rtt in probe["samples"] if start <= sent <= window_end]
    baseline = [rtt for sent, rtt in probe["samples"] if baseline_start <= sent < baseline_end]
    unanswered = [probe["stopped_at"] - sent for sent in probe["unanswered"] if start <= sent <= window_end]
    longest = max(during + unanswered, default=None)
    worst = sorted(
        [(sent, rtt) for sent, rtt in probe["samples"] if start <= sent <= window_end]
        + [(sent, probe["stopped_at"] - sent) for sent in probe["unanswered"] if start <= sent <= window_end],
        key=lambda sample: -sample[1],
    )[:3]
    lost_at = probe.get("lost_at")
    return {
        "max_ms": None if longest is None else round(longest * 1000, 1),
        "unanswered": len(unanswered),
        "p50_ms": round(statistics.median(during) * 1000, 1) if during else None,
        "samples": len(during),
        "worst": [[round(sent - start, 3), round(rtt * 1000, 1)] for sent, rtt in worst],
        "baseline_p50_ms": round(statistics.median(baseline) * 1000, 1) if baseline else None,
        "baseline_max_ms": round(max(baseline) * 1000, 1) if baseline else None,
        # Lost after the attack ended means the server was stopped (RSS cap), not cut off by it.
        "probe_lost_after_s": None if lost_at is None or lost_at > end else round(lost_at - start, 2),
        "probe_failure": probe.get("failure"),
    }


async def measure(attack: Attack, options: Options) -> dict[str, Any]:
    params = options.params
    record: dict[str, Any] = {
        "id": attack.id,
        "name": attack.name,
        "title": attack.title,
        "settings": attack.settings,
        "server_options": attack.server_options(params),
        "must_cut": attack.must_cut,
        "error": None,
        "stopped": None,
    }
    os.environ[SETTINGS_ENV] = json.dumps(attack.settings)
    os.environ[SERVER_OPTIONS_ENV] = json.dumps(record["server_options"])
    server = ServerProcess(TARGET, cpu=options.server_cpu)
    probe: Probe | None = None
    ctx: Ctx | None = None
    started = ended = census_at = time.monotonic()
    try:
        server.start()
        probe = Probe(server.port, options.client_cpu)
        probe.start()
        await asyncio.sleep(params.warmup)
        census_at = time.monotonic()
        record["before"] = await snapshot(server, 10)
        sampler = Sampler(server.pid, (record["before"]["rss"] or 0) + RSS_CAP_MIB * MIB)
        record["peak_from_vmhwm"] = reset_peak(server.pid)
        sampler.start()
        started = time.monotonic()
        ctx = Ctx(server.port, params, started)
        try:
            record["stopped"] = await run_bounded(attack, ctx, sampler, attack.budget(params) + 20)
            # The probe needs a window of some length: a short attack is watched for MIN_WINDOW all the same.
            await asyncio.sleep(max(0.0, started + MIN_WINDOW - time.monotonic()))
        finally:
            ended = time.monotonic()
            ctx.cleanup()
        record["duration_s"] = round(ended - started, 2)
        peak = proc_status(server.pid).get("VmHWM") if record["peak_from_vmhwm"] else None
        record["peak_rss"] = max(peak or 0, sampler.peak_rss) or None
        record["peak_fds"] = max(sampler.peak_fds, record["before"]["fds"] or 0)

        def over_cap() -> bool:
            if sampler.tripped is not None and sampler.tripped.startswith("RSS cap") and server.alive():
                server.stop()  # no further reading is worth the memory
                record["killed_at_cap"] = True
                record["stopped"] = record["stopped"] or sampler.tripped + " (after the attack)"
            return bool(record.get("killed_at_cap"))

        over_cap()
        record["after"] = await snapshot(server, 10)
        # The settle lasts params.settle, longer (up to the longest) while the server still counts more
        # connections, queued messages or tasks than before the attack.
        longest = max(params.settle, attack.settle_max)
        if "socket_io_close_timeout" in attack.settings:
            longest = max(longest, attack.settings["socket_io_close_timeout"] + 1.0)
        settle_begun = time.monotonic()
        baseline = (record["before"].get("debug") or {}) if record["before"] else {}
        while server.alive() and not over_cap():
            waited = time.monotonic() - settle_begun
            if waited >= longest:
                break
            if waited >= params.settle:
                light = await debug_fetch(server.port, census=False, timeout=2.0)
                if light is not None and all(
                    light.get(name, 0) <= baseline.get(name, 0) for name in ("connections", "queued_messages", "tasks")
                ):
                    break
            await asyncio.sleep(0.1)
        sampler.stop()
        record["settle_s"] = round(time.monotonic() - settle_begun, 2)
        record["settled"] = await snapshot(server, 15)
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=4)
    finally:
        if ctx is not None:
            ctx.cleanup()
        probe_report = probe.stop() if probe is not None else None
        server.stop()
        log = server.log_tail(10**6)
        server._log.close()
    record["outcome"] = dataclasses.asdict(ctx.out) if ctx is not None else None
    if record["outcome"] is not None:
        record["outcome"]["ended"] = dict(ctx.out.ended) if ctx is not None else {}
    record["stall"] = stall(probe_report, started, ended, census_at - params.warmup + 0.1, census_at)
    lines = log.splitlines()
    record["server_log"] = {
        "lines": len(lines),
        "errors": sum(1 for line in lines if " ERROR " in line or line.startswith("Traceback")),
        "last_errors": [line[:300] for line in lines if " ERROR " in line][-3:],
    }
    if attack.extra_rules is not None and record["outcome"] is not None and record["error"] is None:
        record["outcome"]["problems"] += attack.extra_rules(record)
    record["verdict"], record["reasons"] = judge(record)
    return record


# -- the verdict ---------------------------------------------------------------------------------------


def _objects(snap: dict[str, Any] | None) -> dict[str, int]:
    debug = (snap or {}).get("debug") or {}
    objects = dict(debug.get("objects") or {})
    if debug:
        objects["connections"] = debug.get("connections", 0)
        objects["queued_messages"] = debug.get("queued_messages", 0)
        objects["tasks"] = debug.get("tasks", 0)
    return objects


#: Object counts judged after the settle, with the growth allowed.
JUDGED_OBJECTS = {
    "connections": 0,
    "queued_messages": 0,
    "request_handlers": OBJECT_SLACK,
    "http_requests": OBJECT_SLACK,
    "iostreams": OBJECT_SLACK,
    "tornad_io_connections": 0,
    "socketio_handlers": 0,
}


def left_over(record: dict[str, Any], key: str = "settled") -> dict[str, int]:
    before, after = _objects(record.get("before")), _objects(record.get(key))
    if not before or not after:
        return {}
    return {name: after.get(name, 0) - before.get(name, 0) for name in after if name in before}


def judge(record: dict[str, Any]) -> tuple[str, list[str]]:
    if record["error"] is not None and "before" not in record:
        return "error", [record["error"]]
    reasons: list[str] = []
    if record["error"] is not None:
        reasons.append(f"measurement failed: {record['error']}")
    if record["stopped"]:
        reasons.append(f"stopped early: {record['stopped']}")
    settled = record.get("settled") or {}
    before = record.get("before") or {}
    if record.get("killed_at_cap"):
        pass  # the reason is the cap, already given
    elif not settled.get("alive"):
        reasons.append("the server died")
    elif settled.get("debug") is None:
        reasons.append("the server did not answer /debug after the settle")
    base = before.get("rss") or 0
    if record.get("peak_rss") and base and record["peak_rss"] - base > PEAK_LIMIT_MIB * MIB:
        reasons.append(f"peak RSS +{(record['peak_rss'] - base) / MIB:,.0f} MiB > {PEAK_LIMIT_MIB}")
    if settled.get("rss") and base and settled["rss"] - base > SETTLED_LIMIT_MIB * MIB:
        reasons.append(f"RSS +{(settled['rss'] - base) / MIB:,.0f} MiB after the settle > {SETTLED_LIMIT_MIB}")
    if settled.get("fds") is not None and before.get("fds") is not None and settled["fds"] > before["fds"] + FD_SLACK:
        reasons.append(f"{settled['fds'] - before['fds']} more descriptors after the settle")
    grown = left_over(record)
    for name, allowed in JUDGED_OBJECTS.items():
        if grown.get(name, 0) > allowed:
            reasons.append(f"{name} +{grown[name]} after the settle")
    probe = record.get("stall") or {}
    if probe.get("error") and record["error"] is None:
        reasons.append(f"the healthy client: {probe['error']}")
    if probe.get("probe_lost_after_s") is not None:
        reasons.append(f"the healthy client was cut off ({probe.get('probe_failure')})")
    if probe.get("max_ms") is not None and probe["max_ms"] > STALL_LIMIT_MS:
        reasons.append(f"healthy client stalled {probe['max_ms'] / 1000:,.1f} s > {STALL_LIMIT_MS / 1000:g}")
    outcome = record.get("outcome") or {}
    if record["must_cut"] and outcome:
        missing = outcome.get("attackers", 0) - len(outcome.get("cut", []))
        if missing > 0:
            reasons.append(f"{missing}/{outcome['attackers']} attackers not cut off")
    reasons += outcome.get("problems", [])
    return ("NOT bounded" if reasons else "bounded"), reasons


# -- output -----------------------------------------------------------------------------------------


def _mib(value: float | None) -> str:
    return "?" if value is None else f"{value / MIB:+,.1f}"


def _cells(record: dict[str, Any]) -> list[str]:
    before = record.get("before") or {}
    after = record.get("after") or {}
    settled = record.get("settled") or {}
    base = before.get("rss")
    if base is None:
        rss = ["?"] * 4
    else:
        rss = [
            f"{base / MIB:,.0f}",
            _mib(record["peak_rss"] - base) if record.get("peak_rss") else "?",
            _mib(after["rss"] - base) if after.get("rss") else "dead",
            _mib(settled["rss"] - base) if settled.get("rss") else "dead",
        ]
    fds = " → ".join(
        "?" if value is None else str(value)
        for value in (before.get("fds"), record.get("peak_fds"), after.get("fds"), settled.get("fds"))
    )
    grown = left_over(record)
    if not grown:
        left = "no census"
    else:
        labels = {
            "connections": "conn",
            "queued_messages": "queued",
            "request_handlers": "handlers",
            "http_requests": "requests",
            "iostreams": "streams",
            "tornad_io_connections": "Connection",
            "tasks": "tasks",
        }
        parts = [f"{label} {grown[name]:+d}" for name, label in labels.items() if grown.get(name)]
        buffered = _objects(settled).get("write_buffered_bytes", 0)
        if buffered:
            parts.append(f"{buffered / MIB:,.1f} MiB unsent")
        left = ", ".join(parts) or "none"
    probe = record.get("stall") or {}
    if probe.get("max_ms") is None:
        stall_cell = "?"
    else:
        stall_cell = ("≥ " if probe.get("unanswered") else "") + f"{probe['max_ms']:,.0f} ms"
        if probe.get("probe_lost_after_s") is not None:
            stall_cell += " (cut off)"
    outcome = record.get("outcome") or {}
    attackers, cut = outcome.get("attackers", 0), outcome.get("cut", [])
    if not attackers:
        cut_cell = "—"
    elif not cut:
        cut_cell = "no"
    else:
        times = sorted(seconds for seconds, _ in cut)
        how = Counter(how for _, how in cut).most_common(1)[0][0]
        first, last = f"{times[0]:.1f}", f"{times[-1]:.1f}"
        span = f"{first} s" if first == last else f"{first}–{last} s"
        cut_cell = f"{len(cut)}/{attackers} after {span} ({how})"
    verdict = "**NOT bounded**" if record["verdict"] == "NOT bounded" else record["verdict"]
    return [record["id"], record["title"], *rss, fds, left, stall_cell, cut_cell, verdict]


def server_options_of(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("server_options") or {}


def lowered(report: dict[str, Any]) -> list[str]:
    """The sentence naming the settings lowered for single attacks, if any were."""
    changed = [
        f"{record['id']}: "
        + ", ".join(
            [setting_text(name, value) for name, value in record["settings"].items()]
            + [
                f"{setting_text(name, value)} (a `SocketIOServer` option)"
                for name, value in server_options_of(record).items()
            ]
        )
        for record in report["attacks"]
        if record["settings"] or server_options_of(record)
    ]
    if not changed:
        return []
    return [
        "Lowered for single attacks (to see the attack in time, or so that the attack's own polling session has "
        "ended by the settle): " + "; ".join(changed) + ".",
        "",
    ]


def one_line(text: str) -> str:
    """A multi-line message (a traceback) as its first and last lines."""
    lines = text.strip().splitlines() or [""]
    return lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1].strip()}"


def render(report: dict[str, Any]) -> str:
    meta = report["machine"]
    defaults = report["library_defaults"]
    out = [
        f"{'Quick run' if report['quick'] else 'Run'} of {meta['date']} on {meta['cpu']} ({meta['cores']} cores, "
        f"Linux {meta['kernel']}), Python {meta['python']}, Tornado {meta['tornado']}, tornad_io "
        f"{meta['tornad_io']} ({meta['git']}); {meta['pinning']}; whole run {report['seconds']:.0f} s; load "
        f"average {meta['loadavg_start'][0]:.2f} at the start, {meta['loadavg_end'][0]:.2f} at the end (the machine "
        "is shared: a stall near the limit on a loaded machine is worth a second run).",
        "",
        "Library defaults in force: "
        + (", ".join(setting_text(name, value) for name, value in defaults.items()) or "unknown")
        + ".",
        "",
        *lowered(report),
        "| # | attack | RSS before (MiB) | peak Δ | Δ after | Δ settled | fds before → peak → after → settled "
        "| left after settle | longest stall | cut off | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    out += ["| " + " | ".join(_cells(record)) + " |" for record in report["attacks"]]
    out += ["", "What happened:", ""]
    for record in report["attacks"]:
        note = (record.get("outcome") or {}).get("note") or one_line(record.get("error") or "")
        line = f"- **{record['id']}** {record['title']}: {note}"
        if record["reasons"]:
            line += ". *Why " + record["verdict"] + ":* " + "; ".join(one_line(reason) for reason in record["reasons"])
        out.append(line.replace("|", "\\|"))
    counts = Counter(record["verdict"] for record in report["attacks"])
    out += ["", "Verdicts: " + ", ".join(f"{count} {verdict}" for verdict, count in counts.most_common()) + "."]
    return "\n".join(out)


def explanation() -> str:
    lines = [
        "`python -m bench.attacks` (or `make bench-attacks`: about 2 minutes, up to 5 against a library the "
        "attacks succeed on; `--quick`: about a minute, up to 2, with smaller counts) drives hostile and slow "
        "clients against a tornad_io server (`bench/servers/attack_target.py`, public API only) and measures "
        "what each costs the server. "
        "`--only 3a,4b` runs a subset; `--update-readme` rewrites this section; results go to "
        "`bench/results/attacks.json`; `--from-json FILE --update-readme` judges a saved run again with the "
        "current rules and rewrites this section from it.",
        "",
        "Each attack gets a fresh server process on its own core and, on the client's core, a healthy "
        "websocket client in a process of its own (the *probe*) that sends a message every 20 ms and times its "
        "echo (with TCP_QUICKACK, so that what it times is the server's IOLoop and not Nagle's algorithm "
        "waiting on a delayed ACK). Everything is loopback, bounded in count and time; the script stops by "
        f"itself and kills the server if its RSS grows by {RSS_CAP_MIB:,} MiB. `--library DIR` attacks another "
        "copy of tornad_io instead of this checkout's (e.g. the last release: "
        "`git archive <commit> tornad_io | tar -x -C DIR`), for before/after figures.",
        "",
        "| # | attack |",
        "|---|---|",
    ]
    lines += [f"| {attack.id} | {attack.explanation} |" for attack in ATTACKS.values()]
    sizes = [
        ("uploads", "uploads (1a, 1b)", ""),
        ("slow_clients", "slowloris clients", ""),
        ("slow_seconds", "slowloris for", " s"),
        ("flood_seconds", "non-reader floods (4a, 4b) for", " s"),
        ("heartbeat_seconds", "heartbeat echoer (5) for", " s"),
        ("poll_seconds", "non-reading poller (6) for", " s"),
        ("frames_wait", "3 waits for the echoes for", " s"),
    ]
    lines += [
        "",
        "Counts and durations, full run / `--quick`: "
        + "; ".join(
            f"{label} {getattr(FULL, name):,g}{unit} / {getattr(QUICK, name):,g}{unit}" for name, label, unit in sizes
        )
        + f". An attack also ends once every attacker has been cut off; one shorter than {MIN_WINDOW:g} s is "
        f"watched for {MIN_WINDOW:g} s all the same.",
    ]
    lines += [
        "",
        f"**Columns.** *RSS before*: the server's `VmRSS` after start-up and {FULL.warmup:g} s (quick: "
        f"{QUICK.warmup:g} s) of probe traffic. *peak Δ*: "
        "`VmHWM` (reset through `/proc/<pid>/clear_refs` when the attack starts) minus that. *Δ after*: right "
        f"after the attack (its sockets reset). *Δ settled*: after a further {FULL.settle:g} s (quick: "
        f"{QUICK.settle:g} s), longer while the server still counts more connections, queued messages or tasks "
        "than before the attack, up to the close time-out + 1 s where it was lowered, and up to "
        f"{INBOUND_SETTLE:g} s after 7 (a reset client is noticed only once the messages already taken are "
        "handled). *fds*: entries of "
        "`/proc/<pid>/fd`, the peak "
        "sampled every 200 ms. *left "
        "after settle*: growth, against before the attack, of what the target's `GET /debug` counts after "
        "`gc.collect()`: tornad_io connections (`tornad_io.stats`), queued messages, Tornado request handlers, "
        "HTTP requests, IOStreams, tornad_io `Connection` objects, asyncio tasks, and bytes still waiting in "
        'IOStream write buffers ("none": nothing grew). *longest stall*: the probe\'s longest echo round '
        "trip for messages sent during the attack (≥: some never came back). *cut off*: attackers the "
        "server disconnected or refused, and after how long (from the server's on_close records for Socket.IO "
        "sessions, from the client's socket otherwise).",
        "",
        "**Verdict.** *bounded* when every rule holds, else **NOT bounded** (the reasons are listed; *error* "
        "when the server or the probe could not even start):",
        "",
    ]
    lines += [f"{number}. {rule}" for number, rule in enumerate(RULES, 1)]
    return "\n".join(lines)


def wrap_markdown(text: str, width: int = 110) -> str:
    """Wrap prose and list items as the rest of the README is wrapped; tables stay one row a line."""
    out = []
    for line in text.split("\n"):
        if not line or line.startswith("|") or len(line) <= width:
            out.append(line)
            continue
        marker = re.match(r"(- |\d+\. )", line)
        indent = " " * len(marker.group(1)) if marker else ""
        out += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)


def readme_section(report: dict[str, Any]) -> str:
    return wrap_markdown(explanation() + "\n\n### Latest results\n\n" + render(report))


def update_readme(report: dict[str, Any], readme: Path = README) -> None:
    text = readme.read_text(encoding="utf-8")
    body = readme_section(report)
    start, end = text.find(README_START), text.find(README_END)
    if start >= 0 and end > start:
        text = text[: start + len(README_START)] + "\n\n" + body + "\n\n" + text[end:]
    else:
        section = f"## Attacks: hostile and slow clients\n\n{README_START}\n\n{body}\n\n{README_END}\n\n"
        anchor = text.find("\n## Files")
        text = text + "\n" + section if anchor < 0 else text[: anchor + 1] + section + text[anchor + 1 :]
    readme.write_text(text, encoding="utf-8")


def machine(options: Options) -> dict[str, Any]:
    from bench.run import machine_facts

    return {
        **machine_facts(),
        "git": _git_state() if options.library is None else f"copy in {options.library}",
        "pinning": (
            f"client and probe on core {options.client_cpu}, server on core {options.server_cpu}"
            if options.client_cpu is not None
            else "no pinning"
        ),
        "loadavg_start": loadavg(),
    }


def _git_state() -> str | None:
    """The commit and whether tornad_io/ differs from it, read without touching the index."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "tornad_io"], timeout=10, env=env
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("-dirty" if dirty else "")) or None


# -- command line -------------------------------------------------------------------------------------


def rules() -> dict[str, Any]:
    return {
        "peak_limit_mib": PEAK_LIMIT_MIB,
        "settled_limit_mib": SETTLED_LIMIT_MIB,
        "fd_slack": FD_SLACK,
        "object_slack": OBJECT_SLACK,
        "stall_limit_ms": STALL_LIMIT_MS,
        "frames_handled_limit": FRAMES_HANDLED_LIMIT,
        "rss_cap_mib": RSS_CAP_MIB,
        "text": RULES,
    }


def rejudge(report: dict[str, Any]) -> dict[str, Any]:
    """A saved report with its verdicts given again by the rules as they are now."""
    for record in report["attacks"]:
        record["verdict"], record["reasons"] = judge(record)
    report["rules"] = rules()
    return report


async def execute(attacks: list[Attack], options: Options, progress: Callable[[str], None]) -> dict[str, Any]:
    path, defaults = library_defaults()
    report: dict[str, Any] = {
        "quick": options.quick,
        "params": dataclasses.asdict(options.params),
        "machine": machine(options),
        "library_path": path,
        "library_defaults": defaults,
        "rules": rules(),
        "attacks": [],
    }
    progress(f"tornad_io under attack: {path}")
    progress("its defaults: " + ", ".join(f"{name}={value}" for name, value in defaults.items()))
    begun = time.monotonic()
    for attack in attacks:
        chosen = {**attack.settings, **attack.server_options(options.params)}
        settings = ", ".join(f"{name}={value}" for name, value in chosen.items()) or "defaults"
        progress(f"[{attack.id}] {attack.title} ({settings}) ...")
        record = await measure(attack, options)
        report["attacks"].append(record)
        cells = _cells(record)
        progress(
            f"     {record['verdict']}: peak {cells[3]} MiB, settled {cells[5]} MiB, fds {cells[6]}, "
            f"left {cells[7]}, stall {cells[8]}, cut off {cells[9]} ({record.get('duration_s', '?')} s)"
        )
        for reason in record["reasons"]:
            progress(f"       - {one_line(reason)}")
    report["seconds"] = round(time.monotonic() - begun, 1)
    report["machine"]["loadavg_end"] = loadavg()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attacks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts and shorter attacks (about a minute)")
    parser.add_argument("--only", help=f"comma-separated attack ids: {', '.join(ATTACKS)}")
    parser.add_argument("--output", type=Path, help=f"where to write the JSON (default {RESULTS}; none for --only)")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the Attacks section of bench/README.md")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the client and the server to separate cores")
    parser.add_argument(
        "--library",
        type=Path,
        help="attack another copy of tornad_io: the directory holding its tornad_io/ package "
        "(e.g. from `git archive HEAD tornad_io | tar -x -C DIR`)",
    )
    parser.add_argument("--settle", type=float, help="seconds to wait after each attack before the last reading")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="run nothing: judge a saved results file again with the current rules, print it "
        "(and rewrite the README section with --update-readme)",
    )
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe is not None:
        asyncio.run(probe_main(args.probe, limit=600.0))
        return 0
    if args.from_json is not None:
        report = rejudge(json.loads(args.from_json.read_text(encoding="utf-8")))
        print(render(report))
        if args.output is not None:
            args.output.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n")
        if args.update_readme:
            update_readme(report)
            print(f"Attacks section written to {README}")
        return 0
    attacks = list(ATTACKS.values())
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in ATTACKS]
        if unknown:
            raise SystemExit(f"unknown attacks: {', '.join(unknown)} (known: {', '.join(ATTACKS)})")
        attacks = [ATTACKS[name] for name in wanted]
    usable = sorted(os.sched_getaffinity(0))
    client_cpu = server_cpu = None
    if not args.no_pin and len(usable) >= 2:
        client_cpu, server_cpu = usable[:2]
        os.sched_setaffinity(0, {client_cpu})
    params = QUICK if args.quick else FULL
    if args.settle is not None:
        params = dataclasses.replace(params, settle=args.settle)
    library = None
    if args.library is not None:
        library = args.library.resolve()
        if not (library / "tornad_io" / "__init__.py").is_file():
            raise SystemExit(f"{library} holds no tornad_io/__init__.py")
        os.environ[LIBRARY_ENV] = str(library)
    options = Options(params, args.quick, client_cpu, server_cpu, library)
    report = asyncio.run(execute(attacks, options, lambda line: print(line, flush=True)))
    print("\n" + render(report))
    output = args.output or (None if args.only else RESULTS)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        print(f"\nresults written to {output}")
    if args.update_readme:
        update_readme(report)
        print(f"Attacks section written to {README}")
    # NOT bounded is a finding, not a failure; an attack that could not be measured is.
    return 1 if any(record["verdict"] == "error" for record in report["attacks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
