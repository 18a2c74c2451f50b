"""self.session is a real Beaker session, on memory, file and Redis backends."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import beaker.container
import pytest
import tornado.web

from tests.helpers import Recorder
from tests.servers import RedisServer
from tornad_io import SocketIOHandler
from tornad_io.beaker_session import open_session
from tornad_io.settings import Settings
from tornad_io.testing import AppServer, SocketIOClient


class Counter(SocketIOHandler):
    """Keeps a per-connection count in the session across on_open, on_message and on_close."""

    recorder: Recorder

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.session["count"] = 0
        self.session.save()

    def on_message(self, message: Any) -> None:
        self.session["count"] += 1
        self.session.save()
        stored = open_session(self.session.id, self.settings.get("session_opts") or {})  # what the backend has
        self.send({"count": stored["count"], "id": self.session.id})

    def on_close(self) -> None:
        self.recorder.add("close", self.session.id, self.session["count"])


def run(settings: dict[str, Any], transport: str = "websocket") -> tuple[str, Recorder]:
    handler = type("C", (Counter,), {"recorder": Recorder()})
    app = tornado.web.Application([handler.routes("socket.io")], **settings)
    with AppServer(app) as server:
        client = SocketIOClient(server.url, transport=transport)
        sid = client.connect()
        for expected in (1, 2):
            client.send("tick")
            assert client.receive(timeout=10) == {"count": expected, "id": sid}
        client.close()

        async def closed() -> None:
            await handler.recorder.wait("close", timeout=20)

        server.call(closed)
    assert handler.recorder.of("close") == [("close", sid, 2)]  # still readable in on_close
    return sid, handler.recorder


def test_memory_backend_is_the_default_and_is_emptied() -> None:
    table = beaker.container.MemoryNamespaceManager.namespaces.dict
    sid, _ = run({"socket_io_close_timeout": 0.2}, transport="xhr-polling")
    assert sid not in table


def test_file_backend(tmp_path: Path) -> None:
    options = {"session.type": "file", "session.data_dir": str(tmp_path)}
    sid, _ = run({"session_opts": options})
    leftovers = [name for _, _, names in os.walk(tmp_path) for name in names if sid in name]
    assert leftovers == []


def test_file_backend_keeps_sessions_when_asked(tmp_path: Path) -> None:
    options = {"session.type": "file", "session.data_dir": str(tmp_path)}
    sid, _ = run({"session_opts": options, "socket_io_keep_sessions": True})
    assert open_session(sid, options)["count"] == 2


def test_redis_backend(redis_server: RedisServer) -> None:
    import redis

    options = {"session.type": "ext:redis", "session.url": redis_server.url}
    sid, _ = run({"session_opts": options})
    assert redis.Redis.from_url(redis_server.url).keys(f"*{sid}*") == []


class Untouched(SocketIOHandler):
    def on_message(self, message: Any) -> None:
        self.send(message)


def test_connections_that_never_touch_the_session_cost_nothing() -> None:
    table = beaker.container.MemoryNamespaceManager.namespaces.dict
    before = len(table)
    app = tornado.web.Application([Untouched.routes("socket.io")])
    with AppServer(app) as server:
        client = SocketIOClient(server.url)
        client.connect()
        client.send("x")
        assert client.receive() == "x"
        assert len(table) == before
        client.close()


@pytest.mark.parametrize("prefix", ["session.", "beaker.session."])
def test_session_opts_take_the_middleware_prefixes(prefix: str, tmp_path: Path) -> None:
    session = open_session("abc123", {f"{prefix}type": "file", f"{prefix}data_dir": str(tmp_path)})
    session["x"] = 1
    session.save()
    assert any(files for _, _, files in os.walk(tmp_path))


def test_session_opts_take_beakers_bare_keys_too(tmp_path: Path) -> None:
    """``{"type": "file", "data_dir": ...}``, as Beaker's own Session takes them, is not ignored."""
    sid, _ = run({"session_opts": {"type": "file", "data_dir": str(tmp_path)}, "socket_io_keep_sessions": True})
    assert open_session(sid, {"type": "file", "data_dir": str(tmp_path)})["count"] == 2
    assert any(files for _, _, files in os.walk(tmp_path))


@pytest.mark.parametrize("key", ["session.dir", "datadir", "session.tpye"])
def test_a_key_beaker_does_not_know_is_a_clear_error(key: str) -> None:
    with pytest.raises(ValueError, match=f"session_opts has '{re.escape(key)}'.*data_dir"):
        Settings.from_application({"session_opts": {key: "x"}})
