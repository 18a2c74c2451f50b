"""The chat-room example (examples/chatroom): its channels and protocol through the test client,
then real browser tabs, on websocket and on xhr-polling, chatting in two channels, and pages in
Chromium, Firefox and WebKit chatting in one.

The browser test also saves the screenshot that README.rst shows, docs/chatroom.png (or the path in
CHATROOM_SCREENSHOT): a #kitchen tab after a short conversation.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import tornado.httpclient

from tests.engines import Engine, Page, javascript
from tornad_io.registry import registry_for
from tornad_io.testing import AppServer, SocketIOClient

page_log = logging.getLogger("chatroom.page")
REPOSITORY = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    # The server's open/close lines and the pages' console end up in the report of a failing test.
    caplog.set_level(logging.INFO)


def presence(channel: str, *people: str) -> dict[str, Any]:
    return {"type": "presence", "channel": channel, "online": len(people), "people": list(people)}


def without_time(event: dict[str, Any]) -> dict[str, Any]:
    assert "time" in event, event
    return {key: value for key, value in event.items() if key != "time"}


def receive_events(client: SocketIOClient, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next ``count`` messages, without their times."""
    events = [client.receive(timeout=timeout) for _ in range(count)]
    return [without_time(event) if "time" in event else event for event in events]


def joined(nick: str) -> dict[str, str]:
    return {"type": "joined", "nick": nick}


def left(nick: str) -> dict[str, str]:
    return {"type": "left", "nick": nick}


def said(nick: str, text: str) -> dict[str, str]:
    return {"type": "message", "nick": nick, "text": text}


def chat_client(server: AppServer, channel: str, transport: str) -> SocketIOClient:
    """A connected client on ``channel``, its first message (the channel's presence) read."""
    client = SocketIOClient(server.url, resource=f"chat/{channel}", transport=transport)
    client.connect()
    first = client.receive()
    assert first["type"] == "presence" and first["channel"] == channel, first
    return client


def take_nick(client: SocketIOClient, wanted: str) -> dict[str, Any]:
    """Send ``{"nick": wanted}``; the welcome, with the times taken out of its history."""
    client.send({"nick": wanted})
    welcome = client.receive()
    assert welcome["type"] == "welcome", welcome
    welcome["history"] = [without_time(event) for event in welcome["history"]]
    return welcome


# SocketIOClient.close() stops polling but leaves its held poll open: a short poll timeout answers
# that poll, and the short close timeout then ends a polling session.
QUICK_CLOSE = {"socket_io_poll_timeout": 0.5, "socket_io_close_timeout": 0.5}


# -- the protocol, through tornad_io.testing.SocketIOClient ---------------------------------------


def test_join_talk_and_leave(chatroom: ModuleType) -> None:
    chat = chatroom.Chat()
    app = chatroom.make_app(chat=chat, **QUICK_CLOSE)
    with AppServer(app) as server:
        alice = SocketIOClient(server.url, resource="chat/lobby", transport="websocket")
        alice.connect()
        assert alice.receive() == presence("lobby")

        alice.send({"nick": "  alice \n"})
        welcome = alice.receive()
        assert welcome["type"] == "welcome" and welcome["nick"] == "alice" and welcome["channel"] == "lobby"
        assert [without_time(event) for event in welcome["history"]] == [joined("alice")]
        assert alice.receive() == presence("lobby", "alice")

        other = chat_client(server, "lobby", "xhr-polling")
        other.send({"nick": "ALICE"})  # taken in this channel (case does not matter): numbered
        welcome = other.receive()
        assert welcome["nick"] == "ALICE 2"
        assert [without_time(event) for event in welcome["history"]] == [joined("alice"), joined("ALICE 2")]
        assert other.receive() == presence("lobby", "alice", "ALICE 2")
        assert receive_events(alice, 2) == [joined("ALICE 2"), presence("lobby", "alice", "ALICE 2")]

        other.send("a plain string is a message too")
        alice.send({"text": "hello ✓ 🎉"})
        for client in (alice, other):
            assert receive_events(client, 2) == [
                said("ALICE 2", "a plain string is a message too"),
                said("alice", "hello ✓ 🎉"),
            ]

        other.close()
        assert receive_events(alice, 2) == [left("ALICE 2"), presence("lobby", "alice")]
        registry = registry_for(server.application)
        assert server.call(lambda: (len(registry.connections()), chat.channels["lobby"].nicks)) == (1, {"alice"})
        alice.close()


