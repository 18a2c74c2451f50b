"""Broadcast delivery: to this process's connections, and (opt-in) to every other process's.

``SocketIOHandler.broadcast`` encodes a frame once and hands it here.  It is
written to the open connections of the handler class in this process; when
an application sets ``socket_io_redis_url``, it is also published on a Redis
pub/sub channel, and every other process subscribed to that channel delivers
it to its own connections.  Redis going away is logged and retried with a
growing pause; broadcasts made meanwhile reach this process's clients only.
Nothing crashes, and delivery resumes when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import simplejson

if TYPE_CHECKING:
    import redis.asyncio

    from tornad_io.connection import Connection

__all__ = [
    "RedisFanOut",
    "audience_of",
    "connections_of",
    "deliver_frame",
    "deliver_locally",
    "register_handler_class",
]

log = logging.getLogger(__name__)

#: Handler classes by their dotted name: how a broadcast from another process finds its class.
_handler_classes: dict[str, type] = {}

#: Open connections by handler class, across applications: whom a broadcast reaches.
#: Registries add and remove connections here as they open and close.
_audiences: weakref.WeakKeyDictionary[type, dict[str, Connection]] = weakref.WeakKeyDictionary()


def audience_of(handler_class: type) -> dict[str, Connection]:
    """The live table of ``handler_class``'s open connections in this process, by session id."""
    audience = _audiences.get(handler_class)
    if audience is None:
        audience = _audiences[handler_class] = {}
    return audience


def connections_of(handler_class: type) -> list[Connection]:
    """A snapshot of the open connections whose handler is exactly ``handler_class``."""
    return list(_audiences.get(handler_class, {}).values())


def class_key(handler_class: type) -> str:
    return f"{handler_class.__module__}.{handler_class.__qualname__}"


def register_handler_class(handler_class: type) -> None:
    _handler_classes[class_key(handler_class)] = handler_class


def deliver_locally(handler_class: type, frame: str, excluded: frozenset[str]) -> int:
    """Write ``frame`` to this process's connections of ``handler_class``; how many got it."""
    delivered = 0
    for connection in connections_of(handler_class):
        if connection.session_id not in excluded:
            connection.send_frame(frame)
            delivered += 1
    return delivered


def deliver_frame(handler_class: type, frame: str, excluded: frozenset[str]) -> None:
    """A broadcast: here, and through every running fan-out to the other processes."""
    deliver_locally(handler_class, frame, excluded)
    if RedisFanOut.running:
        register_handler_class(handler_class)
        for fanout in RedisFanOut.running.values():
            fanout.publish(handler_class, frame, excluded)


class RedisFanOut:
    """Relays broadcasts between the processes that share one Redis server.

    One instance per Redis URL per process, made by :meth:`for_url`, which
    ``registry_for`` calls for an application that sets ``socket_io_redis_url``.
    """

    #: The fan-outs started in this process, by URL.
    running: ClassVar[dict[str, RedisFanOut]] = {}

    #: Longest pause between reconnection attempts, in seconds.
    max_retry_delay: ClassVar[float] = 5.0

    def __init__(self, url: str, channel: str = "tornad_io:broadcast") -> None:
        self.url = url
        self.channel = channel
        self.sender = secrets.token_hex(8)  # so a process ignores its own broadcasts
        self.connected = asyncio.Event()
        self._client: redis.asyncio.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._warned_down = False

    @classmethod
    def for_url(cls, url: str) -> RedisFanOut:
        """The running fan-out for ``url``, started on first use (needs a running event loop)."""
        fanout = cls.running.get(url)
        if fanout is None:
            fanout = cls.running[url] = cls(url)
            fanout.start()
        return fanout

    def start(self) -> None:
        import redis.asyncio  # an optional dependency: pip install 'SocketTornad.IO[redis]'

        self._client = redis.asyncio.Redis.from_url(self.url)
        self._listener = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        if self.running.get(self.url) is self:
            del self.running[self.url]
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
        if self._client is not None:
            await self._client.aclose()

    def publish(self, handler_class: type, frame: str, excluded: frozenset[str]) -> None:
        if not self.connected.is_set():
            if not self._warned_down:
                log.warning("Redis at %s is unreachable: broadcasts reach this process only", self.url)
                self._warned_down = True
            return
        message = simplejson.dumps(
            {"from": self.sender, "class": class_key(handler_class), "frame": frame, "exclude": sorted(excluded)}
        )
        asyncio.ensure_future(self._publish(message))

    async def _publish(self, message: str) -> None:
        assert self._client is not None
        try:
            await self._client.publish(self.channel, message)
        except Exception as exc:  # redis-py raises its own ConnectionError family, and OSError
            log.warning("could not publish a broadcast to Redis at %s: %s", self.url, exc)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            assert self._client is not None
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if self._warned_down:
                        log.warning("Redis at %s is back: broadcasts reach every process again", self.url)
                    else:
                        log.info("broadcast fan-out subscribed to %s on %s", self.channel, self.url)
                    self.connected.set()
                    self._warned_down = False
                    delay = 0.1
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                if not self._warned_down:
                    log.warning("lost Redis at %s (%s); retrying", self.url, exc)
                    self._warned_down = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    def _deliver(self, data: bytes | str) -> None:
        try:
            message: dict[str, Any] = simplejson.loads(data)
            if message["from"] == self.sender:
                return
            handler_class = _handler_classes.get(message["class"])
            if handler_class is not None:
                deliver_locally(handler_class, message["frame"], frozenset(message["exclude"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed broadcast from Redis: %s", exc)
