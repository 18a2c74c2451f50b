"""The scenarios and the load that drives them: closed-loop echo, broadcast, idle connections, connects.

Every run has the same shape: connect and handshake (not timed), build
every request and frame the run will write and every answer it expects, let
the load run through a warm-up that is thrown away, count what completes in
the measurement window while reading the server's CPU time at both edges,
then let every connection finish its message in flight and check the count:
each message sent was answered, byte for byte, in order.  Anything else (a
missing, extra, reordered or corrupted message, a refused connection, a
timeout) fails the run with :class:`BenchFailure`, however fast it was.

Messages carry their connection number and sequence number modulo
:data:`POOL`, so a reply that belongs to another connection or another
moment does not compare equal.

Two scenarios have a shape of their own: ``idle-cpu`` (connections that
only answer heartbeats, the server's CPU read over a window of several
heartbeat intervals; every connection must answer at least 2 in it and
echo at the end) and ``connect`` (connections opened as fast as the client
can, the kernel's listen-queue counters read around it; every connection
must complete its handshake).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from bench.contestants import Contestant, PollAdapter, PollSession, WSAdapter, message_text
from bench.procstat import cpu_seconds, rss_bytes, tcp_counters
from bench.wire import HTTPClient, WebSocketClient, WireError, http_request, open_http, open_websocket

__all__ = [
    "POOL",
    "SCENARIOS",
    "BenchFailure",
    "Meter",
    "Scenario",
    "Timing",
    "check_counts",
    "echo_loops",
    "enters",
    "run_scenario",
]

#: Distinct pre-encoded messages per connection; message n is the (n mod POOL)th.
POOL = 256


class BenchFailure(Exception):
    """A run whose messages do not all add up, or that could not run at all."""


#: tornad_io's default ``socket_io_heartbeat_interval`` (socket.io 0.6.18's ``heartbeatInterval`` too), seconds.
DEFAULT_HEARTBEAT_INTERVAL = 10.0
#: idle-c10000-cpu: the server CPU window and the settle before it, in heartbeat intervals.
HEARTBEAT_WINDOW = 2.7
HEARTBEAT_SETTLE = 0.3
#: idle-c10000-cpu in the smoke mode: the heartbeat interval the server is given instead of its default.
SMOKE_HEARTBEAT_INTERVAL = 0.4


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "echo", "broadcast", "idle", "idle-cpu" or "connect"
    connections: int
    #: The size used by the smoke mode.
    smoke_connections: int
    charset: str = "ascii"
    transports: tuple[str, ...] = ("ws", "poll")
    #: Only these contestants enter (``None``: every one of the transports).
    contestants: tuple[str, ...] | None = None
    #: Broadcast: messages the sender may have in flight (``None``: ``Timing.window``).
    window: int | None = None
    #: Connections being opened at once (broadcast receivers, idle-cpu, connect), full run and smoke mode.
    concurrency: int = 100
    smoke_concurrency: int = 10
    #: What the scenario asks of the server's command line (``bench/servers/_common.py``).
    server_args: tuple[str, ...] = ()

    @property
    def metric(self) -> str:
        return {
            "echo": "msg/s",
            "broadcast": "deliveries/s",
            "idle": "bytes RSS/connection",
            "idle-cpu": "% of a core",
            "connect": "SYN drops",
        }[self.kind]

    def size(self, smoke: bool) -> int:
        return self.smoke_connections if smoke else self.connections

    def opening(self, smoke: bool) -> int:
        return self.smoke_concurrency if smoke else self.concurrency

    def heartbeat_interval(self, smoke: bool) -> float:
        """idle-cpu: the interval the server sends heartbeats at (its default in a full run)."""
        return SMOKE_HEARTBEAT_INTERVAL if smoke else DEFAULT_HEARTBEAT_INTERVAL

    def arguments(self, smoke: bool) -> tuple[str, ...]:
        """The server's extra command-line options for this scenario."""
        if self.kind == "idle-cpu":
            return ("--heartbeat-interval", f"{SMOKE_HEARTBEAT_INTERVAL:g}" if smoke else "default")
        return self.server_args

    def describe(self) -> str:
        if self.kind == "echo":
            text = "32-byte ASCII" if self.charset == "ascii" else "CJK + emoji"
            return f"echo, {self.connections} connection{'s' if self.connections > 1 else ''}, {text}"
        if self.kind == "broadcast":
            return f"broadcast, 1 sender to {self.connections:,} receivers"
        if self.kind == "idle-cpu":
            return f"{self.connections:,} idle websockets answering default heartbeats"
        if self.kind == "connect":
            return f"{self.connections:,} websockets connecting, {self.concurrency:,} at a time"
        return f"{self.connections:,} idle websocket connections"


