"""One loop timer for any number of connections, when they all wait the same delay.

Every connection of an application waits the same ``socket_io_heartbeat_interval``
before its next heartbeat and the same ``socket_io_heartbeat_timeout`` for its
echo.  With equal delays, due times come in the order the waits began, so a
plain FIFO is a priority queue: :class:`FifoTimer` keeps one ``deque`` and one
IOLoop timeout for its head, and fires everything due within a small slack in
one callback.  Per connection that is a two-slot list instead of an asyncio
``TimerHandle`` in the loop's heap, and 10,000 idle websockets wake the loop a
few times a second instead of a thousand.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import tornado.ioloop

__all__ = ["FifoTimer", "Wait"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A pending wait: ``[due, item]``; ``item`` is ``None`` once cancelled.
Wait = list[Any]


class FifoTimer(Generic[T]):
    """Calls ``callback(item)`` about ``delay`` seconds after :meth:`add` (never early, at most ``slack`` late)."""

    def __init__(self, delay: float, callback: Callable[[T], object]) -> None:
        self.delay = delay
        #: Due times this close together fire in one loop callback (half a second of a 10 s heartbeat).
        self.slack = min(1.0, delay / 20)
        self._callback = callback
        self._waits: deque[Wait] = deque()
        self._loop: tornado.ioloop.IOLoop | None = None
        self._timeout: object | None = None

    def __len__(self) -> int:
        """Waits held, cancelled ones included until their due time passes (bounded by adds per ``delay``)."""
        return len(self._waits)

    def add(self, item: T) -> Wait:
        """Start a wait for ``item``; the result is what :meth:`cancel` takes."""
        loop = self._loop
        if loop is None or self._timeout is None:
            # (While a timeout is pending the timer is bound to its loop: no need to look it up.)
            loop = self._loop = tornado.ioloop.IOLoop.current()
        wait: Wait = [loop.time() + self.delay, item]
        self._waits.append(wait)
        if self._timeout is None:
            self._timeout = loop.call_at(wait[0] + self.slack, self._fire)
        return wait

    @staticmethod
    def cancel(wait: Wait) -> None:
        """Forget ``wait``: it stays queued, inert, until its due time (no search, O(1))."""
        wait[1] = None

    def _fire(self) -> None:
        self._timeout = None
        loop = self._loop
        assert loop is not None
        waits = self._waits
        now = loop.time()
        while waits and waits[0][0] <= now:
            wait = waits.popleft()
            item = wait[1]
            if item is None:
                continue
            wait[1] = None
            try:
                self._callback(item)
            except Exception:
                log.exception("timer callback for %r raised", item)
        while waits and waits[0][1] is None:
            waits.popleft()  # cancelled heads must not keep the loop waking up
        if waits:
            self._timeout = loop.call_at(waits[0][0] + self.slack, self._fire)
