"""The chat-room example (examples/chatroom): its protocol through the test client, then two real
browser tabs, one on websocket and one on xhr-polling, chatting with each other.

The browser test also saves the screenshot that README.rst shows, docs/chatroom.png (or the path in
CHATROOM_SCREENSHOT): a tab after a short conversation.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tornad_io.registry import registry_for
from tornad_io.testing import AppServer, SocketIOClient

page_log = logging.getLogger("chatroom.page")
REPOSITORY = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    # The server's open/close lines and the pages' console end up in the report of a failing test.
    caplog.set_level(logging.INFO)


def presence(*people: str) -> dict[str, Any]:
    return {"type": "presence", "online": len(people), "people": list(people)}


def without_time(event: dict[str, Any]) -> dict[str, Any]:
    assert "time" in event, event
    return {key: value for key, value in event.items() if key != "time"}


# -- the protocol, through tornad_io.testing.SocketIOClient ---------------------------------------


def test_join_talk_and_leave(chatroom: ModuleType) -> None:
    room = chatroom.ChatRoom()
    # SocketIOClient.close() stops polling but leaves its held poll open: a short poll timeout
    # answers that poll, and the short close timeout then ends the session.
    app = chatroom.make_app(chat_room=room, socket_io_poll_timeout=0.5, socket_io_close_timeout=0.5)
    with AppServer(app) as server:
        alice = SocketIOClient(server.url, transport="websocket")
        alice.connect()
        assert alice.receive() == presence()

        alice.send({"nick": "  alice \n"})
        welcome = alice.receive()
        assert welcome["type"] == "welcome" and welcome["nick"] == "alice"
        assert [without_time(event) for event in welcome["history"]] == [{"type": "joined", "nick": "alice"}]
        assert alice.receive() == presence("alice")

        other = SocketIOClient(server.url, transport="xhr-polling")
        other.connect()
        assert other.receive() == presence("alice")
        other.send({"nick": "ALICE"})  # taken (case does not matter): numbered
        welcome = other.receive()
        assert welcome["nick"] == "ALICE 2"
        assert [without_time(event) for event in welcome["history"]] == [
            {"type": "joined", "nick": "alice"},
            {"type": "joined", "nick": "ALICE 2"},
        ]
        assert other.receive() == presence("alice", "ALICE 2")
        assert without_time(alice.receive()) == {"type": "joined", "nick": "ALICE 2"}
        assert alice.receive() == presence("alice", "ALICE 2")

        other.send("a plain string is a message too")
        alice.send({"text": "hello ✓ 🎉"})
        for client in (alice, other):
            said = [without_time(client.receive()), without_time(client.receive())]
            assert said == [
                {"type": "message", "nick": "ALICE 2", "text": "a plain string is a message too"},
                {"type": "message", "nick": "alice", "text": "hello ✓ 🎉"},
            ]

        other.close()
        assert without_time(alice.receive(timeout=10)) == {"type": "left", "nick": "ALICE 2"}
        assert alice.receive() == presence("alice")
        registry = registry_for(server.application)
        assert server.call(lambda: (len(registry.connections()), list(room.nicks.values()))) == (
            1,
            ["alice"],
        )
        alice.close()


def test_what_the_room_refuses(chatroom: ModuleType) -> None:
    with AppServer(chatroom.make_app()) as server:
        client = SocketIOClient(server.url, transport="websocket")
        client.connect()
        assert client.receive() == presence()

        for refused in ({"text": "hi"}, "hi", {"nick": " \t "}, {"nick": 42}, [1, 2], {"colour": "red"}):
            client.send(refused)
            reply = client.receive()
            assert reply["type"] == "error" and reply["text"], (refused, reply)

        client.send({"nick": "bob\x00\x1b[31m"})
        assert client.receive()["nick"] == "bob [31m"
        assert client.receive() == presence("bob [31m")

        client.send({"nick": "bobby"})
        assert client.receive()["type"] == "error"  # one nick per connection
        client.send({"text": 3})
        assert client.receive()["type"] == "error"

        client.send({"text": "   "})  # nothing to say: silently dropped
        client.send({"text": "x" * 2000})
        message = client.receive()
        assert message["type"] == "message" and message["text"] == "x" * chatroom.MAX_TEXT_LENGTH

        client.send({"text": "<script>alert(1)</script>\n  second\tline"})
        assert client.receive()["text"] == "<script>alert(1)</script> second line"  # escaping is the page's job
        client.close()


def test_page_and_client_script_are_served(chatroom: ModuleType) -> None:
    with AppServer(chatroom.make_app()) as server:
        with urllib.request.urlopen(server.url + "/") as response:
            assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
            page = response.read().decode("utf-8")
        assert '<script src="/socket.io.js"></script>' in page
        with urllib.request.urlopen(server.url + "/socket.io.js") as response:
            assert response.headers["Content-Type"].startswith("application/javascript")
            assert response.read() == chatroom.find_client_js().read_bytes()


def test_missing_client_script_is_explained(
    chatroom: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(chatroom.CLIENT_JS_ENV, raising=False)
    monkeypatch.setattr(chatroom, "DEFAULT_CLIENT_JS", tmp_path / "socket.io.js")
    with pytest.raises(chatroom.ClientScriptMissing, match="make chatroom"):
        chatroom.make_app()
    assert chatroom.main(["--port", "0"]) == 1
    message = capsys.readouterr().err
    assert "make chatroom" in message and "npm install" in message

    monkeypatch.setenv(chatroom.CLIENT_JS_ENV, str(tmp_path / "elsewhere.js"))
    with pytest.raises(chatroom.ClientScriptMissing, match=chatroom.CLIENT_JS_ENV):
        chatroom.make_app()

    custom = tmp_path / "client.js"
    custom.write_text("/* a stand-in client */", encoding="utf-8")
    monkeypatch.setenv(chatroom.CLIENT_JS_ENV, str(custom))
    with AppServer(chatroom.make_app()) as server:
        with urllib.request.urlopen(server.url + "/socket.io.js") as response:
            assert response.read() == b"/* a stand-in client */"


# -- two browser tabs ------------------------------------------------------------------------------


class ChatTab:
    """One browser tab on the chat page, with its transport forced from the query string."""

    def __init__(self, browser: Any, server: AppServer, transport: str) -> None:
        from playwright.sync_api import expect

        self.expect = expect
        self.transport = transport
        self.context = browser.new_context(viewport={"width": 900, "height": 560})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        name = transport
        self.page.on("console", lambda m: page_log.info("[%s] console.%s: %s", name, m.type, m.text))
        self.page.on("pageerror", lambda e: page_log.warning("[%s] page error: %s", name, e))
        self.page.on("requestfailed", lambda r: page_log.info("[%s] failed %s %s", name, r.method, r.url))
        self.page.goto(f"{server.url}/?transport={transport}")

    def see(self, selector: str) -> Any:
        return self.expect(self.page.locator(selector))

    def join(self, nick: str) -> None:
        self.see("#status").to_have_text(f"connected via {self.transport}", timeout=15_000)
        self.page.fill("#nick", nick)
        self.page.press("#nick", "Enter")
        self.see("#message-form").to_be_visible()
        self.see("#nick-form").to_be_hidden()

    def say(self, text: str) -> None:
        self.page.fill("#message", text)
        self.page.press("#message", "Enter")
        self.see("#message").to_have_value("")

    def expect_chat(self, *lines: tuple[str, str]) -> None:
        """Exactly these (author, text) messages, in this order."""
        self.see("#log .message .author").to_have_text([author for author, _ in lines])
        self.see("#log .message .text").to_have_text([text for _, text in lines])

    def expect_notices(self, *notices: str) -> None:
        self.see("#log .notice .text").to_have_text(list(notices))

    def expect_online(self, *people: str) -> None:
        self.see("#online").to_have_text(str(len(people)))
        self.see("#people li").to_have_text(list(people))

    def close(self) -> None:
        if not self.page.is_closed():
            self.page.close()
        self.context.close()


@pytest.fixture
def tabs(browser: Any) -> Iterator[list[ChatTab]]:
    """Tabs a test opens go in this list and are closed at its end."""
    opened: list[ChatTab] = []
    yield opened
    for tab in opened:
        tab.close()


@pytest.mark.parametrize("leaving", ["xhr-polling", "websocket"])
def test_two_tabs_chat(chatroom: ModuleType, tabs: list[ChatTab], browser: Any, leaving: str) -> None:
    # A short close timeout: a polling tab that is gone counts as gone after a second.
    with AppServer(chatroom.make_app(socket_io_close_timeout=1.0)) as server:
        alice = ChatTab(browser, server, "websocket")
        tabs.append(alice)
        bjorn = ChatTab(browser, server, "xhr-polling")
        tabs.append(bjorn)

        alice.join("alice")
        alice.expect_online("alice")
        bjorn.join("Björn")
        for tab in (alice, bjorn):  # Björn sees alice's arrival in the history he was sent
            tab.expect_notices("alice joined", "Björn joined")
            tab.expect_online("alice", "Björn")

        conversation = [
            ("alice", "Hi! I'm here over a WebSocket."),
            ("Björn", "Hello alice, I'm long-polling with XHR. Grüße aus Malmö!"),
            ("alice", "Same messages, same order, on both pages."),
        ]
        speakers = {"alice": alice, "Björn": bjorn}
        for count, (author, text) in enumerate(conversation, 1):
            speakers[author].say(text)
            for tab in (alice, bjorn):
                tab.expect_chat(*conversation[:count])

        screenshot = os.environ.get("CHATROOM_SCREENSHOT", str(REPOSITORY / "docs" / "chatroom.png"))
        if leaving == "xhr-polling":
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            alice.page.screenshot(path=screenshot)

        # User text is shown as text, never parsed as HTML (and characters outside the BMP survive).
        hostile = '<img src=x onerror="window.owned=1"><b>bold?</b> & &amp; 👋'
        bjorn.say(hostile)
        conversation.append(("Björn", hostile))
        for tab in (alice, bjorn):
            tab.expect_chat(*conversation)
            assert tab.page.locator("#log img, #log b").count() == 0
            assert tab.page.evaluate("() => window.owned") is None

        gone, stays = (bjorn, alice) if leaving == "xhr-polling" else (alice, bjorn)
        gone_nick, stays_nick = ("Björn", "alice") if gone is bjorn else ("alice", "Björn")
        gone.close()
        stays.expect_notices("alice joined", "Björn joined", f"{gone_nick} left")
        stays.expect_online(stays_nick)
        stays.see("#status").to_have_text(f"connected via {stays.transport}")


@pytest.mark.parametrize("transport", ["websocket", "xhr-polling"])
def test_a_dropped_tab_rejoins_under_its_nick(
    chatroom: ModuleType, tabs: list[ChatTab], browser: Any, transport: str
) -> None:
    room = chatroom.ChatRoom()
    with AppServer(chatroom.make_app(chat_room=room)) as server:
        tab = ChatTab(browser, server, transport)
        tabs.append(tab)
        tab.join("carol")
        tab.say("before the drop")
        tab.expect_chat(("carol", "before the drop"))

        # The server ends the session; the 0.6 client reconnects with a new one and the
        # page sends its nickname again.
        server.call(lambda: [connection.close() for connection in registry_for(server.application).connections()])
        tab.expect_notices("carol joined", "carol left", "carol joined")
        tab.expect_chat(("carol", "before the drop"))  # redrawn from the history, not doubled
        tab.expect_online("carol")
        tab.say("after the drop")
        tab.expect_chat(("carol", "before the drop"), ("carol", "after the drop"))