def test_channels_are_isolated(chatroom: ModuleType) -> None:
    """Two channels, each with a websocket and an xhr-polling client: nothing crosses between them.

    A connection gets its frames in the order the server sent them, so when a client's next message
    is one of its own channel's, nothing from the other channel that happened earlier reached it.
    """
    chat = chatroom.Chat()
    with AppServer(chatroom.make_app(chat=chat, **QUICK_CLOSE)) as server:
        alice = chat_client(server, "kitchen", "websocket")
        bob = chat_client(server, "kitchen", "xhr-polling")
        carol = chat_client(server, "garden", "xhr-polling")
        dave = chat_client(server, "garden", "websocket")

        # Joins: the notices and the presence stay in their channel.
        assert take_nick(alice, "alice")["history"] == [joined("alice")]
        assert receive_events(alice, 1) == [presence("kitchen", "alice")]
        assert receive_events(bob, 2) == [joined("alice"), presence("kitchen", "alice")]
        assert take_nick(bob, "bob")["history"] == [joined("alice"), joined("bob")]
        assert receive_events(bob, 1) == [presence("kitchen", "alice", "bob")]
        assert receive_events(alice, 2) == [joined("bob"), presence("kitchen", "alice", "bob")]

        welcome = take_nick(carol, "carol")  # carol's first message since the presence: no kitchen joins
        assert welcome["channel"] == "garden" and welcome["history"] == [joined("carol")]
        assert receive_events(carol, 1) == [presence("garden", "carol")]
        assert receive_events(dave, 2) == [joined("carol"), presence("garden", "carol")]
        welcome = take_nick(dave, "ALICE")  # nicknames are per channel: kitchen's alice is no clash
        assert welcome["nick"] == "ALICE" and welcome["history"] == [joined("carol"), joined("ALICE")]
        assert receive_events(dave, 1) == [presence("garden", "ALICE", "carol")]
        assert receive_events(carol, 2) == [joined("ALICE"), presence("garden", "ALICE", "carol")]

        # Messages.
        alice.send({"text": "soup's on"})
        bob.send("coming!")
        for client in (alice, bob):
            assert receive_events(client, 2) == [said("alice", "soup's on"), said("bob", "coming!")]
        carol.send("the roses are out")
        dave.send({"text": "lovely"})
        for client in (carol, dave):
            assert receive_events(client, 2) == [said("carol", "the roses are out"), said("ALICE", "lovely")]
        alice.send("anyone in the garden hear that?")
        for client in (alice, bob):  # the next kitchen message, not garden's
            assert receive_events(client, 1) == [said("alice", "anyone in the garden hear that?")]

        # Leaves: bob (xhr-polling) goes first, then dave (websocket).
        bob.close()
        assert receive_events(alice, 2) == [left("bob"), presence("kitchen", "alice")]
        dave.close()
        assert receive_events(carol, 2) == [left("ALICE"), presence("garden", "carol")]  # no "bob left"
        carol.send("quiet now")
        assert receive_events(carol, 1) == [said("carol", "quiet now")]
        alice.send("just me")
        assert receive_events(alice, 1) == [said("alice", "just me")]  # no "ALICE left", no garden talk

        # History is per channel too: a newcomer to the kitchen is told only the kitchen's past.
        eve = chat_client(server, "kitchen", "xhr-polling")
        assert take_nick(eve, "eve")["history"] == [
            joined("alice"),
            joined("bob"),
            said("alice", "soup's on"),
            said("bob", "coming!"),
            said("alice", "anyone in the garden hear that?"),
            left("bob"),
            said("alice", "just me"),
            joined("eve"),
        ]
        assert receive_events(alice, 2) == [joined("eve"), presence("kitchen", "alice", "eve")]

        def server_side() -> Any:
            members = {name: (channel.tabs, channel.nicks) for name, channel in chat.channels.items()}
            return members, len(registry_for(server.application).connections())

        assert server.call(server_side) == ({"kitchen": (2, {"alice", "eve"}), "garden": (1, {"carol"})}, 3)
        for client in (alice, carol, eve):
            client.close()


