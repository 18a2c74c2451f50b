"""One loop timer for any number of connections, when they all wait the same delay.

Every connection of an application waits the same ``socket_io_heartbeat_interval``
before its next heartbeat and the same ``socket_io_heartbeat_timeout`` for its
echo.  With equal delays, due times come in the order the waits began, so a
plain FIFO is a priority queue: :class:`FifoTimer` keeps its waits in two
``deque``\\ s (due times, items) with one IOLoop timeout for the head, and fires
everything due within a small slack in one callback.  10,000 idle websockets
wake the loop a few times a second instead of a thousand.

A wait is a number, not an object: a heartbeat wait lives for seconds, and one
container per wait would be promoted to the garbage collector's oldest
generation by the thousand, triggering full collections (hundreds of
milliseconds each with 10,000 connections) in an otherwise idle server.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import tornado.ioloop

__all__ = ["FifoTimer", "Wait"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A pending wait: its place in the order of :meth:`FifoTimer.add` calls (the first is 0).
Wait = int


class FifoTimer(Generic[T]):
    """Calls ``callback(item)`` about ``delay`` seconds after :meth:`add` (never early, at most ``slack`` late)."""

    def __init__(self, delay: float, callback: Callable[[T], object]) -> None:
        self.delay = delay
        #: Due times this close together fire in one loop callback (half a second of a 10 s heartbeat).
        self.slack = min(1.0, delay / 20)
        self._callback = callback
        self._dues: deque[float] = deque()
        self._items: deque[T | None] = deque()  # None: cancelled
        self._head: Wait = 0  # the wait at the front of the queues
        self._loop: tornado.ioloop.IOLoop | None = None
        self._timeout: object | None = None

    def __len__(self) -> int:
        """Waits held, cancelled ones included until their due time passes (bounded by adds per ``delay``)."""
        return len(self._items)

    def add(self, item: T) -> Wait:
        """Start a wait for ``item``; the result is what :meth:`cancel` takes."""
        loop = self._loop
        if loop is None or self._timeout is None:
            # (While a timeout is pending the timer is bound to its loop: no need to look it up.)
            loop = self._loop = tornado.ioloop.IOLoop.current()
        due = loop.time() + self.delay
        items = self._items
        self._dues.append(due)
        items.append(item)
        if self._timeout is None:
            self._timeout = loop.call_at(due + self.slack, self._fire)
        return self._head + len(items) - 1

    def cancel(self, wait: Wait) -> None:
        """Forget ``wait`` (a no-op once it has fired): it stays queued, inert, until its due time."""
        index = wait - self._head
        if index >= 0:
            self._items[index] = None  # recent waits are near the end, where a deque finds them at once

    def _fire(self) -> None:
        self._timeout = None
        loop = self._loop
        assert loop is not None
        dues = self._dues
        items = self._items
        now = loop.time()
        while dues and dues[0] <= now:
            dues.popleft()
            item = items.popleft()
            self._head += 1
            if item is None:
                continue
            try:
                self._callback(item)
            except Exception:
                log.exception("timer callback for %r raised", item)
        while items and items[0] is None:
            dues.popleft()  # cancelled heads must not keep the loop waking up
            items.popleft()
            self._head += 1
        if dues:
            self._timeout = loop.call_at(dues[0] + self.slack, self._fire)