def enters(contestant: Contestant, scenario: Scenario) -> bool:
    """Whether ``contestant`` runs in ``scenario``."""
    return (
        contestant.transport in scenario.transports
        and (scenario.contestants is None or contestant.name in scenario.contestants)
        and (contestant.kinds is None or scenario.kind in contestant.kinds)
    )


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("echo-c1-ascii", "echo", 1, 1),
        Scenario("echo-c10-ascii", "echo", 10, 2),
        Scenario("echo-c100-ascii", "echo", 100, 3),
        Scenario("echo-c1-cjk", "echo", 1, 1, "cjk"),
        Scenario("echo-c10-cjk", "echo", 10, 2, "cjk"),
        Scenario("echo-c100-cjk", "echo", 100, 3, "cjk"),
        Scenario("broadcast-r100", "broadcast", 100, 3, transports=("ws",)),
        Scenario("broadcast-r5000", "broadcast", 5000, 20, transports=("ws",), window=4, concurrency=200),
        Scenario("idle-c1000", "idle", 1000, 20, transports=("ws",)),
        Scenario(
            "idle-c10000-cpu",
            "idle-cpu",
            10000,
            30,
            transports=("ws",),
            contestants=("tornad_io-ws", "node06-ws"),
            concurrency=200,
        ),
        Scenario(
            "connect-c10000",
            "connect",
            10000,
            30,
            transports=("ws",),
            contestants=("tornad_io-ws", "tornado-ws"),
            concurrency=1000,
            server_args=("--listen", "default"),
        ),
    )
}


@dataclass(frozen=True)
class Timing:
    warmup: float = 0.5
    duration: float = 2.0
    #: Every connection completes at least this many messages, however short the window.
    min_messages: int = 1
    #: Seconds allowed for connecting, and for the last messages after the window.
    timeout: float = 30.0
    #: Broadcast: messages the sender may have in flight (not yet received by every receiver).
    window: int = 8
    #: Idle: connections being opened at once.
    idle_concurrency: int = 50
    #: Idle: pause before reading the server's RSS.
    settle: float = 0.5


# -- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    wall: float
    count: int
    server_cpu: float
    client_cpu: float