def test_a_channel_url_must_name_a_channel(chatroom: ModuleType) -> None:
    with AppServer(chatroom.make_app()) as server:
        with urllib.request.urlopen(f"{server.url}/chat/kitchen-2/xhr-polling//1") as response:
            assert response.status == 200  # a handshake: a session id and the channel's presence
        refused = [
            "/socket.io/xhr-polling//1",  # the 0.6 client's default resource is not served
            "/chat/xhr-polling//1",
            "/chat//xhr-polling//1",
            "/chat/Kitchen/xhr-polling//1",
            "/chat/kitchen%2F..%2Fgarden/xhr-polling//1",
            "/chat/a/b/xhr-polling//1",
            "/chat/" + "a" * 33 + "/xhr-polling//1",
        ]
        for path in refused:
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(server.url + path)
            assert answer.value.code == 404, path
        with pytest.raises(tornado.httpclient.HTTPClientError, match="404"):
            SocketIOClient(server.url, resource="chat/Kitchen", transport="websocket").connect()


def test_quiet_channels_are_forgotten_least_recently_used_first(chatroom: ModuleType) -> None:
    chat = chatroom.Chat(max_channels=2)
    kitchen = chat.enter("kitchen")
    garden = chat.enter("garden")
    chat.leave(kitchen)
    chat.enter("attic")  # one too many: the kitchen is quiet, the garden is not
    assert list(chat.channels) == ["garden", "attic"]
    chat.enter("cellar")  # nobody left anywhere: nothing to forget
    assert list(chat.channels) == ["garden", "attic", "cellar"]
    chat.leave(garden)
    chat.leave(chat.channels["attic"])
    chat.enter("garden")  # used again, so the attic is now the least recently used quiet channel
    chat.enter("hall")
    assert list(chat.channels) == ["cellar", "garden", "hall"]
    assert chat.channels["garden"] is garden and garden.tabs == 1


def test_what_the_room_refuses(chatroom: ModuleType) -> None:
    with AppServer(chatroom.make_app()) as server:
        client = chat_client(server, "lobby", "websocket")

        for refused in ({"text": "hi"}, "hi", {"nick": " \t "}, {"nick": 42}, [1, 2], {"colour": "red"}):
            client.send(refused)
            reply = client.receive()
            assert reply["type"] == "error" and reply["text"], (refused, reply)

        client.send({"nick": "bob\x00\x1b[31m"})
        assert client.receive()["nick"] == "bob [31m"
        assert client.receive() == presence("lobby", "bob [31m")

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
        assert 'resource: "chat/" + channel' in page and "var CHANNEL = /^[a-z0-9-]{1,32}$/;" in page
        assert chatroom.CHANNEL == r"(?P<channel>[a-z0-9-]{1,32})"  # the page checks the same names
        with urllib.request.urlopen(server.url + "/socket.io.js") as response:
            assert response.headers["Content-Type"].startswith("application/javascript")
            assert response.read() == chatroom.find_client_js().read_bytes()
        # /v5: the same page on socket.io-client 4.x.
        with urllib.request.urlopen(server.url + "/v5") as response:
            v5_page = response.read().decode("utf-8")
        assert v5_page == page.replace('<script src="/socket.io.js">', '<script src="/socket.io.v5.js">')
        with urllib.request.urlopen(server.url + "/socket.io.v5.js") as response:
            assert response.headers["Content-Type"].startswith("application/javascript")
            assert response.read() == chatroom.find_client_v5_js().read_bytes()


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


# -- browser tabs ----------------------------------------------------------------------------------


class ChatTab:
    """One browser tab on the chat page: its transport forced from the query string, its channel the fragment."""

    def __init__(self, browser: Any, server: AppServer, transport: str, channel: str | None = None) -> None:
        from playwright.sync_api import expect

        self.expect = expect
        self.transport = transport
        self.channel = channel or "lobby"
        self.context = browser.new_context(viewport={"width": 900, "height": 560})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.requests: list[str] = []
        name = f"{transport} #{channel or ''}"
        self.page.on("console", lambda m: page_log.info("[%s] console.%s: %s", name, m.type, m.text))
        self.page.on("pageerror", lambda e: page_log.warning("[%s] page error: %s", name, e))
        self.page.on("requestfailed", lambda r: page_log.info("[%s] failed %s %s", name, r.method, r.url))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(f"{server.url}/?transport={transport}" + (f"#{channel}" if channel is not None else ""))

    def see(self, selector: str) -> Any:
        return self.expect(self.page.locator(selector))

    def expect_connected(self) -> None:
        self.see("#channel").to_have_text(f"#{self.channel}")
        self.see("#status").to_have_text(f"connected via {self.transport}", timeout=15_000)

    def join(self, nick: str) -> None:
        self.expect_connected()
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


