"""The FIFO timer behind every connection's heartbeats."""

from __future__ import annotations

import asyncio
import gc

import tornado.ioloop
import tornado.testing

from tornad_io.timers import FifoTimer


class TestFifoTimer(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_items_fire_in_order_never_early_and_cancelled_ones_never(self) -> None:
        loop = tornado.ioloop.IOLoop.current()
        fired: list[tuple[str, float]] = []
        done = asyncio.Event()

        def due(item: str) -> None:
            fired.append((item, loop.time()))
            if item == "last":
                done.set()

        timer: FifoTimer[str] = FifoTimer(0.05, due)
        started = {}
        for name in ("a", "b", "cancelled", "c", "last"):
            started[name] = loop.time()
            wait = timer.add(name)
            if name == "cancelled":
                timer.cancel(wait)
        await asyncio.wait_for(done.wait(), 5)
        assert [name for name, _ in fired] == ["a", "b", "c", "last"]
        for name, at in fired:
            assert at >= started[name] + 0.05
        assert len(timer) == 0

    @tornado.testing.gen_test
    async def test_a_callback_that_raises_does_not_stop_the_others(self) -> None:
        fired: list[int] = []
        done = asyncio.Event()

        def due(item: int) -> None:
            if item == 1:
                raise RuntimeError("boom")
            fired.append(item)
            if item == 2:
                done.set()

        timer: FifoTimer[int] = FifoTimer(0.01, due)
        with tornado.testing.ExpectLog("tornad_io.timers", "timer callback for 1 raised"):
            for item in (0, 1, 2):
                timer.add(item)
            await asyncio.wait_for(done.wait(), 5)
        assert fired == [0, 2]

    @tornado.testing.gen_test
    async def test_many_waits_share_one_loop_timeout(self) -> None:
        loop = tornado.ioloop.IOLoop.current()
        timer: FifoTimer[int] = FifoTimer(3600, lambda item: None)
        before = len(loop.asyncio_loop._scheduled)  # type: ignore[attr-defined]
        waits = [timer.add(item) for item in range(1000)]
        assert len(loop.asyncio_loop._scheduled) == before + 1  # type: ignore[attr-defined]
        for wait in waits:
            timer.cancel(wait)

    @tornado.testing.gen_test
    async def test_a_cancelled_or_fired_wait_cancels_nothing_else(self) -> None:
        fired: list[str] = []
        done = asyncio.Event()

        def due(item: str) -> None:
            fired.append(item)
            done.set()

        timer: FifoTimer[str] = FifoTimer(0.01, due)
        first = timer.add("first")
        await asyncio.wait_for(done.wait(), 5)
        done.clear()
        second = timer.add("second")
        timer.cancel(first)  # fired already: must not touch "second"
        timer.cancel(second)
        timer.cancel(second)
        timer.add("third")
        await asyncio.wait_for(done.wait(), 5)
        assert fired == ["first", "third"]

    @tornado.testing.gen_test
    async def test_waits_are_not_objects_the_garbage_collector_tracks(self) -> None:
        # Heartbeat waits live for seconds: one tracked container each would reach the oldest
        # generation by the thousand and trigger full collections in an idle server.
        timer: FifoTimer[object] = FifoTimer(3600, lambda item: None)
        items = [object() for _ in range(10_000)]
        gc.collect()
        before = len(gc.get_objects())
        waits = [timer.add(item) for item in items]
        for wait in waits[::2]:
            timer.cancel(wait)
        assert len(gc.get_objects()) - before < 10  # (the list of waits itself, and little else)
        for wait in waits[1::2]:
            timer.cancel(wait)