class Meter:
    """Counts completed messages, and reads clocks and counters at the window's edges."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.count = 0
        self.stopping = False
        self.crashed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        #: The measurement window's edges, ``perf_counter`` readings (set by :meth:`measure`).
        self.window = (0.0, 0.0)
        # Holding (the paired A/B measurement): each echo loop parks after its message in flight.
        self.holding = False
        self.loops = 0
        self.parked: list[WebSocketEcho | PollingEcho] = []
        self.all_parked: asyncio.Future[None] | None = None

    def park(self, loop: WebSocketEcho | PollingEcho) -> None:
        """An echo loop stops after its answered message until :meth:`release`."""
        self.parked.append(loop)
        if len(self.parked) == self.loops and self.all_parked is not None and not self.all_parked.done():
            self.all_parked.set_result(None)

    def hold(self) -> asyncio.Future[None]:
        """Ask every loop to park after its message in flight; the future is done once all have."""
        self.holding = True
        self.all_parked = asyncio.get_running_loop().create_future()
        if len(self.parked) == self.loops:
            self.all_parked.set_result(None)
        return self.all_parked

    def release(self) -> None:
        """Every parked loop sends its next message."""
        self.holding = False
        parked, self.parked = self.parked, []
        for loop in parked:
            loop.resume()

    def fail(self, reason: str) -> None:
        if not self.crashed.done():
            self.crashed.set_result(reason)

    def snapshot(self) -> Snapshot:
        return Snapshot(time.perf_counter(), self.count, cpu_seconds(self.server_pid), time.process_time())

    async def pause(self, seconds: float) -> None:
        """Sleep, unless a connection fails first."""
        await asyncio.wait([self.crashed], timeout=seconds)
        if self.crashed.done():
            raise BenchFailure(self.crashed.result())

    async def wait_all(self, futures: Iterable[Awaitable[Any]], timeout: float, what: str) -> None:
        everything = asyncio.ensure_future(asyncio.gather(*futures))
        await asyncio.wait([everything, self.crashed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.crashed.done():
            everything.cancel()
            raise BenchFailure(self.crashed.result())
        if not everything.done():
            everything.cancel()
            raise BenchFailure(f"timed out after {timeout:g} s waiting for {what}")
        everything.result()  # raises what any of them raised

    async def measure(self, timing: Timing) -> dict[str, float]:
        """Warm up, measure one window, then ask every connection to stop after its message in flight."""
        await self.pause(timing.warmup)
        start = self.snapshot()
        await self.pause(timing.duration)
        end = self.snapshot()
        self.window = (start.wall, end.wall)
        self.stopping = True
        elapsed = end.wall - start.wall
        completed = end.count - start.count
        server_cpu = end.server_cpu - start.server_cpu
        return {
            "window_s": elapsed,
            "window_messages": completed,
            "rate": completed / elapsed,
            "server_cpu_us_per_message": server_cpu / completed * 1e6 if completed else float("nan"),
            "server_cpu_util": server_cpu / elapsed,
            "client_cpu_util": (end.client_cpu - start.client_cpu) / elapsed,
        }


def _show(data: bytes) -> str:
    return repr(data if len(data) <= 90 else data[:90] + b"...")


# -- closed-loop echo -----------------------------------------------------------------------


class WebSocketEcho:
    """One connection: send a message, wait for its echo, send the next."""

    def __init__(
        self, meter: Meter, ws: WebSocketClient, frames: list[bytes], expected: list[bytes], minimum: int, label: str
    ) -> None:
        self.meter = meter
        self.ws = ws
        self.frames = frames
        self.expected = expected
        self.minimum = minimum
        self.label = label
        self.sent = 0
        self.answered = 0
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self.ws.on_message = self.on_message
        self.ws.on_failure = self.on_failure
        self.sent = 1
        self.ws.write(self.frames[0])

    def on_failure(self, error: WireError) -> None:
        self.meter.fail(f"{self.label}: {error} after {self.answered} answered messages")

    def on_message(self, payload: bytes) -> None:
        answered = self.answered
        expected = self.expected[answered % POOL]
        if payload != expected or self.finished.done():
            what = "an unsolicited message" if self.finished.done() else f"message {answered}"
            self.meter.fail(f"{self.label}: {what}: expected {_show(expected)}, got {_show(payload)}")
            return
        answered += 1
        self.answered = answered
        self.meter.count += 1
        if self.meter.stopping and answered >= self.minimum:
            self.finished.set_result(None)
            return
        if self.meter.holding:
            self.meter.park(self)
            return
        self.sent += 1
        self.ws.write(self.frames[answered % POOL])

    def resume(self) -> None:
        self.sent += 1
        self.ws.write(self.frames[self.answered % POOL])


class PollingEcho:
    """One polling session: POST a message, get its echo from the held poll, poll again, repeat."""

    def __init__(
        self,
        meter: Meter,
        poll: HTTPClient,
        send: HTTPClient,
        session: PollSession,
        requests: list[bytes],
        expected: list[bytes],
        minimum: int,
        label: str,
    ) -> None:
        self.meter = meter
        self.poll = poll
        self.send = send
        self.poll_request = session.poll
        self.requests = requests
        self.expected = expected
        self.minimum = minimum
        self.label = label
        self.sent = 0
        self.answered = 0
        self.echoed = False
        self.acked = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self.poll.on_failure = self.send.on_failure = self.on_failure
        self.poll.request(self.poll_request, self.on_poll)
        self.send_next()

    def on_failure(self, error: WireError) -> None:
        self.meter.fail(f"{self.label}: {error} after {self.answered} answered messages")

    def send_next(self) -> None:
        self.echoed = self.acked = False
        self.sent += 1
        self.send.request(self.requests[self.answered % POOL], self.on_ack)

    def on_ack(self, status: int, body: bytes) -> None:
        if status != 200:
            self.meter.fail(f"{self.label}: POST of message {self.answered} answered {status} {_show(body)}")
            return
        self.acked = True
        if self.echoed:
            self.advance()

    def on_poll(self, status: int, body: bytes) -> None:
        if status != 200:
            self.meter.fail(f"{self.label}: a poll answered {status} {_show(body)}")
            return
        if not body:  # answered empty (poll timeout): poll again
            self.poll.request(self.poll_request, self.on_poll)
            return
        expected = self.expected[self.answered % POOL]
        if body != expected or self.echoed or self.finished.done():
            what = "an unsolicited message" if self.echoed or self.finished.done() else f"message {self.answered}"
            self.meter.fail(f"{self.label}: {what}: expected {_show(expected)}, got {_show(body)}")
            return
        self.echoed = True
        self.poll.request(self.poll_request, self.on_poll)  # the next poll at once, as the 0.6 client does
        if self.acked:
            self.advance()

    def advance(self) -> None:
        self.answered += 1
        self.meter.count += 1
        if self.meter.stopping and self.answered >= self.minimum:
            self.finished.set_result(None)
            return
        if self.meter.holding:
            self.meter.park(self)
            return
        self.send_next()

    def resume(self) -> None:
        self.send_next()


# -- broadcast ------------------------------------------------------------------------------


class Broadcast:
    """One sender, many receivers; the sender keeps ``window`` messages in flight.

    A message is complete when every receiver has it; receivers check that
    they get every message, in order.
    """

    def __init__(
        self,
        meter: Meter,
        sender: WebSocketClient,
        receivers: list[WebSocketClient],
        frames: list[bytes],
        expected: list[bytes],
        window: int,
        minimum: int,
        concatenated: bool = False,
    ) -> None:
        self.meter = meter
        self.sender = sender
        #: Whether one websocket message may carry several messages, one after the other (Socket.IO 0.6).
        self.concatenated = concatenated
        self.frames = frames
        self.expected = expected
        self.window = window
        self.minimum = minimum
        self.receivers = len(receivers)
        self.received = [0] * len(receivers)
        self.arrivals = [0] * window  # receivers that have message n, in slot n % window
        self.sent = 0
        self.completed = 0
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sender.on_message = self.sender_got
        sender.on_failure = self.on_failure
        for index, receiver in enumerate(receivers):
            receiver.on_message = self._receiver(index)
            receiver.on_failure = self.on_failure

    def on_failure(self, error: WireError) -> None:
        self.meter.fail(f"broadcast: {error} after {self.completed} complete messages")

    def sender_got(self, payload: bytes) -> None:
        self.meter.fail(f"broadcast: the sender received {_show(payload)} (it is excluded)")

    def _receiver(self, index: int) -> Any:
        def on_message(payload: bytes) -> None:
            number = self.received[index]
            expected = self.expected[number % POOL]
            if payload == expected and number < self.sent:
                self._arrived(index, number)
                return
            # Socket.IO 0.6 may put several frames in one websocket message: each must be the next expected.
            position, size = 0, len(payload)
            while self.concatenated and position < size and number < self.sent:
                expected = self.expected[number % POOL]
                if not payload.startswith(expected, position):
                    break
                position += len(expected)
                self._arrived(index, number)
                number += 1
            if position != size or not position:
                self.meter.fail(
                    f"broadcast: receiver {index}, message {number}: expected {_show(self.expected[number % POOL])}, "
                    f"got {_show(payload[position:])}"
                )

        return on_message

    def _arrived(self, index: int, number: int) -> None:
        """Receiver ``index`` has message ``number``, the next it expected."""
        self.received[index] = number + 1
        self.meter.count += 1
        slot = number % self.window
        arrivals = self.arrivals[slot] + 1
        if arrivals < self.receivers:
            self.arrivals[slot] = arrivals
            return
        self.arrivals[slot] = 0
        self.completed += 1
        self.pump()

    def pump(self) -> None:
        """Send while the window allows; finish once stopping and everything sent has arrived."""
        stopping = self.meter.stopping and self.sent >= self.minimum
        if stopping:
            if self.completed == self.sent and not self.finished.done():
                self.finished.set_result(None)
            return
        while self.sent - self.completed < self.window:
            self.sender.write(self.frames[self.sent % POOL])
            self.sent += 1


# -- running one scenario -------------------------------------------------------------------


async def _open_ws(adapter: WSAdapter, port: int, channel: str, opened: list[Any]) -> WebSocketClient:
    ws = await open_websocket(port, adapter.path(channel), draft=adapter.draft)
    opened.append(ws)
    await adapter.start(ws, channel)
    return ws


async def _open_poll(adapter: PollAdapter, port: int, opened: list[Any]) -> tuple[HTTPClient, HTTPClient, PollSession]:
    poll = await open_http(port)
    opened.append(poll)
    send = await open_http(port)
    opened.append(send)
    session = await adapter.open(port, poll, send)
    return poll, send, session


async def _gather(coroutines: Iterable[Awaitable[Any]], timeout: float, what: str) -> list[Any]:
    try:
        return await asyncio.wait_for(asyncio.gather(*coroutines), timeout)
    except TimeoutError:
        raise BenchFailure(f"timed out after {timeout:g} s {what}") from None
    except (WireError, OSError) as exc:
        raise BenchFailure(f"{what}: {exc}") from exc


async def _echo(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    meter = Meter(pid)
    loops = await echo_loops(contestant, scenario, port, meter, timing, smoke, opened)
    for loop in loops:
        loop.start()
    result = await meter.measure(timing)
    await meter.wait_all((loop.finished for loop in loops), timing.timeout, "the last echoes")
    check_counts(meter, loops)
    return {**result, "connections": len(loops), "messages_checked": meter.count}


def check_counts(meter: Meter, loops: list[WebSocketEcho] | list[PollingEcho]) -> None:
    """Every message sent was answered, with its own echo, and counted."""
    sent = sum(loop.sent for loop in loops)
    answered = sum(loop.answered for loop in loops)
    if sent != answered or answered != meter.count:
        raise BenchFailure(f"count check: {sent} sent, {answered} answered, {meter.count} counted")


async def echo_loops(
    contestant: Contestant, scenario: Scenario, port: int, meter: Meter, timing: Timing, smoke: bool, opened: list[Any]
) -> list[WebSocketEcho] | list[PollingEcho]:
    """The scenario's connections to ``port``, opened, each with its echo loop (not started)."""
    count = scenario.size(smoke)
    meter.loops = count
    texts = [[message_text(scenario.charset, c, s) for s in range(POOL)] for c in range(count)]
    if contestant.transport == "ws":
        adapter = contestant.ws
        sockets = await _gather(
            (_open_ws(adapter, port, "echo", opened) for _ in range(count)),
            timing.timeout,
            f"opening {count} websockets",
        )
        return [
            WebSocketEcho(
                meter,
                ws,
                [ws.frame(adapter.outgoing(text, "echo")) for text in texts[c]],
                [adapter.incoming(text, "echo") for text in texts[c]],
                timing.min_messages,
                f"{contestant.name} connection {c}",
            )
            for c, ws in enumerate(sockets)
        ]
    polling = contestant.poll
    sessions = await _gather(
        (_open_poll(polling, port, opened) for _ in range(count)),
        timing.timeout,
        f"opening {count} polling sessions",
    )
    return [
        PollingEcho(
            meter,
            poll,
            send,
            session,
            [session.send(polling.outgoing(text)) for text in texts[c]],
            [polling.incoming(text) for text in texts[c]],
            timing.min_messages,
            f"{contestant.name} session {c}",
        )
        for c, (poll, send, session) in enumerate(sessions)
    ]


