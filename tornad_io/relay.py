"""Broadcasts between processes: one Redis pub/sub relay per application.

When an application sets ``socket_io_redis_url``, its registry starts a
:class:`RedisRelay` on the IOLoop that serves it.  Every broadcast is
delivered in this process first, then handed to the relay, which publishes
it on the channel ``socket_io_redis_channel``; every other process's relay on
that channel delivers it to its own clients of the same handler class (and
rooms).

What the relay guarantees, and what it does not:

* **Order per sending process.**  One publisher task sends in the order
  broadcasts were made; Redis delivers one connection's publications in order.
* **At most once.**  A publication is never retried, so it never arrives twice;
  a broadcast made while Redis is unreachable, or while the bounded queue is
  full, reaches this process's clients only.  Such losses are logged once per
  outage (not per message) and counted in ``tornad_io.stats(app).relay_dropped``.
* **Recovery.**  The subscriber reconnects with a growing pause (up to 5 s);
  publishing resumes once it is back.

Relays in one process ignore each other's publications: two applications in
one process are separate worlds even when they share a Redis channel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

import simplejson

from tornad_io.dialects import Outgoing

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["PROCESS_ID", "RedisRelay", "RelayedBroadcast"]

log = logging.getLogger(__name__)

#: Identifies this process's publications, so that it never delivers them twice.
PROCESS_ID: Final = f"{os.getpid()}-{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class RelayedBroadcast:
    """One broadcast as it travels between processes."""

    handler_class: str  # the class's dotted name
    outgoing: Outgoing
    rooms: frozenset[str] | None
    excluded: frozenset[str]

    def encode(self) -> str:
        text: str = simplejson.dumps(
            {
                "from": PROCESS_ID,
                "class": self.handler_class,
                **self.outgoing.to_wire(),
                "rooms": None if self.rooms is None else sorted(self.rooms),
                "exclude": sorted(self.excluded),
            }
        )
        return text

    @classmethod
    def decode(cls, data: bytes | str) -> tuple[str, RelayedBroadcast]:
        """``(sending process, broadcast)``; raises ``ValueError`` for anything malformed."""
        try:
            message: dict[str, Any] = simplejson.loads(data)
            rooms = message.get("rooms")
            return str(message["from"]), cls(
                str(message["class"]),
                Outgoing.from_wire(message),
                None if rooms is None else frozenset(map(str, rooms)),
                frozenset(map(str, message["exclude"])),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed relayed broadcast: {exc!r}") from None


class RedisRelay:
    """Publishes this application's broadcasts to Redis, and delivers the other processes' ones."""

    #: Broadcasts waiting to be published; beyond it they are dropped (and counted).
    queue_size: ClassVar[int] = 10_000

    #: Longest pause between reconnection attempts, in seconds.
    max_retry_delay: ClassVar[float] = 5.0

    def __init__(self, url: str, channel: str, deliver: Callable[[RelayedBroadcast], None]) -> None:
        self.url = url
        self.channel = channel
        self._deliver = deliver
        #: Set while subscribed: publishing only makes sense when the other side listens too.
        self.connected = asyncio.Event()
        #: Broadcasts that reached this process only.
        self.dropped = 0
        self._queue: asyncio.Queue[str] | None = None
        self._client: redis.asyncio.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._down_logged = False
        self._full_logged = False

    def start(self) -> None:
        """Connect and subscribe, on the running event loop."""
        import redis.asyncio  # an optional dependency: pip install 'SocketTornad.IO[redis]'

        # Two connections at most: the subscription, and the one publisher that sends in order.
        self._client = redis.asyncio.Redis.from_url(self.url, max_connections=2)
        self._queue = asyncio.Queue(self.queue_size)
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._publish_in_order())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        self.connected.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def publish(self, broadcast: RelayedBroadcast) -> None:
        """Queue ``broadcast`` for the other processes (never blocks; drops when it cannot go)."""
        queue = self._queue
        if queue is None or not self.connected.is_set():
            self._drop("it is unreachable")
            return
        try:
            queue.put_nowait(broadcast.encode())
        except asyncio.QueueFull:
            if not self._full_logged:
                self._full_logged = True
                log.warning(
                    "the Redis relay to %s is %d broadcasts behind: further ones reach this process only",
                    self.url,
                    self.queue_size,
                )
            self.dropped += 1

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        if not self._down_logged:
            self._down_logged = True
            log.warning("broadcasts reach this process only until Redis at %s is back (%s)", self.url, reason)

    async def _publish_in_order(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            message = await queue.get()
            if not self.connected.is_set():
                self._drop("it is unreachable")
                continue
            try:
                assert self._client is not None
                await self._client.publish(self.channel, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis-py's ConnectionError family, OSError, timeouts
                self._drop(f"publishing failed: {exc}")
            if queue.empty():
                self._full_logged = False

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            assert self._client is not None
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if self._down_logged:
                        log.warning("Redis at %s is back: broadcasts reach every process again", self.url)
                    else:
                        log.info("broadcast relay subscribed to %s on %s", self.channel, self.url)
                    self._down_logged = False
                    self.connected.set()
                    delay = 0.1
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                if not self._down_logged:
                    self._down_logged = True
                    log.warning(
                        "lost Redis at %s (%s): broadcasts reach this process only until it is back; retrying",
                        self.url,
                        exc,
                    )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    def _received(self, data: bytes | str) -> None:
        try:
            sender, broadcast = RelayedBroadcast.decode(data)
        except ValueError as exc:
            log.warning("ignoring a broadcast from Redis: %s", exc)
            return
        if sender == PROCESS_ID:
            return
        self._deliver(broadcast)
