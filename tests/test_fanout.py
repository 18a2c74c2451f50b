"""Broadcast: one process (encoded once, queued for polls) and several (Redis pub/sub)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io.socket_io
from tests.fanout_app import Shouter, make_app
from tests.helpers import messages
from tests.servers import RedisServer
from tornad_io.codec import encode_frame
from tornad_io.fanout import connections_of
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
        handlers = [connection.handler for connection in connections_of(self.handler)]
        calls = []
        original = tornad_io.socket_io.encode_message

        def counting(message: Any) -> str:
            calls.append(message)
            return original(message)

        tornad_io.socket_io.encode_message = counting  # type: ignore[assignment]
        try:
            self.handler.broadcast({"n": 1}, exclude=handlers[:2])
        finally:
            tornad_io.socket_io.encode_message = original
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
        [sys.executable, "-c", "from tests.fanout_app import main; main()", str(port_file), *settings],
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


def test_a_broadcast_reaches_the_clients_of_every_process(redis_server: RedisServer) -> None:
    from tornad_io.fanout import RedisFanOut

    other, other_port = start_worker(f"socket_io_redis_url={redis_server.url}", "socket_io_worker_tag=w2")
    app = make_app(socket_io_redis_url=redis_server.url, socket_io_worker_tag="w1")
    try:
        with AppServer(app) as here:
            local = SocketIOClient(here.url, transport="websocket")
            local.connect()
            assert local.receive() == "hello from w1"
            assert local.session_id is not None and local.session_id.startswith("w1")
            remote = SocketIOClient(f"http://127.0.0.1:{other_port}", transport="xhr-polling")
            remote.connect()
            assert remote.receive() == "hello from w2"
            fanout = here.call(lambda: RedisFanOut.running[redis_server.url])
            wait_for(fanout.connected.is_set)
            sender = SocketIOClient(here.url, transport="xhr-polling")
            sender.connect()
            sender.receive()
            # the other process subscribes on its first request: the handshake above
            for attempt in range(50):
                sender.send(f"ping {attempt}")
                assert local.receive() == f"ping {attempt}"
                try:
                    assert remote.receive(timeout=0.2) == f"ping {attempt}"
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("the broadcast never reached the other process")

            redis_server.stop()  # Redis goes away: broadcasts stay local, nothing crashes
            wait_for(lambda: not fanout.connected.is_set())
            sender.send("while Redis is down")
            assert local.receive() == "while Redis is down"
            redis_server.start()  # and comes back: both processes resubscribe
            wait_for(fanout.connected.is_set, timeout=20)
            for attempt in range(100):
                sender.send(f"back {attempt}")
                assert local.receive() == f"back {attempt}"
                try:
                    got = remote.receive(timeout=0.2)
                except TimeoutError:
                    continue
                assert got.startswith("back")
                break
            else:
                raise AssertionError("delivery did not resume after Redis came back")
            for client in (local, remote, sender):
                client.close()
            here.call(fanout.stop)
    finally:
        other.terminate()
        other.wait(10)