async def _open_many(
    adapter: WSAdapter, port: int, channel: str, count: int, at_once: int, timeout: float, opened: list[Any]
) -> list[WebSocketClient]:
    """``count`` websockets through their handshake, ``at_once`` being opened at a time."""
    gate = asyncio.Semaphore(at_once)

    async def connect() -> WebSocketClient:
        async with gate:
            return await _open_ws(adapter, port, channel, opened)

    return await _gather((connect() for _ in range(count)), timeout, f"opening {count:,} websockets")


async def _server_stats(port: int, since: float, until: float, timeout: float) -> dict[str, Any]:
    """``GET /bench-stats``: the server's fan-out calls that started between ``since`` and ``until``.

    Both are this process's ``perf_counter`` readings (``CLOCK_MONOTONIC``,
    the server's clock too); read once the load has stopped.
    """
    http = await open_http(port)
    try:
        request = http_request("GET", f"/bench-stats?since={since!r}&until={until!r}", port)
        status, body = await asyncio.wait_for(http.fetch(request), timeout)
    except (TimeoutError, WireError, OSError) as exc:
        raise BenchFailure(f"GET /bench-stats: {exc or 'no answer'}") from exc
    finally:
        http.close()
    if status != 200:
        raise BenchFailure(f"GET /bench-stats answered {status} {_show(body)}")
    return dict(json.loads(body))


