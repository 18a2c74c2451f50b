"""End-to-end tests with the real Socket.IO 0.6.3 client in Chromium, Firefox and WebKit.

Each test forces one transport through the page's ``transports`` option and checks that the client
really used it. websocket, xhr-polling and jsonp-polling run on the stock client, in every engine
(tests/engines.py); htmlfile, xhr-multipart and flashsocket (made for IE, Firefox 3 and Flash
Player) run the client's own transport code over the test-only stand-ins of shims.js, in Chromium.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sio_browser import ALL_TRANSPORTS, BROWSER_TRANSPORTS, EchoPage, ServerRecord

from tests.engines import ENGINE_NAMES
from tornad_io.testing import AppServer

StartServer = Callable[..., tuple[AppServer, ServerRecord]]
OpenPage = Callable[[AppServer, ServerRecord, str], EchoPage]

MESSAGES: list[Any] = [
    "plain ascii text",
    "hi é中😀 end",
    {"a": [1, [2, "x"]], "s": "y"},
    # jsonp-polling posts with a hidden HTML form, which turns the line break into CRLF while the
    # frame length was counted on the LF: the server must decode length-guided and give back LF.
    "line1\nline2",
]

#: Would run in the page if a transport let a message break out of its script or markup.
HOSTILE = "</script><script>window.PWNED=1</script><!--<script>x"

#: Every engine on the stock transports; the shimmed ones in Chromium only.
transports = pytest.mark.parametrize(
    ("engine", "transport"),
    [
        *(pytest.param(engine, t, id=f"{engine}-{t}") for engine in ENGINE_NAMES for t in BROWSER_TRANSPORTS),
        *(pytest.param("chromium", t, id=f"chromium-{t}") for t in ALL_TRANSPORTS if t not in BROWSER_TRANSPORTS),
    ],
    indirect=["engine"],
    # The engine's scope: with the default (function), pytest would restart the browser for every test.
    scope="module",
)


def open_connected_page(open_page: OpenPage, server: AppServer, record: ServerRecord, transport: str) -> EchoPage:
    """Open page.html forcing ``transport``; wait for connect and check the transport really used."""
    page = open_page(server, record, transport)
    connect = page.wait_connected()
    assert connect["transport"] == transport, page.describe()
    assert page.transport_type() == transport, page.describe()
    assert isinstance(connect["sessionid"], str) and connect["sessionid"], page.describe()
    return page


@transports
def test_connect_then_welcome_first(start_echo_server: StartServer, open_page: OpenPage, transport: str) -> None:
    server, record = start_echo_server()
    page = open_connected_page(open_page, server, record, transport)

    page.wait_messages(1)
    log = page.log()
    assert [entry["event"] for entry in log[:2]] == ["connect", "message"], page.describe()
    assert log[1]["value"] == "welcome", page.describe()
    assert record.opened.is_set()


@transports
def test_echo_text_unicode_and_json_in_order(
    start_echo_server: StartServer, open_page: OpenPage, transport: str
) -> None:
    server, record = start_echo_server()
    page = open_connected_page(open_page, server, record, transport)
    page.wait_messages(1)

    page.send_all(MESSAGES)

    received = page.wait_messages(1 + len(MESSAGES))
    assert received == ["welcome", *MESSAGES], page.describe()
    assert "disconnect" not in page.events(), page.describe()
    # The server handed the application a str for text and a dict for the ~j~ JSON frame.
    assert record.received == MESSAGES, page.describe()


@transports
def test_closing_the_page_closes_the_session_once(
    start_echo_server: StartServer, open_page: OpenPage, transport: str
) -> None:
    close_timeout, poll_timeout = 1.0, 2.0
    server, record = start_echo_server(socket_io_close_timeout=close_timeout, socket_io_poll_timeout=poll_timeout)
    page = open_connected_page(open_page, server, record, transport)
    page.wait_messages(1)
    assert record.closes == 0, page.describe()

    page.close()

    # A held poll is answered after poll_timeout at the latest; the session ends close_timeout later.
    assert record.closed.wait(poll_timeout + close_timeout + 5), f"on_close was never called\n{page.describe()}"
    assert record.closes == 1
    # A second on_close would set closed_again; give the server another full poll + close period.
    assert not record.closed_again.wait(poll_timeout + close_timeout), f"on_close ran again\n{page.describe()}"
    assert record.closes == 1
    assert record.opens == 1


@transports
def test_hostile_markup_comes_back_intact_and_never_runs(
    start_echo_server: StartServer, open_page: OpenPage, transport: str
) -> None:
    server, record = start_echo_server()
    page = open_connected_page(open_page, server, record, transport)
    page.wait_messages(1)

    page.send_all([HOSTILE])
    assert page.wait_messages(2) == ["welcome", HOSTILE], page.describe()
    # Sent only once the hostile echo is in: on htmlfile it then arrives in a later chunk of the
    # stream, which an unescaped "<!--<script>" would have swallowed with everything after it.
    later = "sent after the hostile one"
    page.send_all([later])
    assert page.wait_messages(3) == ["welcome", HOSTILE, later], page.describe()
    assert record.received == [HOSTILE, later], page.describe()

    frames = page.frames_typeof("PWNED")
    assert all(kind in ("undefined", "detached") for _url, kind in frames), f"PWNED in {frames}\n{page.describe()}"
    if transport == "htmlfile":
        # The frame that runs the streamed scripts was among those checked.
        checked = [url for url, kind in frames if "/socket.io/htmlfile/" in url and kind == "undefined"]
        assert checked, f"{frames}\n{page.describe()}"
    assert "disconnect" not in page.events(), page.describe()


def test_idle_pages_stay_connected_with_default_timers(start_echo_server: StartServer, open_page: OpenPage) -> None:
    """One page per stock transport, idle for 30 s: longer than the client's own inactivity limits
    (15 s without a frame on websocket, 25 s for a poll) and than one default 20 s held poll."""
    server, record = start_echo_server()
    pages = {t: open_connected_page(open_page, server, record, t) for t in BROWSER_TRANSPORTS}
    for page in pages.values():
        page.wait_messages(1)

    # 30 s of idleness, looking at the pages every second: a disconnect fails the test at once.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for page in pages.values():
            assert "disconnect" not in page.events(), page.describe()
        time.sleep(1)  # wait-ok: the point of this test is 30 s of real idleness, watched every second

    # The websocket page was kept alive by the server's heartbeats (default: one every 10 s).
    assert pages["websocket"].heartbeats() >= 2, pages["websocket"].describe()
    for transport, page in pages.items():
        assert "disconnect" not in page.events(), page.describe()
        assert page.connected(), page.describe()
        fresh = f"still here on {transport}"
        page.send_all([fresh])
        assert page.wait_messages(2) == ["welcome", fresh], page.describe()
    assert record.closes == 0, "\n".join(page.describe() for page in pages.values())
