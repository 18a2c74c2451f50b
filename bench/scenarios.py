"""The scenarios and the load that drives them: closed-loop echo, broadcast, idle connections.

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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from bench.contestants import Contestant, PollAdapter, PollSession, WSAdapter, message_text
from bench.procstat import cpu_seconds, rss_bytes
from bench.wire import HTTPClient, WebSocketClient, WireError, open_http, open_websocket

__all__ = ["POOL", "SCENARIOS", "BenchFailure", "Scenario", "Timing", "run_scenario"]

#: Distinct pre-encoded messages per connection; message n is the (n mod POOL)th.
POOL = 256


class BenchFailure(Exception):
    """A run whose messages do not all add up, or that could not run at all."""


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "echo", "broadcast" or "idle"
    connections: int
    #: The size used by the smoke mode.
    smoke_connections: int
    charset: str = "ascii"
    transports: tuple[str, ...] = ("ws", "poll")

    @property
    def metric(self) -> str:
        return {"echo": "msg/s", "broadcast": "deliveries/s", "idle": "bytes RSS/connection"}[self.kind]

    def size(self, smoke: bool) -> int:
        return self.smoke_connections if smoke else self.connections

    def describe(self) -> str:
        if self.kind == "echo":
            text = "32-byte ASCII" if self.charset == "ascii" else "CJK + emoji"
            return f"echo, {self.connections} connection{'s' if self.connections > 1 else ''}, {text}"
        if self.kind == "broadcast":
            return f"broadcast, 1 sender to {self.connections} receivers"
        return f"{self.connections} idle websocket connections"


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
        Scenario("idle-c1000", "idle", 1000, 20, transports=("ws",)),
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

    async def measure(self, timing: Timing) -> dict[str, float]:
        """Warm up, measure one window, then ask every connection to stop after its message in flight."""
        await self.pause(timing.warmup)
        start = self.snapshot()
        await self.pause(timing.duration)
        end = self.snapshot()
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
        self.sent += 1
        self.ws.write(self.frames[answered % POOL])


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
    ) -> None:
        self.meter = meter
        self.sender = sender
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
            if payload != expected or number >= self.sent:
                self.meter.fail(
                    f"broadcast: receiver {index}, message {number}: expected {_show(expected)}, got {_show(payload)}"
                )
                return
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

        return on_message

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
    count = scenario.size(smoke)
    meter = Meter(pid)
    texts = [[message_text(scenario.charset, c, s) for s in range(POOL)] for c in range(count)]
    loops: list[WebSocketEcho | PollingEcho]
    if contestant.transport == "ws":
        adapter = contestant.ws
        sockets = await _gather(
            (_open_ws(adapter, port, "echo", opened) for _ in range(count)),
            timing.timeout,
            f"opening {count} websockets",
        )
        loops = [
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
    else:
        polling = contestant.poll
        sessions = await _gather(
            (_open_poll(polling, port, opened) for _ in range(count)),
            timing.timeout,
            f"opening {count} polling sessions",
        )
        loops = [
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
    for loop in loops:
        loop.start()
    result = await meter.measure(timing)
    await meter.wait_all((loop.finished for loop in loops), timing.timeout, "the last echoes")
    sent = sum(loop.sent for loop in loops)
    answered = sum(loop.answered for loop in loops)
    if sent != answered or answered != meter.count:
        raise BenchFailure(f"count check: {sent} sent, {answered} answered, {meter.count} counted")
    return {**result, "connections": count, "messages_checked": answered}


async def _broadcast(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    count = scenario.size(smoke)
    meter = Meter(pid)
    adapter = contestant.ws
    receivers = await _gather(
        (_open_ws(adapter, port, "fanout", opened) for _ in range(count)), timing.timeout, f"opening {count} receivers"
    )
    sender = await _gather([_open_ws(adapter, port, "fanout", opened)], timing.timeout, "opening the sender")
    texts = [message_text("ascii", 0, s) for s in range(POOL)]
    fanout = Broadcast(
        meter,
        sender[0],
        receivers,
        [sender[0].frame(adapter.outgoing(text, "fanout")) for text in texts],
        [adapter.incoming(text, "fanout") for text in texts],
        timing.window,
        timing.min_messages,
    )
    fanout.pump()
    result = await meter.measure(timing)
    fanout.pump()
    await meter.wait_all([fanout.finished], timing.timeout, "the last deliveries")
    delivered = sum(fanout.received)
    if any(got != fanout.sent for got in fanout.received) or delivered != meter.count:
        short = sum(1 for got in fanout.received if got != fanout.sent)
        raise BenchFailure(f"count check: {fanout.sent} sent, {short} receivers missing some")
    return {**result, "connections": count, "messages_sent": fanout.sent, "messages_checked": delivered}


async def _echo_once(adapter: WSAdapter, ws: WebSocketClient, number: int) -> None:
    text = message_text("ascii", number, 0)
    ws.write(ws.frame(adapter.outgoing(text, "echo")))
    reply = await ws.recv()
    if reply != adapter.incoming(text, "echo"):
        raise WireError(f"connection {number}: expected {_show(adapter.incoming(text, 'echo'))}, got {_show(reply)}")


async def _idle(
    contestant: Contestant, scenario: Scenario, port: int, pid: int, timing: Timing, smoke: bool, opened: list[Any]
) -> dict[str, Any]:
    count = scenario.size(smoke)
    adapter = contestant.ws
    # Warm up: the first connections load code and fill caches that are no one connection's cost.
    warm: list[Any] = []
    warm_sockets = await _gather(
        (_open_ws(adapter, port, "echo", warm) for _ in range(10)), timing.timeout, "opening the warm-up connections"
    )
    await _gather((_echo_once(adapter, ws, n) for n, ws in enumerate(warm_sockets)), timing.timeout, "warm-up echo")
    for ws in warm:
        ws.close()
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


DRIVERS = {"echo": _echo, "broadcast": _broadcast, "idle": _idle}


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
