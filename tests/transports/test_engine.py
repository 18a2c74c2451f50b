"""The Engine.IO v4 endpoint over real HTTP and WebSocket: what socket.io-client 3.x/4.x sees on the wire.

Requests are written by hand (Tornado's HTTP and WebSocket clients), so every
byte the server answers is checked: the handshake, ``\\x1e`` payloads, base64
binary records, the noop that releases a poll, the JSON errors, CORS, the
upgrade from polling (nothing lost or duplicated across it), pings, and the
packets that end a session.  The websocket tests run on both readers
(``socket_io_websocket_takeover`` on and off), as the 0.6 ones do.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import simplejson
import tornado.httpclient
import tornado.testing
import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPResponse

from tests.helpers import Recorder, app_for, messages
from tornad_io import SocketIOHandler
from tornad_io.codec import encode_frame
from tornad_io.connection import State
from tornad_io.registry import registry_for

FAST: dict[str, Any] = {"socket_io_poll_timeout": 5.0, "socket_io_close_timeout": 5.0}
RS = "\x1e"


def engine_handler() -> type[SocketIOHandler]:
    """A fresh handler class that records every hook, with the transport it ran on."""

    class Engine(SocketIOHandler):
        recorder = Recorder()

        def on_open(self, *args: Any, **kwargs: Any) -> None:
            self.recorder.add("open", args, kwargs, self.protocol)
            self.send("welcome")

        def on_message(self, message: Any) -> Any:
            self.recorder.add("message", message, self.protocol)
            return None

        def on_event(self, event: str, *args: Any) -> Any:
            self.recorder.add("event", event, args)
            if event == "echo":
                self.emit("echo", *args)
            return None

        def on_close(self) -> None:
            self.recorder.add("close", self.session_id)

    return Engine


def records(body: bytes) -> list[str | bytes]:
    """The packets of a polling answer: text records as they are, ``b`` records decoded to bytes."""
    text = body.decode("utf-8")
    return [base64.b64decode(r[1:], validate=True) if r.startswith("b") else r for r in text.split(RS)]


def opening(packet: str | bytes) -> dict[str, Any]:
    assert isinstance(packet, str) and packet.startswith("0"), packet
    fields: dict[str, Any] = simplejson.loads(packet[1:])
    return fields


class EngineTestCase(tornado.testing.AsyncHTTPTestCase):
    settings: dict[str, Any] = {}

    def get_app(self) -> tornado.web.Application:
        self.handler = engine_handler()
        self.recorder: Recorder = self.handler.recorder  # type: ignore[attr-defined]
        return app_for(self.handler, **{**FAST, **self.settings})

    def url(self, query: str, resource: str = "/socket.io/") -> str:
        return self.get_url(f"{resource}?EIO=4&{query}")

    async def request(self, query: str, **kwargs: Any) -> HTTPResponse:
        return await self.http_client.fetch(self.url(query), raise_error=False, **kwargs)

    async def handshake(self) -> dict[str, Any]:
        response = await self.request("transport=polling&t=1")
        assert response.code == 200, response.body
        [packet] = records(response.body)
        return opening(packet)

    async def poll(self, sid: str) -> list[str | bytes]:
        response = await self.request(f"transport=polling&sid={sid}")
        assert response.code == 200, response.body
        return records(response.body)

    async def post(self, sid: str, *packets: str | bytes) -> HTTPResponse:
        body = RS.join(
            "b" + base64.b64encode(packet).decode("ascii") if isinstance(packet, bytes) else packet
            for packet in packets
        )
        return await self.request(
            f"transport=polling&sid={sid}",
            method="POST",
            body=body.encode("utf-8"),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )

    async def connected_poller(self) -> str:
        """A polling session past CONNECT: its sid, with the welcome already read."""
        sid: str = (await self.handshake())["sid"]
        assert (await self.post(sid, "40")).code == 200
        assert await self.poll(sid) == [f'40{{"sid":"{sid}"}}', '42["message","welcome"]']
        return sid

    async def held_poll(self, sid: str) -> asyncio.Future[list[str | bytes]]:
        """A poll, once the server holds it."""
        held = asyncio.ensure_future(self.poll(sid))
        connection = self.connection(sid)
        while connection._transport is None:
            await asyncio.sleep(0.01)  # wait-ok: until the poll is held (a condition, bounded by the test)
        return held

    async def websocket(self, sid: str | None = None, **headers: str) -> tornado.websocket.WebSocketClientConnection:
        query = "transport=websocket" + (f"&sid={sid}" if sid else "")
        url = self.url(query).replace("http", "ws", 1)
        return await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url, headers=headers))

    async def read(self, ws: tornado.websocket.WebSocketClientConnection) -> str | bytes:
        message = await asyncio.wait_for(ws.read_message(), 10)
        assert message is not None, f"the server closed the websocket ({ws.close_code} {ws.close_reason})"
        return message

    def connection(self, sid: str) -> Any:
        found = registry_for(self._app).get(sid)
        assert found is not None, "the session is gone"
        return found


class TestPollingHandshake(EngineTestCase):
    settings = {"socket_io_ping_interval": 12.5, "socket_io_ping_timeout": 7.25, "socket_io_max_message_size": 4096}

    @tornado.testing.gen_test
    async def test_the_open_packet_carries_the_session_and_the_settings(self) -> None:
        response = await self.request("transport=polling&t=OtV3xq")
        assert response.code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert response.headers["Cache-Control"] == "no-store"
        [packet] = records(response.body)
        fields = opening(packet)
        assert list(fields) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
        assert fields["upgrades"] == ["websocket"]
        assert fields["pingInterval"] == 12500 and fields["pingTimeout"] == 7250
        assert fields["maxPayload"] == 4096
        connection = self.connection(fields["sid"])
        assert connection.protocol == "polling" and connection.state is State.CONNECTING
        assert self.recorder.of("open") == []  # on_open waits for the client's CONNECT

    @tornado.testing.gen_test
    async def test_connect_runs_on_open_and_a_payload_carries_several_packets(self) -> None:
        sid = (await self.handshake())["sid"]
        response = await self.post(sid, "40", '42["message","one"]', '42["shout",{"n":1.5}]')
        assert response.code == 200 and response.body == b"ok"
        await self.recorder.wait("event")
        assert self.recorder.of("open") == [("open", (), {}, "polling")]
        assert self.recorder.of("message") == [("message", "one", "polling")]
        [(_, name, args)] = self.recorder.of("event")
        assert name == "shout" and str(args[0]["n"]) == "1.5"  # a Decimal, as for 0.6
        assert await self.poll(sid) == [f'40{{"sid":"{sid}"}}', '42["message","welcome"]']

    @tornado.testing.gen_test
    async def test_auth_reaches_on_open_only_when_sent(self) -> None:
        with_auth = (await self.handshake())["sid"]
        await self.post(with_auth, '40{"token":"abc"}')
        without = (await self.handshake())["sid"]
        await self.post(without, "40")
        await self.poll(without)
        opens = [kwargs for _, _, kwargs, _ in self.recorder.of("open")]
        assert opens == [{"auth": {"token": "abc"}}, {}]

    @tornado.testing.gen_test
    async def test_everything_queued_between_polls_comes_in_one_payload(self) -> None:
        sid = await self.connected_poller()
        handler = self.connection(sid).handler
        handler.send("a\u00e9\u4e2d\U0001f600")
        handler.send({"k": [1, "x"]})
        handler.emit("news", 1, "two")
        assert await self.poll(sid) == [
            '42["message","a\u00e9\u4e2d\U0001f600"]',
            '42["message",{"k":[1,"x"]}]',
            '42["news",1,"two"]',
        ]

    @tornado.testing.gen_test
    async def test_binary_travels_as_base64_records_both_ways(self) -> None:
        sid = await self.connected_poller()
        payload = bytes(range(256))
        response = await self.post(sid, '451-["echo",{"data":{"_placeholder":true,"num":0}}]', payload)
        assert response.code == 200
        await self.recorder.wait("event")
        assert self.recorder.of("event") == [("event", "echo", ({"data": payload},))]
        answer = await self.poll(sid)
        assert answer == ['451-["echo",{"data":{"_placeholder":true,"num":0}}]', payload]

    @tornado.testing.gen_test
    async def test_a_second_poll_releases_the_first_with_a_noop(self) -> None:
        sid = await self.connected_poller()
        first = await self.held_poll(sid)
        connection = self.connection(sid)
        second = asyncio.ensure_future(self.poll(sid))
        assert await first == ["6"]
        connection.handler.send("after")
        assert await second == ['42["message","after"]']

    @tornado.testing.gen_test
    async def test_an_empty_post_body_is_a_bad_request(self) -> None:
        sid = await self.connected_poller()
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 POST .*Malformed Engine.IO payload"):
            response = await self.request(f"transport=polling&sid={sid}", method="POST", body=b"")
        assert response.code == 400
        assert simplejson.loads(response.body) == {"code": 3, "message": "Bad request"}


class TestPollTimeout(EngineTestCase):
    settings = {"socket_io_poll_timeout": 0.2}

    @tornado.testing.gen_test
    async def test_an_idle_poll_is_answered_with_a_noop(self) -> None:
        sid = await self.connected_poller()
        assert await self.poll(sid) == ["6"]  # never an empty body: the client would take it for an error


class TestErrors(EngineTestCase):
    async def error(self, query: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        response = await self.request(query, method=method, body=body)
        assert response.headers["Content-Type"] == "application/json"
        answer: dict[str, Any] = simplejson.loads(response.body)
        return response.code, answer

    @tornado.testing.gen_test
    async def test_an_unknown_sid_is_400_code_1_for_polls_posts_and_websockets(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 (GET|POST) /socket.io/: Unknown or expired"):
            assert await self.error("transport=polling&sid=nope") == (400, {"code": 1, "message": "Session ID unknown"})
            assert await self.error("transport=polling&sid=nope", "POST", b"40") == (
                400,
                {"code": 1, "message": "Session ID unknown"},
            )
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET /socket.io/: Unknown or expired session"):
            with self.assertRaises(tornado.httpclient.HTTPClientError) as refused:
                await self.websocket("nope")
        assert refused.exception.code == 400

    @tornado.testing.gen_test
    async def test_other_protocol_versions_are_refused(self) -> None:
        for version in ("3", "5", "x"):
            url = self.get_url(f"/socket.io/?EIO={version}&transport=polling")
            with tornado.testing.ExpectLog(
                "tornad_io.transports.http", rf"400 GET /socket.io/: Unsupported protocol version \(EIO={version}; "
                r"served: EIO=4, i.e. socket.io-client 3.x and 4.x, and the Socket.IO 0.6 URLs\)"
            ):
                response = await self.http_client.fetch(url, raise_error=False)
            assert response.code == 400
            assert simplejson.loads(response.body) == {"code": 5, "message": "Unsupported protocol version"}

    @tornado.testing.gen_test
    async def test_an_unknown_transport_is_400_code_0(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET .*Transport unknown .*transport=foo"):
            assert await self.error("transport=foo") == (400, {"code": 0, "message": "Transport unknown"})

    @tornado.testing.gen_test
    async def test_a_websocket_url_fetched_without_upgrade_is_400_code_3(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET .*without 'Upgrade: websocket'"):
            assert await self.error("transport=websocket") == (400, {"code": 3, "message": "Bad request"})

    @tornado.testing.gen_test
    async def test_a_post_without_sid_is_refused(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 POST .*A POST needs a session id"):
            code, body = await self.error("transport=polling", "POST", b"40")
        assert code == 400 and body["code"] == 3

    @tornado.testing.gen_test
    async def test_a_0_6_session_is_not_an_engine_io_one(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        sid06 = messages(response.body)[0]
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET .*another transport"):
            code, _ = await self.error(f"transport=polling&sid={sid06}")
        assert code == 400
        assert self.connection(sid06).state is State.OPEN  # untouched


class TestV5Disabled(EngineTestCase):
    settings = {"socket_io_v5": False}

    @tornado.testing.gen_test
    async def test_polling_and_websocket_are_403_and_logged(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.http", r"403 GET /socket.io/: .*socket_io_v5 is False"):
            response = await self.request("transport=polling")
        assert response.code == 403
        assert simplejson.loads(response.body) == {"code": 4, "message": "Forbidden"}
        with tornado.testing.ExpectLog("tornad_io.transports.http", r"403 GET /socket.io/: .*socket_io_v5 is False"):
            with self.assertRaises(tornado.httpclient.HTTPClientError) as refused:
                await self.websocket()
        assert refused.exception.code == 403
        with tornado.testing.ExpectLog("tornad_io.transports.http", r"403 GET .*socket_io_v5 is False"):
            assert (await self.request("transport=polling&EIO=3")).code == 403

    @tornado.testing.gen_test
    async def test_the_0_6_urls_still_work(self) -> None:
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        assert messages(response.body)[1] == "welcome"


class TestWebSocketNotEnabled(EngineTestCase):
    settings = {"enabled_protocols": ["xhr-polling"]}

    @tornado.testing.gen_test
    async def test_no_upgrade_is_offered_and_the_websocket_is_refused(self) -> None:
        fields = await self.handshake()
        assert fields["upgrades"] == []
        for sid in (None, fields["sid"]):
            with tornado.testing.ExpectLog("tornad_io.transports.http", "403 GET .*: websocket is not enabled"):
                with self.assertRaises(tornado.httpclient.HTTPClientError) as refused:
                    await self.websocket(sid)
            assert refused.exception.code == 403
        with tornado.testing.ExpectLog("tornad_io.transports.http", "403 GET /socket.io/: websocket is not enabled"):
            response = await self.request("transport=websocket")
        assert response.code == 403
        assert simplejson.loads(response.body) == {"code": 4, "message": "Forbidden"}  # as a disabled polling


class TestPollingNotEnabled(EngineTestCase):
    settings = {"enabled_protocols": ["websocket"]}

    @tornado.testing.gen_test
    async def test_the_polling_handshake_is_refused(self) -> None:
        with tornado.testing.ExpectLog("tornad_io.transports.http", "403 GET .*xhr-polling is not enabled"):
            response = await self.request("transport=polling")
        assert response.code == 403
        assert simplejson.loads(response.body)["code"] == 4
        ws = await self.websocket()
        assert opening(await self.read(ws))["upgrades"] == []
        ws.close()


class TestOrigins(EngineTestCase):
    """The 0.6 rules, unchanged: ``socket_io_origins``, same origin by default, CORS echoed."""

    @tornado.testing.gen_test
    async def test_by_default_only_the_server_s_own_origin(self) -> None:
        own = self.get_url("").rstrip("/")
        response = await self.request("transport=polling", headers={"Origin": own})
        assert response.code == 200
        assert response.headers["Access-Control-Allow-Origin"] == own
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        with tornado.testing.ExpectLog("tornad_io.transports.http", "403 GET .*Origin not allowed"):
            refused = await self.request("transport=polling", headers={"Origin": "http://evil.example"})
        assert refused.code == 403 and "Access-Control-Allow-Origin" not in refused.headers
        ws = await self.websocket(Origin=own)
        opening(await self.read(ws))
        ws.close()
        with tornado.testing.ExpectLog("tornad_io.transports.websocket", "403 websocket upgrade from origin"):
            with self.assertRaises(tornado.httpclient.HTTPClientError) as error:
                await self.websocket(Origin="http://evil.example")
        assert error.exception.code == 403


class TestOriginList(EngineTestCase):
    settings = {"socket_io_origins": ["app.example.com:*"]}

    @tornado.testing.gen_test
    async def test_allowed_origins_get_cors_on_every_request_and_preflight(self) -> None:
        origin = {"Origin": "https://app.example.com"}
        response = await self.request("transport=polling", headers=origin)
        assert response.code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert response.headers["Vary"] == "Origin"
        sid = opening(records(response.body)[0])["sid"]
        preflight = await self.request(
            f"transport=polling&sid={sid}",
            method="OPTIONS",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.code == 200
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        sent = await self.request(f"transport=polling&sid={sid}", method="POST", body=b"40", headers=origin)
        assert sent.code == 200 and sent.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        with tornado.testing.ExpectLog("tornad_io.transports.http", "403 POST .*Origin not allowed"):
            other = await self.request(
                f"transport=polling&sid={sid}", method="POST", body=b"3", headers={"Origin": "http://evil.example"}
            )
        assert other.code == 403
        ws = await self.websocket(**origin)
        opening(await self.read(ws))
        ws.close()


class TestWebSocket(EngineTestCase):
    """A session on its own websocket (``transport=websocket`` without sid)."""

    settings: dict[str, Any] = {"socket_io_max_message_size": 8192}

    @tornado.testing.gen_test
    async def test_handshake_connect_events_and_binary_messages(self) -> None:
        ws = await self.websocket()
        fields = opening(await self.read(ws))
        assert fields["upgrades"] == [] and fields["maxPayload"] == 8192
        sid = fields["sid"]
        await ws.write_message('40{"who":"me"}')
        assert await self.read(ws) == f'40{{"sid":"{sid}"}}'
        assert await self.read(ws) == '42["message","welcome"]'
        assert self.recorder.of("open") == [("open", (), {"auth": {"who": "me"}}, "websocket")]
        await ws.write_message('451-["echo",{"_placeholder":true,"num":0},"text"]')
        await ws.write_message(b"\x00\xff", binary=True)
        assert await self.read(ws) == '451-["echo",{"_placeholder":true,"num":0},"text"]'
        assert await self.read(ws) == b"\x00\xff"
        assert self.recorder.of("event") == [("event", "echo", (b"\x00\xff", "text"))]
        ws.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]

    @tornado.testing.gen_test
    async def test_another_namespace_is_refused_and_the_main_one_still_connects(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        await ws.write_message("40/admin,")
        assert await self.read(ws) == '44/admin,{"message":"Invalid namespace"}'
        await ws.write_message("40/admin,{}")
        assert await self.read(ws) == '44/admin,{"message":"Invalid namespace"}'
        assert self.recorder.of("open") == []
        await ws.write_message("40")
        assert await self.read(ws) == f'40{{"sid":"{sid}"}}'
        ws.close()

    @tornado.testing.gen_test
    async def test_client_disconnect_runs_on_close_once(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        await ws.write_message("40")
        await self.read(ws)
        await self.read(ws)
        await ws.write_message("41")
        assert await ws.read_message() is None
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]
        assert sid not in registry_for(self._app)

    @tornado.testing.gen_test
    async def test_server_close_says_disconnect_then_closes(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        await ws.write_message("40")
        await self.read(ws)
        await self.read(ws)
        self.connection(sid).handler.close()
        assert await self.read(ws) == "41"  # the client will not reconnect
        assert await ws.read_message() is None
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1

    @tornado.testing.gen_test
    async def test_a_session_that_never_connects_ends_without_on_close(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        ws.close()
        while sid in registry_for(self._app):
            await asyncio.sleep(0.01)  # wait-ok: until the server saw the socket go
        assert self.recorder.events == []

    @tornado.testing.gen_test
    async def test_invalid_socket_io_packets_close_the_session_with_a_log_line(self) -> None:
        for bad in ("4garbage", '42{"not":"an array"}', '42["connect"]', "47", b"\x00 unannounced attachment"):
            ws = await self.websocket()
            opening(await self.read(ws))
            await ws.write_message("40")
            await self.read(ws)
            await self.read(ws)
            with tornado.testing.ExpectLog("tornad_io.transports.messages", "closing .*: invalid Socket.IO packet"):
                await ws.write_message(bad, binary=isinstance(bad, bytes))
                assert await ws.read_message() is None
            assert ws.close_code == 1007, bad
        await self.recorder.wait("close")
        assert len(registry_for(self._app)) == 0

    @tornado.testing.gen_test
    async def test_invalid_engine_io_packets_close_the_session_with_a_log_line(self) -> None:
        for bad in ("", "9", "bnot base64!"):
            ws = await self.websocket()
            opening(await self.read(ws))
            with tornado.testing.ExpectLog("tornad_io.transports.messages", "closing .*: malformed Engine.IO packet"):
                await ws.write_message(bad)
                assert await ws.read_message() is None
            assert ws.close_code == 1007, repr(bad)
        while len(registry_for(self._app)):
            await asyncio.sleep(0.01)  # wait-ok: until the server saw the last socket go

    @tornado.testing.gen_test
    async def test_a_message_over_the_size_limit_closes_the_websocket(self) -> None:
        ws = await self.websocket()
        opening(await self.read(ws))
        await ws.write_message("40")
        await self.read(ws)
        await self.read(ws)
        await ws.write_message('42["message","' + "x" * 9000 + '"]')
        assert await ws.read_message() is None
        assert ws.close_code == 1009
        assert self.recorder.of("message") == []


class TestWebSocketOnTornadosReader(TestWebSocket):
    settings = {**TestWebSocket.settings, "socket_io_websocket_takeover": False}


class TestPolling(EngineTestCase):
    settings = {"socket_io_max_message_size": 8192, "socket_io_max_frames": 5, "socket_io_max_buffer_size": 10_000}

    @tornado.testing.gen_test
    async def test_more_packets_than_socket_io_max_frames_are_refused(self) -> None:
        sid = await self.connected_poller()
        assert (await self.post(sid, *["3"] * 5)).code == 200
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 POST .*6 packets in one payload, more than"):
            response = await self.post(sid, *['42["message","x"]'] * 6)
        assert response.code == 400
        assert self.recorder.of("message") == []

    @tornado.testing.gen_test
    async def test_a_client_that_stops_polling_is_closed_when_its_queue_outgrows_the_buffer(self) -> None:
        sid = await self.connected_poller()
        handler = self.connection(sid).handler
        with tornado.testing.ExpectLog("tornad_io.connection", "closing polling .*socket_io_max_buffer_size is 10000"):
            for _ in range(20):
                handler.send("x" * 1000)
        await self.recorder.wait("close")
        assert sid not in registry_for(self._app)

    @tornado.testing.gen_test
    async def test_invalid_packets_close_the_session_with_a_log_line(self) -> None:
        for body, why in (
            ("4garbage", "Invalid Socket.IO packet"),
            ("9", "Malformed Engine.IO payload"),
            ("40\x1e", "Malformed Engine.IO payload"),
            ("bnot base64!", "Malformed Engine.IO payload"),
        ):
            sid = await self.connected_poller()
            held = await self.held_poll(sid)
            with tornado.testing.ExpectLog("tornad_io.transports.http", f"400 POST .*{why}"):
                response = await self.request(f"transport=polling&sid={sid}", method="POST", body=body.encode())
            assert response.code == 400, body
            assert simplejson.loads(response.body) == {"code": 3, "message": "Bad request"}
            assert await held == ["1"], body  # the held poll: Engine.IO CLOSE
            assert sid not in registry_for(self._app)
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 4

    @tornado.testing.gen_test
    async def test_a_body_over_the_size_limit_is_413(self) -> None:
        sid = await self.connected_poller()
        with tornado.testing.ExpectLog("tornad_io.transports.http", "413 POST .*Payload too large"):
            response = await self.post(sid, '42["message","' + "x" * 9000 + '"]')
        assert response.code == 413
        assert self.recorder.of("message") == []

    @tornado.testing.gen_test
    async def test_client_close_packet_ends_the_session(self) -> None:
        sid = await self.connected_poller()
        held = await self.held_poll(sid)
        assert (await self.post(sid, "1")).code == 200
        assert await held == ["1"]
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]

    @tornado.testing.gen_test
    async def test_server_close_answers_the_held_poll_with_disconnect(self) -> None:
        sid = await self.connected_poller()
        held = await self.held_poll(sid)
        self.connection(sid).handler.close()
        assert await held == ["41"]
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_server_close_between_polls_still_says_disconnect(self) -> None:
        # The common pattern: send a last message, then close, while no poll is held.
        sid = await self.connected_poller()
        handler = self.connection(sid).handler
        handler.send("bye")
        handler.close()
        answers = await self.poll(sid)
        assert answers[:2] == ['42["message","bye"]', "41"], answers
        await self.recorder.wait("close")


class TestFarewellExpiry(EngineTestCase):
    settings = {"socket_io_close_timeout": 1.0}  # (long enough for the handshake on a busy machine)

    @tornado.testing.gen_test
    async def test_a_farewell_nobody_polls_for_is_dropped_after_the_close_timeout(self) -> None:
        sid = await self.connected_poller()
        registry = registry_for(self._app)
        dropped = asyncio.Event()

        class Farewells(dict[str, Any]):
            """The registry's farewells, telling the test when one leaves (only the expiry takes it here)."""

            def pop(self, *args: Any) -> Any:
                dropped.set()
                return super().pop(*args)

        registry._farewells = Farewells()
        self.connection(sid).handler.close()  # between polls: the DISCONNECT waits for the next poll
        assert sid in registry._farewells
        await asyncio.wait_for(dropped.wait(), 10)
        assert registry._farewells == {}
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET .*"):
            response = await self.request(f"transport=polling&sid={sid}")
        assert response.code == 400
        assert simplejson.loads(response.body)["code"] == 1  # Session ID unknown: the client reconnects