async def _broadcast(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    count = scenario.size(smoke)
    meter = Meter(pid)
    adapter = contestant.ws
    # 5,000 handshakes take python-socketio most of the plain time-out on a quiet machine, and more than it on
    # a busy one: the receivers get 4 time-outs to open, as the 10,000 connections of idle-cpu do.
    opening = timing.timeout * 4
    receivers = await _open_many(adapter, port, "fanout", count, scenario.opening(smoke), opening, opened)
    sender = await _gather([_open_ws(adapter, port, "fanout", opened)], timing.timeout, "opening the sender")
    texts = [message_text("ascii", 0, s) for s in range(POOL)]
    fanout = Broadcast(
        meter,
        sender[0],
        receivers,
        [sender[0].frame(adapter.outgoing(text, "fanout")) for text in texts],
        [adapter.incoming(text, "fanout") for text in texts],
        scenario.window or timing.window,
        timing.min_messages,
        adapter.concatenates,
    )
    fanout.pump()
    result = await meter.measure(timing)
    fanout.pump()
    await meter.wait_all([fanout.finished], timing.timeout, "the last deliveries")
    delivered = sum(fanout.received)
    if any(got != fanout.sent for got in fanout.received) or delivered != meter.count:
        short = sum(1 for got in fanout.received if got != fanout.sent)
        raise BenchFailure(f"count check: {fanout.sent} sent, {short} receivers missing some")
    record = {**result, "connections": count, "messages_sent": fanout.sent, "messages_checked": delivered}
    if contestant.stats:  # the fan-out calls the server made in the window, timed by the server
        stats = await _server_stats(port, *meter.window, timing.timeout)
        calls, longest_ms = stats["broadcast_calls"], stats["broadcast_max_s"] * 1e3
        if not calls:
            raise BenchFailure("the server timed no fan-out call inside the window (GET /bench-stats)")
        longest_cpu_ms = stats.get("broadcast_max_cpu_s", stats["broadcast_max_s"]) * 1e3
        record.update(
            broadcast_calls=calls,
            broadcast_max_ms=longest_ms,
            broadcast_max_ms_per_1000=longest_ms * 1000 / count,
            broadcast_max_cpu_ms=longest_cpu_ms,
            broadcast_max_cpu_ms_per_1000=longest_cpu_ms * 1000 / count,
            broadcast_mean_ms=stats["broadcast_total_s"] * 1e3 / calls,
        )
    return record


async def _echo_once(adapter: WSAdapter, ws: WebSocketClient, number: int) -> None:
    text = message_text("ascii", number, 0)
    ws.write(ws.frame(adapter.outgoing(text, "echo")))
    reply = await ws.recv()
    if reply != adapter.incoming(text, "echo"):
        raise WireError(f"connection {number}: expected {_show(adapter.incoming(text, 'echo'))}, got {_show(reply)}")


async def _warm_up(adapter: WSAdapter, port: int, timing: Timing) -> None:
    """10 connections opened, echoed on and closed: code paths loaded and caches filled before a reading."""
    warm: list[Any] = []
    warm_sockets = await _gather(
        (_open_ws(adapter, port, "echo", warm) for _ in range(10)), timing.timeout, "opening the warm-up connections"
    )
    await _gather((_echo_once(adapter, ws, n) for n, ws in enumerate(warm_sockets)), timing.timeout, "warm-up echo")
    for ws in warm:
        ws.close()


async def _idle(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    count = scenario.size(smoke)
    adapter = contestant.ws
    # Warm up: the first connections load code and fill caches that are no one connection's cost.
    await _warm_up(adapter, port, timing)
    await asyncio.sleep(timing.settle)
    rss_before = rss_bytes(pid)
    cpu_before = cpu_seconds(pid)
    gate = asyncio.Semaphore(timing.idle_concurrency)

    async def connect() -> WebSocketClient:
        async with gate:
            return await _open_ws(adapter, port, "echo", opened)

    started = time.perf_counter()
    sockets = await _gather((connect() for _ in range(count)), timing.timeout, f"opening {count} websockets")
    connect_s = time.perf_counter() - started
    connect_cpu = cpu_seconds(pid) - cpu_before
    await asyncio.sleep(timing.settle)
    rss_after = rss_bytes(pid)
    # The count check: every connection is still there and answers.
    await _gather(
        (_echo_once(adapter, ws, n) for n, ws in enumerate(sockets)),
        timing.timeout,
        f"one echo on each of {count} idle connections",
    )
    return {
        "connections": count,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_per_connection": (rss_after - rss_before) / count,
        "connect_rate": count / connect_s,
        "server_cpu_us_per_connect": connect_cpu / count * 1e6,
        "messages_checked": count,
    }


# -- idle websockets answering heartbeats ---------------------------------------------------

#: A 0.6 heartbeat frame: ``~m~<length>~m~~h~<token>``.
HEARTBEAT = re.compile(rb"~m~[0-9]+~m~~h~.*", re.DOTALL)


def split06(payload: bytes) -> list[bytes] | None:
    """The Socket.IO 0.6 frames ``~m~<length>~m~<data>`` one websocket message carries (``None``: malformed).

    The length counts UTF-16 code units, as the 0.6 client counts them.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    frames = []
    position = 0
    while position < len(text):
        if not text.startswith("~m~", position):
            return None
        marker = text.find("~m~", position + 3)
        if marker < 0 or not text[position + 3 : marker].isdigit():
            return None
        units = int(text[position + 3 : marker])
        end = marker + 3
        while units > 0 and end < len(text):
            units -= 2 if ord(text[end]) > 0xFFFF else 1
            end += 1
        if units != 0:
            return None
        frames.append(text[position:end].encode("utf-8"))
        position = end
    return frames


class HeartbeatAnswerer:
    """One idle connection that answers every heartbeat as the 0.6 client does, and can be asked for one echo.

    On ``~m~N~m~~h~TOKEN`` it sends back the frame ``~m~N~m~~h~TOKEN`` at
    once.  Anything else fails the run, except the one echo it waits for.
    A websocket message may carry several 0.6 frames; each is taken in turn.
    """

    def __init__(self, meter: Meter, ws: WebSocketClient, label: str) -> None:
        self.meter = meter
        self.ws = ws
        self.label = label
        self.beats = 0
        self.last_beat = 0.0
        #: Sum and count of the gaps between two heartbeats (the interval the server keeps, as seen here).
        self.gaps = 0.0
        self.gap_count = 0
        self._echo: tuple[bytes, asyncio.Future[None]] | None = None
        ws.on_failure = self.on_failure
        ws.listen(self.on_message)

    def on_failure(self, error: WireError) -> None:
        self.meter.fail(f"{self.label}: {error} after {self.beats} heartbeats")

    def on_message(self, payload: bytes) -> None:
        frames = split06(payload)
        if frames is None:
            self.meter.fail(f"{self.label}: not Socket.IO 0.6 frames: {_show(payload)}")
            return
        for frame in frames:
            if HEARTBEAT.fullmatch(frame) is not None:
                self.ws.write(self.ws.frame(frame))  # the 0.6 client sends the very frame back
                now = time.perf_counter()
                if self.beats:
                    self.gaps += now - self.last_beat
                    self.gap_count += 1
                self.beats += 1
                self.last_beat = now
            elif self._echo is not None and frame == self._echo[0] and not self._echo[1].done():
                self._echo[1].set_result(None)
            else:
                self.meter.fail(f"{self.label}: expected only heartbeats, got {_show(frame)}")
                return

    def echo(self, frame: bytes, expected: bytes) -> asyncio.Future[None]:
        """Send one message; the future is done when its echo comes back."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._echo = (expected, done)
        self.ws.write(frame)
        return done


async def _idle_cpu(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    """Open ``count`` websockets (in batches), answer every heartbeat, read the server's CPU over a window.

    The window lasts HEARTBEAT_WINDOW heartbeat intervals after a settle of
    HEARTBEAT_SETTLE intervals; every connection must answer at least 2
    heartbeats inside it and echo a message at the end.
    """
    count = scenario.size(smoke)
    adapter = contestant.ws
    interval = scenario.heartbeat_interval(smoke)
    meter = Meter(pid)
    await _warm_up(adapter, port, timing)
    await asyncio.sleep(timing.settle)
    rss_before = rss_bytes(pid)
    gate = asyncio.Semaphore(scenario.opening(smoke))
    answerers: list[HeartbeatAnswerer] = []

    async def connect(number: int) -> None:
        async with gate:
            ws = await _open_ws(adapter, port, "echo", opened)
        answerers.append(HeartbeatAnswerer(meter, ws, f"{contestant.name} connection {number}"))

    started = time.perf_counter()
    # Through the meter: a connection already answering heartbeats may fail while the others open.
    what = f"opening {count:,} websockets"
    await meter.wait_all([_gather((connect(n) for n in range(count)), timing.timeout * 4, what)], 1e9, what)
    connect_s = time.perf_counter() - started
    await meter.pause(HEARTBEAT_SETTLE * interval)
    rss_after = rss_bytes(pid)
    beats_before = [answerer.beats for answerer in answerers]
    start = meter.snapshot()
    await meter.pause(HEARTBEAT_WINDOW * interval)
    end = meter.snapshot()
    in_window = [answerer.beats - before for answerer, before in zip(answerers, beats_before, strict=True)]
    # The count check: every connection answered at least 2 heartbeats in the window, and still echoes.
    fewest = min(in_window)
    if fewest < 2:
        short = sum(1 for beats in in_window if beats < 2)
        raise BenchFailure(
            f"count check: {short:,} of {count:,} connections answered fewer than 2 heartbeats in the "
            f"{end.wall - start.wall:.1f} s window (fewest: {fewest})"
        )
    echoes = []
    for number, answerer in enumerate(answerers):
        text = message_text("ascii", number, 0)
        echoes.append(answerer.echo(answerer.ws.frame(adapter.outgoing(text, "echo")), adapter.incoming(text, "echo")))
    await meter.wait_all(echoes, timing.timeout, f"one echo on each of {count:,} idle connections")
    elapsed = end.wall - start.wall
    server_cpu = end.server_cpu - start.server_cpu
    beats = sum(in_window)
    gaps = sum(answerer.gap_count for answerer in answerers)
    return {
        "connections": count,
        "heartbeat_interval_s": interval,
        "window_s": elapsed,
        "cpu_percent": server_cpu / elapsed * 100,
        "server_cpu_s": server_cpu,
        "heartbeats_in_window": beats,
        "heartbeats_min_per_connection": fewest,
        "heartbeat_gap_s": sum(answerer.gaps for answerer in answerers) / gaps if gaps else float("nan"),
        "server_cpu_us_per_heartbeat": server_cpu / beats * 1e6 if beats else float("nan"),
        "client_cpu_util": (end.client_cpu - start.client_cpu) / elapsed,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_per_connection": (rss_after - rss_before) / count,
        "connect_rate": count / connect_s,
        "messages_checked": count,
    }


# -- connecting as fast as the client can ---------------------------------------------------

#: The kernel counters the connect scenario reports the change of (``bench.procstat.tcp_counters``).
TCP_COUNTERS = {
    "listen_overflows": "TcpExt.ListenOverflows",
    "listen_drops": "TcpExt.ListenDrops",
    "syncookies_sent": "TcpExt.SyncookiesSent",
    "req_queue_full_drops": "TcpExt.TCPReqQFullDrop",
    "retransmitted_segments": "Tcp.RetransSegs",
}


async def _connect(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    """``count`` websockets connecting, ``concurrency`` handshakes in flight; the kernel's listen drops around it.

    The count check: every connection completed its handshake (for
    tornad_io, received its session id frame); all stay open until the end.
    """
    count = scenario.size(smoke)
    adapter = contestant.ws
    await _warm_up(adapter, port, timing)
    await asyncio.sleep(timing.settle)
    gate = asyncio.Semaphore(scenario.opening(smoke))
    durations: list[float] = []

    async def connect() -> WebSocketClient:
        async with gate:
            began = time.perf_counter()
            ws = await _open_ws(adapter, port, "echo", opened)
            durations.append(time.perf_counter() - began)
            return ws

    before = tcp_counters()
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    sockets = await _gather((connect() for _ in range(count)), timing.timeout * 4, f"opening {count:,} websockets")
    connect_s = time.perf_counter() - started
    connect_cpu = cpu_seconds(pid) - cpu_before
    after = tcp_counters()
    if len(sockets) != count or any(ws.failure is not None for ws in sockets):
        raise BenchFailure(f"count check: {len(sockets):,} of {count:,} connections completed the handshake")
    durations.sort()
    return {
        "connections": count,
        "concurrency": scenario.opening(smoke),
        "connect_s": connect_s,
        "connect_rate": count / connect_s,
        "server_cpu_us_per_connect": connect_cpu / count * 1e6,
        "slowest_connect_ms": durations[-1] * 1e3,
        "p99_connect_ms": durations[int(0.99 * (len(durations) - 1))] * 1e3,
        **{figure: after.get(name, 0) - before.get(name, 0) for figure, name in TCP_COUNTERS.items()},
        "messages_checked": count,
    }


DRIVERS = {"echo": _echo, "broadcast": _broadcast, "idle": _idle, "idle-cpu": _idle_cpu, "connect": _connect}


async def run_scenario(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool = False
) -> dict[str, Any]:
    """Run ``scenario`` against a server already listening on ``port`` (process ``pid``).

    Returns the measurements; raises :class:`BenchFailure` when the count check fails.
    """
    if contestant.transport not in scenario.transports:
        raise ValueError(f"{scenario.name} does not run over {contestant.transport}")
    opened: list[Any] = []
    try:
        return await DRIVERS[scenario.kind](contestant, scenario, port, pid, timing, smoke, opened)
    finally:
        for connection in opened:
            connection.close()
        await asyncio.sleep(0)