@pytest.mark.parametrize(("leaving", "garden_transport"), [("xhr-polling", "websocket"), ("websocket", "xhr-polling")])
def test_two_channels_in_the_browser(
    chatroom: ModuleType, tabs: list[ChatTab], browser: Any, leaving: str, garden_transport: str
) -> None:
    """#kitchen has a websocket tab and an xhr-polling tab that chat; a #garden tab sees none of it.

    A tab gets its channel's events in the order the server sent them, so once the garden tab shows
    something said in the garden after the kitchen's talk, anything leaked from the kitchen would
    already be on it: the exact-list checks below need no waiting for "nothing more".
    """
    # A short close timeout: a polling tab that is gone counts as gone after a second.
    with AppServer(chatroom.make_app(socket_io_close_timeout=1.0)) as server:
        alice = ChatTab(browser, server, "websocket", "kitchen")
        tabs.append(alice)
        bjorn = ChatTab(browser, server, "xhr-polling", "kitchen")
        tabs.append(bjorn)
        greta = ChatTab(browser, server, garden_transport, "garden")
        tabs.append(greta)

        alice.join("alice")
        alice.expect_online("alice")
        greta.expect_connected()
        greta.expect_online()  # a tab that has not picked a nick yet sees its channel's presence only
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

        greta.join("Greta")
        greta.say("Only the garden hears this.")
        greta.expect_chat(("Greta", "Only the garden hears this."))
        greta.expect_notices("Greta joined")
        greta.expect_online("Greta")

        screenshot = os.environ.get("CHATROOM_SCREENSHOT", str(REPOSITORY / "docs" / "chatroom.png"))
        if leaving == "xhr-polling":
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            alice.page.screenshot(path=screenshot)

        # User text is shown as text, never parsed as HTML (and characters outside the BMP survive).
        hostile = '<img src=x onerror="window.owned=1"><b>bold?</b> & &amp; 👋'
        bjorn.say(hostile)
        conversation.append(("Björn", hostile))
        for tab in (alice, bjorn):  # and the garden's line, said earlier, is not among them
            tab.expect_chat(*conversation)
            tab.expect_online("alice", "Björn")
            assert tab.page.locator("#log img, #log b").count() == 0
            assert tab.page.evaluate("() => window.owned") is None

        gone, stays = (bjorn, alice) if leaving == "xhr-polling" else (alice, bjorn)
        gone_nick, stays_nick = ("Björn", "alice") if gone is bjorn else ("alice", "Björn")
        gone.close()
        stays.expect_notices("alice joined", "Björn joined", f"{gone_nick} left")
        stays.expect_online(stays_nick)
        stays.see("#status").to_have_text(f"connected via {stays.transport}")
        greta.say("Still only the garden.")
        greta.expect_chat(("Greta", "Only the garden hears this."), ("Greta", "Still only the garden."))
        greta.expect_notices("Greta joined")  # no "… left" from the kitchen
        greta.expect_online("Greta")

        # Another fragment is another channel: the page starts again there.
        greta.page.evaluate("() => { window.location.hash = 'kitchen'; }")
        greta.channel = "kitchen"
        greta.expect_connected()
        greta.expect_online(stays_nick)
        greta.see("#nick-form").to_be_visible()


def test_a_bad_channel_name_connects_nowhere(chatroom: ModuleType, tabs: list[ChatTab], browser: Any) -> None:
    with AppServer(chatroom.make_app()) as server:
        for fragment in ("../socket.io", "Kitchen", "a" * 33, "caf%C3%A9"):
            tab = ChatTab(browser, server, "websocket", fragment)
            tabs.append(tab)
            tab.see("#log .empty").to_contain_text("is not a channel name")
            tab.see("#status").to_have_text("not connected")
            tab.see("#nick-form").to_be_hidden()
            # The page decides before it would create a socket, in the script that runs before "load".
            assert tab.page.evaluate("() => window.chat.socket") is None
            assert tab.requests == [f"{server.url}/?transport=websocket", f"{server.url}/socket.io.js"]
        assert server.call(lambda: len(registry_for(server.application).connections())) == 0