class TestUpgrade(EngineTestCase):
    @tornado.testing.gen_test
    async def test_probe_upgrade_and_nothing_lost_or_duplicated(self) -> None:
        sid = await self.connected_poller()
        handler = self.connection(sid).handler
        held = await self.held_poll(sid)
        ws = await self.websocket(sid)
        handler.send("m1")  # answers the held poll
        got: list[str | bytes] = list(await held)
        held = await self.held_poll(sid)
        await ws.write_message("2probe")
        assert await self.read(ws) == "3probe"
        got += [packet for packet in await held if packet != "6"]  # the probe releases the poll
        for n in (2, 3, 4):
            handler.send(f"m{n}")  # queued: the client is switching
        handler.emit("bin", b"\x01\x02")
        assert self.connection(sid).protocol == "polling"
        await ws.write_message("5")
        for _ in range(5):
            got.append(await self.read(ws))
        assert self.connection(sid).protocol == "websocket" and handler.protocol == "websocket"
        handler.send("m5")
        got.append(await self.read(ws))
        assert got == [
            '42["message","m1"]',
            '42["message","m2"]',
            '42["message","m3"]',
            '42["message","m4"]',
            '451-["bin",{"_placeholder":true,"num":0}]',
            b"\x01\x02",
            '42["message","m5"]',
        ]
        await ws.write_message('42["message","over the websocket"]')
        await self.recorder.wait("message")
        assert self.recorder.of("message") == [("message", "over the websocket", "websocket")]
        assert self.recorder.of("open") == [("open", (), {}, "polling")]
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET .*another transport"):
            assert (await self.request(f"transport=polling&sid={sid}")).code == 400
        ws.close()
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1

    @tornado.testing.gen_test
    async def test_a_poll_sent_while_probing_is_answered_at_once(self) -> None:
        # The client may send one more poll before it reads 3probe: it must not wait for the poll timeout.
        sid = await self.connected_poller()
        handler = self.connection(sid).handler
        ws = await self.websocket(sid)
        await ws.write_message("2probe")
        assert await self.read(ws) == "3probe"
        handler.send("m1")
        got: list[str | bytes] = [packet for packet in await self.poll(sid) if packet != "6"]
        assert await self.poll(sid) == ["6"]
        handler.send("m2")
        await ws.write_message("5")
        got.append(await self.read(ws))
        assert got == ['42["message","m1"]', '42["message","m2"]']
        ws.close()

    @tornado.testing.gen_test
    async def test_packets_on_a_probing_websocket_do_not_count(self) -> None:
        sid = await self.connected_poller()
        ws = await self.websocket(sid)
        await ws.write_message('42["message","too early"]')
        await ws.write_message("2probe")
        assert await self.read(ws) == "3probe"
        assert self.recorder.of("message") == []
        assert self.connection(sid).protocol == "polling"
        ws.close()

    @tornado.testing.gen_test
    async def test_a_websocket_session_cannot_be_upgraded_again(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        with tornado.testing.ExpectLog("tornad_io.transports.http", "400 GET .*not polling"):
            with self.assertRaises(tornado.httpclient.HTTPClientError) as refused:
                await self.websocket(sid)
        assert refused.exception.code == 400
        ws.close()


    @tornado.testing.gen_test
    async def test_the_sessions_end_closes_its_probe(self) -> None:
        # A probe whose client went quiet has no pings of its own: the session's end must free it.
        sid = await self.connected_poller()
        ws = await self.websocket(sid)
        await ws.write_message("2probe")
        assert await self.read(ws) == "3probe"
        self.connection(sid).handler.close()
        assert await asyncio.wait_for(ws.read_message(), 10) is None
        await self.recorder.wait("close")

    @tornado.testing.gen_test
    async def test_one_probe_at_a_time_the_newest_wins(self) -> None:
        sid = await self.connected_poller()
        first = await self.websocket(sid)
        second = await self.websocket(sid)
        assert await asyncio.wait_for(first.read_message(), 10) is None  # replaced, and closed
        await second.write_message("2probe")
        assert await self.read(second) == "3probe"
        await second.write_message("5")
        handler = self.connection(sid).handler
        handler.send("over the second")
        assert await self.read(second) == '42["message","over the second"]'
        assert handler.protocol == "websocket"
        second.close()
        await self.recorder.wait("close")


class TestUpgradeOnTornadosReader(TestUpgrade):
    settings = {"socket_io_websocket_takeover": False}


PINGS: dict[str, Any] = {"socket_io_ping_interval": 0.2, "socket_io_ping_timeout": 0.3}


class TestWebSocketPings(EngineTestCase):
    settings = PINGS

    @tornado.testing.gen_test
    async def test_pings_every_interval_and_answered_ones_keep_the_session(self) -> None:
        ws = await self.websocket()
        fields = opening(await self.read(ws))
        assert fields["pingInterval"] == 200 and fields["pingTimeout"] == 300
        for _ in range(3):  # from the handshake on, before CONNECT too
            assert await self.read(ws) == "2"
            await ws.write_message("3")
        await ws.write_message("40")
        while (packet := await self.read(ws)) == "2":
            await ws.write_message("3")
        assert packet == f'40{{"sid":"{fields["sid"]}"}}'
        assert self.recorder.of("close") == []
        ws.close()

    @tornado.testing.gen_test
    async def test_a_missing_pong_ends_the_session(self) -> None:
        ws = await self.websocket()
        opening(await self.read(ws))
        await ws.write_message("40")
        while (packet := await self.read(ws)) != "2":
            assert isinstance(packet, str) and packet.startswith("4")  # the CONNECT answer and the welcome
        assert await ws.read_message() is None  # no pong within the timeout
        await self.recorder.wait("close")
        assert len(self.recorder.of("close")) == 1


class TestWebSocketPingsOnTornadosReader(TestWebSocketPings):
    settings = {**PINGS, "socket_io_websocket_takeover": False}


class TestPollingPings(EngineTestCase):
    settings = PINGS

    @tornado.testing.gen_test
    async def test_answered_pings_keep_the_session(self) -> None:
        sid = (await self.handshake())["sid"]
        for _ in range(3):
            assert await self.poll(sid) == ["2"]
            assert (await self.post(sid, "3")).code == 200
        assert sid in registry_for(self._app)

    @tornado.testing.gen_test
    async def test_a_missing_pong_ends_the_session(self) -> None:
        sid = (await self.handshake())["sid"]
        assert (await self.post(sid, "40")).code == 200
        assert "2" in await self.poll(sid) or await self.poll(sid) == ["2"]
        # No pong: the held poll says CLOSE (or, had it come after the deadline, the session is unknown).
        response = await self.request(f"transport=polling&sid={sid}")
        assert (response.code, response.body) in ((200, b"1"), (400, b'{"code": 1, "message": "Session ID unknown"}'))
        await self.recorder.wait("close")
        assert sid not in registry_for(self._app)


class Picky(SocketIOHandler):
    """Refuses a CONNECT whose auth says so; opens slowly when told to."""

    recorder = Recorder()
    gate: asyncio.Event | None = None

    async def on_open(self, *args: Any, **kwargs: Any) -> Any:
        auth = kwargs.get("auth") or {}
        self.recorder.add("open", auth)
        self.send(f"from on_open {auth}")
        if auth.get("slow"):
            assert self.gate is not None
            await self.gate.wait()
        if auth.get("close"):
            self.close()
        return not auth.get("refuse")

    def on_message(self, message: Any) -> None:
        self.recorder.add("message", message)

    def on_close(self) -> None:
        self.recorder.add("close", self.session_id)


class TestConnectStates(EngineTestCase):
    def get_app(self) -> tornado.web.Application:
        self.handler = type("Picky", (Picky,), {"recorder": Recorder()})
        self.recorder = self.handler.recorder  # type: ignore[attr-defined]
        return app_for(self.handler, **FAST)

    @tornado.testing.gen_test
    async def test_a_refused_connect_can_be_followed_by_another_on_the_same_session(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        await ws.write_message('40{"refuse":true}')
        assert await self.read(ws) == '44{"message":"Connection refused by the server"}'
        await ws.write_message('42["message","ignored: not connected"]')
        await ws.write_message("40")
        assert await self.read(ws) == f'40{{"sid":"{sid}"}}'
        assert await self.read(ws) == '42["message","from on_open {}"]'  # the refused one's message never left
        await ws.write_message('42["message","counted"]')
        await self.recorder.wait("message")
        assert self.recorder.of("message") == [("message", "counted")]
        ws.close()
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]  # once, for the accepted CONNECT
        assert [auth for _, auth in self.recorder.of("open")] == [{"refuse": True}, {}]

    @tornado.testing.gen_test
    async def test_messages_wait_for_a_slow_on_open_and_the_client_hears_it_first(self) -> None:
        self.handler.gate = asyncio.Event()  # type: ignore[attr-defined]
        sid = (await self.handshake())["sid"]
        await self.post(sid, '40{"slow":1}', '42["message","early"]')
        await self.recorder.wait("open")
        held = await self.held_poll(sid)
        assert not held.done() and self.recorder.of("message") == []
        self.handler.gate.set()  # type: ignore[attr-defined]
        assert await held == [f'40{{"sid":"{sid}"}}', '42["message","from on_open {\'slow\': 1}"]']
        await self.recorder.wait("message")
        assert self.recorder.of("message") == [("message", "early")]

    @tornado.testing.gen_test
    async def test_close_from_on_open_connects_then_disconnects_the_client(self) -> None:
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        await ws.write_message('40{"close":1}')
        assert await self.read(ws) == f'40{{"sid":"{sid}"}}'
        assert await self.read(ws) == '42["message","from on_open {\'close\': 1}"]'
        assert await self.read(ws) == "41"
        assert await ws.read_message() is None
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]

    @tornado.testing.gen_test
    async def test_a_client_leaving_while_on_open_runs_gets_on_close_after_it(self) -> None:
        self.handler.gate = asyncio.Event()  # type: ignore[attr-defined]
        ws = await self.websocket()
        sid = opening(await self.read(ws))["sid"]
        await ws.write_message('40{"slow":1}')
        await self.recorder.wait("open")
        connection = self.connection(sid)
        ws.close()
        while connection.state is not State.ABANDONED:
            await asyncio.sleep(0.01)  # wait-ok: until the server saw the socket go
        self.handler.gate.set()  # type: ignore[attr-defined]
        await self.recorder.wait("close")
        assert self.recorder.of("close") == [("close", sid)]


