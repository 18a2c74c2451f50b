"""Broadcast: one process (encoded once, queued for polls) and several (Redis pub/sub)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io
import tornad_io.dialects
import tornad_io.socket_io
from tests.helpers import messages
from tests.relay_app import Shouter, make_app
from tests.servers import RedisServer
from tornad_io import SocketIOServer
from tornad_io.codec import encode_frame
from tornad_io.registry import registry_for
from tornad_io.relay import RedisRelay
from tornad_io.testing import AppServer, SocketIOClient

ROOT = Path(__file__).resolve().parent.parent


class TestBroadcastInOneProcess(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.handler = type("Room", (Shouter,), {})  # a class of its own: broadcast reaches its connections
        return make_app(self.handler)

    async def ws(self) -> tornado.websocket.WebSocketClientConnection:
        ws = await tornado.websocket.websocket_connect(self.get_url("/socket.io/websocket").replace("http", "ws"))
        await ws.read_message()
        return ws

    @tornado.testing.gen_test
    async def test_everyone_but_the_sender_gets_it_and_polls_get_it_queued(self) -> None:
        sender, receiver = await self.ws(), await self.ws()
        handshake = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        sid = messages(handshake.body)[0]
        await sender.write_message(encode_frame("to all"))
        assert messages(await receiver.read_message()) == ["to all"]  # type: ignore[arg-type]
        poll = await self.http_client.fetch(self.get_url(f"/socket.io/xhr-polling/{sid}/2"))
        assert messages(poll.body) == ["to all"]
        await sender.write_message(encode_frame("again"))
        assert messages(await receiver.read_message()) == ["again"]  # type: ignore[arg-type]
        for ws in (sender, receiver):
            ws.close()

    @tornado.testing.gen_test
    async def test_the_frame_is_encoded_once_and_exclude_takes_several(self) -> None:
        sockets = [await self.ws() for _ in range(4)]
        handlers = [connection.handler for connection in registry_for(self._app).connections()]
        calls = []
        original = tornad_io.dialects.codec.encode_message

        def counting(message: Any) -> str:
            calls.append(message)
            return original(message)

        tornad_io.dialects.codec.encode_message = counting  # type: ignore[assignment]
        try:
            self.handler.broadcast({"n": 1}, exclude=handlers[:2])
        finally:
            tornad_io.dialects.codec.encode_message = original
        assert calls == [{"n": 1}]
        self.handler.broadcast("everyone")
        excluded = {handler.session_id for handler in handlers[:2]}
        by_sid = dict(zip([h.session_id for h in handlers], sockets, strict=True))
        for sid, ws in by_sid.items():
            first = messages(await ws.read_message())  # type: ignore[arg-type]
            assert first == (["everyone"] if sid in excluded else [{"n": 1}])
            ws.close()


def start_worker(*settings: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    process = subprocess.Popen(
        [sys.executable, "-c", "from tests.relay_app import main; main()", str(port_file), *settings],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text()):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the worker process did not start")
        time.sleep(0.05)  # wait-ok: polling for a child process to listen
    return process, int(port_file.read_text())


def wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)  # wait-ok: polling another process's state


def relay_of(server: AppServer, app: tornado.web.Application) -> RedisRelay:
    relay = server.call(lambda: registry_for(app).relay)
    assert relay is not None
    return relay


def test_the_relay_waits_for_the_loop_that_serves_the_application(redis_server: RedisServer) -> None:
    app = make_app(socket_io_redis_url=redis_server.url)
    assert tornad_io.stats(app).connections == 0  # before the loop runs: binds nothing
    assert registry_for(app).relay is None
    with AppServer(app) as here:
        relay = relay_of(here, app)
        wait_for(relay.connected.is_set)
    assert registry_for(app).relay is None  # stopped with the server


def test_broadcasts_reach_every_process_in_order_and_once(redis_server: RedisServer) -> None:
    other, other_port = start_worker(f"socket_io_redis_url={redis_server.url}", "socket_io_worker_tag=w2")
    app = make_app(socket_io_redis_url=redis_server.url, socket_io_worker_tag="w1")
    try:
        with AppServer(app) as here:
            wait_for(relay_of(here, app).connected.is_set)
            local = SocketIOClient(here.url, transport="websocket")
            local.connect()
            assert local.receive() == "hello from w1"
            assert local.session_id is not None and local.session_id.startswith("w1")
            remote = SocketIOClient(f"http://127.0.0.1:{other_port}", transport="websocket")
            remote.connect()
            assert remote.receive() == "hello from w2"
            # A burst from one process: complete and in order at the other, nothing twice.
            here.call(lambda: [Shouter.broadcast(f"burst {n}", application=app) for n in range(1000)])
            assert [local.receive() for _ in range(1000)] == [f"burst {n}" for n in range(1000)]
            assert [remote.receive() for _ in range(1000)] == [f"burst {n}" for n in range(1000)]
            here.call(lambda: Shouter.broadcast("end", application=app))
            assert remote.receive() == "end"  # not a duplicate of any burst message
            with pytest.raises(TimeoutError):
                remote.receive(timeout=0.3)
            for client in (local, remote):
                client.close()
    finally:
        other.terminate()
        other.wait(10)


def test_room_broadcasts_reach_the_room_in_every_process(redis_server: RedisServer) -> None:
    other, other_port = start_worker(f"socket_io_redis_url={redis_server.url}")
    app = make_app(socket_io_redis_url=redis_server.url)
    try:
        with AppServer(app) as here:
            wait_for(relay_of(here, app).connected.is_set)
            there = f"http://127.0.0.1:{other_port}"
            sender = SocketIOClient(here.url, resource="rooms/kitchen", transport="xhr-polling")
            kitchen_there = SocketIOClient(there, resource="rooms/kitchen", transport="websocket")
            garden_there = SocketIOClient(there, resource="rooms/garden", transport="websocket")
            for client, room in ((sender, "kitchen"), (kitchen_there, "kitchen"), (garden_there, "garden")):
                client.connect()
                assert client.receive() == f"in {room}"
            sender.send("soup is ready")
            assert kitchen_there.receive() == "soup is ready"
            with pytest.raises(TimeoutError):
                garden_there.receive(timeout=0.5)
            with pytest.raises(TimeoutError):
                sender.receive(timeout=0.1)  # excluded: the sender
            for client in (sender, kitchen_there, garden_there):
                client.close()
    finally:
        other.terminate()
        other.wait(10)


def test_redis_going_away_loses_only_relaying_and_logs_it_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    other, other_port = start_worker(f"socket_io_redis_url={redis_server.url}", "socket_io_worker_tag=w2")
    app = make_app(socket_io_redis_url=redis_server.url, socket_io_worker_tag="w1")
    try:
        with AppServer(app) as here:
            relay = relay_of(here, app)
            wait_for(relay.connected.is_set)
            local = SocketIOClient(here.url, transport="websocket")
            local.connect()
            local.receive()
            remote = SocketIOClient(f"http://127.0.0.1:{other_port}", transport="xhr-polling")
            remote.connect()
            remote.receive()
            sender = SocketIOClient(here.url, transport="xhr-polling")
            sender.connect()
            sender.receive()

            redis_server.stop()  # Redis goes away: local delivery goes on, nothing crashes
            wait_for(lambda: not relay.connected.is_set())
            with caplog.at_level(logging.WARNING, logger="tornad_io.relay"):
                for n in range(20):
                    sender.send(f"while Redis is down {n}")
                    assert local.receive() == f"while Redis is down {n}"
            down_lines = [r for r in caplog.records if "reach this process only" in r.getMessage()]
            assert len(down_lines) == 1  # once per outage, not per message
            assert here.call(lambda: tornad_io.stats(app).relay_dropped) >= 20

            redis_server.start()  # and comes back: both processes resubscribe
            wait_for(relay.connected.is_set, timeout=20)
            for attempt in range(100):
                sender.send(f"back {attempt}")
                assert local.receive() == f"back {attempt}"
                try:
                    got = remote.receive(timeout=0.2)
                except TimeoutError:
                    continue  # the other process may resubscribe a little later
                assert got.startswith("back")
                break
            else:
                raise AssertionError("relaying did not resume after Redis came back")
            for client in (local, remote, sender):
                client.close()
    finally:
        other.terminate()
        other.wait(10)


def test_socket_io_server_starts_and_stops_the_relay(redis_server: RedisServer) -> None:
    app = make_app(socket_io_redis_url=redis_server.url)

    async def main() -> None:
        server = SocketIOServer(app, port=0, address="127.0.0.1", flash_policy_port=0)  # inside a loop: returns
        relay = registry_for(app).relay
        assert relay is not None  # started by the server, before any client
        await asyncio.wait_for(relay.connected.wait(), 10)
        server.stop()
        while registry_for(app).relay is not None or relay.connected.is_set():
            await asyncio.sleep(0.01)  # wait-ok: polling a condition (the test's timeout bounds it)

    asyncio.run(asyncio.wait_for(main(), 30))