@pytest.mark.parametrize("transport", ["websocket", "xhr-polling"])
def test_a_dropped_tab_rejoins_under_its_nick(
    chatroom: ModuleType, tabs: list[ChatTab], browser: Any, transport: str
) -> None:
    with AppServer(chatroom.make_app()) as server:
        tab = ChatTab(browser, server, transport)  # no fragment: the lobby
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


# -- one channel, three engines -----------------------------------------------------------------

#: The chat page's state as JSON: what a person looking at it sees.
CHAT_STATE = """({
  channel: document.getElementById("channel").textContent,
  status: document.getElementById("status").textContent,
  online: document.getElementById("online").textContent,
  people: Array.from(document.querySelectorAll("#people li"), li => li.textContent),
  chat: Array.from(document.querySelectorAll("#log .message"),
                   li => [li.querySelector(".author").textContent, li.querySelector(".text").textContent]),
  notices: Array.from(document.querySelectorAll("#log .notice .text"), span => span.textContent),
  joined: document.getElementById("nick-form").hidden && !document.getElementById("message-form").hidden,
  markup: document.querySelectorAll("#log b").length
})"""


class EngineChatTab:
    """The chat page in any engine (tests/engines.py), driven and read through its DOM.

    ``path`` "/v5" is the page on socket.io-client 4.x; ``transport`` "" leaves the client its
    default transports, ``via`` then names the one its status line must end up showing.
    """

    def __init__(
        self, engine: Engine, server: AppServer, transport: str, channel: str, path: str = "/", via: str = ""
    ) -> None:
        self.engine = engine
        self.transport = via or transport
        self.channel = channel
        query = f"?transport={transport}" if transport else ""
        self.page: Page | None = engine.open(f"{server.url}{path}{query}#{channel}")
        self.last: dict[str, Any] = {}

    def state(self) -> dict[str, Any]:
        assert self.page is not None, "the page is closed"
        self.last = self.page.evaluate(CHAT_STATE)
        return self.last

    def wait(self, what: str, check: Any, timeout: float = 15.0) -> dict[str, Any]:
        """Poll the page until ``check(state)`` holds; fail with the page's last state."""
        deadline = time.monotonic() + timeout
        while not check(state := self.state()):
            if time.monotonic() > deadline:
                notes = "".join(f"\n  {note}" for note in (self.page.notes() if self.page is not None else []))
                raise AssertionError(f"{self.engine.version} ({self.transport}) never showed {what}: {state}{notes}")
            time.sleep(0.05)  # wait-ok: polling page state
        return state

    def submit(self, form: str, field: str, text: str) -> None:
        """Type ``text`` into ``#field`` and submit ``#form``, as pressing Enter would."""
        assert self.page is not None, "the page is closed"
        self.page.evaluate(
            f"""(() => {{
              document.getElementById({javascript(field)}).value = {javascript(text)};
              document.getElementById({javascript(form)}).requestSubmit();
              return true;
            }})()"""
        )

    def join(self, nick: str) -> None:
        self.wait(f"connected via {self.transport}", lambda s: s["status"] == f"connected via {self.transport}")
        assert self.last["channel"] == f"#{self.channel}", self.last
        self.submit("nick-form", "nick", nick)
        self.wait("the message form", lambda s: s["joined"])

    def say(self, text: str) -> None:
        self.submit("message-form", "message", text)

    def close(self) -> None:
        if self.page is not None:
            page, self.page = self.page, None
            page.close()