class TestExtraRE(EngineTestCase):
    def get_app(self) -> tornado.web.Application:
        self.handler = engine_handler()
        self.recorder = self.handler.recorder  # type: ignore[attr-defined]
        return tornado.web.Application([self.handler.routes("echoTest", r"(\d+)(?P<name>[a-z]+)", "/")], **FAST)

    @tornado.testing.gen_test
    async def test_extra_and_its_groups_reach_on_open(self) -> None:
        response = await self.http_client.fetch(self.get_url("/echoTest/123abc/?EIO=4&transport=polling"))
        sid = opening(records(response.body)[0])["sid"]
        await self.http_client.fetch(
            self.get_url(f"/echoTest/123abc/?EIO=4&transport=polling&sid={sid}"), method="POST", body=b"40"
        )
        await self.recorder.wait("open")
        assert self.recorder.of("open") == [("open", ("123",), {"extra": "123abc", "name": "abc"}, "polling")]


class TestBothGenerationsOnOneMount(EngineTestCase):
    @tornado.testing.gen_test
    async def test_0_6_polling_and_websocket_beside_v5(self) -> None:
        v5 = await self.websocket()
        opening(await self.read(v5))
        response = await self.http_client.fetch(self.get_url("/socket.io/xhr-polling//1"))
        sid06, greeting = messages(response.body)
        assert greeting == "welcome"
        url = self.get_url("/socket.io/websocket").replace("http", "ws", 1)
        ws06 = await tornado.websocket.websocket_connect(url)
        _, greeting = messages(await self.read(ws06))
        assert greeting == "welcome"
        await ws06.write_message(encode_frame("hello 0.6"))
        await self.recorder.wait("message")
        assert self.recorder.of("message") == [("message", "hello 0.6", "websocket")]
        assert self.connection(sid06).handler.protocol_version == "0.6"
        for ws in (v5, ws06):
            ws.close()

