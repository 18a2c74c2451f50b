"""tornad_io.testing: the blocking client and AppServer, as a user's test would use them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import app_for, echo_handler
from tornad_io.registry import registry_for
from tornad_io.testing import AppServer, ClientClosed, SocketIOClient


@pytest.mark.parametrize("transport", SocketIOClient.TRANSPORTS)
def test_client_round_trip(transport: str) -> None:
    handler = echo_handler()
    app = app_for(handler, socket_io_close_timeout=0.5)
    with AppServer(app) as server:
        client = SocketIOClient(server.url, transport=transport)
        sid = client.connect()
        assert client.receive(timeout=5) == "welcome"
        sent: list[Any] = ["plain", "hi é中😀 end", {"a": [1, [2, "x"]]}, "~j~literal", "line1\nline2", "a+b c"]
        client.send(*sent)
        assert [client.receive(timeout=5) for _ in sent] == sent
        assert server.call(lambda: sid in registry_for(app))
        client.close()


def test_client_sees_a_server_close() -> None:
    handler = echo_handler()
    app = app_for(handler)
    with AppServer(app) as server:
        client = SocketIOClient(server.url)
        sid = client.connect()
        client.receive(timeout=5)
        server.call(lambda: registry_for(app).get(sid).handler.close())  # type: ignore[union-attr]
        assert client.wait_closed(timeout=5)
        with pytest.raises(ClientClosed):
            client.receive(timeout=1)


def test_unknown_transport_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="flashsocket"):
        SocketIOClient("http://127.0.0.1:1", transport="flashsocket")


def test_closing_a_polling_client_aborts_its_held_poll() -> None:
    handler = echo_handler()
    app = app_for(handler, socket_io_close_timeout=0.2)  # default 20 s poll timeout: only an abort is quick
    with AppServer(app) as server:
        client = SocketIOClient(server.url, transport="xhr-polling")
        sid = client.connect()
        client.receive(timeout=5)
        client.close()

        async def closed() -> None:
            await handler.recorder.wait("close", timeout=10)

        server.call(closed)
        assert handler.recorder.of("close") == [("close", sid)]


def test_stats_count_connections_by_transport_and_queued_messages() -> None:
    import tornad_io

    handler = echo_handler()
    app = app_for(handler)
    with AppServer(app) as server:
        clients = [SocketIOClient(server.url, transport=t) for t in ("websocket", "websocket", "xhr-polling")]
        for client in clients:
            client.connect()
            client.receive(timeout=5)
        counts = server.call(lambda: tornad_io.stats(app))
        assert counts.connections == 3
        assert counts.by_transport == {"websocket": 2, "xhr-polling": 1}
        for client in clients:
            client.close()


def test_using_the_client_before_connect_says_what_to_do() -> None:
    client = SocketIOClient("http://127.0.0.1:9", transport="xhr-polling")
    with pytest.raises(RuntimeError, match=r"connect\(\) before send"):
        client.send("too early")
    with pytest.raises(RuntimeError, match=r"connect\(\) before receive"):
        client.receive(timeout=0.1)
    client.close()