@pytest.mark.parametrize(
    "transports",
    [("websocket", "xhr-polling", "websocket"), ("xhr-polling", "websocket", "xhr-polling")],
    ids=["chromium-ws,firefox-xhr,webkit-ws", "chromium-xhr,firefox-ws,webkit-xhr"],
)
def test_three_engines_chat_in_one_channel(
    chatroom: ModuleType, all_engines: dict[str, Engine], transports: tuple[str, str, str]
) -> None:
    """A Chromium, a Firefox and a WebKit page on /#kitchen: each sees the others arrive, talk and leave."""
    nicks = {"chromium": "Chloé", "firefox": "Frida 🦊", "webkit": "Wanjiru"}
    with AppServer(chatroom.make_app(socket_io_close_timeout=1.0)) as server:
        tabs = {
            name: EngineChatTab(engine, server, transport, "kitchen")
            for (name, engine), transport in zip(all_engines.items(), transports, strict=True)
        }
        try:
            for name, tab in tabs.items():
                tab.join(nicks[name])
            everyone = sorted(nicks.values(), key=str.casefold)
            for tab in tabs.values():
                tab.wait(f"{everyone} online", lambda s: s["people"] == everyone and s["online"] == "3")

            conversation: list[list[str]] = []
            lines = {
                "chromium": "Hello from Chromium ✓",
                "firefox": "Firefox here: grüße, 你好 & <b>not bold</b>",
                "webkit": "WebKit too 👋",
            }
            for name, text in lines.items():  # one at a time: each line in the same place on every page
                tabs[name].say(text)
                conversation.append([nicks[name], text])
                for tab in tabs.values():
                    tab.wait(f"the chat {conversation}", lambda s: s["chat"] == conversation)

            for tab in tabs.values():
                state = tab.state()
                assert state["notices"] == [f"{nicks[name]} joined" for name in tabs], state
                assert state["markup"] == 0, state  # user text is shown as text

            tabs["firefox"].close()  # closing the window: its session ends (close timeout 1 s)
            stays = [nick for name, nick in nicks.items() if name != "firefox"]
            for name in ("chromium", "webkit"):
                tabs[name].wait(
                    f"{nicks['firefox']} left",
                    lambda s: (
                        s["notices"][-1:] == [f"{nicks['firefox']} left"]
                        and s["people"] == sorted(stays, key=str.casefold)
                    ),
                )
            tabs["webkit"].say("Just the two of us.")
            conversation.append([nicks["webkit"], "Just the two of us."])
            tabs["chromium"].wait("the last line", lambda s: s["chat"] == conversation)
        finally:
            for tab in tabs.values():
                tab.close()


# -- a 0.6 page and a v5 page in one channel -------------------------------------------------------


#: Per engine: the 0.6 page's transport, the v5 page's ("" for the client's default) and the one it ends on.
OLD_AND_NEW = {
    "chromium": ("websocket", "", "websocket"),
    "firefox": ("xhr-polling", "polling", "polling"),
    "webkit": ("xhr-polling", "websocket", "websocket"),
}


def test_a_v5_page_and_a_06_page_chat_in_one_channel(chatroom: ModuleType, all_engines: dict[str, Engine]) -> None:
    """In each engine, /#kitchen on the 0.6 client and /v5#kitchen on socket.io-client 4.x: one room,
    both generations, each page seeing the other's arrival and messages, the 0.6 page the v5 one leave.

    One engine after the other, in the module's browsers (all_engines): no browser starts for this.
    """
    for name, engine in all_engines.items():
        old_transport, new_transport, new_via = OLD_AND_NEW[name]
        with AppServer(chatroom.make_app(socket_io_close_timeout=1.0)) as server:
            old = EngineChatTab(engine, server, old_transport, "kitchen")
            new = EngineChatTab(engine, server, new_transport, "kitchen", path="/v5", via=new_via)
            try:
                chat_across_generations(server, old, new)
            finally:
                old.close()
                new.close()


def chat_across_generations(server: AppServer, old: EngineChatTab, new: EngineChatTab) -> None:
    tabs = {"Ada": old, "Grace": new}
    old.join("Ada")
    new.join("Grace")
    for tab in tabs.values():
        tab.wait("Ada and Grace online", lambda s: s["people"] == ["Ada", "Grace"] and s["online"] == "2")
    registry = registry_for(server.application)
    versions = server.call(lambda: sorted(c.handler.protocol_version for c in registry.connections()))
    assert versions == ["0.6", "5"], new.engine.version

    conversation: list[list[str]] = []
    lines = [("Ada", "Hello from 2010 ✓"), ("Grace", "Hi from socket.io-client 4 👋 <b>not bold</b>")]
    for nick, text in lines:
        tabs[nick].say(text)
        conversation.append([nick, text])
        for tab in tabs.values():
            tab.wait(f"the chat {conversation}", lambda s: s["chat"] == conversation)
    for tab in tabs.values():
        state = tab.state()
        assert state["notices"] == ["Ada joined", "Grace joined"], (tab.engine.version, state)
        assert state["markup"] == 0, (tab.engine.version, state)  # user text is shown as text
        assert state["status"] == f"connected via {tab.transport}", (tab.engine.version, state)

    new.close()  # the v5 tab goes: the 0.6 tab hears it
    old.wait("Grace left", lambda s: s["notices"][-1:] == ["Grace left"] and s["people"] == ["Ada"])
