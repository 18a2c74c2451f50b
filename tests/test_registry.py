"""One application, one world: rooms, and broadcasts that never cross to another application."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import tornado.httputil
import tornado.testing
import tornado.web
import tornado.websocket

import tornad_io
from tests.helpers import Recorder, messages, queued_callbacks_run
from tornad_io import SocketIOHandler
from tornad_io.codec import encode_frame
from tornad_io.connection import Connection, TransportKind
from tornad_io.registry import BROADCAST_SLICE, registry_for
from tornad_io.testing import AppServer, SocketIOClient


class Channels(SocketIOHandler):
    """Joins the room named in the URL; ``!say <room> <text>`` broadcasts to a room, ``!all`` to everyone."""

    recorder: Recorder

    async def on_open(self, *args: Any, **kwargs: Any) -> None:
        await queued_callbacks_run()  # a real suspension: rooms work from async hooks too
        room = kwargs.get("room")
        if room:
            self.join(room)
        self.send({"rooms": sorted(self.rooms)})

    def on_message(self, message: Any) -> None:
        command, _, rest = str(message).partition(" ")
        if command == "!say":
            room, _, text = rest.partition(" ")
            type(self).broadcast(text, room=room.split(","), exclude=self)
        elif command == "!all":
            type(self).broadcast(rest)
        elif command == "!join":
            self.join(rest)
            self.send({"rooms": sorted(self.rooms)})
        elif command == "!leave":
            self.leave(rest)
            self.send({"rooms": sorted(self.rooms)})

    def on_close(self) -> None:
        # Membership already ended: a goodbye to the old rooms does not reach this connection.
        type(self).broadcast(f"{self.session_id[:4]} left", room=self.rooms)
        self.recorder.add("close", sorted(self.rooms))


def channels_app(recorder: Recorder | None = None, **settings: Any) -> tuple[type[Channels], tornado.web.Application]:
    handler = type("Chan", (Channels,), {"recorder": recorder or Recorder()})
    return handler, tornado.web.Application([handler.routes("chat", r"(?P<room>[a-z]*)", "/")], **settings)


class TestRooms(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.recorder = Recorder()
        self.handler, app = channels_app(self.recorder)
        return app

    async def ws(self, room: str) -> tornado.websocket.WebSocketClientConnection:
        ws = await tornado.websocket.websocket_connect(self.get_url(f"/chat/{room}/websocket").replace("http", "ws"))
        assert messages(await ws.read_message())[1:] == [{"rooms": [room] if room else []}]  # type: ignore[arg-type]
        return ws

    async def say(self, ws: tornado.websocket.WebSocketClientConnection, text: str) -> None:
        await ws.write_message(encode_frame(text))

    async def next(self, ws: tornado.websocket.WebSocketClientConnection) -> list[Any]:
        return messages(await ws.read_message())  # type: ignore[arg-type]

    @tornado.testing.gen_test
    async def test_a_room_broadcast_reaches_its_members_only_and_polls_get_it_queued(self) -> None:
        kitchen, also_kitchen, garden = await self.ws("kitchen"), await self.ws("kitchen"), await self.ws("garden")
        handshake = await self.http_client.fetch(self.get_url("/chat/kitchen/xhr-polling//1"))
        polling_sid = messages(handshake.body)[0]
        await self.say(kitchen, "!say kitchen soup")
        assert await self.next(also_kitchen) == ["soup"]
        poll = await self.http_client.fetch(self.get_url(f"/chat/kitchen/xhr-polling/{polling_sid}/2"))
        assert messages(poll.body) == ["soup"]
        await self.say(garden, "!say garden roses")  # garden's only member is the sender, excluded
        await self.say(garden, "!all everyone")
        for ws in (kitchen, also_kitchen, garden):
            assert await self.next(ws) == ["everyone"]  # so "soup" and "roses" reached nobody else
        assert tornad_io.stats(self._app).rooms == 2
        for ws in (kitchen, also_kitchen, garden):
            ws.close()

    @tornado.testing.gen_test
    async def test_several_rooms_reach_each_member_once(self) -> None:
        sender, both, garden = await self.ws(""), await self.ws("kitchen"), await self.ws("garden")
        await self.say(both, "!join garden")
        assert await self.next(both) == [{"rooms": ["garden", "kitchen"]}]
        await self.say(sender, "!say kitchen,garden hello")
        assert await self.next(both) == ["hello"]
        assert await self.next(garden) == ["hello"]
        await self.say(both, "!leave kitchen")
        assert await self.next(both) == [{"rooms": ["garden"]}]
        await self.say(sender, "!say kitchen nobody")
        await self.say(sender, "!all marker")
        assert await self.next(both) == ["marker"]
        for ws in (sender, both, garden):
            ws.close()

    @tornado.testing.gen_test
    async def test_membership_ends_before_on_close(self) -> None:
        leaving, staying = await self.ws("kitchen"), await self.ws("kitchen")
        leaving.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", ["kitchen"])]  # on_close still knows its rooms
        [goodbye] = await self.next(staying)
        assert goodbye.endswith(" left")
        registry = registry_for(self._app)
        assert [len(registry.recipients(self.handler, frozenset({"kitchen"}), frozenset()))] == [1]
        staying.close()

    @tornado.testing.gen_test
    async def test_joining_after_the_close_does_nothing(self) -> None:
        ws = await self.ws("")
        [connection] = registry_for(self._app).connections()
        connection.close()
        connection.handler.join("late")  # type: ignore[attr-defined]
        assert tornad_io.stats(self._app).rooms == 0
        with pytest.raises(TypeError):
            registry_for(self._app).join(connection, 42)  # type: ignore[arg-type]
        ws.close()


class TestTheOldPositionalExclude(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.handler, app = channels_app()
        return app

    @tornado.testing.gen_test
    async def test_broadcast_message_handler_still_means_exclude(self) -> None:
        url = self.get_url("/chat//websocket").replace("http", "ws")
        first = await tornado.websocket.websocket_connect(url)
        first_sid = messages(await first.read_message())[0]  # type: ignore[arg-type]
        second = await tornado.websocket.websocket_connect(url)
        await second.read_message()
        sender = registry_for(self._app).get(first_sid).handler  # type: ignore[union-attr]
        self.handler.broadcast("not to the sender", sender)
        self.handler.broadcast("marker")
        assert messages(await first.read_message()) == ["marker"]  # type: ignore[arg-type]
        received = messages(await second.read_message())  # type: ignore[arg-type]
        if received == ["not to the sender"]:
            received += messages(await second.read_message())  # type: ignore[arg-type]
        assert received == ["not to the sender", "marker"]
        for ws in (first, second):
            ws.close()


def test_two_applications_in_one_process_never_see_each_other() -> None:
    """Same handler class, two applications on two loops: no broadcast or room crosses over."""
    handler, first_app = channels_app()
    second_app = tornado.web.Application([handler.routes("chat", r"(?P<room>[a-z]*)", "/")])
    with AppServer(first_app) as first, AppServer(second_app) as second:
        here = SocketIOClient(first.url, resource="chat/kitchen", transport="websocket")
        there = SocketIOClient(second.url, resource="chat/kitchen", transport="xhr-polling")
        for client in (here, there):
            client.connect()
            assert client.receive() == {"rooms": ["kitchen"]}
        listener = SocketIOClient(first.url, resource="chat/kitchen", transport="websocket")
        listener.connect()
        listener.receive()
        here.send("!say kitchen only in the first")
        here.send("!all everyone in the first")
        assert listener.receive() == "only in the first"
        assert listener.receive() == "everyone in the first"
        assert here.receive() == "everyone in the first"
        # From outside any hook: each server's loop finds its own application.
        second.call(lambda: handler.broadcast("second, from its loop"))
        assert there.receive() == "second, from its loop"
        # From a thread of its own, application= says which; delivery happens on that app's loop.
        thread = threading.Thread(target=handler.broadcast, args=("second again",), kwargs={"application": second_app})
        thread.start()
        thread.join()
        assert there.receive() == "second again"
        with pytest.raises(TimeoutError):
            there.receive(timeout=0.3)  # nothing of the first application arrived
        assert first.call(lambda: tornad_io.stats(first_app).connections) == 2
        assert second.call(lambda: tornad_io.stats(second_app).connections) == 1
        for client in (here, there, listener):
            client.close()


class TestAmbiguousClassBroadcast(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_a_class_mounted_twice_on_one_loop_asks_which_application(self) -> None:
        handler, first = channels_app()
        second = tornado.web.Application([handler.routes("chat")])
        for app in (first, second):
            registry_for(app).bind()
        with pytest.raises(RuntimeError, match="application="):
            handler.broadcast("which one?")
        handler.broadcast("this one", application=second)  # explicit is fine


class SliceEcho(SocketIOHandler):
    pass


class RecordingTransport:
    """A wire that takes every payload at once and remembers it."""

    protocol = "websocket"
    kind = TransportKind.SOCKET

    def __init__(self) -> None:
        self.payloads: list[str] = []

    def push_frames(self, frames: list[str]) -> None:
        self.payloads.append("".join(frames))

    def terminate(self, reason: str) -> None:
        pass

    def abort(self) -> None:
        pass


class TestLargeBroadcasts(tornado.testing.AsyncTestCase):
    @tornado.testing.gen_test
    async def test_a_broadcast_to_thousands_is_written_a_slice_per_loop_turn_and_keeps_order(self) -> None:
        app = tornado.web.Application([SliceEcho.routes("socket.io")])
        registry = registry_for(app)
        request = tornado.httputil.HTTPServerRequest(
            start_line=tornado.httputil.RequestStartLine("GET", "/", "HTTP/1.1"),
            headers=tornado.httputil.HTTPHeaders({"Host": "127.0.0.1"}),
        )
        wires = []
        for _ in range(BROADCAST_SLICE * 2 + 100):
            connection = Connection(SliceEcho, registry, app, request, "websocket")
            wire = RecordingTransport()
            connection.start(wire, (), {})
            wire.payloads.clear()  # the session id
            wires.append((connection, wire))
        SliceEcho.broadcast("hello", application=app)
        written = [wire for _, wire in wires if wire.payloads]
        assert len(written) == BROADCAST_SLICE  # the rest wait for the next IOLoop turns...
        last_connection, last_wire = wires[-1]
        last_connection.send("after")  # ...but are already queued: a later send comes after the broadcast
        for _ in range(10):
            await queued_callbacks_run()
        hello = encode_frame("hello")
        assert all(wire.payloads == [hello] for _, wire in wires[:-1])
        assert last_wire.payloads == [hello + encode_frame("after")]
        for connection, _ in wires:
            connection.close()
